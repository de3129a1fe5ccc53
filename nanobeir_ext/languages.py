"""Language codes of the extended NanoBEIR matrix and the cells a run evaluates."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

# Order of the model card's tables.
MATRIX_LANGUAGES: tuple[str, ...] = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "pt")
# Published in the dataset but not in the card's 9x9 matrix.
EXTRA_LANGUAGES: tuple[str, ...] = ("no", "sv")
LANGUAGE_NAMES: dict[str, str] = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fr": "French",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "pt": "Portuguese",
    "no": "Norwegian", "sv": "Swedish",
}
KNOWN_LANGUAGES: tuple[str, ...] = MATRIX_LANGUAGES + EXTRA_LANGUAGES


@dataclass(frozen=True)
class Cell:
    """One matrix cell: queries in ``query_lang`` retrieve documents in ``doc_lang``."""

    doc_lang: str
    query_lang: str

    @property
    def diagonal(self) -> bool:
        return self.doc_lang == self.query_lang


def validate_languages(languages: Iterable[str], allowed: Sequence[str] = KNOWN_LANGUAGES, what: str = "language") -> tuple[str, ...]:
    """Return the languages as a tuple, or raise naming the unknown ones and the valid choices."""
    languages = tuple(languages)
    unknown = [lang for lang in languages if lang not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; valid choices: {list(allowed)}")
    if len(set(languages)) != len(languages):
        raise ValueError(f"duplicate {what} in {list(languages)}")
    return languages


def ordered(languages: Iterable[str]) -> tuple[str, ...]:
    """Languages in the model card's order (unknown ones last, alphabetically)."""
    rank = {lang: i for i, lang in enumerate(KNOWN_LANGUAGES)}
    return tuple(sorted(set(languages), key=lambda lang: (rank.get(lang, len(rank)), lang)))


def matrix_cells(doc_langs: Sequence[str], query_langs: Sequence[str], diagonal_only: bool = False) -> list[Cell]:
    """The cells of a doc-language x query-language matrix, doc language major."""
    cells = [Cell(d, q) for d in ordered(doc_langs) for q in ordered(query_langs)]
    return [c for c in cells if c.diagonal] if diagonal_only else cells
