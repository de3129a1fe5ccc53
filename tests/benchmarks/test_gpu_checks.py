"""scripts/gpu_checks.sh: its CPU dry run runs every step (so the GPU script cannot rot), and it fails loudly."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import REPO_DIR

SCRIPT = REPO_DIR / "scripts" / "gpu_checks.sh"


@pytest.mark.slow
def test_cpu_dry_run_runs_every_step(tmp_path):
    out = tmp_path / "checks"
    done = subprocess.run([str(SCRIPT), "--cpu-dry-run", str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    steps = [line.split("\t")[0] for line in (out / "steps.tsv").read_text().splitlines()[1:]]
    assert steps[:6] == ["environment", "peak-bfloat16", "peak-float32", "latency-conv-off", "latency-conv-on",
                         *(["maxsim-vs-pylate"] if (REPO_DIR / ".venv-pylate" / ".oracle-ready-v1").exists() else [])][:6]
    assert steps[-2:] == ["smoke-evaluation", "total"]
    for folder in ("latency-conv-off", "latency-conv-on"):
        assert (out / folder / "latency.csv").is_file() and (out / folder / "latency.md").is_file()
    assert "disable" in (out / "latency-conv-off" / "config.yaml").read_text()
    assert (out / "smoke" / "results.csv").is_file() and (out / "DRY_RUN").is_file()


def test_a_failing_step_stops_the_script_with_its_log(tmp_path):
    out = tmp_path / "checks"
    done = subprocess.run([str(SCRIPT), "--cpu-dry-run", str(out)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": "false"})
    assert done.returncode == 1
    assert "FAILED: environment" in done.stderr
    assert not (out / "peak-bfloat16.log").exists()  # nothing ran after the failure
