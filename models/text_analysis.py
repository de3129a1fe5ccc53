"""Per-language text analysis for BM25: text -> list of index terms.

One analyzer per language of the matrix (plus Norwegian and Swedish), all built from
the same steps, so the only difference between languages is the one stated here:

1. Unicode NFKC (full-width Latin and half-width katakana to their usual forms,
   ligatures split), then ``str.casefold`` (German "ß" matches "ss").
2. Arabic only: the diacritics (tashkil, U+064B-U+065F, U+0670) and the tatweel
   (U+0640) are removed, as Lucene's ArabicNormalizationFilter does; otherwise a
   vowelled word would split at every mark (marks are not ``\\w``).
3. Tokens: maximal runs of word characters (``\\w``: letters, digits, underscore).
   In Japanese and Korean, a run of CJK characters (Han, Hiragana, Katakana,
   Hangul) becomes its overlapping character bigrams (a one-character run stays a
   unigram) and any other run (Latin words, numbers) stays whole; this is what
   Lucene's CJKAnalyzer does (CJKBigramFilter), without its English stopwords.
   Bigrams rather than a morphological analyzer: no dictionary, no model version to
   pin, the same output on every machine, and the standard lexical baseline for
   CJK retrieval.
4. Stemming: the Snowball stemmer of the language through PyStemmer (ar, de, en, es,
   fr, it, pt, no, sv; English is Snowball "english", i.e. Porter2). Japanese and
   Korean are not stemmed (no Snowball stemmer exists; bigrams need none).
5. No stopword removal, in any language: BM25's IDF already gives very frequent terms
   almost no weight, not every language has a list of the same quality (bm25s ships
   none for Arabic or Japanese), and one rule for all languages keeps the cells
   comparable.

A query is analyzed with its index's analyzer (the document language's), as a
search engine analyzes a query with its field's analyzer: across languages, BM25
then matches only shared surface forms (names, numbers, cognates, borrowed words).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Sequence

import Stemmer

# Bump when a change here changes the terms of any text: BM25 indexes are rebuilt.
ANALYSIS_VERSION = 1

Segmentation = Literal["words", "cjk_bigrams"]

# Snowball algorithm names in PyStemmer, per language code (None: no stemming).
SNOWBALL_STEMMERS: dict[str, str | None] = {
    "ar": "arabic", "de": "german", "en": "english", "es": "spanish", "fr": "french",
    "it": "italian", "pt": "portuguese", "no": "norwegian", "sv": "swedish",
    "ja": None, "ko": None,
}
SEGMENTATION: dict[str, Segmentation] = {lang: ("cjk_bigrams" if lang in ("ja", "ko") else "words") for lang in SNOWBALL_STEMMERS}
ANALYZED_LANGUAGES: tuple[str, ...] = tuple(SNOWBALL_STEMMERS)

# Han (with extension A and compatibility ideographs, the iteration mark 々), Hiragana,
# Katakana (with the phonetic extensions), Hangul syllables and jamo.
_CJK = "\u3005\u3006\u3007\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(r"\w+")
# A run of CJK characters, or a run of other word characters.
_CJK_OR_WORD = re.compile(f"[{_CJK}]+|(?:(?![{_CJK}])\\w)+")
_ARABIC_MARKS = re.compile("[\u0640\u064b-\u065f\u0670]")


def normalize(text: str, language: str) -> str:
    """Steps 1-2 of the module docstring."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if language == "ar":
        text = _ARABIC_MARKS.sub("", text)
    return text


def cjk_bigrams(run: str) -> list[str]:
    """Overlapping character bigrams of a CJK run; a single character stays a unigram."""
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


@dataclass(frozen=True)
class Analyzer:
    """The analysis of one language (see the module docstring); ``analyze`` is deterministic."""

    language: str
    segmentation: Segmentation
    stemmer: str | None  # Snowball algorithm name, None for no stemming

    @cached_property
    def _stemmer(self) -> Any:
        return Stemmer.Stemmer(self.stemmer) if self.stemmer else None

    def analyze(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"texts must be strings, got {type(text).__name__}")
        text = normalize(text, self.language)
        if self.segmentation == "cjk_bigrams":
            terms: list[str] = []
            for token in _CJK_OR_WORD.findall(text):
                terms.extend(cjk_bigrams(token) if _CJK_RUN.fullmatch(token) else [token])
        else:
            terms = _WORD.findall(text)
        return self._stemmer.stemWords(terms) if self._stemmer is not None else terms

    def analyze_all(self, texts: Sequence[str]) -> list[list[str]]:
        return [self.analyze(text) for text in texts]

    def identity(self) -> dict[str, Any]:
        """Everything that changes the terms: the cache key of an index built with it."""
        return {
            "language": self.language,
            "normalization": "NFKC+casefold" + ("+arabic-marks" if self.language == "ar" else ""),
            "segmentation": self.segmentation,
            "stemmer": f"snowball:{self.stemmer}" if self.stemmer else None,
            "pystemmer": Stemmer.version() if hasattr(Stemmer, "version") else None,
            "stopwords": None,
            "analysis_version": ANALYSIS_VERSION,
        }

    def describe(self) -> str:
        segmentation = "CJK character bigrams" if self.segmentation == "cjk_bigrams" else "word tokens"
        stem = f"Snowball {self.stemmer}" if self.stemmer else "no stemming"
        return f"{self.language}: NFKC + casefold, {segmentation}, {stem}, no stopwords"


def analyzer_for(language: str) -> Analyzer:
    """The analyzer of a language code (one of :data:`ANALYZED_LANGUAGES`)."""
    if language not in SNOWBALL_STEMMERS:
        raise ValueError(f"no text analysis for language {language!r}; valid choices: {list(ANALYZED_LANGUAGES)}")
    return Analyzer(language=language, segmentation=SEGMENTATION[language], stemmer=SNOWBALL_STEMMERS[language])
