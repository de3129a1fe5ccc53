"""Output-folder ownership: a folder that holds another run is never overwritten silently.

``run.json`` is the folder's owner record: which kind of run (``evaluation``, ``shard 0/4``,
``comparison``, ...), its settings fingerprint, its status (``running``, ``complete``, ``failed``)
and the process that claimed it. ``claim`` decides under a lock on the folder (``flock``; where a
file system has none, creating ``run.json`` is still exclusive, by ``os.link`` of a fully written
and fsynced temp file) so two runs started at the same instant can never both own a folder:

- no ``run.json``: a new folder, unless it holds outputs the harness did not record (refused);
- the same kind and fingerprint: the same run, resumed (unless its process is still alive);
- a different run that finished, or that is still running: refused unless ``overwrite``;
- a different run that failed or was killed before writing any result: replaced, with a warning;
- an empty or damaged ``run.json``: refused, naming the file, unless ``overwrite``.

Replacing a run removes every output it may have written (the caller's ``outputs``, glob
patterns) and the temp files a killed writer left behind.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from nanobeir_ext.atomic import file_mode, fsync_dir, naming_the_file, remove_temp_files, write_json

logger = logging.getLogger(__name__)

MANIFEST = "run.json"
RUNNING, COMPLETE, FAILED = "running", "complete", "failed"
# What a finished run leaves; a failed run without any of these lost nothing when replaced.
FINISHED_OUTPUTS = ("results.csv", "results.parquet", "per_query.parquet", "latency.csv", "report.md", "report.json")


def fingerprint(settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


class DamagedRecord(FileExistsError):
    """``run.json`` exists but cannot be read as an owner record."""


@dataclass(frozen=True)
class Owner:
    """A folder's ``run.json``, read back."""

    kind: str
    fingerprint: str
    status: str
    pid: int | None
    host: str | None
    started: str | None

    @classmethod
    def read(cls, manifest: Path) -> "Owner | None":
        try:
            text = manifest.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as err:
            raise DamagedRecord(f"{manifest} cannot be read ({err})") from err
        if not text.strip():
            raise DamagedRecord(f"{manifest} is empty")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DamagedRecord(f"{manifest} is not valid JSON ({err})") from err
        if not isinstance(data, dict) or not isinstance(data.get("fingerprint"), str):
            raise DamagedRecord(f"{manifest} has no run fingerprint")
        return cls(kind=str(data.get("kind", "run")), fingerprint=data["fingerprint"], status=str(data.get("status")),
                   pid=data.get("pid"), host=data.get("host"), started=data.get("started"))

    def is_mine(self) -> bool:
        return self.pid == os.getpid() and self.host == socket.gethostname()

    def may_be_alive(self) -> bool:
        """Whether the claiming process may still be writing (another host's process cannot be checked)."""
        if self.status != RUNNING or self.pid is None or self.is_mine():
            return False
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(int(self.pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def describe(self) -> str:
        by = f" by pid {self.pid} on {self.host}" if self.pid is not None else ""
        started = f", started {self.started}{by}" if self.started else by
        return f"{self.status} {self.kind}{started}"


def claim(out_dir: Path, settings: Mapping[str, Any], *, kind: str, overwrite: bool = False,
          outputs: Sequence[str] = ()) -> Owner:
    """Make this process the owner of ``out_dir`` (see the module docstring for the rules); raise
    ``FileExistsError`` saying what the folder holds when it is refused. ``outputs`` are the names
    (or glob patterns) of everything this kind of run writes: removed when another run is replaced."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    mine = fingerprint(settings)
    with _locked(out_dir):
        exists = True
        try:
            previous = Owner.read(manifest)
            exists = previous is not None
        except DamagedRecord as damaged:
            if not overwrite:
                raise DamagedRecord(f"{damaged}: it should say which run owns {out_dir}; look at the folder "
                                    "and choose another one, or pass overwrite=true to replace what is in it") from None
            logger.warning("%s; replacing what is in %s (overwrite=true)", damaged, out_dir)
            _remove(out_dir, outputs)
        else:
            if previous is None:
                foreign = _present(out_dir, [*FINISHED_OUTPUTS, *(o for o in outputs if not _is_hydra_record(o))])
                if foreign and not overwrite:
                    raise FileExistsError(
                        f"{out_dir} holds {', '.join(foreign)} but no {MANIFEST}: files this harness did not record "
                        "writing; choose another folder, or pass overwrite=true to replace them")
                if foreign:
                    _remove(out_dir, outputs)
            else:
                _replace_or_refuse(out_dir, previous, mine, kind, overwrite, outputs)
        remove_temp_files(out_dir)  # left by a killed writer; nobody else writes here now
        owner = Owner(kind=kind, fingerprint=mine, status=RUNNING, pid=os.getpid(), host=socket.gethostname(),
                      started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        record = _record(owner)
        if not exists:
            _create_exclusive(manifest, record)
        else:
            write_json(manifest, record)
    return owner


def _replace_or_refuse(out_dir: Path, previous: Owner, mine: str, kind: str, overwrite: bool,
                       outputs: Sequence[str]) -> None:
    same = previous.fingerprint == mine and previous.kind == kind
    if previous.may_be_alive() and not overwrite:
        raise FileExistsError(f"{out_dir} is in use by a {previous.describe()}; wait for it to finish, "
                              "choose another folder, or pass overwrite=true if that process is gone")
    if same:
        return  # the same run again: resume, keeping what it wrote
    finished = _present(out_dir, FINISHED_OUTPUTS)
    if previous.status != COMPLETE and not finished and not overwrite:
        # A run that failed or was killed before writing any result: nothing of value to keep.
        logger.warning("%s held a %s that wrote no results; replacing it", out_dir, previous.describe())
        _remove(out_dir, outputs)
        return
    if not overwrite:
        what = f"the {previous.describe()}" + (f", with {', '.join(finished)}" if finished else "")
        other = "" if previous.kind == kind else f"; this command is a {kind}"
        raise FileExistsError(
            f"{out_dir} already holds a different {previous.kind}: {what} (fingerprint "
            f"{previous.fingerprint[:12]} vs {mine[:12]}{other}); choose another hydra.run.dir or pass overwrite=true")
    logger.warning("replacing the %s in %s (overwrite=true)", previous.describe(), out_dir)
    _remove(out_dir, outputs)


def mark_complete(out_dir: Path) -> None:
    _mark(Path(out_dir), COMPLETE)


def mark_failed(out_dir: Path, error: BaseException) -> None:
    _mark(Path(out_dir), FAILED, error=f"{type(error).__name__}: {error}"[:2000])


def _mark(out_dir: Path, status: str, **extra: str) -> None:
    manifest = out_dir / MANIFEST
    with _locked(out_dir):
        data = json.loads(manifest.read_text(encoding="utf-8"))
        if data.get("pid") not in (None, os.getpid()) or data.get("host") not in (None, socket.gethostname()):
            logger.warning("%s now names another owner (pid %s on %s); leaving it as it is", manifest,
                           data.get("pid"), data.get("host"))
            return
        data.update(status=status, **extra)
        write_json(manifest, data)


def _record(owner: Owner) -> dict[str, Any]:
    return {"kind": owner.kind, "fingerprint": owner.fingerprint, "status": owner.status, "pid": owner.pid,
            "host": owner.host, "started": owner.started}


def _create_exclusive(manifest: Path, record: Mapping[str, Any]) -> None:
    """Create ``manifest`` fully written or not at all, failing if it exists (``os.link`` does not replace)."""
    text = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{manifest.name}.", suffix=".claim", dir=manifest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, file_mode())
        try:
            os.link(tmp, manifest)
        except FileExistsError:
            raise FileExistsError(f"{manifest.parent} was claimed at the same moment by another run "
                                  f"({_describe_quietly(manifest)}); choose another folder") from None
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            _create_exclusive_without_links(manifest, text)
        fsync_dir(manifest.parent)
    except FileExistsError:
        raise
    except OSError as err:
        raise naming_the_file(err, manifest) from err
    finally:
        tmp.unlink(missing_ok=True)


def _create_exclusive_without_links(manifest: Path, text: str) -> None:
    try:
        fd = os.open(manifest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode())
    except FileExistsError:
        raise FileExistsError(f"{manifest.parent} was claimed at the same moment by another run; "
                              "choose another folder") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _describe_quietly(manifest: Path) -> str:
    try:
        owner = Owner.read(manifest)
    except DamagedRecord as damaged:
        return str(damaged)
    return owner.describe() if owner else "gone again"


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the folder itself (no lock file is left behind); best effort where
    the file system has no ``flock`` on folders (the exclusive creation still holds there)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


def _is_hydra_record(pattern: str) -> bool:
    """Hydra's own record and log may be written before the runner starts (hydra.output_subdir set)."""
    return pattern == ".hydra" or pattern.endswith(".log")


def _present(out_dir: Path, patterns: Sequence[str]) -> list[str]:
    found: list[str] = []
    for pattern in patterns:
        found += sorted(p.name for p in out_dir.glob(pattern) if p.name not in found)
    return found


def _remove(out_dir: Path, patterns: Sequence[str]) -> None:
    for pattern in patterns:
        for target in out_dir.glob(pattern):
            if target.name == MANIFEST:
                continue
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
