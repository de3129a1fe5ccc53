"""The published tables load exactly as printed, and their inconsistent averages are found."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nanobeir_ext.languages import MATRIX_LANGUAGES
from nanobeir_ext.compare.reference import check_printed_averages, load_reference
from nanobeir_ext.evaluation.results import RESULT_COLUMNS

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "reports" / "reference"
LFM2, GTE = "LFM2-ColBERT-350M", "GTE-ModernColBERT-v1"
HAKARI_BM25, MTEB_E5 = "BM25 (hakari-bench)", "intfloat/multilingual-e5-small (MTEB)"


@pytest.fixture(scope="module")
def reference():
    return load_reference(REFERENCE_DIR)


def _value(reference, model, benchmark, subset, doc, query):
    r = reference.results
    rows = r[(r["model"] == model) & (r["benchmark"] == benchmark) & (r["subset"] == subset)
             & (r["doc_lang"] == doc) & (r["query_lang"] == query) & (r["metric"] == "ndcg@10")]
    assert len(rows) == 1
    return float(rows["value"].iloc[0])


def test_long_format_and_counts(reference) -> None:
    r = reference.results
    assert list(r.columns) == list(RESULT_COLUMNS)
    assert reference.models()[:2] == (LFM2, GTE)
    assert set(reference.models()[2:]) == {HAKARI_BM25, MTEB_E5, "LiquidAI/LFM2.5-Embedding-350M (MTEB)",
                                          "BM25 (MTEB baseline-bm25s)"}
    matrix_rows = r[r["benchmark"] == "nanobeir-extended"]
    assert len(matrix_rows) == 2 * 81 and set(matrix_rows["subset"]) == {"mean"}
    english = r[r["benchmark"] == "nanobeir-en"]
    assert len(english) == 14 and set(english["doc_lang"]) == set(english["query_lang"]) == {"en"}
    assert not r.duplicated([c for c in r.columns if c != "value"]).any()


@pytest.mark.parametrize("model, doc, query, expected", [
    (LFM2, "en", "en", 0.661), (LFM2, "ar", "ar", 0.490), (LFM2, "ko", "fr", 0.265), (LFM2, "pt", "ko", 0.382),
    (GTE, "ar", "ar", 0.309), (GTE, "en", "en", 0.680), (GTE, "ja", "en", 0.250), (GTE, "ar", "ja", 0.070),
])
def test_matrix_cells_as_printed(reference, model, doc, query, expected) -> None:
    assert _value(reference, model, "nanobeir-extended", "mean", doc, query) == expected
    # Orientation: rows are document languages.
    assert reference.matrix(model).at[doc, query] == expected


def test_matrix_means_match_the_notes(reference) -> None:
    for model, all_cells, diagonal in ((LFM2, 0.4490, 0.5572), (GTE, 0.2684, 0.4924)):
        table = reference.matrix(model)
        assert list(table.index) == list(MATRIX_LANGUAGES) == list(table.columns)
        assert table.to_numpy().mean() == pytest.approx(all_cells, abs=5e-5)
        assert table.to_numpy().diagonal().mean() == pytest.approx(diagonal, abs=5e-5)


def test_english_subsets_from_model_index(reference) -> None:
    assert _value(reference, LFM2, "nanobeir-en", "NanoArguAna", "en", "en") == 0.55073
    assert _value(reference, LFM2, "nanobeir-en", "NanoTouche2020", "en", "en") == 0.62962
    assert _value(reference, LFM2, "nanobeir-en", "mean", "en", "en") == 0.66123


def test_printed_averages_round_trip(reference) -> None:
    p = reference.printed_averages
    assert len(p) == 2 * 18

    def printed(model, axis, lang):
        return float(p[(p["model"] == model) & (p["axis"] == axis) & (p["lang"] == lang)]["printed_percent"].iloc[0])

    assert printed(LFM2, "doc", "ar") == 33.30
    assert printed(LFM2, "query", "en") == 50.32
    assert printed(GTE, "doc", "fr") == 33.35
    assert printed(GTE, "query", "pt") == 34.24
    assert printed(GTE, "query", "ar") == 6.94


def test_exactly_the_three_gte_disagreements_are_found(reference) -> None:
    check = check_printed_averages(reference)
    assert len(check) == 36
    bad = check[~check["agrees"]]
    assert sorted(zip(bad["model"], bad["axis"], bad["lang"])) == [(GTE, "doc", "fr"), (GTE, "doc", "it"),
                                                                   (GTE, "query", "pt")]
    recomputed = dict(zip(zip(bad["axis"], bad["lang"]), bad["recomputed_percent"].round(2)))
    assert recomputed == {("doc", "fr"): 33.54, ("doc", "it"): 32.43, ("query", "pt"): 34.52}
    lfm2 = check[check["model"] == LFM2]
    assert lfm2["agrees"].all() and (lfm2["difference_pp"].abs() <= 0.0134).all()


def _edited_copy(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """The committed reference folder copied, with one text edit in one data file."""
    copy = tmp_path / "reference"
    shutil.copytree(REFERENCE_DIR, copy)
    edited = copy / file
    edited.write_text(edited.read_text().replace(old, new))
    return copy


def test_malformed_reference_is_rejected_with_the_place_named(tmp_path: Path) -> None:
    copy = _edited_copy(tmp_path, "gte_moderncolbert_v1.ndcg10_matrix.csv", "0.309", "0.31")
    with pytest.raises(ValueError, match=r"cell \(ar, ar\).*exactly 3 decimals"):
        load_reference(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["tables"][0]["source"] = "nowhere"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="source 'nowhere'"):
        load_reference(copy)
    with pytest.raises(FileNotFoundError, match="manifest"):
        load_reference(tmp_path)


def test_diagonal_references_load_as_published_and_cover_only_the_diagonal(reference) -> None:
    # Spot values read in the sources (SOURCES.md [3], [4]).
    assert _value(reference, HAKARI_BM25, "hakari-bench MNanoBEIR", "mean", "ar", "ar") == 0.4412
    assert _value(reference, HAKARI_BM25, "hakari-bench MNanoBEIR", "NanoTouche2020", "en", "en") == 0.6648
    assert _value(reference, MTEB_E5, "MTEB MultilingualNano", "NanoArguAna", "ar", "ar") == 0.38675
    cells = reference.cells(HAKARI_BM25).set_index(["doc_lang", "query_lang"])
    assert set(cells.index) == {(lang, lang) for lang in MATRIX_LANGUAGES}
    # A printed mean is used as printed; English has only task values, so its cell is their mean.
    assert cells.loc[("ar", "ar"), "published"] == 0.4412 and not cells.loc[("ar", "ar"), "from_subsets"]
    english = reference.results[(reference.results["model"] == HAKARI_BM25) & (reference.results["doc_lang"] == "en")]
    assert len(english) == 13 and cells.loc[("en", "en"), "from_subsets"]
    assert cells.loc[("en", "en"), "published"] == pytest.approx(english["value"].mean())
    e5 = reference.cells(MTEB_E5)
    assert len(e5) == 9 and e5["from_subsets"].all()
    assert reference.cells(LFM2)["from_subsets"].sum() == 0 and len(reference.cells(LFM2)) == 81


def test_diagonal_table_rejects_unknown_languages(tmp_path: Path) -> None:
    folder = _edited_copy(tmp_path, "hakari_bench_bm25.mnanobeir_ndcg10_diagonal.csv", "ar,mean,", "xx,mean,")
    with pytest.raises(ValueError, match=r"unknown languages \['xx'\]"):
        load_reference(folder)
