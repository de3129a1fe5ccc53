"""Killed, shared, sharded and swept runs (issue 6), on a 3x3 slice of the fixture."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from runners import evaluate
from tests.helpers import REPO_DIR, compose

pytestmark = pytest.mark.slow

SLICE = ["experiment=smoke", "benchmark.subsets=[NanoSciFact,NanoNFCorpus]", "benchmark.languages=[en,de,ja]",
         "runtime.progress=false"]
# Work units of the slice: 3 encoders (two ColBERT, one dense) x 2 subsets x 3 languages x 2 roles
# in the embedding store, and BM25's 2 x 3 indexes (documents only) in the index cache.
STORED = 3 * 2 * 3 * 2
INDEXES = 2 * 3
UNITS = STORED + INDEXES


def cli(*args: str, cwd: Path = REPO_DIR) -> list[str]:
    return [sys.executable, "-m", "runners.evaluate", *args]


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_DIR), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, shared_cache):
    """An uninterrupted run of the slice (its own output folder, the session's shared model cache)."""
    out = tmp_path_factory.mktemp("reference")
    evaluate.run(compose("evaluate", SLICE + [f"runtime.cache_dir={shared_cache}"]), out_dir=out)
    return out


def store_entries(cache: Path) -> list[Path]:
    return sorted((cache / "store").rglob("*.safetensors"))


def index_manifests(cache: Path) -> list[Path]:
    return sorted((cache / "indexes").rglob("manifest.json"))


def test_killed_run_resumes_with_identical_results(reference_run, tmp_path, shared_cache):
    cache = tmp_path / "cache"
    cache.mkdir()
    # Reuse the built fixture models so the kill lands in encoding, not in model building.
    os.symlink(shared_cache / "fixture-models", cache / "fixture-models")
    args = SLICE + [f"runtime.cache_dir={cache}", f"hydra.run.dir={tmp_path / 'run'}"]
    process = subprocess.Popen(cli(*args), env=env(), cwd=REPO_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not store_entries(cache) and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run finished before it could be killed: " + process.stderr.read().decode()[-2000:]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(store_entries(cache))
    assert 1 <= finished < STORED  # some, not all, of the encoder passes were done
    resumed = evaluate.run(compose("evaluate", SLICE + [f"runtime.cache_dir={cache}"]), out_dir=tmp_path / "run")
    assert resumed["reused"] == finished and resumed["encoded"] + resumed["reused"] == UNITS
    assert (tmp_path / "run" / "results.csv").read_bytes() == (reference_run / "results.csv").read_bytes()


def test_two_processes_share_one_store(reference_run, tmp_path, shared_cache):
    cache = tmp_path / "cache"
    cache.mkdir()
    os.symlink(shared_cache / "fixture-models", cache / "fixture-models")
    procs = [subprocess.Popen(cli(*SLICE, f"runtime.cache_dir={cache}", f"hydra.run.dir={tmp_path / f'run{i}'}"),
                              env=env(), cwd=REPO_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()[-3000:]
    for i in range(2):
        assert (tmp_path / f"run{i}" / "results.csv").read_bytes() == (reference_run / "results.csv").read_bytes()
    assert len(store_entries(cache)) == STORED
    assert len(index_manifests(cache)) == INDEXES


def test_sharded_encoding_then_final_job_encodes_nothing(reference_run, tmp_path, shared_cache):
    cache = tmp_path / "cache"
    cache.mkdir()
    os.symlink(shared_cache / "fixture-models", cache / "fixture-models")
    base = SLICE + [f"runtime.cache_dir={cache}"]
    shards = [evaluate.run(compose("evaluate", base + [f"shard={i}/2"]), out_dir=tmp_path / f"shard{i}") for i in range(2)]
    # Round-robin over the units in model order: each shard encodes or indexes half (BM25's too).
    assert [s["encoded"] for s in shards] == [UNITS // 2, UNITS // 2] and not any(s["complete"] for s in shards)
    assert len(index_manifests(cache)) == INDEXES
    assert not (tmp_path / "shard0" / "results.csv").exists()
    final = evaluate.run(compose("evaluate", base), out_dir=tmp_path / "final")
    assert final["encoded"] == 0 and final["reused"] == UNITS
    assert (tmp_path / "final" / "results.csv").read_bytes() == (reference_run / "results.csv").read_bytes()


def test_joblib_multirun_sweep_combines_into_one_report(tmp_path, shared_cache):
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=local", "experiment=smoke", "benchmark.subsets=[NanoSciFact]",
            "benchmark.languages=[en,ja]", "runtime.progress=false", f"runtime.cache_dir={shared_cache}",
            f"hydra.sweep.dir={sweep}", "metrics=[ndcg@10,recall@10]", "retrieval.k=10,100"]
    done = subprocess.run(cli(*args), env=env(), cwd=REPO_DIR, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = sorted(p.parent for p in sweep.glob("*/results.csv"))
    assert len(jobs) == 2
    k10 = pd.read_csv(jobs[0] / "results.csv")
    k100 = pd.read_csv(jobs[1] / "results.csv")
    metric = lambda f, m: f[(f.metric == m) & (f.subset == "mean")]["value"].reset_index(drop=True)  # noqa: E731
    # Same rankings, shorter lists: metrics cut at 10 agree at k=10 and k=100 (k below a metric's
    # cutoff is refused, see tests/evaluation/test_plan.py).
    assert set(k10.metric) == set(k100.metric) == {"ndcg@10", "recall@10"}
    for name in ("ndcg@10", "recall@10"):
        pd.testing.assert_series_equal(metric(k10, name), metric(k100, name))
    assert (metric(k10, "ndcg@10") > 0).all()
    from runners import report

    # The sweep's parent folder expands to its jobs; each job's copy of a model is labelled by its setting.
    out = tmp_path / "combined"
    report.run(compose("report", [f"runs=[{sweep}]", f"out={out}"]))
    text = (out / "report.md").read_text()
    for k in (10, 100):
        assert f"## fixture-LFM2-tiny [retrieval.k={k}]: ndcg@10" in text
        assert f"## fixture-ModernBERT-tiny [retrieval.k={k}]: ndcg@10" in text
    combined = pd.read_csv(out / "results.csv")
    assert len(combined) == len(k10) + len(k100)


def test_submitit_slurm_launcher_composes():
    cfg = compose("evaluate", ["experiment=paper", "hydra/launcher=slurm", "runtime=gpu"])
    assert cfg.runtime.device == "cuda"
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from tests.helpers import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        full = hydra_compose(config_name="evaluate", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = full.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.gpus_per_node == 1


def test_unknown_experiment_lists_choices():
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match="smoke"):
        compose("evaluate", ["experiment=nope"])


def test_unknown_model_lists_choices():
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match="lfm2_colbert_350m"):
        compose("evaluate", ["experiment=smoke", "+model@models.extra=nope"])


def test_unknown_language_lists_choices(shared_cache, tmp_path):
    cfg = compose("evaluate", ["experiment=smoke", "benchmark.languages=[en,xx]", f"runtime.cache_dir={shared_cache}"])
    with pytest.raises(ValueError, match=r"unknown benchmark language \['xx'\]; valid choices"):
        evaluate.run(cfg, out_dir=tmp_path)


def test_matrix_language_outside_benchmark(shared_cache, tmp_path):
    cfg = compose("evaluate", ["experiment=smoke", "benchmark.languages=[en,de]", "matrix.doc_langs=[ja]",
                               f"runtime.cache_dir={shared_cache}"])
    with pytest.raises(ValueError, match=r"matrix.doc_langs language \['ja'\]; valid choices: \['en', 'de'\]"):
        evaluate.run(cfg, out_dir=tmp_path)


def test_unknown_subset_lists_choices(shared_cache, tmp_path):
    cfg = compose("evaluate", ["experiment=smoke", "benchmark.subsets=[NanoNope]", "benchmark.languages=[en]",
                               f"runtime.cache_dir={shared_cache}"])
    with pytest.raises(Exception, match="NanoSciFact"):
        evaluate.run(cfg, out_dir=tmp_path)


def test_uncached_hub_model_names_the_key_to_set(shared_cache, tmp_path):
    from models.checkpoint import ModelUnavailableError

    cfg = compose("evaluate", ["experiment=paper", "benchmark=fixture", "benchmark.subsets=[NanoSciFact]",
                               "benchmark.languages=[en]", f"runtime.cache_dir={shared_cache}", "runtime.progress=false"])
    with pytest.raises(ModelUnavailableError, match=r"HF_HUB_OFFLINE.*models\.lfm2_colbert_350m\.path"):
        evaluate.run(cfg, out_dir=tmp_path)
