"""Output-folder guard: a folder that holds a different run is never overwritten silently."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

from nanobeir_ext.atomic import write_json

MANIFEST = "run.json"


def fingerprint(settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def claim(out_dir: Path, settings: Mapping[str, Any], *, kind: str, overwrite: bool = False,
          outputs: Sequence[str] = ()) -> None:
    """Record which run owns ``out_dir``; refuse a folder owned by a different run unless ``overwrite``,
    in which case that run's ``outputs`` (files or folders) are removed first so nothing of it lingers."""
    out_dir = Path(out_dir)
    manifest = out_dir / MANIFEST
    mine = fingerprint(settings)
    different = False
    if manifest.exists():
        previous = json.loads(manifest.read_text())
        different = previous.get("fingerprint") != mine
        if different and not overwrite:
            raise FileExistsError(
                f"{out_dir} already holds a different {previous.get('kind', 'run')} "
                f"(fingerprint {str(previous.get('fingerprint'))[:12]} vs {mine[:12]}); choose another "
                "hydra.run.dir or pass overwrite=true")
    elif out_dir.exists() and any(p.name in {"results.csv", "latency.csv", "report.md"} for p in out_dir.iterdir()):
        different = True
        if not overwrite:
            raise FileExistsError(f"{out_dir} holds outputs of an unknown run; choose another hydra.run.dir or pass overwrite=true")
    if different:
        for name in outputs:
            target = out_dir / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    write_json(manifest, {"kind": kind, "fingerprint": mine, "status": "running"})


def mark_complete(out_dir: Path) -> None:
    manifest = Path(out_dir) / MANIFEST
    data = json.loads(manifest.read_text())
    data["status"] = "complete"
    write_json(manifest, data)
