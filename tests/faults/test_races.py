"""Two runs on one folder: started at the same instant only one owns it, and a refused command
(another evaluation, or a shard of the same one) changes nothing there, Hydra's record and log included."""
from __future__ import annotations

import json

import pytest
import yaml

from tests.faults.common import cli, snapshot

pytestmark = pytest.mark.slow


def test_two_different_runs_racing_for_one_folder(tmp_path, reference, warm_cache):
    reference_run, _ = reference
    out = tmp_path / "run"
    racers = {k: cli(out, warm_cache, f"retrieval.k={k}", wait=False) for k in (100, 200)}
    outputs = {k: p.communicate(timeout=300)[0] for k, p in racers.items()}
    codes = {k: p.returncode for k, p in racers.items()}
    assert sorted(codes.values()) == [0, 1], outputs
    winner = next(k for k, code in codes.items() if code == 0)
    loser = next(k for k in codes if k != winner)
    assert "FileExistsError" in outputs[loser] and str(out) in outputs[loser]
    # The folder is the winner's, whole: its record, its Hydra overrides, its log, its results.
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert f"retrieval.k={winner}" in yaml.safe_load((out / ".hydra" / "overrides.yaml").read_text())
    log = (out / "evaluate.log").read_text()
    assert "FileExistsError" not in log and "encoder passes" in log
    if winner == 100:
        assert (out / "results.csv").read_bytes() == (reference_run / "results.csv").read_bytes()

    before = snapshot(out)
    for extra in (f"retrieval.k={winner} shard=0/2",):  # the loser was refused above, while the winner ran
        code, output = cli(out, warm_cache, *extra.split())
        assert code == 1 and "already holds a different" in output, output[-2000:]
    assert snapshot(out) == before
