#!/usr/bin/env bash
# Every GPU check in one call, for a machine with a CUDA GPU (run from the repository root):
#
#   scripts/gpu_checks.sh OUT
#
# It needs nothing installed but PyTorch: the package runs from src/. Prepare beforehand
# (git-ignored folders, to copy along with the tree):
#   local/wheels/      wheels the machine lacks (e.g. kornia, kornia_rs for its Python)
#   local/home/        SYNFACE_HOME holding the ICT face model and the MTCNN weights
#   local/cfp_aligned/ CFP aligned by `synface align` (for the CFP-FF / CFP-FP numbers)
# Every step's output goes to OUT/<step>.log and a summary to OUT/summary.txt.
# SMOKE=1 runs the same steps at toy sizes (on a CPU too), to test this script.
set -uo pipefail
OUT=${1:-gpu_out}
mkdir -p "$OUT" local/gpu
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
export SYNFACE_HOME=${SYNFACE_HOME:-$PWD/local/home}
PY=${PYTHON:-python3}
if [ "${SMOKE:-0}" = 1 ]; then
  DEVICE=${DEVICE:-cpu}; GEN_BATCH=32; GEN_ITERS=1; TRAIN_MODEL=iresnet_tiny; TRAIN_BATCH=32
  PRECISION=fp32; LAYOUT=20_4; PRESET=tiny; STEPS=2
else
  DEVICE=${DEVICE:-cuda}; GEN_BATCH=1024; GEN_ITERS=10; TRAIN_MODEL=iresnet50; TRAIN_BATCH=512
  PRECISION=bf16; LAYOUT=1K_20; PRESET=${PRESET:-small}; STEPS=30
fi
if compgen -G "local/wheels/*.whl" > /dev/null; then
  $PY -m pip install -q --no-deps --no-index local/wheels/*.whl
fi
synface() { $PY -m synface.cli "$@"; }
step() {
  local name=$1 start=$SECONDS status; shift
  "$@" > "$OUT/$name.log" 2>&1; status=$?
  echo "$name: exit $status, $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
  tail -n 25 "$OUT/$name.log"
}
step environment bash -c "nvidia-smi || true; $PY -c 'import torch; print(torch.__version__, torch.cuda.is_available())'"
step gpu_tests $PY -m pytest -q -p no:cacheprovider -m gpu tests
step bench_generate synface -q bench generate --device "$DEVICE" --batch-size $GEN_BATCH --iterations $GEN_ITERS
step bench_train_random synface -q bench train --model $TRAIN_MODEL --batch-size $TRAIN_BATCH \
  --num-classes 10000 --precision $PRECISION --device "$DEVICE" --source random --steps $STEPS
step generate_dataset synface -q generate syn_10k_50_im --out local/gpu/syn layout="'$LAYOUT'" --device "$DEVICE"
step bench_train_disk synface -q bench train --model $TRAIN_MODEL --batch-size $TRAIN_BATCH \
  --num-classes 10000 --precision $PRECISION --device "$DEVICE" --source disk --data local/gpu/syn --steps $STEPS
step bench_train_online synface -q bench train --model $TRAIN_MODEL --batch-size $TRAIN_BATCH \
  --num-classes 10000 --precision $PRECISION --device "$DEVICE" --source online --steps $STEPS
REAL=(); [ -d local/cfp_aligned ] && REAL=(--real-data local/cfp_aligned)
step experiments synface -q experiment table3 fig5 --preset $PRESET --out local/gpu/exp "${REAL[@]}" --device "$DEVICE"
cp local/gpu/exp/report.md "$OUT/report.md" 2>/dev/null || true
