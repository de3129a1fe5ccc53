#!/usr/bin/env bash
# One-step setup: a virtual environment in .venv with the harness and its test tools.
#   bash scripts/setup.sh            harness + pytest
#   bash scripts/setup.sh --oracle   also the isolated test oracles and servers: PyLate 1.6.0 (.venv-pylate),
#                                    FlagEmbedding 1.4.2 (.venv-flagembedding), olah (.venv-olah: the hub mirror of tests/hub)
# Torch: a CPU build on a machine without an NVIDIA driver (see scripts/install_torch.sh).
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
bash "$root/scripts/install_torch.sh" "$venv"
# constraints.txt pins the versions the committed smoke baseline was produced with.
"${pip[@]}" -c "$root/constraints.txt" -e "$root[test]"
echo "harness ready in $venv"
if [ "$oracle" = 1 ]; then
  bash "$root/scripts/setup_pylate_oracle.sh"
  bash "$root/scripts/setup_flagembedding_oracle.sh"
  bash "$root/scripts/setup_olah.sh"
fi
