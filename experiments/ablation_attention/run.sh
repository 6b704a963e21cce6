#!/usr/bin/env bash
# Attention ablation: the same LAformer with linear, RELA and softmax attention, one Hydra multirun.
# When the three jobs have finished, the experiment's Hydra callback runs report.py, which writes
# results.csv, results.md and psnr_by_attention.png next to this script.
#   bash experiments/ablation_attention/run.sh                          # CPU scale (about an hour on 2 cores)
#   bash experiments/ablation_attention/run.sh trainer.max_steps=4      # extra overrides are passed on
# GPU scale: EXPERIMENT=ablation_attention_gpu bash experiments/ablation_attention/run.sh data.root=/data/DFWB
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
laformer-train -m "experiment=${EXPERIMENT:-ablation_attention}" model.attention=linear,rela,softmax "$@"
