"""The latency report: candidate/baseline throughput ratios, the verdict, figures, latency.md.

:func:`compare_throughput` computes the ratios and the verdict once; the markdown and the
runner's log line both read them. Everything else renders from the two tables the runner
writes (latency.csv, maxsim_latency.csv) and a :class:`LatencyContext` naming the hardware
and the models (their :class:`~nanobeir_ext.protocol.ModelLabel`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from nanobeir_ext.atomic import write_text
from nanobeir_ext.protocol import PLURAL, ModelLabel
from nanobeir_ext.reporting.figures import pyplot, save_figure
from nanobeir_ext.reporting.tables import format_fixed, format_magnitude, markdown_table

FIGURE_NAME = "throughput_vs_batch_size.png"


@dataclass(frozen=True)
class LatencyContext:
    hardware: str  # e.g. "Intel(R) Xeon(R) Processor, 2 threads" or "NVIDIA H200"
    device: str
    dtype: str
    threads: int
    peak_flops: float  # measured dense matmul FLOP/s in this run
    models: tuple[ModelLabel, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def weights_label(self) -> str:
        kinds = sorted({m.weights for m in self.models})
        return "/".join(kinds) if kinds else "unknown"

    @property
    def label(self) -> str:
        return f"{self.hardware} · {self.device} · {self.dtype} · weights={self.weights_label}"


@dataclass(frozen=True, eq=False)
class ThroughputComparison:
    """The claim check, computed once: candidate/baseline texts-per-second ratios and verdicts."""

    candidate: str  # model whose claim is checked (LFM2-ColBERT-350M)
    baseline: str  # model it is compared with (GTE-ModernColBERT-v1)
    threshold: float  # on par = every ratio >= this
    ratios: pd.DataFrame  # from each setting's median call
    verdict: str
    fastest_ratios: pd.DataFrame | None = None  # from each setting's fastest call (robustness check)
    fastest_verdict: str | None = None


def hardware_label(environment: Mapping[str, Any], threads: int, device: str) -> str:
    name = environment.get("hardware", {}).get("name") or "unknown hardware"
    return name if device.startswith("cuda") else f"{name}, {threads} threads"


def compare_throughput(latency: pd.DataFrame, candidate: str, baseline: str, threshold: float) -> ThroughputComparison:
    """Ratios and verdict from the median calls, and the same from the fastest calls when recorded."""
    ratios = throughput_ratios(latency, candidate, baseline)
    fastest = None
    if "min_ms" in latency.columns and not ratios.empty:
        fastest = throughput_ratios(latency, candidate, baseline, fastest=True)
    return ThroughputComparison(
        candidate=candidate, baseline=baseline, threshold=threshold, ratios=ratios,
        verdict=verdict(ratios, candidate, baseline, threshold), fastest_ratios=fastest,
        fastest_verdict=None if fastest is None else verdict(fastest, candidate, baseline, threshold))


def throughput_ratios(latency: pd.DataFrame, candidate: str, baseline: str, *, fastest: bool = False) -> pd.DataFrame:
    """Per (role, seq_len, batch_size) measured for both models: candidate/baseline texts per second,
    from the median call (``texts_per_s``) or, with ``fastest``, from each setting's fastest call."""
    known = sorted(latency["model"].unique())
    for name in (candidate, baseline):
        if name not in known:
            raise ValueError(f"model {name!r} is not in the latency table; models measured: {known}")
    keys = ["role", "seq_len", "batch_size"]
    if fastest:
        latency = latency.assign(texts_per_s=latency["batch_size"] / (latency["min_ms"] / 1e3))
    pair = latency[latency["model"] == candidate][keys + ["texts_per_s"]].merge(
        latency[latency["model"] == baseline][keys + ["texts_per_s"]], on=keys, suffixes=("_candidate", "_baseline"))
    pair["ratio"] = pair["texts_per_s_candidate"] / pair["texts_per_s_baseline"]
    order = {"query": 0, "document": 1}
    pair = pair.sort_values(keys, key=lambda col: col.map(order) if col.name == "role" else col)
    return pair.reset_index(drop=True)


def verdict(ratios: pd.DataFrame, candidate: str, baseline: str, threshold: float) -> str:
    """One line: on par iff every measured ratio is at least ``threshold``."""
    if ratios.empty:
        return f"no common (role, length, batch size) measured for {candidate} and {baseline}: no verdict"
    below = ratios[ratios["ratio"] < threshold]
    worst = ratios.loc[ratios["ratio"].idxmin()]
    spread = f"ratios {ratios['ratio'].min():.2f}–{ratios['ratio'].max():.2f} over {len(ratios)} settings"
    if below.empty:
        return (f"**on par**: {candidate} reaches at least {threshold:.2f}x the throughput of {baseline} in every "
                f"measured setting ({spread}).")
    return (f"**not on par**: {candidate}/{baseline} throughput is below {threshold:.2f} in {len(below)} of "
            f"{len(ratios)} settings ({spread}; lowest {worst['ratio']:.2f} for {PLURAL[worst['role']]} of "
            f"{int(worst['seq_len'])} tokens at batch size {int(worst['batch_size'])}).")


def _role_length_label(role: str, seq_len: int) -> str:
    return f"{role} x{seq_len}"


def ratio_table(ratios: pd.DataFrame) -> pd.DataFrame:
    """Batch sizes as rows, (role, length) as columns, ratios as values."""
    table = ratios.assign(setting=[_role_length_label(r, int(n)) for r, n in zip(ratios["role"], ratios["seq_len"])])
    columns = list(dict.fromkeys(table["setting"]))
    return table.pivot(index="batch_size", columns="setting", values="ratio")[columns]


def draw_throughput_figure(latency: pd.DataFrame, path: Path, *, subtitle: str) -> Path:
    """Texts/s vs batch size (log2 x), every model on each panel: queries left, documents right."""
    roles = [r for r in ("query", "document") if r in set(latency["role"])]
    fig, axes = pyplot().subplots(1, len(roles), figsize=(6.0 * len(roles), 4.4), dpi=120, squeeze=False)
    styles = ["-", "--", ":", "-."]
    models = list(dict.fromkeys(latency["model"]))
    colors = {name: f"C{i}" for i, name in enumerate(models)}
    for ax, role in zip(axes[0], roles):
        rows = latency[latency["role"] == role]
        lengths = sorted(rows["seq_len"].unique())
        for name in models:
            for style, seq_len in zip(styles * 4, lengths):
                line = rows[(rows["model"] == name) & (rows["seq_len"] == seq_len)].sort_values("batch_size")
                if line.empty:
                    continue
                ax.plot(line["batch_size"], line["texts_per_s"], style, marker="o", color=colors[name],
                        label=f"{name} ({seq_len} tokens)")
        ax.set_xscale("log", base=2)
        batch_sizes = sorted(rows["batch_size"].unique())
        ax.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
        ax.set_yscale("log")
        ax.set_xlabel("batch size (texts)")
        ax.set_ylabel(f"{PLURAL[role]} encoded per second")
        ax.set_title(f"{role} encoding throughput", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(subtitle, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def _ratio(value: object) -> str:
    return format_fixed(value, 2)


def render_latency_markdown(latency: pd.DataFrame, maxsim: pd.DataFrame, context: LatencyContext,
                            comparison: ThroughputComparison, figure: Path | None = None) -> str:
    c = comparison
    lines = [
        f"# Encoding throughput: {c.candidate} vs {c.baseline}",
        "",
        f"Hardware: **{context.hardware}** ({context.device}, {context.dtype}, {context.threads} threads). "
        f"Weights: **{context.weights_label}**.",
        "",
    ]
    if any(m.weights == "random-init" for m in context.models):
        lines += ["> Random-init models have the published architectures (sizes, layers, attention layout, "
                  "Dense projection) with random weights: throughput does not depend on weight values, "
                  "retrieval quality does (none is measured here).", ""]
    lines += ["## Models", ""]
    lines += [f"- {m.name}: weights **{m.weights}**, {m.parameters or 0:,} parameters, from `{m.source}`"
              for m in context.models]
    lines += ["", "## Verdict on the claim", "",
              f"Claim (model card): {c.candidate} has throughput on par with {c.baseline} for query and "
              f"document encoding across batch sizes. Threshold: on par = {c.candidate}/{c.baseline} "
              f"texts-per-second ratio >= {c.threshold:.2f} in every measured setting.", "",
              c.verdict, "",
              f"## Throughput ratio {c.candidate} / {c.baseline} (texts/s)", ""]
    if not c.ratios.empty:
        lines += [markdown_table(ratio_table(c.ratios), index_label="batch size", formatter=_ratio), ""]
    if c.fastest_ratios is not None:
        lines += ["Robustness check on a shared machine: the same ratio from each setting's fastest call (the one "
                  "least disturbed by other processes; the verdict above uses the median).", "",
                  markdown_table(ratio_table(c.fastest_ratios), index_label="batch size", formatter=_ratio), "",
                  f"From the fastest calls: {c.fastest_verdict}", ""]
    lines += ["## Measured peak", "",
              f"Dense matmul peak measured in this run: **{context.peak_flops / 1e9:,.1f} GFLOP/s** ({context.dtype}, "
              f"{context.device}). `peak_fraction` = model FLOPs per token x tokens/s / this peak; model FLOPs = "
              "2 x (parameters except the input embedding table) + 4 x attention width x attended keys per "
              "attention layer (sliding-window layers: min(length, window)).", ""]
    lines += ["## Encoding (per batch; synthetic token ids of exact length, tokenization excluded)", ""]
    columns = ["model", "role", "seq_len", "batch_size", "texts_per_s", "tokens_per_s", "p50_ms", "p95_ms", "min_ms",
               "peak_fraction", "repeats", "weights"]
    shown = latency[[c for c in columns if c in latency.columns]]
    lines += [markdown_table(shown, include_index=False, formatter=format_magnitude), ""]
    if not maxsim.empty:
        lines += ["## MaxSim (one query against N documents, exact top-k, float32 vectors)", ""]
        lines += [markdown_table(maxsim[["n_documents", "query_tokens", "document_tokens", "dim", "k", "p50_ms", "p95_ms",
                                         "documents_per_s", "gflops_per_s", "peak_fraction", "device"]],
                                 include_index=False, formatter=format_magnitude), ""]
    if figure is not None:
        lines += ["## Figure", "", f"![throughput vs batch size](figures/{figure.name})", ""]
    if context.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in context.notes] + [""]
    return "\n".join(lines)


def write_latency_report(latency: pd.DataFrame, maxsim: pd.DataFrame, context: LatencyContext,
                         comparison: ThroughputComparison, out_dir: Path, *, figures_enabled: bool = True) -> Path:
    """``out_dir/latency.md`` and ``out_dir/figures/throughput_vs_batch_size.png``."""
    out_dir = Path(out_dir)
    figure = None
    if figures_enabled and not latency.empty:
        figure = draw_throughput_figure(latency, out_dir / "figures" / FIGURE_NAME, subtitle=context.label)
    return write_text(out_dir / "latency.md", render_latency_markdown(latency, maxsim, context, comparison, figure))
