#!/usr/bin/env bash
# Every GPU measurement of the harness in one go (target: under 8 minutes on one H200), all
# results in one folder:
#   1. nvidia-smi, torch/CUDA versions, bf16 and fp32 matmul peaks (benchmarks/matmul_peak.py)
#   2. bf16 encoding throughput and latency of both published architectures (random-init unless
#      the real weights are on disk), batch sizes 1-128, 32-token queries, 256/512-token
#      documents, with the speed-claim verdict: runners.latency experiment=latency runtime=gpu,
#      once with LFM2's fused causal-conv1d short-convolution kernel (latency.lfm2_conv_kernel=
#      require: fails if it cannot run; LFM2_CONV_ON=auto falls back to nn.Conv1d instead) and
#      once without it (disable)
#   3. MaxSim vs PyLate 1.6.0 on CUDA (benchmarks/maxsim_vs_pylate.py; needs .venv-pylate)
#   4. the smoke evaluation on CUDA (bf16), with CUDA_LAUNCH_BLOCKING=1 so a kernel error is
#      raised where it happens, then its comparison with reports/baselines/smoke (CPU fp32:
#      recorded, not gating, since bf16 moves the numbers)
# Any failing step stops the script with a non-zero exit (set -euo pipefail; every step is a
# python process that exits non-zero on a CUDA error). steps.tsv records each step's seconds.
#
#   scripts/gpu_checks.sh [OUT_DIR]                 # on the GPU machine (default outputs/gpu-checks/<UTC time>)
#   scripts/gpu_checks.sh --cpu-dry-run [OUT_DIR]   # every step on CPU with tiny settings (tests/benchmarks)
# Environment: PYTHON (default .venv/bin/python), LFM2_CONV_ON (require|auto, default require).
set -euo pipefail

cd "$(dirname "$0")/.."
DRY_RUN=0
if [[ "${1:-}" == "--cpu-dry-run" ]]; then
    DRY_RUN=1
    shift
fi
OUT="${1:-outputs/gpu-checks/$(date -u +%Y%m%dT%H%M%SZ)}"
PYTHON="${PYTHON:-.venv/bin/python}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export TORCH_SHOW_CPP_STACKTRACES=1 TOKENIZERS_PARALLELISM=false
printf 'step\tseconds\n' > "$OUT/steps.tsv"
SCRIPT_START=$SECONDS

step() {  # step NAME COMMAND...: run, log to OUT/NAME.log, record seconds; a failure ends the script
    local name="$1" start=$SECONDS
    shift
    echo "== $name: $*"
    if ! "$@" > "$OUT/$name.log" 2>&1; then
        echo "FAILED: $name (exit non-zero); last lines of $OUT/$name.log:" >&2
        tail -n 40 "$OUT/$name.log" >&2
        exit 1
    fi
    printf '%s\t%d\n' "$name" $((SECONDS - start)) >> "$OUT/steps.tsv"
    if grep -Eq 'CUDA error|CUBLAS_STATUS|device-side assert|illegal memory access' "$OUT/$name.log"; then
        echo "FAILED: $name logged a CUDA error (see $OUT/$name.log)" >&2
        exit 1
    fi
}

if (( DRY_RUN )); then
    DEVICE=cpu
    PEAK_DTYPE=bfloat16
    PEAK_ARGS=(--sizes 128 --repeats 2)
    LATENCY=(experiment=latency_smoke runtime=cpu latency.max_batch_size=2 latency.document_lengths=[16]
             latency.query_length=8 latency.timing.warmup=0 latency.timing.min_repeats=1
             latency.timing.max_repeats=1 latency.timing.min_time_s=0 latency.maxsim.n_documents=20
             latency.figures=false runtime.progress=false)
    CONV_ON=auto   # the fused kernel is CUDA-only: the dry run exercises the knob, not the kernel
    MAXSIM=(--queries 2 --documents 30 --min-doc-tokens 4 --max-doc-tokens 12 --k 5 --repeats 1)
    SMOKE=(runtime=cpu benchmark.subsets=[NanoSciFact] matrix.doc_langs=[en,de] matrix.query_langs=[en,de]
           report.figures=false)
    echo "CPU dry run: tiny settings, nothing here measures a GPU" > "$OUT/DRY_RUN"
else
    DEVICE=cuda
    PEAK_DTYPE=bfloat16
    PEAK_ARGS=(--sizes 4096 8192 --repeats 10)
    # Defaults of configs/latency.yaml (batch sizes 1-128, lengths 32/256/512), shorter timing windows.
    LATENCY=(experiment=latency runtime=gpu latency.timing.min_time_s=0.5 latency.timing.max_repeats=30
             runtime.progress=false)
    CONV_ON="${LFM2_CONV_ON:-require}"
    MAXSIM=(--pylate-max-gib 40 --repeats 5 --pylate-repeats 3)
    SMOKE=(runtime=gpu)
    command -v nvidia-smi > /dev/null || { echo "FAILED: nvidia-smi not found: no NVIDIA driver here" >&2; exit 1; }
    step nvidia-smi nvidia-smi
    cp "$OUT/nvidia-smi.log" "$OUT/nvidia-smi.txt"
fi

step environment "$PYTHON" -c "
import json, sys, torch
cuda = torch.cuda.is_available()
if '$DEVICE' == 'cuda' and not cuda:
    sys.exit('FAILED: torch sees no CUDA device (torch ' + torch.__version__ + ')')
info = {'torch': torch.__version__, 'cuda': torch.version.cuda, 'device': '$DEVICE',
        'gpu': torch.cuda.get_device_name(0) if cuda else None, 'dry_run': bool($DRY_RUN)}
print(json.dumps(info)); open('$OUT/environment.json', 'w').write(json.dumps(info, indent=2))"

step peak-"$PEAK_DTYPE" "$PYTHON" -m benchmarks.matmul_peak --device "$DEVICE" --dtype "$PEAK_DTYPE" "${PEAK_ARGS[@]}" \
    --out "$OUT/matmul_peak_$PEAK_DTYPE.json"
step peak-float32 "$PYTHON" -m benchmarks.matmul_peak --device "$DEVICE" --dtype float32 "${PEAK_ARGS[@]}" \
    --out "$OUT/matmul_peak_float32.json"

step latency-conv-off "$PYTHON" -m runners.latency "${LATENCY[@]}" latency.lfm2_conv_kernel=disable \
    hydra.run.dir="$OUT/latency-conv-off"
step latency-conv-on "$PYTHON" -m runners.latency "${LATENCY[@]}" latency.lfm2_conv_kernel="$CONV_ON" \
    hydra.run.dir="$OUT/latency-conv-on"

if [[ -e .venv-pylate/.oracle-ready-v1 ]] || (( ! DRY_RUN )); then
    step maxsim-vs-pylate "$PYTHON" -m benchmarks.maxsim_vs_pylate --device "$DEVICE" "${MAXSIM[@]}" \
        --out "$OUT/maxsim_vs_pylate.json"
else
    echo "== maxsim-vs-pylate: skipped in the dry run (the PyLate oracle venv is not ready)" | tee "$OUT/maxsim-vs-pylate.log"
fi

CUDA_LAUNCH_BLOCKING=1 step smoke-evaluation "$PYTHON" -m runners.evaluate experiment=smoke "${SMOKE[@]}" \
    runtime.progress=false hydra.run.dir="$OUT/smoke"
set +e
"$PYTHON" -m runners.compare run="$OUT/smoke" baseline=reports/baselines/smoke out="$OUT/smoke-vs-cpu-baseline" \
    > "$OUT/smoke-vs-cpu-baseline.log" 2>&1
echo "smoke vs the CPU fp32 baseline: exit $? (not gating; see $OUT/smoke-vs-cpu-baseline)"
set -e

TOTAL=$((SECONDS - SCRIPT_START))
printf 'total\t%d\n' "$TOTAL" >> "$OUT/steps.tsv"
echo "all GPU checks passed in ${TOTAL} s; results in $OUT"
if (( ! DRY_RUN && TOTAL > 480 )); then
    echo "WARNING: took ${TOTAL} s, over the 8-minute budget: shorten latency.timing in this script" >&2
fi
