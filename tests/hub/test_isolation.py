"""The network namespace .ci/run puts the test suite in keeps loopback servers working and nothing else."""
from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO_DIR
from tests.hub.isolation import ISOLATE
from tests.hub.processes import client_env
from tests.hub.replicas import LFM2_REPO


def test_isolated_namespace_has_loopback_only() -> None:
    result = subprocess.run([*ISOLATE, sys.executable, "-m", "tests.hub.isolation"], cwd=REPO_DIR,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "loopback answers: True; outside reachable: nothing" in result.stdout


def test_hub_client_in_isolated_namespace_reaches_a_loopback_hub(tmp_path) -> None:
    """The minimal hub and a hub client both inside the namespace: the client gets its typed answer."""
    script = (
        "import subprocess, sys, json\n"
        "server = subprocess.Popen([sys.executable, '-m', 'tests.hub.server', '--root', sys.argv[1], '--port', '0'], stdout=subprocess.PIPE, text=True)\n"
        "port = int(server.stdout.readline())\n"
        "code = 'import huggingface_hub as h, sys\\ntry:\\n    h.model_info(sys.argv[1])\\nexcept h.errors.RepositoryNotFoundError:\\n    print(\"typed\")'\n"
        "import os\n"
        "env = {**os.environ, 'HF_ENDPOINT': f'http://127.0.0.1:{port}'}\n"
        "out = subprocess.run([sys.executable, '-c', code, sys.argv[2]], env=env, capture_output=True, text=True)\n"
        "server.terminate()\n"
        "print(out.stdout.strip() or out.stderr[-2000:])\n"
    )
    (tmp_path / "root").mkdir()
    env = client_env("http://127.0.0.1:1", tmp_path / "hf")
    result = subprocess.run([*ISOLATE, sys.executable, "-c", script, str(tmp_path / "root"), LFM2_REPO], cwd=REPO_DIR,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "typed", result.stdout + result.stderr
