"""A store and a reference run of the tiny evaluation, shared by the faults suite."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from models.fixtures import build_fixture_checkpoints
from models.registry import fixture_models_dir
from runners import evaluate
from tests.faults.common import tiny_cfg


@pytest.fixture(scope="session")
def fixture_models(shared_cache) -> Path:
    build_fixture_checkpoints(fixture_models_dir(shared_cache))
    return fixture_models_dir(shared_cache)


def new_cache(root: Path, fixture_models: Path) -> Path:
    """An empty embedding store with the session's built fixture models."""
    root.mkdir(parents=True, exist_ok=True)
    os.symlink(fixture_models, fixture_models_dir(root))
    return root


@pytest.fixture(scope="session")
def reference(tmp_path_factory, fixture_models) -> tuple[Path, Path]:
    """(a complete uninterrupted run folder, its filled store)."""
    base = tmp_path_factory.mktemp("faults-reference")
    cache = new_cache(base / "cache", fixture_models)
    evaluate.run(tiny_cfg(cache), out_dir=base / "run")
    return base / "run", cache


@pytest.fixture
def warm_cache(tmp_path, reference) -> Path:
    """A copy of the reference's filled store (fault tests may damage it)."""
    _, cache = reference
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy, symlinks=True)
    return copy
