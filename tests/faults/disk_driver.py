"""Run inside a private mount namespace (``unshare --mount``; tests/faults/test_disk.py): the tiny
evaluation on small tmpfs disks that fill up or are read-only, then again with room.

``python -m tests.faults.disk_driver ROOT WARM_CACHE FIXTURE_MODELS`` prints one JSON object.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runners import evaluate
from tests.faults.common import temp_files, tiny_cfg


def mount(folder: Path, options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)


def remount(folder: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], check=True)


def attempt(cache: Path, out: Path) -> dict:
    try:
        summary = evaluate.run(tiny_cfg(cache), out_dir=out)
    except OSError as error:
        return {"error": str(error), "type": type(error).__name__}
    return {"summary": summary, "results": (out / "results.csv").read_text()}


def state(folder: Path) -> dict:
    return {"temp_files": [str(p) for p in temp_files(folder)],
            "entries": [str(p) for p in folder.rglob("*.safetensors")],
            "run_status": json.loads((folder / "run.json").read_text())["status"] if (folder / "run.json").is_file() else None}


def main(root: Path, warm_cache: Path, fixture_models: Path) -> dict:
    report = {}
    os.umask(0o022)
    # Outputs on a disk that fills up while the results are written.
    out = root / "full-out"
    mount(out, "size=64k")
    report["outputs_full"] = attempt(warm_cache, out) | state(out)
    remount(out, "size=16m")
    report["outputs_retry"] = attempt(warm_cache, out) | state(out)
    # The store on a disk that fills up while encoding.
    cache = root / "full-cache"
    mount(cache, "size=32k")
    os.symlink(fixture_models, cache / "fixture-models")
    report["store_full"] = attempt(cache, root / "out-b") | state(cache)
    remount(cache, "size=16m")
    report["store_retry"] = attempt(cache, root / "out-b") | state(cache)
    report["store_modes"] = sorted({oct(p.stat().st_mode & 0o777) for p in cache.rglob("*.safetensors")})
    # A read-only store.
    frozen = root / "ro-cache"
    mount(frozen, "size=16m")
    os.symlink(fixture_models, frozen / "fixture-models")
    (frozen / "store").mkdir()
    remount(frozen, "ro")
    report["store_read_only"] = attempt(frozen, root / "out-c") | state(frozen)
    return report


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))))
