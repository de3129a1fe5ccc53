"""What a comparison is judged by: tolerances, the significance test, the regression rule, exit codes."""
from __future__ import annotations

from dataclasses import dataclass, field

from nanobeir_ext.evaluation.metrics import PRIMARY_METRIC
from nanobeir_ext.evaluation.significance import SignificanceSettings  # noqa: F401  (part of CompareSettings)

EXIT_PASS = 0
EXIT_REGRESSION = 1  # also: published numbers not reproduced
EXIT_MISMATCH = 2  # the two sides do not cover the same models / cells / queries, or nothing to compare

# Latency columns and whether a larger value is worse (times) or better (throughputs).
LATENCY_METRICS: dict[str, bool] = {"p50_ms": True, "p95_ms": True, "texts_per_s": False, "tokens_per_s": False}


@dataclass(frozen=True)
class Tolerances:
    published_abs: float = 0.01  # |run - published| per cell for "reproduced"
    cell_drop_abs: float = 0.02  # a cell's metric drop beyond this may be a regression
    mean_drop_abs: float = 0.01  # a drop of the mean over all cells beyond this is a regression
    latency_increase_rel: float = 0.10  # relative slowdown beyond this is a regression
    # Drift gate for deterministic pipelines: any value of any metric (cell or subset) that moves
    # by more than this, up or down, fails. None = off.
    any_change_abs: float | None = None

    def __post_init__(self) -> None:
        for name in ("published_abs", "cell_drop_abs", "mean_drop_abs", "latency_increase_rel", "any_change_abs"):
            if (getattr(self, name) or 0) < 0:
                raise ValueError(f"tolerance {name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class RegressionRule:
    gate_metrics: tuple[str, ...] = (PRIMARY_METRIC,)  # metrics whose drops fail; every metric is reported
    require_significance: bool = True  # a cell drop must also be significant where per-query data exist
    latency_metrics: tuple[str, ...] = ("p50_ms",)

    def __post_init__(self) -> None:
        unknown = [m for m in self.latency_metrics if m not in LATENCY_METRICS]
        if unknown:
            raise ValueError(f"unknown latency metrics {unknown}; valid choices: {list(LATENCY_METRICS)}")


@dataclass(frozen=True)
class CompareSettings:
    tolerances: Tolerances = field(default_factory=Tolerances)
    significance: SignificanceSettings = field(default_factory=SignificanceSettings)
    rule: RegressionRule = field(default_factory=RegressionRule)

    def describe_rule(self) -> str:
        """The regression rule in words, for the report footer."""
        t, s, r = self.tolerances, self.significance, self.rule
        significance = (f" AND it is significant (paired randomization test on per-query {s.metric}, "
                        f"adjusted p < {s.alpha}) whenever both sides have per-query scores for that metric"
                        if r.require_significance else "")
        return (f"A regression is (1) a cell whose {', '.join(r.gate_metrics)} drops by more than "
                f"{t.cell_drop_abs:g}{significance}; OR (2) a drop of the mean over all cells by more than "
                f"{t.mean_drop_abs:g}; OR (3) a latency increase ({', '.join(r.latency_metrics)}) of more than "
                f"{100 * t.latency_increase_rel:g}% when both sides have latency.csv"
                + (f"; OR (4) any value of any metric (cell or subset) that moves by more than {t.any_change_abs:g} "
                   "in either direction (drift gate)" if t.any_change_abs is not None else "")
                + ". Both sides must cover the "
                "same models, cells, metrics and queries, otherwise the comparison fails as a mismatch.")
