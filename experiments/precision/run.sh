#!/usr/bin/env bash
# Precision sweep: the demo experiment at each numeric precision, one Hydra multirun. When the jobs have
# finished, the experiment's Hydra callback runs report.py, which writes results.csv, results.md and
# precision.png next to this script.
#   bash experiments/precision/run.sh                                         # CPU: 32-true, bf16-mixed
#   bash experiments/precision/run.sh trainer=gpu precision=32-true,bf16-mixed,16-mixed   # on a GPU
# (32-true is full precision, named as Lightning names it)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
laformer-train -m experiment=precision_sweep "$@"
