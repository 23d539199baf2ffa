"""``ponder demo``: the shipped GSM8K bank replayed, a short live run, an HTML report, and what it means."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from ponder.cli_options import ServerBinOpt, ThreadsOpt, backend_spec, console, err_console, open_store
from ponder.demo import DemoRow, default_bank, paired_difference, run_demo


def demo(
    live: Annotated[int, typer.Option(
        "--live", help="GSM8K problems to run live with the model (0: replay only).")] = 10,
    model: Annotated[str, typer.Option(
        "--model", "-m", help="Model for the live part; the bank was recorded from local:qwen-coder-0.5b.")]
        = "local:qwen-coder-0.5b",
    bank: Annotated[Path | None, typer.Option(
        "--bank", help="Trace bank to replay \\[default: the GSM8K bank shipped with ponder].")] = None,
    repeats: Annotated[int, typer.Option("--repeats", help="Replay orders per strategy.")] = 3,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the HTML report.")] = Path("ponder-demo"),
    store: Annotated[Path, typer.Option("--store", help="SQLite file for the demo's runs.")] = Path("ponder-demo.db"),
    threads: ThreadsOpt = None,
    server_bin: ServerBinOpt = None,
) -> None:
    """Show a test-time gain on real math in minutes: replay Qwen2.5-Coder-0.5B's recorded GSM8K samples through
    self-consistency, DeepConf, RPC and a router, run it live on a few problems, and write an HTML report."""
    from ponder.report import build_report

    bank_path = bank or default_bank()
    spec = backend_spec(model, None, None, server_bin, 16, threads) if live else None
    if spec is not None and spec.kind == "local":
        from ponder.backends.local import find_llama_server

        find_llama_server(spec.server_bin)  # a missing server fails now, not after the replay

    def step(source: str, label: str) -> None:
        console.print(f"[dim]{source}[/dim] {label} …", highlight=False)

    with open_store(store) as db:
        try:
            rows = asyncio.run(run_demo(db, bank_path=bank_path, model=spec, live=live, repeats=repeats,
                                        on_step=step))
        except KeyboardInterrupt:
            err_console.print("interrupted: finished runs are kept in the store; run the same command to go on")
            raise typer.Exit(130) from None
        index = build_report(db, [run for row in rows for run in row.run_ids], out,
                             title="ponder demo: GSM8K with Qwen2.5-Coder-0.5B-Instruct")
    console.print(_table(rows, repeats))
    console.print(_explain(rows, repeats, live))
    if (line := headline(rows)) is not None:
        console.print(line)
    console.print(f"HTML report: {index}")


def _table(rows: list[DemoRow], repeats: int) -> Table:
    """One line per strategy in 80 columns: replay rows, then (in their own section) live rows."""
    one = next((r for r in rows if r.source == "replay" and r.strategy == "cot"), None)
    target = next((r for r in rows if r.source == "replay" and r.label == "self-consistency n=32"), None)
    live_one = next((r for r in rows if r.source == "live" and r.strategy == "cot"), None)
    table = Table(title="GSM8K test, Qwen2.5-Coder-0.5B-Instruct on 2 CPU cores", header_style="bold",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for name, justify in [("strategy", "left"), ("accuracy\n[95% CI]", "right"), ("tokens", "right"),
                          ("vs one sample\n\\[paired 95% CI]", "right"), ("share of\nSC@32", "right")]:
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for index, row in enumerate(rows):
        if row.source == "live" and (index == 0 or rows[index - 1].source != "live"):
            table.add_section()
        base = one if row.source == "replay" else live_one
        diff = paired_difference(row, base) if base is not None and base is not row else None
        share = f"{row.tokens / target.tokens:.0%}" if target and row.source == "replay" else ""
        label = row.label if row.source == "replay" else f"live: {row.label}"
        table.add_row(label, f"{row.accuracy.mean:.2f} [{row.accuracy.low:.2f}, {row.accuracy.high:.2f}]",
                      f"{row.tokens:,.0f}",
                      f"{diff.mean:+.2f} [{diff.low:+.2f}, {diff.high:+.2f}]" if diff else "", share)
    return table


def headline(rows: list[DemoRow]) -> str | None:
    """The result in one sentence: what voting over 32 samples buys over one, and the cheapest strategy whose
    accuracy is within self-consistency@32's interval, as a share of its tokens."""
    replay = [r for r in rows if r.source == "replay"]
    one = next((r for r in replay if r.strategy == "cot"), None)
    target = next((r for r in replay if r.label == "self-consistency n=32"), None)
    if one is None or target is None:
        return None
    gain = paired_difference(target, one)
    text = (f"[bold]result[/bold]: self-consistency over 32 samples answers {target.accuracy.mean:.1%} of the "
            f"problems against {one.accuracy.mean:.1%} for one sample")
    if gain is not None:
        text += f" (paired difference {gain.mean:+.3f}, 95% CI [{gain.low:+.3f}, {gain.high:+.3f}])"
    text += f", at {target.tokens / max(one.tokens, 1e-9):.0f}× the tokens"
    within = [r for r in replay if r is not target and r.strategy != "cot" and r.accuracy.mean >= target.accuracy.low]
    if within:
        best = min(within, key=lambda r: r.tokens)
        text += (f"; {best.label} reaches {best.accuracy.mean:.1%}, within self-consistency@32's interval, at "
                 f"{best.tokens / target.tokens:.0%} of its tokens")
    return text + "."


def _explain(rows: list[DemoRow], repeats: int, live: int) -> str:
    replay = [r for r in rows if r.source == "replay"]
    problems = replay[0].accuracy.n if replay else 0
    lines = [
        f"[bold]replay[/bold]: each strategy was served the samples the model drew for {problems} problems "
        f"(32 each), {repeats} times in different orders: a paired comparison on the same draws, in seconds.",
        "[bold]accuracy[/bold]: share of problems answered right, with a 95% bootstrap interval over problems.",
        "[bold]tokens[/bold]: completion tokens per problem, including those of samples a strategy cut short.",
        "[bold]vs one sample[/bold]: accuracy gained over a single sample on the same problems.",
    ]
    lines += [f"  {r.label}: {r.meaning}" for r in replay if r.meaning]
    if live:
        lines.append(f"[bold]live[/bold]: the model itself on the first {live} problems at the bank's settings, to "
                     "show the same machinery end to end; with so few problems its intervals are wide.")
    return "\n".join(lines)
