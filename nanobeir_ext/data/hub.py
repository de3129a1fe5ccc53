"""The Hugging Face hub side of a benchmark source: commit hashes, revision resolution, the offline error."""
from __future__ import annotations

import contextlib
import functools
import re
from pathlib import Path

from nanobeir_ext.data.records import BenchmarkSource, BenchmarkUnavailableError

# A full git commit hash, as the hub names a pinned revision and a cache snapshot folder.
COMMIT_HASH = re.compile(r"[0-9a-f]{40}")


def is_commit_hash(text: str | None) -> bool:
    return text is not None and COMMIT_HASH.fullmatch(text) is not None


def hub_unavailable(source: BenchmarkSource, cause: BaseException) -> BenchmarkUnavailableError:
    revision = source.revision or "main"
    return BenchmarkUnavailableError(
        f"cannot load dataset {source.repo_id} at revision {revision}: the Hugging Face hub is unreachable "
        f"or HF_HUB_OFFLINE is set, and the dataset is not in the local cache ({type(cause).__name__}: {cause}). "
        f"Download a snapshot on a machine with hub access, e.g. `hf download {source.repo_id} --repo-type dataset "
        f"--revision {revision} --local-dir /local/snapshot`, copy it here and pass benchmark.path=/local/snapshot"
    )


def dataset_revision(source: BenchmarkSource) -> str | None:
    """The commit a hub source resolves to (None for a local snapshot).

    A pinned 40-hex revision is returned as is; a branch or tag is resolved with the hub
    API, or, when the hub cannot be reached, from the local hub cache.
    """
    if source.path is not None:
        return None
    if is_commit_hash(source.revision):
        return source.revision
    return _resolve_revision(source.repo_id, source.revision)


def _network_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning "could not reach the hub" (httpx's are not ConnectionErrors)."""
    errors: list[type[BaseException]] = [ConnectionError]
    with contextlib.suppress(ImportError):
        import httpx

        errors.append(httpx.TransportError)
    return tuple(errors)


@functools.lru_cache(maxsize=16)
def _resolve_revision(repo_id: str, revision: str | None) -> str:
    from huggingface_hub import HfApi, try_to_load_from_cache

    try:
        return HfApi().dataset_info(repo_id, revision=revision).sha
    except _network_errors() as err:
        cached = try_to_load_from_cache(repo_id, "README.md", revision=revision or "main", repo_type="dataset")
        if isinstance(cached, str):
            return Path(cached).parent.name  # .../snapshots/<commit>/README.md
        raise hub_unavailable(BenchmarkSource(repo_id=repo_id, revision=revision), err) from err
