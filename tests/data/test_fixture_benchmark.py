"""The generated fixture benchmark: up to date, deterministic, in the hub layout, loadable by datasets and the loader."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nanobeir_ext.data import BenchmarkSource, load_subset
from nanobeir_ext.data.fixture import BENCHMARK_DIR, fixture_subsets, load_source
from nanobeir_ext.languages import MATRIX_LANGUAGES
from tests.helpers import REPO_DIR

SCRIPT = REPO_DIR / "scripts" / "build_fixture_benchmark.py"


def build(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def front_matter(readme: Path) -> dict:
    _, header, _ = readme.read_text(encoding="utf-8").split("---\n", 2)
    return yaml.safe_load(header)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_committed_benchmark_is_up_to_date():
    done = build("--check")
    assert done.returncode == 0, f"run scripts/build_fixture_benchmark.py and commit the result:\n{done.stderr}"


def test_generation_is_deterministic_and_check_catches_drift(tmp_path):
    out = tmp_path / "benchmark"
    assert build("--out-dir", str(out)).returncode == 0
    assert tree(out) == tree(BENCHMARK_DIR)  # same bytes as the committed folder
    again = build("--out-dir", str(out))
    assert again.returncode == 0 and "0 changed" in again.stdout  # idempotent

    corpus = out / "NanoSciFact_en" / "corpus-00000-of-00001.jsonl"
    corpus.write_bytes(corpus.read_bytes().replace(b"sf-d01", b"sf-dXX", 1))
    (out / "NanoSciFact_de_qrels" / "qrels-00000-of-00001.jsonl").unlink()
    (out / "stray.txt").write_text("not generated")
    check = build("--check", "--out-dir", str(out))
    assert check.returncode == 1
    for problem in ("differs: NanoSciFact_en/corpus-00000-of-00001.jsonl",
                    "missing: NanoSciFact_de_qrels/qrels-00000-of-00001.jsonl", "unexpected: stray.txt"):
        assert problem in check.stderr

    repaired = build("--out-dir", str(out))
    assert repaired.returncode == 0 and "3 changed" in repaired.stdout
    assert tree(out) == tree(BENCHMARK_DIR)


def test_generator_refuses_to_prune_a_folder_it_does_not_own(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    done = build("--out-dir", str(foreign))
    assert done.returncode != 0 and "refusing to prune" in done.stderr
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_readme_declares_every_config_in_the_hub_layout():
    metadata = front_matter(BENCHMARK_DIR / "README.md")
    configs = {entry["config_name"]: entry["data_files"] for entry in metadata["configs"]}
    subsets = fixture_subsets()
    assert subsets == ["NanoFiQA2018", "NanoNFCorpus", "NanoSciFact"]
    expected = {f"{s}_{lang}" for s in subsets for lang in MATRIX_LANGUAGES}
    assert set(configs) == expected | {f"{name}_qrels" for name in expected}
    assert configs["NanoSciFact_ja"] == [{"split": "corpus", "path": "NanoSciFact_ja/corpus-*"},
                                         {"split": "queries", "path": "NanoSciFact_ja/queries-*"}]
    assert configs["NanoSciFact_ja_qrels"] == [{"split": "qrels", "path": "NanoSciFact_ja_qrels/qrels-*"}]
    assert "tiny, hand-written parallel mini-benchmark" in (BENCHMARK_DIR / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("config", "split"), [("NanoFiQA2018_ko", "corpus"), ("NanoSciFact_ar", "queries"),
                                               ("NanoFiQA2018_en_qrels", "qrels"), ("NanoNFCorpus_ja_qrels", "qrels")])
def test_datasets_loads_the_snapshot_offline_with_the_source_rows(tmp_path, config, split):
    import datasets

    table = datasets.load_dataset(str(BENCHMARK_DIR), name=config, split=split, cache_dir=str(tmp_path))
    subset, language = config.removesuffix("_qrels").rsplit("_", 1)
    source = load_source(subset)
    if split == "qrels":
        if source["relevance"] == "binary":  # like the real dataset: no score column
            assert table.column_names == ["query-id", "corpus-id"]
            assert table.to_list() == [{"query-id": q["query-id"], "corpus-id": q["corpus-id"]} for q in source["qrels"]]
        else:
            assert table.column_names == ["query-id", "corpus-id", "score"]
            assert table.to_list() == source["qrels"]
            assert {row["score"] for row in table} == {1, 2}
    else:
        assert table.column_names == ["_id", "text"]
        assert table.to_list() == [{"_id": r["_id"], "text": r["text"][language]} for r in source[split]]


def test_loader_reads_every_fixture_pair_consistently_with_the_source():
    benchmark = BenchmarkSource(path=str(BENCHMARK_DIR))
    for subset in fixture_subsets():
        source = load_source(subset)
        for language in MATRIX_LANGUAGES:
            data = load_subset(benchmark, subset, language)
            documents = [r["_id"] for r in source["corpus"] if r["text"][language].strip()]
            assert data.corpus.ids == tuple(documents)
            assert data.corpus.dropped_empty == len(source["corpus"]) - len(documents)
            expected_qrels: dict[str, dict[str, int]] = {}
            for q in source["qrels"]:
                if q["corpus-id"] in documents:
                    expected_qrels.setdefault(q["query-id"], {})[q["corpus-id"]] = q["score"]
            assert data.qrels == expected_qrels
            assert data.queries.ids == tuple(r["_id"] for r in source["queries"] if r["_id"] in expected_qrels)
    # The deliberate exception: one empty Korean document in NanoFiQA2018.
    korean = load_subset(benchmark, "NanoFiQA2018", "ko")
    assert korean.corpus.dropped_empty == 1 and "fq-d24" not in korean.corpus.ids


def test_snapshot_copied_elsewhere_loads_the_same(tmp_path):
    copy = tmp_path / "snapshot"
    shutil.copytree(BENCHMARK_DIR, copy)
    here = load_subset(BenchmarkSource(path=str(BENCHMARK_DIR)), "NanoNFCorpus", "pt", "ja")
    there = load_subset(BenchmarkSource(path=str(copy)), "NanoNFCorpus", "pt", "ja")
    assert (there.corpus, there.queries, there.qrels) == (here.corpus, here.queries, here.qrels)
