"""The report page: one self-contained index.html (inline style, no network) that shows the PNGs by relative path
and the results table. Every piece of text goes through ``html.escape``: run names, groups and parameters are user
input."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from html import escape

from ponder.metrics import Estimate
from ponder.report.data import BASELINE, ReportData, Row, format_params
from ponder.report.trees import STYLE as TREE_STYLE
from ponder.report.trees import RunTrees, render_trees

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1400px;
       padding: 0 1rem; color: #1d1d1f; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
.meta, .note, figcaption, .legend { color: #555; font-size: .9rem; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: .85rem; margin: 1rem 0; }
th, td { border-bottom: 1px solid #e3e3e3; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f5f5f7; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.frontier td:first-child { font-weight: 600; }
.better { color: #0a7d32; } .worse { color: #b3261e; }
code { font-size: .8rem; overflow-wrap: anywhere; }
td.runs { min-width: 13rem; }
"""

# Marks <body> with how many images actually decoded, so a headless browser can check the plots render.
_SCRIPT = """
window.addEventListener("load", function () {
  var images = document.images, ok = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) { ok++; }
  }
  document.body.setAttribute("data-plots-ok", String(ok));
  document.body.setAttribute("data-plots-total", String(images.length));
});
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float, digits: int = 3) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def estimate_text(estimate: Estimate, digits: int = 3, signed: bool = False) -> str:
    """``mean [low, high]``; the interval is left out when it is undefined."""
    if math.isnan(estimate.mean):
        return "–"
    sign = "+" if signed else ""
    text = f"{estimate.mean:{sign}.{digits}f}"
    if not (math.isnan(estimate.low) or math.isnan(estimate.high)):
        text += f" [{estimate.low:{sign}.{digits}f}, {estimate.high:{sign}.{digits}f}]"
    return text


def _difference(row: Row) -> str:
    if row.point.strategy == BASELINE:
        return "baseline"
    if row.baseline is None or row.difference is None:
        return "–"
    d = row.difference
    css = "better" if d.low > 0 else "worse" if d.high < 0 else ""
    title = f"paired over {d.n} problems against {row.baseline.key}"
    text = _e(estimate_text(d, signed=True))
    return f'<span class="{css}" title="{_e(title)}">{text}</span> <small>(n={d.n})</small>'


def _runs_cell(row: Row) -> str:
    point = row.point
    if point.repeats == 1:
        return f"<code>{_e(point.run_ids[0])}</code>"
    ids = ", ".join(point.run_ids)
    return f'group <code title="{_e(ids)}">{_e(point.group)}</code> ×{point.repeats}'


def _table(rows: Sequence[Row]) -> str:
    head = ["task · model", "strategy", "N", "runs", "problems", "accuracy [95% CI]", "CI over",
            "tokens / problem", "completion / problem", "ECE", f"Δ accuracy vs {BASELINE} at same N [95% CI]",
            "frontier"]
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead>", "<tbody>"]
    for row in rows:
        p = row.point
        cells = [
            f"<td>{_e(p.scope)}</td>",
            f'<td title="{_e(format_params(p.params) or "no parameters")}">{_e(p.label)}</td>',
            f'<td class="num">{p.n}</td>',
            f'<td class="runs">{_runs_cell(row)}</td>',
            f'<td class="num">{p.problems}' + (f" <small>({p.errors} errors)</small>" if p.errors else "") + "</td>",
            f'<td class="num">{_e(estimate_text(p.accuracy))}</td>',
            f'<td>{_e("problems (bootstrap)" if p.interval == "problems" else f"{p.repeats} repeats (t)")}</td>',
            f'<td class="num">{_num(p.mean_tokens, 1)}</td>',
            f'<td class="num">{_num(p.mean_completion_tokens, 1)}</td>',
            f'<td class="num">{"–" if row.ece is None else _num(row.ece)}</td>',
            f'<td class="num">{_difference(row)}</td>',
            f"<td>{'✓' if row.on_frontier else ''}</td>",
        ]
        html_cells = "".join(cells)
        out.append(f'<tr class="{"frontier" if row.on_frontier else ""}" data-key="{_e(p.key)}">{html_cells}</tr>')
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def _runs_list(data: ReportData) -> str:
    items = []
    for run in data.runs:
        created = _dt.datetime.fromtimestamp(run.created_at).strftime("%Y-%m-%d %H:%M")
        items.append(f"<li><code>{_e(run.id)}</code> · {_e(created)} · {_e(run.task)} · {_e(run.strategy)} · "
                     f"{_e(run.model)} · {run.done} problems</li>")
    return "<ul>\n" + "\n".join(items) + "\n</ul>"


def render(data: ReportData, figures: Sequence[tuple[str, str]], title: str,
           trees: Sequence[RunTrees] = ()) -> str:
    """The whole page as a string; ``trees`` adds the search-tree section."""
    from ponder import __version__

    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_STYLE}{TREE_STYLE if trees else ''}</style>",
        f"<script>{_SCRIPT}</script>",
        "</head>",
        "<body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{len(data.rows)} points from {len(data.runs)} runs · generated {_e(now)} by ponder '
        f"{_e(__version__)}</p>",
    ]
    if data.notes:
        parts.append('<ul class="note">' + "".join(f"<li>{_e(n)}</li>" for n in data.notes) + "</ul>")
    for name, caption in figures:
        parts.append(f'<figure><img src="{_e(name)}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption>'
                     "</figure>")
    parts += [
        "<h2>Results</h2>",
        _table(data.rows),
        '<p class="legend">Accuracy counts errored problems as wrong. A single run\'s interval is a bootstrap over '
        "problems; a group of repeated runs shows the mean over repeats with a Student t interval across repeats, "
        "and its tokens are the mean over repeats. Δ is the mean paired difference in correctness against "
        f"{_e(BASELINE)} with the same N on the same task and model (problems matched by id, per-problem "
        "correctness averaged over repeats), with a bootstrap interval over problems; green or red when the "
        f"interval excludes zero. ECE uses {data.bins} equal-width bins. The frontier holds the points that no other "
        "point of the same task and model beats on both accuracy and tokens. Strategy labels name N and the parameters "
        "not at their defaults; hover over one for all its parameters.</p>",
        "<h2>Runs</h2>",
        _runs_list(data),
    ]
    if trees:
        parts.append(render_trees(trees))
    parts += [
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"
