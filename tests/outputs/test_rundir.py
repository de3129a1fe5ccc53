import json

import pytest

from nanobeir_ext.outputs import rundir


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


def test_overwrite_removes_the_previous_runs_outputs(tmp_path):
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation")
    (tmp_path / "runs" / "old-model").mkdir(parents=True)
    (tmp_path / "report.md").write_text("old")
    (tmp_path / "notes.txt").write_text("the user's own file")
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation", outputs=["runs", "report.md"])
    assert (tmp_path / "runs" / "old-model").exists()  # same run: resumes, keeps its outputs
    rundir.claim(tmp_path, {"a": 2}, kind="evaluation", overwrite=True, outputs=["runs", "report.md"])
    assert not (tmp_path / "runs").exists() and not (tmp_path / "report.md").exists()
    assert (tmp_path / "notes.txt").read_text() == "the user's own file"
