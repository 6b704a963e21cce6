#!/usr/bin/env bash
# One prepared GPU check (issue 16): training at each precision, a 4K pass at half precision, latency against the
# peer networks, attention scaling, torch.compile and DDP, in under 8 minutes on one GPU. Writes
# experiments/gpu/results_<gpu name>.{csv,md} (rewritten after every row, so a killed run keeps what it measured).
#   bash experiments/gpu/check.sh                              # on a GPU machine
#   bash experiments/gpu/check.sh --dry-run --out /tmp/check   # every part at toy sizes on the CPU (tested)
# The hard limit below stops the whole check at 8 minutes even if a part's own budget fails to.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}"
exec timeout --kill-after=10 "${GPU_CHECK_TIMEOUT:-480}" "$PYTHON" experiments/gpu/check.py "$@"
