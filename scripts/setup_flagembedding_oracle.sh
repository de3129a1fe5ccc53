#!/usr/bin/env bash
# Creates (or reuses) the isolated FlagEmbedding virtual environment used as the BGE-M3 test oracle.
# FlagEmbedding is never a runtime dependency of the harness; it lives only here.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${FLAGEMBEDDING_VENV:-$root/.venv-flagembedding}"
stamp="$venv/.oracle-ready-v1"
if [ -f "$stamp" ]; then
  echo "FlagEmbedding oracle environment ready at $venv (reused)"
  exit 0
fi
python3 -m venv "$venv"
# The CPU torch wheel first, so nothing pulls the CUDA build.
bash "$root/scripts/install_torch.sh" "$venv"   # CPU build unless a GPU is present
# FlagEmbedding with its declared dependencies (peft, ir-datasets, sentence-transformers, ...);
# transformers pinned to the harness's version so both sides run the same XLM-RoBERTa code.
"$venv/bin/python" -m pip install -q FlagEmbedding==1.4.2 transformers==5.3.0 sentencepiece protobuf
"$venv/bin/python" -c "import FlagEmbedding, transformers; from FlagEmbedding import BGEM3FlagModel; print('FlagEmbedding', FlagEmbedding.__version__ if hasattr(FlagEmbedding, '__version__') else '1.4.2', 'transformers', transformers.__version__)"
touch "$stamp"
echo "FlagEmbedding oracle environment ready at $venv"
