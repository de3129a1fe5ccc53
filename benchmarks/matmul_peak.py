"""Print the device's dense matmul peak (the yardstick other benchmarks divide by).

    python -m benchmarks.matmul_peak                       # fp32 on CPU
    python -m benchmarks.matmul_peak --dtype bfloat16 --device cuda --out peak.json
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchmarks import emit_json
from nanobeir_ext.latency.peak import matmul_peak_flops

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args(argv)
    flops = matmul_peak_flops(args.device, DTYPES[args.dtype], sizes=args.sizes, repeats=args.repeats)
    result = {
        "benchmark": "matmul_peak",
        "device": args.device,
        "dtype": args.dtype,
        "sizes": args.sizes,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "flops_per_second": flops,
    }
    print(f"{args.dtype} matmul peak on {args.device}: {flops / 1e9:.1f} GFLOP/s (best of {args.repeats} at sizes {args.sizes})")
    emit_json(result, args.out)
    return result


if __name__ == "__main__":
    main()
