"""Reports: accuracy against token cost, calibration and paired comparisons, as an HTML page with PNG figures.

``build_report(store, ["run-a", "run-b"], Path("report"))`` writes ``report/index.html``,
``report/accuracy_vs_tokens.png`` and ``report/calibration.png``; runs whose results store search trees
(``info["tree"]``, from beam, dvts, best-first, MCTS, ...) get an expandable tree per problem. Needs matplotlib
(``pip install 'ponder[report]'``).
"""

from __future__ import annotations

from pathlib import Path

from ponder.errors import ConfigError
from ponder.report.data import DEFAULT_BINS, Point, ReportData, Row, collect
from ponder.store import RunRow, Store

__all__ = ["Point", "ReportData", "Row", "build_report", "resolve_runs"]

INDEX = "index.html"


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ConfigError("reports need matplotlib: pip install 'ponder[report]'") from exc


def resolve_runs(store: Store, run_refs: list[str]) -> list[RunRow]:
    """The runs named by ``run_refs`` (ids, unique prefixes or 'last'), in order without repeats; all runs when
    the list is empty."""
    if not run_refs:
        runs = store.runs()
        if not runs:
            raise ConfigError(f"store {store.path} has no runs yet; start one with 'ponder eval'")
        return runs
    chosen: dict[str, RunRow] = {}
    for ref in run_refs:
        run = store.find_run(ref)
        chosen.setdefault(run.id, run)
    return list(chosen.values())


def build_report(store: Store, run_refs: list[str], out_dir: Path, title: str | None = None, *,
                 bins: int = DEFAULT_BINS) -> Path:
    """Write the report of the given runs (all runs when ``run_refs`` is empty) into ``out_dir`` (created if
    needed; files of an earlier report there are overwritten) and return the path of its index.html."""
    _require_matplotlib()
    from ponder.report.html import render
    from ponder.report.plots import draw_all
    from ponder.report.trees import collect_trees

    if bins < 1:
        raise ConfigError(f"calibration needs at least one bin, got {bins}")
    runs = resolve_runs(store, run_refs)
    data = collect(store, runs, bins)
    if not data.rows:
        raise ConfigError("none of the chosen runs has a finished problem yet; nothing to report")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create report folder {out_dir}: {exc}") from exc
    figures = draw_all(data, out_dir)
    trees = collect_trees(store, runs, data.notes)
    index = out_dir / INDEX
    index.write_text(render(data, figures, title or _default_title(data), trees), encoding="utf-8")
    return index


def _default_title(data: ReportData) -> str:
    scopes = list(dict.fromkeys(p.scope for p in data.points))
    return "ponder report: " + (", ".join(scopes[:3]) + (" …" if len(scopes) > 3 else ""))
