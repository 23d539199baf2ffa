"""The report's figures, drawn with matplotlib's Agg canvas (no pyplot, no global backend state).

matplotlib is imported inside the functions: it is an optional dependency (``pip install 'ponder[report]'``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ponder.report.data import ReportData, Row
from ponder.report.stats import reliability_bins

ACCURACY_PLOT = "accuracy_vs_tokens.png"
CALIBRATION_PLOT = "calibration.png"

_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]
_DPI = 110


def _text(value: str) -> str:
    """Plain text for matplotlib: a pair of '$' would start mathtext (and fail on user input)."""
    return value.replace("$", r"\$")


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _styles(series: Sequence[str]) -> dict[str, tuple[Any, str]]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return {name: (palette(i % 10), _MARKERS[i % len(_MARKERS)]) for i, name in enumerate(series)}


def _plain_log_ticks(ax: Any, xs: Sequence[float]) -> None:
    """Token counts as plain numbers (not 10^k); intermediate ticks labelled only when the data span about a
    decade or less, where there may be no power of ten to label."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    positive = [x for x in xs if x > 0]
    narrow = not positive or math.log10(max(positive) / min(positive)) < 1.2
    ax.xaxis.set_minor_formatter(plain if narrow else NullFormatter())


def _figure_legend(figure: Any, axes: Sequence[Any], columns: int) -> None:
    """One legend under the plots, so long labels and many points never cover data."""
    entries: dict[str, Any] = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            entries.setdefault(label, handle)
    if entries:
        figure.legend(list(entries.values()), list(entries), loc="outside lower center", fontsize=8,
                      ncols=max(1, min(columns, len(entries))), frameon=False, markerscale=0.9)


def accuracy_vs_tokens(data: ReportData, path: Path) -> Path:
    """Accuracy (95% CI bars) against mean tokens per problem on a log axis, one panel per task and model, one
    colour and marker per strategy setting, N next to each point, and the Pareto frontier as a dashed step line."""
    scopes = list(dict.fromkeys(row.point.scope for row in data.rows))
    styles = _styles(list(dict.fromkeys(row.point.series for row in data.rows)))
    columns = min(len(scopes), 2) or 1
    lines = math.ceil(len(scopes) / columns) or 1
    entries = len(styles) + 1
    figure = _figure(6.4 * columns, 4.6 * lines + 0.25 * math.ceil(entries / (2 * columns)))
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    for ax in axes[len(scopes):]:
        ax.set_visible(False)
    for ax, scope in zip(axes, scopes, strict=False):
        rows = [row for row in data.rows if row.point.scope == scope and not math.isnan(row.point.accuracy.mean)]
        for series in dict.fromkeys(row.point.series for row in rows):
            colour, marker = styles[series]
            members = sorted((r for r in rows if r.point.series == series), key=lambda r: r.point.mean_tokens)
            xs = [r.point.mean_tokens for r in members]
            ys = [r.point.accuracy.mean for r in members]
            low = [max(0.0, y - r.point.accuracy.low) if not math.isnan(r.point.accuracy.low) else 0.0
                   for y, r in zip(ys, members, strict=True)]
            high = [max(0.0, r.point.accuracy.high - y) if not math.isnan(r.point.accuracy.high) else 0.0
                    for y, r in zip(ys, members, strict=True)]
            ax.errorbar(xs, ys, yerr=[low, high], fmt=marker, color=colour, markersize=7, capsize=3,
                        elinewidth=1, label=_text(series), zorder=3)
            if len(members) > 1:
                ax.plot(xs, ys, color=colour, linewidth=1, alpha=0.35, zorder=2)
            for r in members:
                ax.annotate(f"N={r.point.n}", (r.point.mean_tokens, r.point.accuracy.mean), xytext=(5, 5),
                            textcoords="offset points", fontsize=8, color=colour)
        frontier = sorted((r for r in rows if r.on_frontier), key=lambda r: r.point.mean_tokens)
        if frontier:
            ax.plot([r.point.mean_tokens for r in frontier], [r.point.accuracy.mean for r in frontier],
                    drawstyle="steps-post", color="black", linestyle="--", linewidth=1.2, label="Pareto frontier",
                    zorder=1)
            ax.scatter([r.point.mean_tokens for r in frontier], [r.point.accuracy.mean for r in frontier],
                       s=160, facecolors="none", edgecolors="black", linewidths=1, zorder=4)
        ax.set_xscale("log")
        _plain_log_ticks(ax, [r.point.mean_tokens for r in rows])
        ax.margins(x=0.12)
        ax.set_xlabel("mean tokens per problem (prompt + completion, log scale)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(_text(scope), fontsize=10)
        ax.grid(True, which="both", alpha=0.25)
    _figure_legend(figure, axes[: len(scopes)], columns=2 * columns)
    figure.suptitle("Accuracy against token cost (bars: 95% CI; circled: Pareto frontier)", fontsize=11)
    figure.savefig(path, format="png")
    return path


def _calibrated(data: ReportData) -> list[Row]:
    return [row for row in data.rows if row.ece is not None]


def calibration(data: ReportData, path: Path) -> Path:
    """Reliability diagram (accuracy against mean confidence per equal-width bin, dot area by count) with ECE in
    the legend, and a histogram of confidences beneath."""
    rows = _calibrated(data)
    several_scopes = len({row.point.scope for row in rows}) > 1
    styles = _styles([row.point.key for row in rows])
    figure = _figure(6.4, 6.4 + 0.22 * (len(rows) + 1))
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect calibration")
    for row in rows:
        colour, marker = styles[row.point.key]
        bins = reliability_bins(row.point.confidences, row.point.correct, data.bins)
        filled = [b for b in bins if b.count]
        label = row.point.label + (f" ({row.point.scope})" if several_scopes else "")
        if row.point.repeats > 1:
            label += f" ×{row.point.repeats}"
        top.plot([b.mean_confidence for b in filled], [b.accuracy for b in filled], color=colour, linewidth=1,
                 alpha=0.6)
        top.scatter([b.mean_confidence for b in filled], [b.accuracy for b in filled], color=colour, marker=marker,
                    s=[12 + 120 * b.count / len(row.point.confidences) for b in filled], zorder=3,
                    label=_text(f"{label}: ECE {row.ece:.3f}"))
        bottom.stairs([b.count for b in bins], [b.low for b in bins] + [1.0], color=colour, linewidth=1.2)
    if not rows:
        top.text(0.5, 0.5, "no run in this report records a confidence in [0, 1]", ha="center", va="center",
                 transform=top.transAxes, fontsize=10)
    top.set_xlim(0, 1)
    top.set_ylim(-0.03, 1.03)
    top.set_ylabel("accuracy")
    top.set_title(f"Reliability ({data.bins} equal-width confidence bins)", fontsize=11)
    top.grid(True, alpha=0.25)
    _figure_legend(figure, [top], columns=1)
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("problems")
    bottom.grid(True, alpha=0.25)
    figure.savefig(path, format="png")
    return path


def draw_all(data: ReportData, out_dir: Path) -> list[tuple[str, str]]:
    """Draw every figure into ``out_dir``; (file name, caption) pairs in page order."""
    accuracy_vs_tokens(data, out_dir / ACCURACY_PLOT)
    calibration(data, out_dir / CALIBRATION_PLOT)
    return [
        (ACCURACY_PLOT, "Accuracy against mean tokens per problem, per strategy and N, with the Pareto frontier."),
        (CALIBRATION_PLOT, "Calibration: accuracy against confidence, with the expected calibration error (ECE)."),
    ]
