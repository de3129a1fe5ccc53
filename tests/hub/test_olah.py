"""The clients download the replicas from olah 0.5.4 in offline mirror mode (the mirror that
air-gapped sites run; installed in .venv-olah by scripts/setup_olah.sh). olah serves its git
mirrors' own commits, so the revisions here are those commits, not the real repos' pins."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from tests.hub.clients import LOAD_DATASET, SNAPSHOT, file_digests, last_json, run_client
from tests.hub.processes import RunningServer, client_env, git_mirror, olah_server
from tests.hub.replicas import DATASET_REPO, LFM2_REPO, Replicas

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def olah(replicas: Replicas, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    """olah over git mirrors of the LFM2 replica and the push_to_hub dataset replica; repo -> commit."""
    work = tmp_path_factory.mktemp("olah")
    commits = {
        LFM2_REPO: git_mirror(work / "mirrors", "model", LFM2_REPO, replicas.lfm2),
        DATASET_REPO: git_mirror(work / "mirrors", "dataset", DATASET_REPO, replicas.datasets["push_to_hub"]),
    }
    with olah_server(work / "mirrors", work / "server", probe_repo=LFM2_REPO) as server:
        yield server, commits


def test_snapshot_download_through_olah(olah: tuple[RunningServer, dict[str, str]], replicas: Replicas, tmp_path: Path) -> None:
    server, commits = olah
    result = run_client(SNAPSHOT, [LFM2_REPO, commits[LFM2_REPO]], client_env(server.endpoint, tmp_path / "hf"))
    assert result.returncode == 0, result.stderr[-3000:]
    snapshot = Path(last_json(result.stdout)["path"])
    assert snapshot.name == commits[LFM2_REPO]
    assert file_digests(snapshot) == file_digests(replicas.lfm2)


def test_load_dataset_through_olah(olah: tuple[RunningServer, dict[str, str]], tmp_path: Path) -> None:
    server, commits = olah
    configs = [("NanoSciFact_en", "corpus"), ("NanoSciFact_en_qrels", "qrels")]
    result = run_client(LOAD_DATASET, [DATASET_REPO, commits[DATASET_REPO], json.dumps(configs)], client_env(server.endpoint, tmp_path / "hf"))
    assert result.returncode == 0, result.stderr[-3000:]
    tables = last_json(result.stdout)
    assert [row["_id"] for row in tables["NanoSciFact_en/corpus"]][:2] == ["sf-d01", "sf-d02"]
    assert {"query-id": "sf-q01", "corpus-id": "sf-d01"} in tables["NanoSciFact_en_qrels/qrels"]
