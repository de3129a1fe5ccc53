"""Session fixtures of the hub tests: the replicas (built once) and a minimal loopback hub per
dataset layout, each serving all three replicas (tests/hub/replicas.py, tests/hub/server.py)."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers import CONFIG_DIR
from tests.hub.processes import RunningServer, hub_server
from tests.hub.replicas import DATASET_LAYOUTS, Replicas, build_replicas, publish_replicas


@pytest.fixture(scope="session")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Replicas:
    return build_replicas(tmp_path_factory.mktemp("replicas"))


@pytest.fixture(scope="session")
def hubs(replicas: Replicas, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    """dataset layout -> a running minimal hub serving the two models and the dataset in that layout."""
    with contextlib.ExitStack() as stack:
        servers = {}
        for layout in DATASET_LAYOUTS:
            root = publish_replicas(tmp_path_factory.mktemp(f"hub-{layout}"), replicas, layout, CONFIG_DIR)
            servers[layout] = stack.enter_context(hub_server(root, log=root / "requests.jsonl"))
        yield servers


@pytest.fixture
def hf_home(tmp_path: Path) -> Path:
    """A fresh, empty Hugging Face home (caches included) for one test's client subprocesses."""
    return tmp_path / "hf-home"
