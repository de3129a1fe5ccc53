"""Local snapshots of a hub dataset: which data files make up each config and split, from the README's front matter."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping, Sequence

from nanobeir_ext.data.records import BenchmarkError


def snapshot_configs(path: Path) -> tuple[str, ...]:
    return tuple(snapshot_data_files(path))


def snapshot_data_files(path: Path) -> dict[str, dict[str, tuple[Path, ...]]]:
    """config -> split -> data files, from the ``configs:`` front matter of the README."""
    readme = path / "README.md"
    if not path.is_dir():
        raise BenchmarkError(f"local benchmark snapshot {path} is not a folder")
    if not readme.is_file():
        raise BenchmarkError(f"local benchmark snapshot {path} has no README.md (its `configs:` list the data files)")
    stat = readme.stat()
    return _snapshot_data_files(path.resolve(), stat.st_mtime_ns, stat.st_size)


def snapshot_stamp(path: Path) -> tuple[int, int] | None:
    """(mtime, size) of a snapshot's README: part of every cache key, so a rewritten snapshot is read again."""
    readme = path / "README.md"
    stat = readme.stat() if readme.is_file() else None
    return (stat.st_mtime_ns, stat.st_size) if stat else None


@functools.lru_cache(maxsize=8)
def _snapshot_data_files(path: Path, _mtime_ns: int, _size: int) -> dict[str, dict[str, tuple[Path, ...]]]:
    return {name: {split: glob_data_files(path, patterns) for split, patterns in splits.items()}
            for name, splits in declared_patterns(path / "README.md").items()}


def declared_patterns(readme: Path) -> dict[str, dict[str, list[str]]]:
    """config -> split -> the ``data_files`` patterns a dataset README's ``configs:`` list declares."""
    from huggingface_hub import DatasetCard

    metadata = DatasetCard.load(readme).data.to_dict()
    return {entry.get("config_name", "default"): _split_patterns(entry.get("data_files"))
            for entry in metadata.get("configs") or []}


def _split_patterns(data_files: Any) -> dict[str, list[str]]:
    """Normalise the README's data_files forms (str, list of str, list of {split, path})."""
    if data_files is None:
        return {}
    if isinstance(data_files, str):
        return {"train": [data_files]}
    if isinstance(data_files, Mapping):
        return {split: [p] if isinstance(p, str) else list(p) for split, p in data_files.items()}
    patterns: dict[str, list[str]] = {}
    for item in data_files:
        if isinstance(item, str):
            patterns.setdefault("train", []).append(item)
        else:
            paths = item["path"]
            patterns.setdefault(item.get("split", "train"), []).extend([paths] if isinstance(paths, str) else paths)
    return patterns


def glob_data_files(root: Path, patterns: Sequence[str]) -> tuple[Path, ...]:
    """The files under ``root`` matching the ``data_files`` ``patterns``, in pattern order, each sorted."""
    files: list[Path] = []
    for pattern in patterns:
        files.extend(sorted(p for p in root.glob(pattern) if p.is_file()))
    return tuple(files)
