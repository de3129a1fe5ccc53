#!/usr/bin/env bash
# Runs the PyLate 1.6.0 parity suite, creating the oracle environment first if needed.
# Extra arguments go to pytest (e.g. -k lfm2, -x).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup_pylate_oracle.sh"
cd "$root"
exec "${PYTHON:-$root/.venv/bin/python}" -m pytest -m parity tests/test_parity.py -q "$@"
