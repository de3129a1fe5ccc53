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


def status_bytes(field: str) -> int:
    """A ``/proc/self/status`` field (VmRSS, VmHWM) in bytes (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak_rss() -> None:
    """Reset the peak-RSS mark VmHWM to the current RSS (Linux ``clear_refs`` 5)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
