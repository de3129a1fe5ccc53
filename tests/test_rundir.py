import json

import pytest

from nanobeir_ext import rundir


def test_same_run_may_reuse_its_folder(tmp_path):
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation")
    rundir.mark_complete(tmp_path)
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation")
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "running"


def test_different_run_is_refused_unless_overwrite(tmp_path):
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation")
    with pytest.raises(FileExistsError, match="different evaluation"):
        rundir.claim(tmp_path, {"a": 2}, kind="evaluation")
    rundir.claim(tmp_path, {"a": 2}, kind="evaluation", overwrite=True)


def test_unknown_outputs_are_refused(tmp_path):
    (tmp_path / "results.csv").write_text("x\n")
    with pytest.raises(FileExistsError, match="unknown run"):
        rundir.claim(tmp_path, {"a": 1}, kind="evaluation")
