"""Benchmarks (not tests): each prints ratios measured in one run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit_json(result: dict[str, Any], out: Path | None) -> None:
    """Print a benchmark's machine-readable result as one JSON line, and write it to ``out`` if given."""
    line = json.dumps(result, sort_keys=True)
    print(line)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(line + "\n")
