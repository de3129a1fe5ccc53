"""The store's disk forecast: projected from what was written, per role, warned once, before the disk fills."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from nanobeir_ext.embeddings import space
from nanobeir_ext.embeddings.space import SpaceForecast
from runners import evaluate
from tests.helpers import compose


def forecast(free: int, remaining: dict) -> SpaceForecast:
    return SpaceForecast(Path("/cache/store"), remaining_chars=dict(remaining), free_bytes=lambda root: free)


def test_projection_uses_each_roles_own_bytes_per_character():
    f = forecast(free=10**12, remaining={"query": 1_000, "document": 100_000})
    assert f.record("query", 500, 50_000) is None  # 100 bytes per query character
    assert f.needed_bytes() == 100 * 500  # documents not seen yet: no guess for them
    assert f.record("document", 10_000, 400_000) is None  # 40 bytes per document character
    assert f.needed_bytes() == 100 * 500 + 40 * 90_000


def test_warns_once_when_the_projection_exceeds_the_free_disk():
    f = forecast(free=2 * 10**9, remaining={"document": 100_001_000})
    first = f.record("document", 1_000, 40_000)  # 40 bytes per character: 4.0 GB still to write
    assert first is not None and "about 4.0 GB more" in first and "only 2.0 GB are free" in first
    assert "/cache/store" in first and "runtime.cache_dir" in first and "40 bytes per character of documents" in first
    assert f.record("document", 1_000, 40_000) is None  # once per run
    roomy = forecast(free=10**9, remaining={"document": 100_000})
    assert roomy.record("document", 1_000, 40_000) is None
    done = forecast(free=0, remaining={"document": 1_000})
    assert done.record("document", 1_000, 40_000) is None  # nothing left to write: no warning


def test_a_run_short_of_disk_warns_after_its_first_sets_and_still_finishes(tmp_path, shared_cache, monkeypatch, caplog):
    cache = tmp_path / "cache"
    cache.mkdir()
    (shared_cache / "fixture-models").mkdir(exist_ok=True)  # built once per session, whichever test is first
    os.symlink(shared_cache / "fixture-models", cache / "fixture-models")
    free_seen: list[Path] = []

    def nearly_full(root: Path):
        free_seen.append(Path(root))
        return type("Usage", (), {"free": 1})()

    monkeypatch.setattr(space.shutil, "disk_usage", nearly_full)
    overrides = ["experiment=smoke", "~models.fixture_modernbert", "~models.fixture_dense", "~models.fixture_bm25",
                 "benchmark.subsets=[NanoSciFact]", "benchmark.languages=[en,de]", "runtime.progress=false",
                 "report.baseline_model=null",
                 f"runtime.cache_dir={cache}"]
    with caplog.at_level(logging.WARNING, logger="nanobeir_ext.evaluation.pipeline"):
        evaluate.run(compose("evaluate", overrides), out_dir=tmp_path / "run")
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("DISK:")]
    assert len(warnings) == 1 and str(cache / "store") in warnings[0]
    assert free_seen and all(root == cache / "store" for root in free_seen)
    assert (tmp_path / "run" / "results.csv").is_file()  # a forecast warns, it does not stop the run
