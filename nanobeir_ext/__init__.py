"""nanobeir-ext: cross-lingual evaluation of retrievers on the extended NanoBEIR benchmark.

The small public face; everything else lives in the stage subpackages (README, Design).
Names resolve on first use, so ``import nanobeir_ext.evaluation.metrics`` stays free of torch.

>>> from nanobeir_ext import BenchmarkSource, load_languages, EvaluationPlan, run_evaluation  # doctest: +SKIP
"""
from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "ModelLabel": "nanobeir_ext.protocol",
    "Encoder": "nanobeir_ext.protocol",
    "BenchmarkSource": "nanobeir_ext.data",
    "load_languages": "nanobeir_ext.data",
    "EvaluationPlan": "nanobeir_ext.evaluation.plan",
    "ModelSpec": "nanobeir_ext.evaluation.plan",
    "run_evaluation": "nanobeir_ext.evaluation.pipeline",
    "maxsim_topk": "nanobeir_ext.retrieval.maxsim",
    "QrelsEvaluator": "nanobeir_ext.evaluation.metrics",
    "evaluate_run": "nanobeir_ext.evaluation.metrics",
    "read_folder": "nanobeir_ext.outputs.folders",
    "compare_runs": "nanobeir_ext.compare.regression",
    "compare_to_published": "nanobeir_ext.compare.reproduction",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'nanobeir_ext' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return __all__
