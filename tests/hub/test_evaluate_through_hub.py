"""``python -m runners.evaluate`` with the ``paper`` models and benchmark, loaded through the loopback
hub (restricted to one subset and two languages), then again offline from the local caches.

The runs take no test-only code path: the runner sees only ``HF_ENDPOINT`` and the cache locations.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import CONFIG_DIR, REPO_DIR
from tests.hub.processes import client_env, hub_server
from tests.hub.replicas import (
    DATASET_REVISIONS, GTE_REVISIONS, LFM2_REVISIONS, Replicas, configured_revision, publish_replicas,
)
from tests.hub.server import COMMIT, closed_port

pytestmark = pytest.mark.slow

RESTRICT = ["experiment=paper", "benchmark.subsets=[NanoSciFact]", "matrix.doc_langs=[en,de]", "matrix.query_langs=[en,de]",
            "runtime.progress=false", "report.figures=false"]


def _served_commit(config: Path, pins: tuple[str, ...]) -> str:
    """The commit the hub serves for a config's revision (tests/hub/replicas.py: a branch -> the first pin)."""
    revision = configured_revision(config)
    return revision if revision and COMMIT.fullmatch(revision) else pins[0]


EXPECTED_COMMITS = {
    "LFM2-ColBERT-350M": _served_commit(CONFIG_DIR / "model" / "lfm2_colbert_350m.yaml", LFM2_REVISIONS),
    "GTE-ModernColBERT-v1": _served_commit(CONFIG_DIR / "model" / "gte_moderncolbert_v1.yaml", GTE_REVISIONS),
}


def evaluate(env: dict[str, str], cache_dir: Path, run_dir: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "runners.evaluate", *RESTRICT, f"runtime.cache_dir={cache_dir}", f"hydra.run.dir={run_dir}"]
    return subprocess.run(command, cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=600)


@dataclass(frozen=True)
class FirstRun:
    hf_home: Path
    cache_dir: Path
    run_dir: Path
    endpoint: str  # stopped once the fixture has run
    result: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def first_run(replicas: Replicas, tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    """One online run against a hub that is stopped afterwards."""
    work = tmp_path_factory.mktemp("evaluate-hub")
    root = publish_replicas(work / "hub", replicas, "push_to_hub", CONFIG_DIR)
    with hub_server(root) as server:
        env = client_env(server.endpoint, work / "hf-home")
        result = evaluate(env, work / "cache", work / "run-online")
    return FirstRun(work / "hf-home", work / "cache", work / "run-online", server.endpoint, result)


def _offline_env(first: FirstRun) -> dict[str, str]:
    return client_env(first.endpoint, first.hf_home, {"HF_HUB_OFFLINE": "1"})


def test_online_run_records_the_served_commits(first_run: FirstRun) -> None:
    assert first_run.result.returncode == 0, first_run.result.stderr[-4000:]
    environment = json.loads((first_run.run_dir / "environment.json").read_text())
    assert {m["name"]: m["revision"] for m in environment["models"]} == EXPECTED_COMMITS
    assert environment["benchmark"]["revision"] == DATASET_REVISIONS[0]
    # The paper configs pin every hub repo: the commits read are the commits asked for.
    for record in [*environment["models"], environment["benchmark"]]:
        assert record["pinned"] is True and record["requested_revision"] == record["revision"], record
    assert {s["revision"] for s in environment["benchmark"]["subset_identities"]} == {DATASET_REVISIONS[0]}
    results = (first_run.run_dir / "results.csv").read_text().splitlines()
    cells = {tuple(line.split(",")[:5]) for line in results[1:] if line.split(",")[2] != "mean"}
    assert cells == {(model, "nanobeir-extended", "NanoSciFact", doc, query)
                     for model in EXPECTED_COMMITS for doc in ("en", "de") for query in ("en", "de")}


def test_offline_rerun_from_the_same_caches(first_run: FirstRun, tmp_path: Path) -> None:
    """Server stopped, HF_HUB_OFFLINE=1, same Hugging Face home and runtime.cache_dir: same numbers."""
    assert first_run.result.returncode == 0, "the online run failed (see test_online_run_records_the_served_commits)"
    result = evaluate(_offline_env(first_run), first_run.cache_dir, tmp_path / "run-offline")
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "run-offline" / "results.csv").read_bytes() == (first_run.run_dir / "results.csv").read_bytes()


def test_offline_rerun_from_the_hub_cache_alone(first_run: FirstRun, tmp_path: Path) -> None:
    """Server stopped, HF_HUB_OFFLINE=1, a fresh runtime.cache_dir: the downloaded snapshots in the
    Hugging Face hub cache are all a run needs (as they are for the models)."""
    assert first_run.result.returncode == 0, "the online run failed (see test_online_run_records_the_served_commits)"
    result = evaluate(_offline_env(first_run), tmp_path / "fresh-cache", tmp_path / "run-offline")
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "run-offline" / "results.csv").read_bytes() == (first_run.run_dir / "results.csv").read_bytes()



def _run_against_closed_port(tmp_path: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, float]:
    env = client_env(f"http://127.0.0.1:{closed_port()}", tmp_path / "hf-home")
    command = [sys.executable, "-m", "runners.evaluate", *RESTRICT, *overrides,
               f"runtime.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}"]
    start = time.monotonic()
    result = subprocess.run(command, cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=300)
    return result, time.monotonic() - start


def test_unreachable_hub_with_a_pinned_model_commit_names_the_key(replicas: Replicas, tmp_path: Path) -> None:
    """Issue 13: a closed port with a pinned model commit fails within seconds, naming the model's key
    and HF_HUB_OFFLINE (huggingface_hub raises a bare httpx.ConnectError for a pinned commit).
    The dataset comes from a local snapshot here, so that the model is what fails."""
    result, seconds = _run_against_closed_port(
        tmp_path, f"models.lfm2_colbert_350m.revision={LFM2_REVISIONS[0]}", f"benchmark.path={replicas.datasets['push_to_hub']}")
    assert result.returncode != 0
    tail = result.stderr[-3000:]
    assert "models.lfm2_colbert_350m" in tail and "HF_HUB_OFFLINE" in tail and LFM2_REVISIONS[0] in tail, tail
    assert seconds < 45, f"{seconds:.0f} s to fail"


def test_unreachable_hub_for_the_dataset_names_the_key(tmp_path: Path) -> None:
    """Issue 13: the dataset's failure names its keys (benchmark.revision / repo_id / path) and
    HF_HUB_OFFLINE, within seconds (no long retry)."""
    result, seconds = _run_against_closed_port(tmp_path)
    assert result.returncode != 0
    tail = result.stderr[-3000:]
    assert "benchmark.path" in tail and "benchmark.revision" in tail and "HF_HUB_OFFLINE" in tail, tail
    assert seconds < 45, f"{seconds:.0f} s to fail"
