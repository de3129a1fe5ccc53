"""The harness's hub reading (nanobeir_ext/data/hub.py, models/checkpoint.py) against the minimal
loopback hub: exactly the pinned commit, offline included, and one clear, fast error per failure.

The library runs in client subprocesses (the hub clients fix their endpoint at import); each prints
the outcome of its cases as JSON: ``[exception type or "ok", message or value, seconds]``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.helpers import REPO_DIR
from tests.hub.clients import PRELUDE, last_json, run_client
from tests.hub.processes import RunningServer, client_env, hub_server
from tests.hub.replicas import DATASET_REPO, DATASET_REVISIONS, LFM2_REPO, LFM2_REVISIONS, Replicas, build_dataset_replica
from tests.hub.server import closed_port, publish

pytestmark = pytest.mark.slow

COMMIT_A = DATASET_REVISIONS[0]
COMMIT_B = "b" * 40  # a later commit of the dataset whose judgments differ
NOT_PUBLISHED = "0" * 40
# Cached file names of the push_to_hub layout
QRELS_FILE = "NanoSciFact_en_qrels/qrels-00000-of-00001.parquet"
CORPUS_FILE = "NanoSciFact_en/corpus-00000-of-00001.parquet"


def _first_judgment_only(config: str, rows: list[dict]) -> list[dict]:
    """Commit B keeps only the first judgment of each query: a different evaluation from commit A."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        if row["query-id"] not in seen:
            seen.add(row["query-id"])
            kept.append(row)
    return kept


@pytest.fixture(scope="module")
def hub(replicas: Replicas, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The dataset at commits A (main) and B, the LFM2 replica, and broken repos (a listed file the
    server refuses, a weights file cut off mid-body)."""
    work = tmp_path_factory.mktemp("hub-errors")
    changed = build_dataset_replica(work / "dataset-b", "push_to_hub", transform_qrels=_first_judgment_only)
    root = work / "root"
    publish(root, "dataset", DATASET_REPO, replicas.datasets["push_to_hub"], [COMMIT_A])
    publish(root, "dataset", DATASET_REPO, changed, [COMMIT_B], branches={"main": COMMIT_A, "later": COMMIT_B})
    publish(root, "model", LFM2_REPO, replicas.lfm2, LFM2_REVISIONS)
    publish(root, "model", "broken/missing-file", replicas.lfm2, LFM2_REVISIONS, faults={"1_Dense/model.safetensors": "missing"})
    publish(root, "model", "broken/truncated", replicas.lfm2, LFM2_REVISIONS, faults={"1_Dense/config.json": "truncate"})
    publish(root, "dataset", "broken/dataset-missing-file", replicas.datasets["push_to_hub"], [COMMIT_A], faults={CORPUS_FILE: "missing"})
    with hub_server(root) as server:
        yield server


CASES = PRELUDE + """
import logging, time
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
from nanobeir_ext.data import BenchmarkSource, dataset_revision, load_subset
from models.checkpoint import resolve_source

def outcome(call):
    start = time.monotonic()
    try:
        value = call()
        return ["ok", value, time.monotonic() - start]
    except Exception as error:
        return [type(error).__name__, str(error), time.monotonic() - start]

def qrels(repo, revision, language="en"):
    source = BenchmarkSource(repo_id=repo, revision=revision, subsets=("NanoSciFact",))
    data = load_subset(source, "NanoSciFact", language)
    return {"revision": data.revision, "qrels": {q: sorted(d) for q, d in data.qrels.items()}}

def model(repo, revision):
    resolved = resolve_source(repo, revision=revision)
    return {"revision": resolved.revision, "folder": str(resolved.folder)}

cases = json.loads(sys.argv[1])
print(json.dumps({name: outcome(lambda: globals()[kind](*args)) for name, (kind, *args) in cases.items()}))
"""


def run_cases(endpoint: str, home: Path, cases: dict[str, list[Any]], offline: bool = False,
              log: list[str] | None = None) -> dict[str, list[Any]]:
    """Outcome per case; ``log`` receives the client's log (stderr)."""
    env = client_env(endpoint, home, {"HF_HUB_OFFLINE": "1"} if offline else None)
    script = CASES if not offline else CASES.replace("assert not constants.HF_HUB_OFFLINE and", "assert")
    result = run_client(script, [json.dumps(cases)], env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    if log is not None:
        log.append(result.stderr)
    return last_json(result.stdout)


def _error(outcome: list[Any], *expected: str, seconds: float = 20) -> str:
    kind, message, took = outcome
    assert kind != "ok", outcome
    for text in expected:
        assert text in message, (text, message)
    assert took < seconds, f"{took:.1f} s to fail: {message}"
    return message


def test_offline_reads_exactly_the_pinned_commit(hub: RunningServer, tmp_path: Path) -> None:
    """Two commits with different judgments in the cache, then offline: each pin evaluates its own
    commit (datasets.load_dataset would take the newest cached one for both), a branch its cached ref."""
    home = tmp_path / "hf"
    online = run_cases(hub.endpoint, home, {"a": ["qrels", DATASET_REPO, COMMIT_A], "b": ["qrels", DATASET_REPO, COMMIT_B]})
    assert online["a"][0] == online["b"][0] == "ok", online
    assert online["a"][1]["qrels"] != online["b"][1]["qrels"]
    offline = run_cases(hub.endpoint, home, {"a": ["qrels", DATASET_REPO, COMMIT_A], "b": ["qrels", DATASET_REPO, COMMIT_B],
                                             "main": ["qrels", DATASET_REPO, "main"],
                                             "uncached": ["qrels", DATASET_REPO, NOT_PUBLISHED],
                                             "uncached_language": ["qrels", DATASET_REPO, COMMIT_A, "de"]}, offline=True)
    assert offline["a"][1] == online["a"][1] and offline["a"][1]["revision"] == COMMIT_A
    assert offline["b"][1] == online["b"][1] and offline["b"][1]["revision"] == COMMIT_B
    # main was never resolved online: offline it is unknown, and no cached commit is taken instead.
    _error(offline["main"], DATASET_REPO, "revision main", "not in the local Hugging Face cache", "HF_HUB_OFFLINE")
    _error(offline["uncached"], NOT_PUBLISHED, "not in the local Hugging Face cache", "HF_HUB_OFFLINE", "benchmark.revision", "benchmark.path")
    # The German files of commit A were never downloaded: the snapshot lacks them, and the error says so.
    _error(offline["uncached_language"], COMMIT_A, "lacks files", "HF_HUB_OFFLINE", "benchmark.path")


def test_moving_revision_is_resolved_and_cached_for_offline_runs(hub: RunningServer, tmp_path: Path) -> None:
    home = tmp_path / "hf"
    log: list[str] = []
    online = run_cases(hub.endpoint, home, {"later": ["qrels", DATASET_REPO, "later"]}, log=log)
    assert online["later"][0] == "ok" and online["later"][1]["revision"] == COMMIT_B
    assert f"revision later resolved to commit {COMMIT_B}: a moving revision, so this result is not pinned" in log[0], log[0]
    assert log[0].count("not pinned") == 1  # once per run, not per file
    offline = run_cases(hub.endpoint, home, {"later": ["qrels", DATASET_REPO, "later"]}, offline=True)
    assert offline["later"][1] == online["later"][1]


def test_each_failure_names_repo_revision_and_keys_within_seconds(hub: RunningServer, tmp_path: Path) -> None:
    outcomes = run_cases(hub.endpoint, tmp_path / "hf", {
        "dataset_unknown_repo": ["qrels", "nobody/no-such-dataset", COMMIT_A],
        "dataset_unknown_branch": ["qrels", DATASET_REPO, "no-such-branch"],
        "dataset_unknown_commit": ["qrels", DATASET_REPO, NOT_PUBLISHED],
        "dataset_missing_file": ["qrels", "broken/dataset-missing-file", COMMIT_A],
        "model_unknown_repo": ["model", "nobody/no-such-model", LFM2_REVISIONS[0]],
        "model_unknown_revision": ["model", LFM2_REPO, NOT_PUBLISHED],
        "model_missing_file": ["model", "broken/missing-file", LFM2_REVISIONS[0]],
        "model_truncated_download": ["model", "broken/truncated", LFM2_REVISIONS[0]],
        "model_ok": ["model", LFM2_REPO, LFM2_REVISIONS[0]],
    })
    _error(outcomes["dataset_unknown_repo"], "nobody/no-such-dataset", COMMIT_A, "no such repo", "benchmark.repo_id", "benchmark.path")
    _error(outcomes["dataset_unknown_branch"], DATASET_REPO, "no-such-branch", "no such revision", "benchmark.revision")
    _error(outcomes["dataset_unknown_commit"], NOT_PUBLISHED, "no such revision", "benchmark.revision")
    _error(outcomes["dataset_missing_file"], "broken/dataset-missing-file", COMMIT_A, "missing", CORPUS_FILE.split("/")[0],
           "benchmark.revision", "benchmark.path")
    _error(outcomes["model_unknown_repo"], "nobody/no-such-model", "no such repo", "model.source", "model.path")
    _error(outcomes["model_unknown_revision"], LFM2_REPO, NOT_PUBLISHED, "no such revision", "model.revision")
    _error(outcomes["model_missing_file"], "broken/missing-file", "1_Dense/model.safetensors", "missing", "model.revision", "model.path")
    # A body cut off mid-file: huggingface_hub resumes it a few times (1 s apart), then the error names the download.
    _error(outcomes["model_truncated_download"], "broken/truncated", LFM2_REVISIONS[0], "incomplete", "model.path", seconds=45)
    assert outcomes["model_ok"][0] == "ok" and outcomes["model_ok"][1]["revision"] == LFM2_REVISIONS[0]


def test_half_downloaded_snapshot_offline_is_named(hub: RunningServer, tmp_path: Path) -> None:
    """A download that failed online leaves a partial snapshot; offline, the run says it is incomplete."""
    home = tmp_path / "hf"
    online = run_cases(hub.endpoint, home, {"missing": ["model", "broken/missing-file", LFM2_REVISIONS[0]]})
    assert online["missing"][0] != "ok"
    assert (home / "hub" / "models--broken--missing-file" / "snapshots" / LFM2_REVISIONS[0] / "config.json").is_file()
    offline = run_cases(hub.endpoint, home, {"missing": ["model", "broken/missing-file", LFM2_REVISIONS[0]]}, offline=True)
    _error(offline["missing"], "broken/missing-file", LFM2_REVISIONS[0], "lacks files", "1_Dense/model.safetensors",
           "HF_HUB_OFFLINE", "model.path")


def test_unreachable_endpoint_with_pinned_commits_fails_fast(tmp_path: Path) -> None:
    outcomes = run_cases(f"http://127.0.0.1:{closed_port()}", tmp_path / "hf", {
        "model": ["model", LFM2_REPO, LFM2_REVISIONS[0]],
        "dataset": ["qrels", DATASET_REPO, COMMIT_A],
        "dataset_branch": ["qrels", DATASET_REPO, "main"],
    })
    for name in outcomes:
        _error(outcomes[name], "unreachable", "HF_HUB_OFFLINE")
    _error(outcomes["model"], LFM2_REPO, LFM2_REVISIONS[0], "model.revision", "model.path", seconds=10)
    _error(outcomes["dataset"], DATASET_REPO, COMMIT_A, "benchmark.revision", "benchmark.path", seconds=10)


@pytest.mark.parametrize(("override", "spelling"), [("benchmark.revision=1.10", "1.10"), ("benchmark.revision=0123456789", "0123456789"),
                                                    ("benchmark.revision=1234567", "1234567")])
def test_revisions_hydra_reads_as_numbers_reach_the_hub_as_written(override: str, spelling: str, tmp_path: Path) -> None:
    """``revision=1.10`` is the float 1.1 to Hydra: the hub client still gets "1.10" (here the unknown
    revision the loopback hub names back)."""
    root = tmp_path / "root"
    (root / "datasets").mkdir(parents=True)
    with hub_server(root, log=tmp_path / "requests.jsonl") as server:
        command = [sys.executable, "-m", "runners.evaluate", "experiment=smoke", "benchmark=nanobeir_extended",
                   "benchmark.subsets=[NanoSciFact]", "matrix.doc_langs=[en]", "matrix.query_langs=[en]", "benchmark.languages=[en]",
                   override, f"runtime.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}", "runtime.progress=false"]
        start = time.monotonic()
        result = subprocess.run(command, cwd=REPO_DIR, env=client_env(server.endpoint, tmp_path / "hf"), capture_output=True,
                                text=True, timeout=300)
        seconds = time.monotonic() - start
    assert result.returncode != 0
    assert f"at revision {spelling}:" in result.stderr and "benchmark.repo_id" in result.stderr, result.stderr[-3000:]
    assert any(f"/revision/{spelling}" in r["path"] for r in server.requests()), server.requests()
    assert seconds < 60
