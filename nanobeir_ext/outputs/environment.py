"""What a run ran on: package versions, hardware, git commit (written to environment.json)."""
from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "datasets", "huggingface-hub", "pandas", "numpy",
            "pytrec-eval-terrier", "hydra-core", "matplotlib", "nanobeir-ext")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description(device: str) -> dict[str, Any]:
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        return {"device": device, "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                "cuda": torch.version.cuda, "cpu": cpu_model()}
    return {"device": device, "name": cpu_model(), "threads": torch.get_num_threads()}


def git_commit(repo_dir: Path) -> dict[str, Any]:
    """The harness's own commit and whether the checkout had local changes (None outside git)."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True, text=True,
                                  check=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def collect_environment(device: str, repo_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "hardware": device_description(device),
        "git": git_commit(repo_dir),
        **extra,
    }
