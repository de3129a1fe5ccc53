#!/usr/bin/env bash
# One-step setup: a virtual environment in .venv with the harness and its test tools.
#   bash scripts/setup.sh            harness + pytest
#   bash scripts/setup.sh --oracle   also the isolated PyLate 1.6.0 oracle (.venv-pylate) for the parity tests
# Torch: a CPU build by default (torch==2.13.0). Set TORCH_INDEX_URL to PyTorch's CPU wheel index on a
# machine where plain pip would pull the CUDA build, or TORCH_SPEC=torch (any build) on a GPU machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VENV:-$root/.venv}"
oracle=0
for arg in "$@"; do
  case "$arg" in
    --oracle) oracle=1 ;;
    *) echo "usage: bash scripts/setup.sh [--oracle]" >&2; exit 2 ;;
  esac
done
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q)
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  "${pip[@]}" "${TORCH_SPEC:-torch==2.13.0}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
fi
# constraints.txt pins the versions the committed smoke baseline was produced with.
"${pip[@]}" -c "$root/constraints.txt" -e "$root[test]"
echo "harness ready in $venv"
if [ "$oracle" = 1 ]; then
  bash "$root/scripts/setup_pylate_oracle.sh"
fi
