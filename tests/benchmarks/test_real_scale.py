"""benchmarks.real_scale at a tiny scale, so it cannot rot; its snapshot has the real benchmark's shape."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import real_scale
from nanobeir_ext.data import BenchmarkSource, load_languages


def test_subset_counts_are_nanobeirs():
    documents, queries, judgments = (sum(counts[i] for counts in real_scale.SUBSETS.values()) for i in range(3))
    assert (len(real_scale.SUBSETS), documents, queries, judgments) == (13, 56_723, 649, 5_563)


def test_document_lengths_have_the_real_mean_and_a_clipped_tail():
    lengths = real_scale.document_lengths(200_000, np.random.default_rng(0))
    assert 1_300 < lengths.mean() < 1_420
    assert lengths.min() >= 1 and lengths.max() == real_scale.MAX_DOC_CHARS  # the tail reaches the clip


def test_snapshot_loads_with_the_harness_loader(tmp_path):
    subsets = ["NanoArguAna", "NanoNFCorpus"]
    counts = real_scale.write_snapshot(tmp_path, 0.01, ["en", "ja"], subsets)
    source = BenchmarkSource(layout="nanobeir-extended", repo_id="", revision=None, path=str(tmp_path),
                             cache_dir=str(tmp_path / "cache"), subsets=())
    loaded = load_languages(source, "NanoNFCorpus", ("en", "ja"))
    en, ja = loaded.languages["en"], loaded.languages["ja"]
    assert len(en.corpus.ids) == round(2953 * 0.01) and len(en.query_ids) == 50
    assert en.corpus.ids == ja.corpus.ids and en.corpus.texts != ja.corpus.texts  # parallel ids, distinct texts
    assert set(en.qrels) == set(en.query_ids)  # every query judged
    assert all(len(docs) <= 30 for docs in en.qrels.values())  # at most the corpus, no pair twice
    assert counts["documents"] == round(3635 * 0.01) + round(2953 * 0.01)


def test_stand_in_encoder_is_deterministic_and_follows_length():
    encoder = real_scale.StandInEncoder(document_tokens=10)
    first = encoder.encode(["a" * 8, "b" * 400], "document")
    again = encoder.encode(["a" * 8, "b" * 400], "document")
    assert [e.shape for e in first.embeddings] == [(2, 128), (10, 128)]  # 4 characters a token, clipped at 10
    assert all(bool((a == b).all()) for a, b in zip(first.embeddings, again.embeddings))
    assert [e.shape[0] for e in encoder.encode(["x", "y" * 500], "query").embeddings] == [32, 32]


def test_stage_clock_counts_self_time():
    import time

    clock = real_scale.StageClock()
    with clock.stage("outer"):
        time.sleep(0.05)
        with clock.stage("inner"):
            time.sleep(0.1)
    assert 0.04 < clock.stats["outer"].seconds < 0.09 and clock.stats["inner"].seconds >= 0.1
    assert clock.stats["outer"].peak_bytes > 0


@pytest.mark.slow
def test_the_benchmark_runs_end_to_end_at_a_tiny_scale(tmp_path):
    report = real_scale.main(["--scales", "0.002", "0.004", "--languages", "en", "de", "--subsets", "1",
                              "--work-dir", str(tmp_path / "work"),
                              "--out", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png")])
    assert list((tmp_path / "work").iterdir()) == []  # each scale's folder went once measured
    first, second = report["results"]
    assert first["cells"] == 4 and second["counts_per_language"]["documents"] == round(3635 * 0.004)
    for result in report["results"]:
        stages = result["stages"]
        assert stages["MaxSim"]["calls"] == 4 and stages["pytrec_eval"]["calls"] == 4
        assert {"load and validate", "store writes", "store reads", "outputs and report"} <= set(stages)
        assert 0 < result["maxsim_fraction_of_peak"] and result["peak_rss_gib"] > 0
    assert (tmp_path / "r.png").stat().st_size > 0 and (tmp_path / "r.json").is_file()
    assert set(report["summary"]["goals_at_largest_scale"]) >= {"peak_memory_at_most_4_gib"}
    rendered = real_scale.main(["--render", str(tmp_path / "r.json")])
    table = real_scale.markdown_table(rendered["results"], rendered["summary"])
    assert table.splitlines()[0] == "| stage | 1/500: s | 1/250: s |" and table.splitlines()[2].startswith("| MaxSim | ")
    assert f"{first['stages']['MaxSim']['seconds']:.1f}" in table.splitlines()[2]


def test_a_store_larger_than_the_free_disk_is_refused_before_any_work(tmp_path, monkeypatch):
    subsets = list(real_scale.SUBSETS)
    full = real_scale.expected_store_bytes(1.0, real_scale.LANGUAGES, subsets, 512)
    assert 60e9 < full < 72e9  # ~254 vectors per document x 56,723 x 9 languages x 512 bytes
    monkeypatch.setattr(real_scale.shutil, "disk_usage", lambda path: type("U", (), {"free": int(full * 0.9)})())
    with pytest.raises(SystemExit, match=r"scale 1 needs about .* GiB under .* free"):
        real_scale.check_disk(tmp_path, [0.5, 1.0], real_scale.LANGUAGES, subsets, 512)
    real_scale.check_disk(tmp_path, [0.5], real_scale.LANGUAGES, subsets, 512)  # half fits
