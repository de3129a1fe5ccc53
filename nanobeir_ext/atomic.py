"""Atomic file writes: a killed run never leaves a half-written output behind.

Every output goes to a temp file in the target's folder (``.{name}.XXXXXXXX.tmp``), is fsynced,
given the umask's mode and renamed over the target. A failed write removes its temp file; a
killed process cannot, so the next owner of the folder removes them (``remove_temp_files``).
A disk-full, read-only or permission error names the file being written.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

TEMP_SUFFIX = ".tmp"
# Fault injection (tests/faults): SIGKILL the process at the named write, temp file written, before its rename.
KILL_AT_ENV = "NANOBEIR_EXT_KILL_AT"


def fault_point(name: str) -> None:
    """Die here, as a crash would, when the tests ask for it (never set in normal use)."""
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def file_mode() -> int:
    """The mode a plain ``open`` would give a new file (0666 less the umask): outputs and caches
    are meant to be shared by a group, which mkstemp's 0600 would prevent."""
    current = os.umask(0)
    os.umask(current)
    return 0o666 & ~current


def naming_the_file(err: OSError, path: Path) -> OSError:
    """The same error (same errno, hence the same subclass) with the file being written in its message."""
    if str(path) in str(err):
        return err
    reason = err.strerror or str(err)
    if err.errno:
        return OSError(err.errno, f"{reason} while writing {path}")  # OSError picks the subclass from errno
    return type(err)(f"{reason} while writing {path}")


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(directory: Path) -> None:
    """Make a rename durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path in the target's folder; on success it replaces ``path`` in one rename."""
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        yield tmp
        fault_point(path.name)
        fsync_file(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as err:
        raise naming_the_file(err, path) from err
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def remove_temp_files(folder: Path) -> list[Path]:
    """Remove the temp files ``atomic_path`` leaves when its process is killed, anywhere under
    ``folder``. Only the folder's owner may call this: a live writer's temp file would go too."""
    removed = []
    for temp in Path(folder).rglob(f".*{TEMP_SUFFIX}"):
        if temp.is_file() and not temp.is_symlink():
            temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed


def discard_folder(folder: Path) -> None:
    """Remove a (damaged) cached folder: one rename aside first, so no reader ever sees it half removed."""
    folder = Path(folder)
    aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{os.getpid()}.damaged.", dir=folder.parent))
    try:
        os.rename(folder, aside / folder.name)
    except FileNotFoundError:
        pass  # another process discarded it first
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    # %.10g: stable text for identical floats, precise enough for any metric.
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n")
    return Path(path)


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(path)
