"""The Hugging Face hub: snapshots read at exactly one commit, and errors that say what to set.

One way in for every hub repo, models and datasets alike (:func:`fetch_snapshot`):

- online, the revision is resolved once per process with one bounded API call (a pinned 40-hex
  commit too: it proves the hub answers before any download, since ``snapshot_download`` would
  raise a bare ``httpx.ConnectError`` for a pinned commit and retry a failed file request for up
  to a minute); then ``snapshot_download`` fetches only the files asked for at that commit;
- offline (``HF_HUB_OFFLINE=1``), the asked revision's snapshot in the local hub cache or nothing:
  never another cached commit (``datasets.load_dataset`` would silently take the newest one);
- every failure is one :class:`HubFetchError` naming the repo, the revision, what went wrong and
  the settings that fix it (``{keys}.revision``, ``{keys}.source|repo_id``, ``{keys}.path``,
  ``HF_HUB_OFFLINE``), raised within the waits ``HF_HUB_ETAG_TIMEOUT`` (API calls and file
  metadata) and ``HF_HUB_DOWNLOAD_TIMEOUT`` (file bodies) allow.

A hub dataset is then read from its snapshot folder like any local snapshot
(:func:`dataset_snapshot`: the README first, then only the data files of the configs read).
"""
from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from nanobeir_ext.data.records import BenchmarkSource, BenchmarkUnavailableError

log = logging.getLogger(__name__)

# A full git commit hash, as the hub names a pinned revision and a cache snapshot folder.
COMMIT_HASH = re.compile(r"[0-9a-f]{40}")
DEFAULT_REVISION = "main"


def is_commit_hash(text: str | None) -> bool:
    return text is not None and COMMIT_HASH.fullmatch(text) is not None


def revision_text(revision: Any) -> str | None:
    """A configured revision as the hub client needs it: a string (Hydra reads ``revision=1.0``
    as a float and an all-digit hash as an int), None when unset. A float that lost digits in
    parsing cannot be recovered, so it is refused rather than sent as another revision."""
    if revision is None or isinstance(revision, str):
        return revision or None
    if isinstance(revision, bool):
        raise ValueError(f"revision {revision!r} is not a branch, tag or commit; quote it: revision='\"...\"'")
    if isinstance(revision, int):
        return str(revision)
    if isinstance(revision, float):
        text = repr(revision)
        if "e" in text or "inf" in text or "nan" in text:
            raise ValueError(f"revision {revision!r} was read as a number and lost its spelling; quote it, "
                             f"e.g. revision='\"1.0\"'")
        log.warning("revision %s was read as a number; if it was spelt otherwise (1.10, 1e5), quote it: revision='\"...\"'", text)
        return text
    raise ValueError(f"revision must be a string, got {type(revision).__name__} {revision!r}")


@dataclass(frozen=True)
class HubRepo:
    """A repo on the hub as configured, and the config keys that name it (for error messages)."""

    repo_id: str
    repo_type: str  # "model" | "dataset"
    revision: str = DEFAULT_REVISION
    keys: str = "model"  # config prefix: "models.<key>" or "benchmark"
    source_key: str = "source"  # the key holding the repo id under ``keys``: "source" or "repo_id"

    @property
    def pinned(self) -> bool:
        return is_commit_hash(self.revision)

    def describe(self) -> str:
        return f"{self.repo_type} {self.repo_id} at revision {self.revision}"

    @property
    def local_copy(self) -> str:
        return "/local/snapshot" if self.repo_type == "dataset" else "/local/folder"

    def download_command(self) -> str:
        kind = " --repo-type dataset" if self.repo_type == "dataset" else ""
        return f"`hf download {self.repo_id}{kind} --revision {self.revision} --local-dir {self.local_copy}`"


class HubFetchError(RuntimeError):
    """A hub repo could not be read. The message names the repo, the revision, what went wrong and
    the settings that fix it; :meth:`with_keys` re-renders it for another config prefix."""

    def __init__(self, repo: HubRepo, problem: str, fixes: Sequence[str]) -> None:
        self.repo, self.problem, self.fixes = repo, problem, tuple(fixes)
        super().__init__(self.render())

    def render(self) -> str:
        keys = self.repo.keys
        fixes = "; ".join(fix.format(keys=keys, source=f"{keys}.{self.repo.source_key}", download=self.repo.download_command(),
                                     local=self.repo.local_copy)
                          for fix in self.fixes)
        return f"cannot load {self.repo.describe()}: {self.problem}. To fix: {fixes}"

    def with_keys(self, keys: str) -> "HubFetchError":
        return type(self)(replace(self.repo, keys=keys), self.problem, self.fixes)


@dataclass(frozen=True)
class HubSnapshot:
    folder: Path  # .../snapshots/<commit> in the hub cache
    commit: str
    pinned: bool  # the configured revision was this commit (not a moving branch or tag)


# Fixes named by the errors ({keys} is the config prefix, {source} the key holding the repo id).
_USE_LOCAL_COPY = "or copy the repo from a machine with hub access ({download}) and set {keys}.path={local}"
_NOT_CACHED = ("run once with hub access (HF_HUB_OFFLINE unset, HF_ENDPOINT reachable) to cache this revision",
               "set {keys}.revision to a commit that is cached", _USE_LOCAL_COPY)


def _hub() -> Any:
    """huggingface_hub, imported on first use (it fixes HF_ENDPOINT and the cache at import)."""
    import huggingface_hub
    import huggingface_hub.constants  # noqa: F401 - submodules the package's lazy __init__ may not load
    import huggingface_hub.errors  # noqa: F401
    import huggingface_hub.file_download  # noqa: F401

    return huggingface_hub


def hub_offline() -> bool:
    return bool(_hub().constants.HF_HUB_OFFLINE)


def _network_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning "could not reach the hub" (httpx's are not ConnectionErrors)."""
    import httpx

    return (ConnectionError, TimeoutError, httpx.TransportError)


@functools.lru_cache(maxsize=64)
def _remote_commit(repo_id: str, repo_type: str, revision: str) -> str:
    """The commit ``revision`` names on the hub now: one API call, bounded by HF_HUB_ETAG_TIMEOUT,
    never retried (memoised per process, so every file of a run comes from one commit)."""
    hub = _hub()
    info = hub.HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision, timeout=hub.constants.HF_HUB_ETAG_TIMEOUT)
    if not info.sha:
        raise ValueError(f"the hub at {hub.constants.ENDPOINT} answered no commit for {repo_id} at {revision}")
    return str(info.sha)


def _repo_cache(repo: HubRepo, cache_dir: str | Path | None) -> Path:
    """The repo's folder in the hub cache (``{models|datasets}--org--name``)."""
    hub = _hub()
    return Path(cache_dir or hub.constants.HF_HUB_CACHE) / hub.file_download.repo_folder_name(repo_id=repo.repo_id, repo_type=repo.repo_type)


def _cached_commit(repo: HubRepo, cache_dir: str | Path | None = None) -> str | None:
    """The commit the local hub cache holds for ``repo.revision`` (a pinned commit, or a branch's
    last resolution recorded under refs/), or None."""
    folder = _repo_cache(repo, cache_dir)
    commit = repo.revision if repo.pinned else None
    ref = folder / "refs" / repo.revision
    if commit is None and ref.is_file():
        commit = ref.read_text().strip()
    return commit if commit and (folder / "snapshots" / commit).is_dir() else None


def resolve_commit(repo: HubRepo, *, local_files_only: bool = False, cache_dir: str | Path | None = None) -> str:
    """The commit a run reads ``repo`` at: online the hub's answer, offline the cache's, or a clear error."""
    hub = _hub()
    if local_files_only or hub_offline():
        commit = _cached_commit(repo, cache_dir)
        if commit is None:
            raise HubFetchError(repo, "this revision is not in the local Hugging Face cache "
                                f"({cache_dir or hub.constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE is set (or the hub is unreachable)",
                                _NOT_CACHED)
        return commit
    errors = hub.errors
    try:
        return _remote_commit(repo.repo_id, repo.repo_type, repo.revision)
    except errors.RevisionNotFoundError as error:
        raise HubFetchError(repo, f"the hub at {hub.constants.ENDPOINT} has no such revision ({_first_line(error)})",
                            ["set {keys}.revision to a branch, tag or commit of this repo"]) from error
    except errors.RepositoryNotFoundError as error:
        raise HubFetchError(repo, f"the hub at {hub.constants.ENDPOINT} has no such repo, or it is private or gated "
                            f"({_first_line(error)})",
                            ["set {source} to an existing repo id (log in with `hf auth login` for a gated one)",
                             _USE_LOCAL_COPY]) from error
    except (*_network_errors(), errors.HfHubHTTPError) as error:
        cached = _cached_commit(repo, cache_dir)
        if cached is not None:
            log.warning("%s: the hub at %s is unreachable (%s: %s); using the cached snapshot %s",
                        repo.describe(), hub.constants.ENDPOINT, type(error).__name__, _first_line(error), cached)
            return cached
        raise HubFetchError(repo, f"the hub at {hub.constants.ENDPOINT} is unreachable ({type(error).__name__}: "
                            f"{_first_line(error)}) and this revision is not in the local cache",
                            ["check HF_ENDPOINT and the network", "or set {keys}.revision to a commit that is cached "
                             "and HF_HUB_OFFLINE=1", _USE_LOCAL_COPY]) from error


def fetch_snapshot(repo: HubRepo, allow_patterns: Sequence[str], *, local_files_only: bool = False,
                   cache_dir: str | Path | None = None) -> HubSnapshot:
    """The files of ``repo`` matching ``allow_patterns`` at one commit, in the local hub cache.

    Online, missing files are downloaded; offline, the snapshot of exactly the configured
    revision must be cached and complete. A moving revision (a branch or tag) is logged with the
    commit it resolved to, as not pinned.
    """
    hub = _hub()
    errors = hub.errors
    offline = local_files_only or hub_offline()
    commit = resolve_commit(repo, local_files_only=offline, cache_dir=cache_dir)
    try:
        folder = Path(hub.snapshot_download(
            repo.repo_id, repo_type=repo.repo_type, revision=commit, allow_patterns=list(allow_patterns),
            local_files_only=offline, cache_dir=cache_dir, etag_timeout=hub.constants.HF_HUB_ETAG_TIMEOUT))
    except errors.IncompleteSnapshotError as error:
        raise HubFetchError(repo, f"the cached snapshot of commit {commit} lacks files this run needs (never downloaded, or a download "
                            f"was interrupted) "
                            f"({_first_line(error)})",
                            ["rerun with hub access (HF_HUB_OFFLINE unset) to complete it", _USE_LOCAL_COPY]) from error
    except errors.LocalEntryNotFoundError as error:
        raise HubFetchError(repo, f"commit {commit} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set "
                            "(or the hub is unreachable)", _NOT_CACHED) from error
    except errors.EntryNotFoundError as error:
        raise HubFetchError(repo, f"{_failed_file(error) or 'a file the repo lists'} is missing on the hub at commit {commit} "
                            f"({_first_line(error)})",
                            ["set {keys}.revision to a complete commit", _USE_LOCAL_COPY]) from error
    except (*_network_errors(), OSError) as error:
        raise HubFetchError(repo, f"the download of commit {commit} from {hub.constants.ENDPOINT} failed and left the "
                            f"snapshot incomplete ({type(error).__name__}: {_first_line(error)})",
                            ["rerun to resume it (HF_HUB_DOWNLOAD_TIMEOUT bounds each wait)", _USE_LOCAL_COPY]) from error
    if not repo.pinned:
        if not offline:
            _record_ref(repo, commit, cache_dir)
        _warn_moving(repo, commit)
    return HubSnapshot(folder=folder, commit=commit, pinned=repo.pinned)


def _record_ref(repo: HubRepo, commit: str, cache_dir: str | Path | None) -> None:
    """Note in the hub cache which commit a branch or tag named (``refs/<revision>``, the cache's own
    format), as ``snapshot_download`` does for a branch: an offline run of the same config then
    reads this commit. The download itself asked for the commit, so every file comes from it."""
    ref = _repo_cache(repo, cache_dir) / "refs" / repo.revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    temporary = ref.with_name(f".{ref.name}.{os.getpid()}.tmp")
    temporary.write_text(commit)
    os.replace(temporary, ref)


@functools.lru_cache(maxsize=64)
def _warn_moving(repo: HubRepo, commit: str) -> None:
    """Once per process and repo: a branch or tag moves, so the run is not reproducible from its config."""
    log.warning("%s resolved to commit %s: a moving revision, so this result is not pinned (set %s.revision=%s to pin it)",
                repo.describe(), commit, repo.keys, commit)


def _failed_file(error: BaseException) -> str | None:
    """The repo file a failed hub request asked for (``.../resolve/<commit>/<file>``), if known."""
    from urllib.parse import unquote

    response = getattr(error, "response", None)
    url = str(getattr(response, "url", "") or "")
    if "/resolve/" not in url:
        return None
    return unquote(url.split("/resolve/", 1)[1].split("?", 1)[0].split("/", 1)[-1])


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


# --------------------------------------------------------------------------- datasets


def dataset_repo(source: BenchmarkSource) -> HubRepo:
    return HubRepo(repo_id=source.repo_id or "", repo_type="dataset", revision=source.revision or DEFAULT_REVISION,
                   keys="benchmark", source_key="repo_id")


def as_benchmark_error(error: HubFetchError) -> BenchmarkUnavailableError:
    return BenchmarkUnavailableError(str(error))


def dataset_revision(source: BenchmarkSource) -> str | None:
    """The commit a hub source is read at (None for a local snapshot): a pinned commit as is;
    a branch or tag resolved once per process, online from the hub, offline from the cache."""
    if source.path is not None:
        return None
    repo = dataset_repo(source)
    if repo.pinned:
        return repo.revision
    try:
        return resolve_commit(repo)
    except HubFetchError as error:
        raise as_benchmark_error(error) from error


def dataset_snapshot(source: BenchmarkSource, patterns: Sequence[str] = ()) -> HubSnapshot:
    """The snapshot of a hub dataset with its README and the files matching ``patterns`` (the
    ``data_files`` patterns of the configs to read), at the commit :func:`dataset_revision` names."""
    try:
        return fetch_snapshot(dataset_repo(source), ["README.md", *patterns])
    except HubFetchError as error:
        raise as_benchmark_error(error) from error
