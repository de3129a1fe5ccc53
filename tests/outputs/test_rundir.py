"""The output-folder guard: who owns a folder, what is refused, what is replaced, and races."""
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from nanobeir_ext import atomic
from nanobeir_ext.outputs import rundir
from tests.helpers import REPO_DIR

OUTPUTS = ["config.yaml", "environment.json", "results.csv", "report.md", "runs", "compare-*", ".hydra", "evaluate.log"]


def record(folder):
    return json.loads((folder / "run.json").read_text())


def finished_run(folder, settings=None, kind="evaluation"):
    rundir.claim(folder, settings or {"a": 1}, kind=kind, outputs=OUTPUTS)
    (folder / "results.csv").write_text("old results\n")
    (folder / "config.yaml").write_text("old: config\n")
    rundir.mark_complete(folder)


def test_same_run_may_reuse_its_folder(tmp_path):
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation")
    rundir.mark_complete(tmp_path)
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation")
    assert record(tmp_path)["status"] == "running" and record(tmp_path)["pid"] == os.getpid()


def test_different_finished_run_is_refused_naming_what_is_there_unless_overwrite(tmp_path):
    finished_run(tmp_path)
    with pytest.raises(FileExistsError, match=r"different evaluation: the complete evaluation, started .* with "
                                              r"results.csv"):
        rundir.claim(tmp_path, {"a": 2}, kind="evaluation", outputs=OUTPUTS)
    assert (tmp_path / "results.csv").read_text() == "old results\n" and record(tmp_path)["status"] == "complete"
    rundir.claim(tmp_path, {"a": 2}, kind="evaluation", overwrite=True, outputs=OUTPUTS)
    assert not (tmp_path / "results.csv").exists()


def test_a_shard_run_on_a_finished_run_is_refused(tmp_path):
    finished_run(tmp_path)  # same settings: shard= is not part of the fingerprint, the kind tells them apart
    with pytest.raises(FileExistsError, match="this command is a shard 0/2"):
        rundir.claim(tmp_path, {"a": 1}, kind="shard 0/2", outputs=OUTPUTS)
    assert record(tmp_path)["kind"] == "evaluation" and (tmp_path / "config.yaml").read_text() == "old: config\n"


def test_a_failed_run_without_results_is_replaced_with_a_warning(tmp_path, caplog):
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation", outputs=OUTPUTS)
    (tmp_path / "config.yaml").write_text("the typo\n")
    rundir.mark_failed(tmp_path, ValueError("unknown metric"))
    assert record(tmp_path)["status"] == "failed" and "unknown metric" in record(tmp_path)["error"]
    rundir.claim(tmp_path, {"a": 2}, kind="evaluation", outputs=OUTPUTS)
    assert record(tmp_path)["fingerprint"] == rundir.fingerprint({"a": 2})
    assert not (tmp_path / "config.yaml").exists()
    assert any("failed evaluation" in r.getMessage() and "wrote no results" in r.getMessage() for r in caplog.records)


def test_a_live_owner_is_never_displaced_and_a_dead_one_is_resumed(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        rundir.claim(tmp_path, {"a": 1}, kind="evaluation")
        data = record(tmp_path) | {"pid": sleeper.pid}
        (tmp_path / "run.json").write_text(json.dumps(data))
        for settings in ({"a": 1}, {"a": 2}):  # neither the same run nor another one
            with pytest.raises(FileExistsError, match=f"in use by a running evaluation.*pid {sleeper.pid}"):
                rundir.claim(tmp_path, settings, kind="evaluation")
    finally:
        sleeper.kill()
        sleeper.wait()
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation")  # its process is gone: the killed run resumes
    assert record(tmp_path)["pid"] == os.getpid()


@pytest.mark.parametrize("name", ["results.csv", "config.yaml", "environment.json"])
def test_files_the_harness_did_not_record_are_refused(tmp_path, name):
    (tmp_path / name).write_text("someone else's\n")
    with pytest.raises(FileExistsError, match=f"holds {name} but no run.json"):
        rundir.claim(tmp_path, {"a": 1}, kind="evaluation", outputs=OUTPUTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation", outputs=OUTPUTS, overwrite=True)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("content", ["", "{\"kind\": \"evalu", "[]", "\xff\xfe"])
def test_an_empty_or_damaged_run_json_is_named_and_overwrite_gets_past_it(tmp_path, content):
    (tmp_path / "run.json").write_bytes(content.encode("latin-1"))
    (tmp_path / "results.csv").write_text("whose?\n")
    with pytest.raises(FileExistsError, match=f"{tmp_path / 'run.json'} (is empty|is not valid JSON|has no run "
                                              "fingerprint|cannot be read).*overwrite=true"):
        rundir.claim(tmp_path, {"a": 1}, kind="evaluation", outputs=OUTPUTS)
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation", outputs=OUTPUTS, overwrite=True)
    assert record(tmp_path)["status"] == "running" and not (tmp_path / "results.csv").exists()


def test_overwrite_removes_everything_of_the_replaced_run(tmp_path):
    finished_run(tmp_path)
    (tmp_path / "runs" / "old-model").mkdir(parents=True)
    (tmp_path / "compare-smoke").mkdir()
    (tmp_path / "compare-smoke" / "report.md").write_text("old comparison")
    (tmp_path / ".hydra").mkdir()
    (tmp_path / "evaluate.log").write_text("old log")
    (tmp_path / "notes.txt").write_text("the user's own file")
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation", outputs=OUTPUTS)
    assert (tmp_path / "runs" / "old-model").exists()  # same run: resumes, keeps its outputs
    rundir.claim(tmp_path, {"a": 2}, kind="evaluation", overwrite=True, outputs=OUTPUTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "run.json"]


def test_temp_files_of_a_killed_writer_are_removed_by_the_next_owner(tmp_path):
    (tmp_path / "figures").mkdir()
    leftovers = [tmp_path / ".results.parquet.a1b2c3d4.tmp", tmp_path / "figures" / ".ndcg.png.x9y8z7w6.tmp"]
    for temp in leftovers:
        temp.write_bytes(b"half")
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation")
    assert not any(t.exists() for t in leftovers)


def test_marker_files_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: calls.append(f"replace {os.path.basename(b)}") or real_replace(a, b))
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation")
    rundir.mark_complete(tmp_path)
    assert calls.index("replace run.json") > 0 and calls[calls.index("replace run.json") - 1] == "fsync"
    assert calls[0] == "fsync"  # the first claim links a fsynced temp file into place


def test_marking_leaves_a_record_of_another_owner_alone(tmp_path):
    rundir.claim(tmp_path, {"a": 1}, kind="evaluation")
    (tmp_path / "run.json").write_text(json.dumps(record(tmp_path) | {"pid": 1, "host": "elsewhere"}))
    rundir.mark_complete(tmp_path)
    assert record(tmp_path)["status"] == "running"


def test_outputs_honour_the_umask(tmp_path):
    previous = os.umask(0o002)
    try:
        rundir.claim(tmp_path, {"a": 1}, kind="evaluation")
        atomic.write_text(tmp_path / "x.txt", "x")
    finally:
        os.umask(previous)
    assert (tmp_path / "run.json").stat().st_mode & 0o777 == 0o664
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o664


RACER = textwrap.dedent("""
    import contextlib, sys, time
    from nanobeir_ext.outputs import rundir
    folder, me, start, locking = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "lock"
    if not locking:  # a file system without flock: the exclusive creation alone must hold
        rundir._locked = lambda folder: contextlib.nullcontext()
    while time.time() < start:
        pass
    try:
        rundir.claim(folder, {"run": me}, kind="evaluation")
    except FileExistsError as error:
        print("refused", error)
    else:
        print("owner", flush=True)
        time.sleep(3)  # a run stays alive while it owns the folder (a dead owner that wrote nothing is replaceable)
""")


@pytest.mark.parametrize("locking", ["lock", "no-lock"])
def test_two_runs_started_at_the_same_instant_never_both_own_a_folder(tmp_path, locking):
    env = {**os.environ, "PYTHONPATH": str(REPO_DIR)}
    for trial in range(2):
        folder = tmp_path / f"trial{trial}"
        start = time.time() + 2.0
        racers = [subprocess.Popen([sys.executable, "-c", RACER, str(folder), str(i), str(start), locking], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
        results = [r.communicate(timeout=60) for r in racers]
        assert all(r.returncode == 0 for r in racers), [err for _, err in results]
        owners = [i for i, (out, _) in enumerate(results) if out.startswith("owner")]
        assert len(owners) == 1, results
        assert record(folder)["fingerprint"] == rundir.fingerprint({"run": str(owners[0])})
