#!/usr/bin/env bash
# Attention ablation: the same LAformer with linear, RELA and softmax attention, 3 seeds, training crops 64 and 32,
# two tasks (Gaussian noise sigma 50, low light), in one Hydra multirun (36 jobs; the axes are in
# conf/experiment/ablation_attention.yaml). Each job is scored on whole photos and in tiles of its crop. When every
# job has finished, the experiment's Hydra callbacks write experiments/ablation_attention/results.{csv,md},
# results_per_seed.csv, psnr_by_attention.png and the rank analysis (experiments/rank_analysis/).
#   bash experiments/ablation_attention/run.sh                          # CPU scale, about 2.5 h on 2 cores
#   bash experiments/ablation_attention/run.sh seed=1 data.patch_size=64   # extra overrides replace sweep axes
# Interrupted (Ctrl-C, a kill, a reboot)? Run the same command again: finished jobs are skipped and the unfinished
# one resumes from its last checkpoint, in the same sweep folder (outputs/ablation_attention/multiruns/<sweep>/).
# GPU scale: EXPERIMENT=ablation_attention_gpu bash experiments/ablation_attention/run.sh data.root=/data/DFWB
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
laformer-train -m "experiment=${EXPERIMENT:-ablation_attention}" "$@"
