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
    from huggingface_hub import DatasetCard

    metadata = DatasetCard.load(path / "README.md").data.to_dict()
    configs = metadata.get("configs") or []
    result: dict[str, dict[str, tuple[Path, ...]]] = {}
    for entry in configs:
        name = entry.get("config_name", "default")
        result[name] = {split: _glob(path, patterns) for split, patterns in _split_patterns(entry.get("data_files")).items()}
    return result


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


def _glob(root: Path, patterns: Sequence[str]) -> tuple[Path, ...]:
    files: list[Path] = []
    for pattern in patterns:
        files.extend(sorted(p for p in root.glob(pattern) if p.is_file()))
    return tuple(files)
