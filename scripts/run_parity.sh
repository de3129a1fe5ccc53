#!/usr/bin/env bash
# Runs the parity suite (PyLate 1.6.0 and FlagEmbedding 1.4.2 oracles), creating the oracle environments first if needed.
# Extra arguments go to pytest (e.g. -k lfm2, -x).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup_pylate_oracle.sh"
"$root/scripts/setup_flagembedding_oracle.sh"
cd "$root"
exec "${PYTHON:-$root/.venv/bin/python}" -m pytest -m parity tests/models -q "$@"
