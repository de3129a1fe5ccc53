"""Full and read-only disks (small tmpfs mounts in a private mount namespace, see disk_driver.py):
the error names the file being written, nothing half-written stays, and with room the same
command gives byte-identical results."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_DIR

pytestmark = pytest.mark.slow


def test_full_and_read_only_disks(tmp_path, reference, warm_cache, fixture_models):
    reference_run, _ = reference
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_DIR), "OMP_NUM_THREADS": "1"}
    # CI runs the suite as root inside `unshare --map-root-user --net`: a new mount namespace is
    # allowed there too, and its tmpfs mounts vanish with the driver.
    done = subprocess.run(["unshare", "--mount", "--", sys.executable, "-m", "tests.faults.disk_driver", str(tmp_path),
                           str(warm_cache), str(fixture_models)],
                          env=env, cwd=REPO_DIR, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    expected = (reference_run / "results.csv").read_text()

    full = report["outputs_full"]
    assert full["type"] == "OSError" and "No space left on device while writing " + str(tmp_path / "full-out") in full["error"]
    # Marking the run failed needs room too: on a full disk run.json may keep "running" (its process is
    # gone, so the next run resumes it either way).
    assert full["temp_files"] == [] and full["run_status"] in ("failed", "running")
    retry = report["outputs_retry"]
    assert retry["results"] == expected and retry["run_status"] == "complete" and retry["temp_files"] == []

    store = report["store_full"]
    assert "No space left on device" in store["error"] and str(tmp_path / "full-cache" / "store") in store["error"]
    assert store["error"].split("while writing ")[-1].endswith(".safetensors")
    assert store["temp_files"] == [] and store["entries"] == []
    again = report["store_retry"]
    assert again["results"] == expected and again["summary"]["encoded"] == 4
    assert report["store_modes"] == ["0o644"]  # umask 022: readable by the group sharing the cache

    frozen = report["store_read_only"]
    assert "Read-only file system" in frozen["error"] and str(tmp_path / "ro-cache" / "store") in frozen["error"]
