"""Per-language analysis for BM25 (models/text_analysis.py), one sample text per language."""
from __future__ import annotations

import pytest

from models.text_analysis import ANALYZED_LANGUAGES, analyzer_for, cjk_bigrams
from nanobeir_ext.languages import KNOWN_LANGUAGES

SAMPLES = {
    "en": ("The runners were running quickly; Café ＡＢＣ 2024", ["the", "runner", "were", "run", "quick", "café", "abc", "2024"]),
    "de": ("Die Straße der Häuser: Kinderbücher", ["die", "strass", "der", "haus", "kinderbuch"]),
    "ar": ("كَتَبَ الطالبُ الكتابَ في المكتبات", ["كتب", "طالب", "كتاب", "في", "مكتب"]),
    "fr": ("L'économie française et les économistes", ["l", "économ", "franc", "et", "le", "économ"]),
    "es": ("Los niños corrían por las calles", ["los", "niñ", "corr", "por", "las", "call"]),
    "it": ("Le città italiane e i cittadini", ["le", "citt", "italian", "e", "i", "cittadin"]),
    "pt": ("As cidades portuguesas e os cidadãos", ["as", "cidad", "portugues", "e", "os", "cidadã"]),
    "no": ("Bøkene i biblioteket", ["bøk", "i", "bibliotek"]),
    "sv": ("Böckerna på biblioteken", ["böck", "på", "bibliotek"]),
    "ja": ("東京都に住む。ｶﾀｶﾅとGPU、2024年", ["東京", "京都", "都に", "に住", "住む", "カタ", "タカ", "カナ", "ナと", "gpu", "2024", "年"]),
    "ko": ("한국어 문장을 분석 AI모델", ["한국", "국어", "문장", "장을", "분석", "ai", "모델"]),
}


def test_every_language_of_the_dataset_has_an_analyzer():
    assert set(ANALYZED_LANGUAGES) == set(KNOWN_LANGUAGES)
    assert set(SAMPLES) == set(KNOWN_LANGUAGES)


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_sample_text(language):
    text, expected = SAMPLES[language]
    analyzer = analyzer_for(language)
    assert analyzer.analyze(text) == expected
    assert analyzer.analyze(text) == expected  # deterministic, stemmer reused
    assert analyzer.analyze("") == [] and analyzer.analyze(" ,.;!? ") == []


def test_stemmers_and_segmentation_are_as_documented():
    for language in ("ar", "de", "en", "es", "fr", "it", "pt", "no", "sv"):
        assert analyzer_for(language).segmentation == "words" and analyzer_for(language).stemmer
    for language in ("ja", "ko"):
        assert analyzer_for(language).segmentation == "cjk_bigrams" and analyzer_for(language).stemmer is None
    assert analyzer_for("en").stemmer == "english"  # Snowball's Porter2, not the original Porter


def test_arabic_marks_and_letter_forms():
    ar = analyzer_for("ar")
    # Vowel marks and tatweel do not split or change a word.
    assert ar.analyze("كَتَبَ") == ar.analyze("كتب") == ar.analyze("كـتـب")


def test_cjk_bigrams():
    assert cjk_bigrams("東") == ["東"]
    assert cjk_bigrams("東京都") == ["東京", "京都"]
    # Latin text inside Japanese is kept whole, lower-cased, not stemmed.
    assert analyzer_for("ja").analyze("Running東京") == ["running", "東京"]


def test_identity_changes_with_the_analysis():
    identities = {lang: repr(analyzer_for(lang).identity()) for lang in ANALYZED_LANGUAGES}
    assert len(set(identities.values())) == len(identities)
    assert analyzer_for("en").identity()["stopwords"] is None


def test_bad_inputs():
    with pytest.raises(ValueError, match="valid choices"):
        analyzer_for("zh")
    with pytest.raises(TypeError):
        analyzer_for("en").analyze(None)  # type: ignore[arg-type]
