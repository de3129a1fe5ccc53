"""Shared fixtures: a session-wide cache of built fixture models (helpers live in tests/helpers.py)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the whole session, so the tiny checkpoints are built once."""
    return tmp_path_factory.mktemp("nanobeir-cache")
