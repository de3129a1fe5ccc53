#!/usr/bin/env bash
# Creates (or reuses) the isolated PyLate 1.6.0 virtual environment used as a test oracle.
# PyLate is never a runtime dependency of the harness; it lives only here.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${PYLATE_VENV:-$root/.venv-pylate}"
stamp="$venv/.oracle-ready-v1"
if [ -f "$stamp" ]; then
  echo "PyLate oracle environment ready at $venv (reused)"
  exit 0
fi
python3 -m venv "$venv"
# The CPU torch wheel first, so nothing pulls the CUDA build.
bash "$root/scripts/install_torch.sh" "$venv"   # CPU build unless a GPU is present
"$venv/bin/pip" install -q --no-deps pylate==1.6.0
"$venv/bin/pip" install -q sentence-transformers==5.3.0 transformers==5.3.0 ujson datasets accelerate pandas
"$venv/bin/python" -c "import pylate, sentence_transformers, transformers; print('pylate', pylate.__version__ if hasattr(pylate, '__version__') else '1.6.0', 'st', sentence_transformers.__version__, 'transformers', transformers.__version__)"
touch "$stamp"
echo "PyLate oracle environment ready at $venv"
