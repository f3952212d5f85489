#!/usr/bin/env bash
# Set up a virtual environment at .venv: torch 2.13.0 first (on machines without a GPU pip picks the CPU
# build when one is available locally), then this package with its [dev] extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet torch==2.13.0
fi
if ! .venv/bin/python -c "import srgan, pytest, ruff, scipy, tensorboard, starlette, uvicorn, httpx, matplotlib, selenium, onnx, onnxruntime, psutil, av, huggingface_hub, gradio, gradio_client" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.srgan-installed ]; then
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  touch .venv/.srgan-installed
fi
echo "ready: .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
