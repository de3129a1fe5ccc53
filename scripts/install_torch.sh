#!/usr/bin/env bash
# Installs torch into the virtual environment at $1 unless it already has one.
# On a machine with an NVIDIA driver, or with TORCH_SPEC set: the default build of TORCH_SPEC
# (torch==2.13.0). Otherwise a CPU build, so a CPU machine never pulls gigabytes of CUDA libraries:
# a locally configured wheel when pip has one (find-links), else PyTorch's CPU wheel index.
# TORCH_INDEX_URL overrides the index in every case.
set -euo pipefail
venv="$1"
spec="${TORCH_SPEC:-torch==2.13.0}"
"$venv/bin/python" -c "import torch" 2>/dev/null && exit 0
pip=("$venv/bin/python" -m pip install -q)
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  "${pip[@]}" "$spec" --index-url "$TORCH_INDEX_URL"
elif [ -n "${TORCH_SPEC:-}" ] || command -v nvidia-smi >/dev/null 2>&1; then
  "${pip[@]}" "$spec"
elif "$venv/bin/python" -m pip download -q --no-deps --no-index -d "$probe" "$spec" >/dev/null 2>&1; then
  "${pip[@]}" "$spec"   # a local CPU wheel is configured for pip
else
  "${pip[@]}" "$spec" --index-url https://download.pytorch.org/whl/cpu
fi
