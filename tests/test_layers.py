"""The package layout is a layering: no import runs back up a layer (README, Design).

From the bottom up: the shared vocabulary (languages, atomic, protocol); benchmark data and
embeddings; retrieval over embeddings; evaluation; reporting and outputs; compare and
latency. ``models/`` implements the protocols of ``nanobeir_ext`` and is wired in by
``runners/``: the library never imports either.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_DIR

LEVELS = {
    "languages": 0, "atomic": 0, "protocol": 0,
    "data": 1, "embeddings": 1,
    "retrieval": 2,  # scores ragged embeddings
    "evaluation": 3,
    "reporting": 4, "outputs": 4,
    "compare": 5, "latency": 5,
}


def imports_of(path: Path) -> list[str]:
    """Every absolute module name a file imports, lazily or not."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def library_files() -> list[Path]:
    return sorted((REPO_DIR / "nanobeir_ext").rglob("*.py"))


def part_of(path: Path) -> str:
    """The first component under nanobeir_ext/ (a subpackage or a top-level module)."""
    return path.relative_to(REPO_DIR / "nanobeir_ext").parts[0].removesuffix(".py")


def test_every_part_of_the_library_has_a_level():
    parts = {part_of(p) for p in library_files()} - {"__init__"}
    assert parts <= set(LEVELS), f"give {sorted(parts - set(LEVELS))} a level in this test and in the README"


@pytest.mark.parametrize("path", library_files(), ids=lambda p: str(p.relative_to(REPO_DIR)))
def test_library_imports_run_down_or_sideways_within_a_stage(path: Path):
    here = part_of(path)
    for name in imports_of(path):
        top = name.split(".")[0]
        assert top not in ("models", "runners", "benchmarks", "tests"), f"{path.name} imports {name}"
        if top != "nanobeir_ext" or here == "__init__" or name == "nanobeir_ext":
            continue
        target = name.split(".")[1]
        if target not in LEVELS or target == here:
            continue
        assert LEVELS[target] < LEVELS[here], f"{path.relative_to(REPO_DIR)} ({here}) imports {name} ({target}): not a lower layer"


@pytest.mark.parametrize("path", sorted((REPO_DIR / "models").rglob("*.py")), ids=lambda p: p.name)
def test_models_never_import_runners(path: Path):
    assert not [n for n in imports_of(path) if n.split(".")[0] in ("runners", "benchmarks", "tests")]


@pytest.mark.parametrize(("module", "absent"), [
    ("nanobeir_ext.evaluation.metrics", "torch"),
    ("nanobeir_ext.evaluation.pipeline", "matplotlib"),
    ("nanobeir_ext.outputs.runs" if (REPO_DIR / "nanobeir_ext/outputs/runs.py").exists() else "nanobeir_ext.outputs", "matplotlib"),
    ("nanobeir_ext", "torch"),
])
def test_importing_computation_loads_no_rendering_or_heavy_backend(module: str, absent: str):
    code = f"import sys, {module}; print({absent!r} in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_DIR, check=True)
    assert done.stdout.strip() == "False", f"importing {module} loads {absent}"


def test_public_face_resolves_every_name():
    import nanobeir_ext

    for name in nanobeir_ext.__all__:
        assert getattr(nanobeir_ext, name).__name__ == name
