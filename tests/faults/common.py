"""The faults suite's tiny evaluation (one model, one subset, two languages: 4 encoder passes),
its command line, and a folder snapshot that shows whether anything changed."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_DIR, compose

TINY = ["experiment=smoke", "~models.fixture_lfm2", "~models.fixture_dense", "~models.fixture_bm25", "report.baseline_model=null", "benchmark.subsets=[NanoSciFact]",
        "benchmark.languages=[en,de]", "runtime.progress=false", "runtime.threads=1"]


def tiny_cfg(cache: Path, *extra: str):
    return compose("evaluate", [*TINY, f"runtime.cache_dir={cache}", *extra])


def cli(out: Path, cache: Path, *extra: str, kill_at: str | None = None, wait: bool = True):
    """``python -m runners.evaluate`` on the tiny evaluation; ``kill_at`` names the write to die at."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_DIR), "OMP_NUM_THREADS": "1"}
    env.pop("NANOBEIR_EXT_KILL_AT", None)
    if kill_at:
        env["NANOBEIR_EXT_KILL_AT"] = kill_at
    args = [sys.executable, "-m", "runners.evaluate", *TINY, f"runtime.cache_dir={cache}", f"hydra.run.dir={out}", *extra]
    process = subprocess.Popen(args, env=env, cwd=REPO_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if not wait:
        return process
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones included) -> sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob(".*") if p.is_file() and p.suffix in (".tmp", ".partial", ".claim"))
