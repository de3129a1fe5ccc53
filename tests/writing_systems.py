"""Shared checks of the hand-written fixture sources: scripts by language, records of a source."""
from __future__ import annotations

import re

# A text must be written in its language's own script.
KANA_OR_KANJI = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
HANGUL = re.compile(r"[\uac00-\ud7a3]")
ARABIC = re.compile(r"[\u0600-\u06ff]")
SCRIPTS = {"ja": KANA_OR_KANJI, "ko": HANGUL, "ar": ARABIC}


def records(source: dict) -> list[dict]:
    """Documents and queries of a source file, in order."""
    return source["corpus"] + source["queries"]
