import pytest

from nanobeir_ext.languages import MATRIX_LANGUAGES, matrix_cells, ordered, validate_languages


def test_full_matrix_has_81_cells_doc_major():
    cells = matrix_cells(MATRIX_LANGUAGES, MATRIX_LANGUAGES)
    assert len(cells) == 81
    assert (cells[0].doc_lang, cells[0].query_lang) == ("ar", "ar")
    assert (cells[1].doc_lang, cells[1].query_lang) == ("ar", "de")
    assert len(matrix_cells(MATRIX_LANGUAGES, MATRIX_LANGUAGES, diagonal_only=True)) == 9


def test_unknown_language_lists_choices():
    with pytest.raises(ValueError, match=r"unknown language \['xx'\]; valid choices: \['ar'"):
        validate_languages(["en", "xx"])
    with pytest.raises(ValueError, match="duplicate"):
        validate_languages(["en", "en"])


def test_card_order():
    assert ordered(["pt", "en", "ar", "ko"]) == ("ar", "en", "ko", "pt")
