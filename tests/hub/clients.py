"""Hub client code run in subprocesses (the clients fix their endpoint at import), and what to compare it with."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

from tests.helpers import REPO_DIR

# Every client script starts by proving that the clients took the loopback endpoint at import.
PRELUDE = """
import json, os, sys
import huggingface_hub.constants as constants
assert constants.ENDPOINT == os.environ["HF_ENDPOINT"], (constants.ENDPOINT, os.environ["HF_ENDPOINT"])
assert not constants.HF_HUB_OFFLINE and constants.HF_HUB_CACHE == os.environ["HF_HUB_CACHE"]
"""

SNAPSHOT = PRELUDE + """
from huggingface_hub import snapshot_download
path = snapshot_download(sys.argv[1], revision=sys.argv[2])
print(json.dumps({"path": path}))
"""

LOAD_DATASET = PRELUDE + """
import datasets
assert datasets.config.HF_DATASETS_CACHE.as_posix() == os.environ["HF_DATASETS_CACHE"], datasets.config.HF_DATASETS_CACHE
repo, revision, configs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
tables = {}
for config, split in configs:
    table = datasets.load_dataset(repo, config, split=split, revision=revision)
    tables[f"{config}/{split}"] = table.to_list()
print(json.dumps(tables))
"""


def run_client(script: str, args: list[str], env: Mapping[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *args], cwd=REPO_DIR, env=dict(env), capture_output=True,
                          text=True, timeout=timeout)


def last_json(output: str) -> Any:
    return json.loads(output.strip().splitlines()[-1])


def file_digests(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` (symlinks followed, as a snapshot's are)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
