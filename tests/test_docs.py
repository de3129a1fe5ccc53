"""Docstrings and the README point only at files that exist in the repository."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers import REPO_DIR

# Paths under the repository's own folders, or a bare markdown file name (README.md, DESIGN.md).
ROOTS = ("nanobeir_ext", "models", "runners", "tests", "docs", "configs", "reports", "scripts", "benchmarks",
         "notes", "compare", "data", "evaluation", "reporting", "outputs", "latency", "retrieval", "embeddings")
PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w./-]*[\w-]\.(?:py|md|yaml|json|sh|toml)|[A-Za-z_-]+\.md)\b" % "|".join(ROOTS))


def python_files() -> list[Path]:
    return sorted(p for folder in ("nanobeir_ext", "models", "runners", "benchmarks", "scripts")
                  for p in (REPO_DIR / folder).rglob("*.py"))


def exists(reference: str, where: Path) -> bool:
    return any((base / reference).exists() for base in (REPO_DIR, where.parent, REPO_DIR / "nanobeir_ext", REPO_DIR / "docs"))


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(REPO_DIR)))
def test_module_docstring_points_at_existing_files(path: Path):
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    missing = [ref for ref in PATH.findall(doc) if not exists(ref, path)]
    assert not missing, f"{path.relative_to(REPO_DIR)} docstring names {missing}, which do not exist in the repository"
