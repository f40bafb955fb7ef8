#!/usr/bin/env bash
# GPU check (about 5 minutes on one GPU, up to 15 with several): trains the digits-lt demo with
# mixed precision and channels_last through the engine and through a plain hand-written loop, and
# prints images/s for both and the peak GPU memory; with several GPUs, also one GPU against all of
# them through torchrun (benchmarks/scaling.py). Exits 0 with a message where there is no CUDA.
# Record the RESULT lines and the date in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to measure"
    exit 0
fi
"$PY" -c 'import torch; print("gpu_check:", torch.cuda.get_device_name(0), "torch", torch.__version__)'

# The demo (listed 8 times) at 128 px, batch 128: big enough to keep a GPU busy, small enough for 5 minutes.
timeout 300 "$PY" benchmarks/engine.py --device cuda --batch-size 128 --input-size 128 \
    --batches 40 --warmup 5 --workers 4 --repeat 8

# Several GPUs: one process against all of them through torchrun (DistributedDataParallel over
# NCCL, the per-GPU batch kept), and the scaling efficiency (goal: close to 1.0).
GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
if [ "$GPUS" -gt 1 ]; then
    timeout 600 "$PY" benchmarks/scaling.py --processes "$GPUS" --device cuda --batch-size 128 \
        --input-size 128 --batches 30 --warmup 5 --workers 4
else
    echo "gpu_check: one GPU: no scaling to measure (benchmarks/scaling.py needs two or more)"
fi
