"""Loopback hub servers in subprocesses, and the environment their clients need.

- :func:`hub_server`: the project's minimal server (``python -m tests.hub.server``) on a free port;
- :func:`olah_server`: olah 0.5.4 in offline mirror mode from ``.venv-olah`` (scripts/setup_olah.sh),
  serving repos laid out by :func:`git_mirror` as local git repositories;
- :func:`client_env`: the environment of a client subprocess pointed at a server. The hub clients
  read ``HF_ENDPOINT`` and the cache locations when they are imported, so clients always run in a
  fresh subprocess with these set from the start (see ../shared/notes/local-hub.md).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from tests.helpers import REPO_DIR
from tests.hub.server import closed_port

OLAH_VENV = Path(os.environ.get("OLAH_VENV", REPO_DIR / ".venv-olah"))
OLAH_CLI = OLAH_VENV / "bin" / "olah-cli"
# Variables that would send a client to the real hub, authenticate it or keep it offline.
_CLEARED = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT")
# A fixed identity and date make a mirror's commit id reproducible.
_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "replica", "GIT_AUTHOR_EMAIL": "replica@localhost", "GIT_AUTHOR_DATE": "2025-01-01T00:00:00+0000",
    "GIT_COMMITTER_NAME": "replica", "GIT_COMMITTER_EMAIL": "replica@localhost", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00+0000",
}


@dataclass(frozen=True)
class RunningServer:
    endpoint: str  # http://127.0.0.1:PORT
    log: Path | None  # one JSON line per request (minimal server only)

    def requests(self) -> list[dict]:
        if self.log is None or not self.log.is_file():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


def client_env(endpoint: str, home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a hub client subprocess: ``endpoint`` as ``HF_ENDPOINT``, every cache under
    ``home``, no token, not offline, no telemetry, the repository importable."""
    env = {key: value for key, value in os.environ.items() if key not in _CLEARED}
    env.update({
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_DATASETS_CACHE": str(home / "datasets"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_ETAG_TIMEOUT": "5",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO_DIR),
    })
    env.update(extra or {})
    return env


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def hub_server(root: Path, log: Path | None = None, timeout: float = 30.0) -> Iterator[RunningServer]:
    """The minimal server over ``root`` (see tests/hub/server.py) until the block ends."""
    command = [sys.executable, "-m", "tests.hub.server", "--root", str(root), "--port", "0"]
    if log is not None:
        command += ["--log", str(log)]
    process = subprocess.Popen(command, cwd=REPO_DIR, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        line = process.stdout.readline()  # the server prints its port first
        if not line.strip().isdigit() or time.monotonic() > deadline:
            raise RuntimeError(f"hub server did not start (exit code {process.poll()}, first line {line!r})")
        yield RunningServer(endpoint=f"http://127.0.0.1:{int(line)}", log=log)
    finally:
        _stop(process)


# --------------------------------------------------------------------------- olah


def git_mirror(mirrors: Path, repo_type: str, repo_id: str, files: Path) -> str:
    """Lay ``files`` out as olah's offline mirror of ``repo_id``: a git repository at
    ``mirrors/{models|datasets}/{repo_id}`` with one commit (fixed author and date). Returns the commit id."""
    target = Path(mirrors) / f"{repo_type}s" / repo_id
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(files, target)
    env = {**os.environ, **_GIT_IDENTITY}
    for command in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "replica"]):
        subprocess.run(command, cwd=target, env=env, check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=target, check=True, capture_output=True, text=True).stdout.strip()


def olah_config(mirrors: Path, repos: Path, port: int) -> str:
    netloc = f"127.0.0.1:{port}"
    return (
        f'[basic]\nhost = "127.0.0.1"\nport = {port}\nrepos-path = "{repos}"\nmirror-scheme = "http"\n'
        f'mirror-netloc = "{netloc}"\nmirror-lfs-netloc = "{netloc}"\nmirrors-path = ["{mirrors}"]\n\n'
        "[accessibility]\noffline = true\n"
    )


@contextlib.contextmanager
def olah_server(mirrors: Path, workdir: Path, probe_repo: str, timeout: float = 60.0) -> Iterator[RunningServer]:
    """olah in offline mode over the git mirrors in ``mirrors``; ready once ``probe_repo``'s
    main revision answers (the no-revision route answers 401 in offline mode)."""
    if not OLAH_CLI.is_file():
        raise FileNotFoundError(f"{OLAH_CLI} is missing: run `bash scripts/setup_olah.sh` (or `bash scripts/setup.sh --oracle`)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = closed_port()
    config = workdir / "olah.toml"
    config.write_text(olah_config(mirrors, workdir / "repos", port))
    output = (workdir / "olah.out").open("w")
    process = subprocess.Popen([str(OLAH_CLI), "-c", str(config), "--log-path", str(workdir / "logs")],
                               cwd=workdir, stdout=output, stderr=subprocess.STDOUT, env=client_env("http://127.0.0.1:1", workdir / "hf"))
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"olah exited with {process.returncode}: {(workdir / 'olah.out').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{endpoint}/api/models/{probe_repo}/revision/main", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"olah not ready after {timeout} s: {(workdir / 'olah.out').read_text()[-2000:]}")
            time.sleep(0.2)
        yield RunningServer(endpoint=endpoint, log=None)
    finally:
        _stop(process)
        output.close()
