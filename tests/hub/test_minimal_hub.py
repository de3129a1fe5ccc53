"""The unpatched huggingface_hub and datasets clients download the replicas from the minimal loopback hub."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hub.clients import LOAD_DATASET, PRELUDE, SNAPSHOT, file_digests, last_json, run_client
from tests.hub.processes import RunningServer, client_env, hub_server
from tests.hub.replicas import (
    DATASET_REPO, DATASET_REVISIONS, GTE_REPO, GTE_REVISIONS, LFM2_REPO, LFM2_REVISIONS, Replicas, fixture_configs,
)
from tests.hub.server import closed_port, publish

pytestmark = pytest.mark.slow

MODEL_CASES = [(LFM2_REPO, revision) for revision in LFM2_REVISIONS] + [(GTE_REPO, revision) for revision in GTE_REVISIONS]
DATASET_CONFIGS = [("NanoSciFact_de", "corpus"), ("NanoSciFact_de", "queries"), ("NanoSciFact_de_qrels", "qrels")]


def _fixture_rows(config: str, split: str) -> list[dict]:
    files = fixture_configs()[config][split]
    return [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").split("\n") if line.strip()]


@pytest.mark.parametrize(("repo_id", "revision"), MODEL_CASES)
def test_snapshot_download_at_pinned_revision(hubs: dict[str, RunningServer], replicas: Replicas, hf_home: Path, repo_id: str, revision: str) -> None:
    result = run_client(SNAPSHOT, [repo_id, revision], client_env(hubs["push_to_hub"].endpoint, hf_home))
    assert result.returncode == 0, result.stderr[-3000:]
    snapshot = Path(last_json(result.stdout)["path"])
    assert snapshot.name == revision and snapshot.is_relative_to(hf_home / "hub")
    expected = replicas.lfm2 if repo_id == LFM2_REPO else replicas.gte
    assert file_digests(snapshot) == file_digests(expected)


@pytest.mark.parametrize("layout", ["push_to_hub", "flat"])
def test_load_dataset_each_layout(hubs: dict[str, RunningServer], hf_home: Path, layout: str) -> None:
    revision = DATASET_REVISIONS[0]
    result = run_client(LOAD_DATASET, [DATASET_REPO, revision, json.dumps(DATASET_CONFIGS)], client_env(hubs[layout].endpoint, hf_home))
    assert result.returncode == 0, result.stderr[-3000:]
    tables = last_json(result.stdout)
    for config, split in DATASET_CONFIGS:
        assert tables[f"{config}/{split}"] == _fixture_rows(config, split), (config, split)
    assert list((hf_home / "hub").glob(f"datasets--*/snapshots/{revision}/README.md"))  # read at the pinned commit
    asked = {r["path"] for r in hubs[layout].requests()}
    assert any(f"/revision/{revision}" in path or f"/resolve/{revision}/" in path for path in asked)


def test_main_branch_resolves_to_its_commit(hubs: dict[str, RunningServer], hf_home: Path) -> None:
    script = PRELUDE + "from huggingface_hub import HfApi\nprint(json.dumps([HfApi().model_info(sys.argv[1]).sha, HfApi().dataset_info(sys.argv[2], revision='main').sha]))"
    result = run_client(script, [LFM2_REPO, DATASET_REPO], client_env(hubs["flat"].endpoint, hf_home))
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_json(result.stdout) == [LFM2_REVISIONS[0], DATASET_REVISIONS[0]]


# --------------------------------------------------------------------------- error paths the server offers

ERRORS = PRELUDE + """
from huggingface_hub import hf_hub_download, snapshot_download
def outcome(call):
    try:
        call()
        return "ok"
    except Exception as error:
        return type(error).__name__
repo, revision = sys.argv[1], sys.argv[2]
print(json.dumps({
    "unknown_repo": outcome(lambda: snapshot_download("nobody/no-such-model", revision=revision)),
    "unknown_revision": outcome(lambda: snapshot_download(repo, revision="0" * 40)),
    "unknown_branch": outcome(lambda: snapshot_download(repo, revision="no-such-branch")),
    "missing_file": outcome(lambda: hf_hub_download(repo, "no-such-file.json", revision=revision)),
}))
"""


def test_typed_errors(hubs: dict[str, RunningServer], hf_home: Path) -> None:
    result = run_client(ERRORS, [LFM2_REPO, LFM2_REVISIONS[0]], client_env(hubs["push_to_hub"].endpoint, hf_home))
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_json(result.stdout) == {
        "unknown_repo": "RepositoryNotFoundError", "unknown_revision": "RevisionNotFoundError",
        "unknown_branch": "RevisionNotFoundError", "missing_file": "RemoteEntryNotFoundError",
    }


def test_faults_leave_a_half_downloaded_snapshot(replicas: Replicas, tmp_path: Path, hf_home: Path) -> None:
    """``truncate`` cuts the weights off mid-body, ``missing`` lists a file the server then refuses:
    the download fails and the cache holds a snapshot folder without those files."""
    revision = LFM2_REVISIONS[0]
    publish(tmp_path / "root", "model", LFM2_REPO, replicas.lfm2, [revision],
            faults={"model.safetensors": "truncate", "1_Dense/model.safetensors": "missing"})
    with hub_server(tmp_path / "root") as server:
        result = run_client(SNAPSHOT, [LFM2_REPO, revision], client_env(server.endpoint, hf_home))
    assert result.returncode != 0
    snapshot = hf_home / "hub" / "models--LiquidAI--LFM2-ColBERT-350M" / "snapshots" / revision
    assert (snapshot / "config.json").is_file()
    assert not (snapshot / "model.safetensors").exists() and not (snapshot / "1_Dense" / "model.safetensors").exists()


def test_closed_port_fails_fast(hf_home: Path) -> None:
    script = PRELUDE + """
import time
from huggingface_hub import snapshot_download
start = time.monotonic()
try:
    snapshot_download(sys.argv[1], revision=sys.argv[2])
    name = "ok"
except Exception as error:
    name = type(error).__name__
print(json.dumps([name, time.monotonic() - start]))
"""
    result = run_client(script, [LFM2_REPO, LFM2_REVISIONS[0]], client_env(f"http://127.0.0.1:{closed_port()}", hf_home))
    assert result.returncode == 0, result.stderr[-3000:]
    name, seconds = last_json(result.stdout)
    assert name != "ok" and seconds < 10, (name, seconds)
