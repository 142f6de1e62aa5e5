#!/usr/bin/env bash
# Real-face benchmark on a 2-core CPU: train small models on synthetic, real (CFP folds 1-5)
# and mixed data, then evaluate CFP-FF and CFP-FP on the held-out folds 6-10.
# Run from the repository root; needs the ICT model and MTCNN weights:
#   synface assets import-ict ../shared/assets/ict-facekit && synface assets install mtcnn
set -euo pipefail
R=docs/results/cfp_cpu
mkdir -p local/bench
synface align ../shared/data/cfp local/cfp_aligned --template synface
synface generate syn_10k_50    --out local/bench/syn_1k_10    layout=1K_10
synface generate syn_10k_50_im --out local/bench/syn_1k_10_im layout=1K_10
synface train $R/syn.yaml
synface train $R/syn.yaml data.path=local/bench/syn_1k_10_im train.output_dir=local/bench/runs/syn_im
synface train $R/real.yaml
synface train $R/mix.yaml
for run in syn syn_im real mix; do
  synface eval --model local/bench/runs/$run --protocol cfp-ff --protocol cfp-fp \
      --data local/cfp_aligned --folds 6-10 --rule synface --rule arcface \
      --out $R/eval_$run.json
done
