#!/usr/bin/env bash
# GPU runs on a lent device machine (see BENCHMARKS.md). The device image has torch, lightning,
# tensorboard, matplotlib and scikit-learn but no faiss or jsonargparse and no internet, so their
# wheels travel in gpu_wheels/ (pip download --python-version 3.12 --only-binary=:all: --no-deps
# faiss-cpu "jsonargparse[signatures]" docstring-parser typeshed-client -d gpu_wheels).
#   bash benchmarks/gpu_session.sh setup|bench|demo|compare [extra LightningCLI args for compare]
set -euo pipefail
OUT=${OUT:-/tmp/out}
PY=${PY:-/opt/torch/.venv/bin/python3}   # the image's python with torch
EXTRA=/tmp/faceunlearn-extra
export PYTHONPATH=$EXTRA:$PWD            # the wheels, and faceunlearn from this checkout
case "$1" in
  setup)
    $PY -m pip install -q --no-index --no-deps --target $EXTRA gpu_wheels/*.whl
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    $PY -c "import torch, lightning, faiss; print('torch', torch.__version__, 'lightning', lightning.__version__, 'faiss', faiss.__version__, 'cuda', torch.cuda.is_available())"
    ;;
  bench)
    $PY benchmarks/retrieval.py --only c
    cp BENCHMARKS.md "$OUT/"
    ;;
  demo)
    /usr/bin/time -v $PY -m faceunlearn.cli demo 2>&1 | grep -v "it/s" | tail -40
    cp -r lightning_logs/demo "$OUT/demo"
    ;;
  compare)
    shift
    $PY -m faceunlearn.cli compare --out "$OUT/compare" --override "--trainer.enable_progress_bar false $*" 2>&1 | grep -v "it/s" | tail -45
    ;;
esac
