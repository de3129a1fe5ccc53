"""A minimal Hugging Face Hub API server over the standard library, for loopback tests.

It speaks the routes the unpatched ``huggingface_hub`` and ``datasets`` clients call when
``HF_ENDPOINT`` points at it (see ../shared/notes/local-hub.md, "What the clients call"):

- ``GET /api/{models|datasets}/{org}/{name}[/revision/{rev}]``: repo info with ``sha`` and ``siblings``;
- ``GET /api/.../tree/{rev}[/{path}]?recursive=&expand=``: the file and folder listing;
- ``POST /api/.../paths-info/{rev}``: entries for named paths (``HfFileSystem.info``);
- ``HEAD``/``GET /{org}/{name}/resolve/{rev}/{file}`` and ``/datasets/{org}/{name}/resolve/...``:
  the file, with ``X-Repo-Commit``, ``ETag`` and ``Content-Length`` (``Range`` answered with 206).

Errors carry ``X-Error-Code`` as the hub's do, so the clients raise their typed exceptions:
``RepoNotFound`` (401), ``RevisionNotFound`` (404), ``EntryNotFound`` (404).

Repos live on disk under ``ROOT/{models|datasets}/{org}/{name}/`` (see :func:`publish`):
``commits/{sha}/`` holds the files of each published 40-hex commit, ``refs.json`` maps branch
names to commits, and an optional ``faults.json`` (``{path: "missing" | "truncate"}``) breaks
single files: ``missing`` lists the file but answers 404 ``EntryNotFound`` for it, ``truncate``
announces the full length and closes the connection halfway through the body (a download
interrupted mid-file, which leaves a half-downloaded snapshot in the client's cache).

Run as ``python -m tests.hub.server --root DIR --port 0 [--log FILE]``: prints the bound port
on the first stdout line, then serves until killed. ``--log`` appends one JSON line per request.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

REPO_TYPES = {"models": "model", "datasets": "dataset"}
COMMIT = re.compile(r"[0-9a-f]{40}")
LFS_SUFFIXES = (".safetensors", ".parquet", ".bin", ".model")  # stored through LFS on the real hub
FIXED_DATE = "2025-01-01T00:00:00.000Z"
FAULTS = ("missing", "truncate")


# --------------------------------------------------------------------------- publishing


def repo_dir(root: Path, repo_type: str, repo_id: str) -> Path:
    """``repo_type`` is ``model`` or ``dataset``."""
    plural = {v: k for k, v in REPO_TYPES.items()}[repo_type]
    return Path(root) / plural / repo_id


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)  # replicas are never modified in place: share their bytes
    except OSError:
        shutil.copy2(source, destination)


def publish(
    root: Path, repo_type: str, repo_id: str, files: Path, commits: Iterable[str],
    branches: Mapping[str, str] | None = None, faults: Mapping[str, str] | None = None,
) -> Path:
    """Serve the folder ``files`` as ``repo_id`` under each 40-hex commit of ``commits``.

    ``branches`` maps names such as ``main`` to one of the commits (default: ``main`` -> the
    first commit). Publishing again adds commits and branches (a later one wins). Returns the repo folder.
    """
    commits = list(commits)
    bad = [c for c in commits if not COMMIT.fullmatch(c)]
    if not commits or bad:
        raise ValueError(f"publish needs 40-hex commit ids, got {commits}")
    target = repo_dir(root, repo_type, repo_id)
    for commit in commits:
        destination = target / "commits" / commit
        if destination.exists():
            shutil.rmtree(destination)
        shutil.copytree(files, destination, ignore=shutil.ignore_patterns(".git"), copy_function=_link_or_copy)
    refs_file = target / "refs.json"
    refs = json.loads(refs_file.read_text()) if refs_file.is_file() else {}
    refs.update(branches if branches is not None else {"main": commits[0]})
    unknown = {name: sha for name, sha in refs.items() if not (target / "commits" / sha).is_dir()}
    if unknown:
        raise ValueError(f"branches point at unpublished commits: {unknown}")
    refs_file.write_text(json.dumps(refs, indent=1, sort_keys=True))
    if faults:
        invalid = {path: kind for path, kind in faults.items() if kind not in FAULTS}
        if invalid:
            raise ValueError(f"unknown faults {invalid}; valid kinds: {FAULTS}")
        (target / "faults.json").write_text(json.dumps(dict(faults), indent=1, sort_keys=True))
    return target


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released): connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- serving


class HubError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, root: Path, plural: str, repo_id: str) -> None:
        self.repo_type = REPO_TYPES[plural]
        self.repo_id = repo_id
        self.dir = Path(root) / plural / repo_id
        if not (self.dir / "refs.json").is_file():
            raise HubError(401, "RepoNotFound", f"Repository not found: {repo_id}")
        self.refs: dict[str, str] = json.loads((self.dir / "refs.json").read_text())
        faults = self.dir / "faults.json"
        self.faults: dict[str, str] = json.loads(faults.read_text()) if faults.is_file() else {}

    def resolve(self, revision: str) -> tuple[str, Path]:
        commit = self.refs.get(revision, revision)
        folder = self.dir / "commits" / commit
        if not COMMIT.fullmatch(commit) or not folder.is_dir():
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit, folder

    @staticmethod
    def files(folder: Path) -> list[str]:
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

    def entry(self, folder: Path, path: str, commit: str, expand: bool) -> dict[str, Any]:
        target = folder / path
        if target.is_dir():
            entry: dict[str, Any] = {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}
        else:
            data = target.read_bytes()
            entry = {"type": "file", "oid": _git_blob_sha1(data), "size": len(data), "path": path}
            if path.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        if expand:
            entry["lastCommit"] = {"id": commit, "title": "replica", "date": FIXED_DATE}
        return entry


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients' connection pools expect
    server: "HubServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _log(self, status: int) -> None:
        if self.server.log_path is not None:
            with self.server.log_lock, open(self.server.log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"method": self.command, "path": self.path, "status": status}) + "\n")

    def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None, *, head: bool = False) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))  # for HEAD too: the length a GET would send
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self._log(status)

    def _json(self, value: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(200, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, error: HubError, *, head: bool = False) -> None:
        body = json.dumps({"error": error.message}).encode()
        headers = {"Content-Type": "application/json", "X-Error-Code": error.code, "X-Error-Message": error.message}
        self._send(error.status, body, headers, head=head)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._dispatch(head=False, body=self.rfile.read(length))

    def _dispatch(self, *, head: bool, body: bytes = b"") -> None:
        url = urlsplit(self.path)
        segments = url.path.split("/")[1:]  # still quoted: a quoted "/" stays inside its segment
        query = parse_qs(url.query)
        try:
            if segments[:1] == ["api"] and len(segments) == 4 and segments[1] in REPO_TYPES:
                self._api(segments[1], [*segments[2:], "revision", "main"], query, body)  # info of the default branch
            elif segments[:1] == ["api"] and len(segments) >= 6 and segments[1] in REPO_TYPES:
                self._api(segments[1], segments[2:], query, body)
            elif segments[:1] == ["datasets"] and len(segments) >= 5 and segments[3] == "resolve":
                self._resolve("datasets", segments[1:], head)
            elif len(segments) >= 4 and segments[2] == "resolve":
                self._resolve("models", segments, head)
            else:
                raise HubError(404, "NotFound", f"no route for {url.path}")
        except HubError as error:
            self._error(error, head=head)

    def _api(self, plural: str, rest: list[str], query: dict[str, list[str]], body: bytes) -> None:
        repo = Repo(self.server.root, plural, f"{unquote(rest[0])}/{unquote(rest[1])}")
        action, revision = rest[2], unquote(rest[3])
        commit, folder = repo.resolve(revision)
        expand = query.get("expand", ["false"])[0].lower() == "true"
        if action == "revision":
            files = repo.files(folder)
            info = {"_id": commit, "id": repo.repo_id, "sha": commit, "lastModified": FIXED_DATE, "createdAt": FIXED_DATE,
                    "private": False, "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
                    "siblings": [{"rfilename": name} for name in files]}
            if repo.repo_type == "model":
                info["modelId"] = repo.repo_id
            self._json(info)
        elif action == "tree":
            path = unquote("/".join(rest[4:])).strip("/")
            base = folder / path
            if not base.is_dir():
                raise HubError(404, "EntryNotFound", f"{path} does not exist on {revision}")
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            children = base.rglob("*") if recursive else base.iterdir()
            paths = sorted(p.relative_to(folder).as_posix() for p in children)
            self._json([repo.entry(folder, p, commit, expand) for p in paths])
        elif action == "paths-info":
            form = parse_qs(body.decode()) if body else {}
            if self.headers.get("Content-Type", "").startswith("application/json"):
                form = {k: v if isinstance(v, list) else [str(v)] for k, v in json.loads(body).items()}
            expand = form.get("expand", ["false"])[0].lower() == "true"
            wanted = [p.strip("/") for p in form.get("paths", [])]
            self._json([repo.entry(folder, p, commit, expand) for p in wanted if (folder / p).exists()])
        else:
            raise HubError(404, "NotFound", f"unknown api action {action}")

    def _resolve(self, plural: str, rest: list[str], head: bool) -> None:
        repo = Repo(self.server.root, plural, f"{unquote(rest[0])}/{unquote(rest[1])}")
        revision, filename = unquote(rest[3]), unquote("/".join(rest[4:]))
        commit, folder = repo.resolve(revision)
        target = folder / filename
        fault = repo.faults.get(filename)
        if not filename or not target.is_file() or fault == "missing":
            raise HubError(404, "EntryNotFound", f"{filename} does not exist on {revision}")
        data = target.read_bytes()
        is_lfs = filename.endswith(LFS_SUFFIXES)
        etag = hashlib.sha256(data).hexdigest() if is_lfs else _git_blob_sha1(data)
        headers = {"X-Repo-Commit": commit, "ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if is_lfs:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))})
        status, body = 200, data
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if match and data:
            start = int(match[1]) if match[1] else max(len(data) - int(match[2] or 0), 0)
            end = int(match[2]) if match[1] and match[2] else len(data) - 1
            end = min(end, len(data) - 1)
            status, body = 206, data[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        if fault == "truncate" and not head:
            # Announce the whole file, send half of it, then drop the connection.
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            self._log(status)
            return
        self._send(status, body, headers, head=head)


class HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, port: int = 0, log_path: Path | None = None) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.root = Path(root)
        self.log_path = log_path
        self.log_lock = threading.Lock()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="folder of published repos (see publish())")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--log", type=Path, default=None, help="append one JSON line per request here")
    args = parser.parse_args(argv)
    server = HubServer(args.root, args.port, args.log)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
