#!/usr/bin/env bash
# Creates (or reuses) the isolated olah virtual environment (.venv-olah): the self-hosted Hugging Face
# Hub mirror that air-gapped sites run, used by tests/hub in offline mirror mode. olah needs a newer
# huggingface_hub and about 56 packages of its own, so it never shares the harness's environment.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${OLAH_VENV:-$root/.venv-olah}"
stamp="$venv/.olah-ready-v1"
if [ -f "$stamp" ]; then
  echo "olah environment ready at $venv (reused)"
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q olah==0.5.4
"$venv/bin/olah-cli" --help >/dev/null
"$venv/bin/python" -c "import importlib.metadata as m; print('olah', m.version('olah'), 'huggingface_hub', m.version('huggingface_hub'))"
touch "$stamp"
echo "olah environment ready at $venv"
