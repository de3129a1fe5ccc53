"""A BGE-M3-format checkpoint from the hub: its ``colbert_linear.pt`` comes through the same pinned,
bounded snapshot fetch as every checkpoint (``models.checkpoint.resolve_source``), and the vectors
equal those of the same checkpoint read from a folder."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_DIR
from tests.hub.processes import client_env, hub_server
from tests.hub.server import publish

COMMIT = "b9e3f2a1c4d5e6f708192a3b4c5d6e7f80910a1b"
SCRIPT = """
import sys, torch
from models.bge_m3 import load_bge_m3
texts = ["a short text", "ein kurzer Text"]
hub = load_bge_m3("org/tiny-bge-m3", revision=sys.argv[1])
local = load_bge_m3(sys.argv[2])
a = hub.encode(texts, "document", progress=False).embeddings
b = local.encode(texts, "document", progress=False).embeddings
assert all(torch.equal(x, y) for x, y in zip(a, b)), "hub and folder vectors differ"
print("revision", hub.info.revision)
"""


@pytest.mark.slow
def test_bge_m3_checkpoint_from_the_hub_brings_its_colbert_head(tmp_path: Path) -> None:
    from models.bge_m3 import COLBERT_FILE, build_bge_m3_fixture
    from models.fixtures import default_fixture_texts

    checkpoint = build_bge_m3_fixture(tmp_path / "bge", default_fixture_texts()[:200])
    assert (checkpoint / COLBERT_FILE).is_file()
    root = tmp_path / "hub"
    publish(root, "model", "org/tiny-bge-m3", checkpoint, [COMMIT])
    with hub_server(root) as server:
        done = subprocess.run([sys.executable, "-c", SCRIPT, COMMIT, str(checkpoint)], cwd=REPO_DIR, text=True,
                              capture_output=True, env=client_env(server.endpoint, tmp_path / "home"), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"revision {COMMIT}" in done.stdout
    snapshots = list((tmp_path / "home" / "hub").glob(f"models--org--tiny-bge-m3/snapshots/{COMMIT}/{COLBERT_FILE}"))
    assert len(snapshots) == 1
