"""Benchmark loaders: one subset of a retrieval benchmark, in one or several languages, as typed records.

A ``BenchmarkSource`` names where the data lives (a hub dataset at a revision, or a local
snapshot folder) and which layout it follows (``layouts.py``); ``load_languages`` reads and
validates each language of a subset once (``validate.py``) and derives every matrix cell from
that; ``load_subset`` returns one validated cell as ``SubsetData``. Reading: ``files.py``,
``snapshot.py``; the hub: ``hub.py``.
"""
from nanobeir_ext.data.hub import dataset_revision
from nanobeir_ext.data.load import SubsetLanguages, load_languages, load_subset
from nanobeir_ext.data.records import (
    BenchmarkError,
    BenchmarkSource,
    BenchmarkUnavailableError,
    CellCounts,
    DataRules,
    EMPTY_TEXT_RULES,
    Qrels,
    SubsetData,
    TextCollection,
)

__all__ = [
    "BenchmarkError", "BenchmarkSource", "BenchmarkUnavailableError", "CellCounts", "DataRules", "EMPTY_TEXT_RULES", "Qrels", "SubsetData", "SubsetLanguages",
    "TextCollection", "dataset_revision", "load_languages", "load_subset",
]
