"""The ``ponder`` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ponder.cli_bank import bank_app
from ponder.cli_demo import demo
from ponder.cli_models import models_app
from ponder.cli_options import (
    ApiKeyOpt,
    DataDirOpt,
    ExtraOpt,
    LimitOpt,
    LogprobsOpt,
    MaxTokensOpt,
    ModelNameOpt,
    ModelOpt,
    NOpt,
    OffsetOpt,
    ParamOpt,
    SeedOpt,
    ServerBinOpt,
    SizeOpt,
    SlotsOpt,
    StoreOpt,
    StrategyOpt,
    TaskSeedOpt,
    TemperatureOpt,
    ThreadsOpt,
    TimeoutOpt,
    TopLogprobsOpt,
    TopPOpt,
    backend_spec,
    console,
    err_console,
    existing_store,
    open_store,
    sampling_from,
    store_path,
    strategy_params,
)
from ponder.cli_serve import serve
from ponder.errors import ConfigError, PonderError
from ponder.store import DEFAULT_MAX_TRACE_CHARS

app = typer.Typer(
    name="ponder",
    help="Run test-time reasoning strategies over a model, check the answers, and measure accuracy per token.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(bank_app, name="bank")
app.add_typer(models_app, name="models")
app.command()(demo)
app.command()(serve)

# ---- commands ------------------------------------------------------------------------------------


def _warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


@app.command("eval")
def eval_command(
    task: Annotated[str | None, typer.Option(
        "--task", "-t", help="Task name; see 'ponder tasks' \\[default: gsm8k; with --replay, the bank's].")] = None,
    strategy: StrategyOpt = "self-consistency",
    n: NOpt = None,
    param: ParamOpt = None,
    limit: LimitOpt = None,
    offset: OffsetOpt = 0,
    size: SizeOpt = None,
    task_seed: TaskSeedOpt = 0,
    data_dir: DataDirOpt = None,
    model: ModelOpt = "local",
    model_name: ModelNameOpt = None,
    api_key: ApiKeyOpt = None,
    server_bin: ServerBinOpt = None,
    slots: SlotsOpt = 16,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    max_tokens: MaxTokensOpt = None,
    seed: SeedOpt = None,
    logprobs: LogprobsOpt = True,
    top_logprobs: Annotated[int | None, typer.Option(
        "--top-logprobs", help="Alternatives per token asked for with the logprobs \\[default: 20; a replayed bank's "
        "own] (capped by the server's limit). DeepConf's token confidence and self-certainty need at least 2; "
        "their values grow with k, so compare runs made with the same k.")] = None,
    extra: ExtraOpt = None,
    replay: Annotated[Path | None, typer.Option(
        "--replay", help="Serve samples from a trace bank (see 'ponder bank record') instead of a model; "
        "--seed then picks the order in which its traces are served.")] = None,
    repeats: Annotated[int, typer.Option(
        "--repeats", help="With --replay: rerun with this many seeds and report the mean with a 95% CI.")] = 1,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", help="Problems solved at once; the others wait in order.")] = 8,
    max_inflight: Annotated[int, typer.Option(
        "--max-inflight", help="Samples in flight at once across all problems (a request for more runs alone, "
        "with a warning).")] = 64,
    max_trace_chars: Annotated[int, typer.Option(
        "--max-trace-chars", help="Longest trace text (and reasoning) stored; longer ones are stored cut, flagged "
        "in the store, with a warning.")] = DEFAULT_MAX_TRACE_CHARS,
    budget: Annotated[int | None, typer.Option(
        "--budget", help="Completion-token budget per problem: a call starts only if its worst case (n x max-tokens) "
        "fits in what is left; strategies answer with what they have, or the problem is recorded as an error.")]
    = None,
    store: StoreOpt = None,
    run: Annotated[str | None, typer.Option(
        "--run", help="Run name \\[default: derived from the settings, so the same command resumes].")] = None,
    ray: Annotated[str | None, typer.Option(
        "--ray", metavar="[ADDRESS]", help="Solve the problems on a Ray cluster (pip install 'ponder\\[ray]'): ADDRESS "
        "as for ray.init (host:6379, ray://host:10001, auto); bare --ray joins $RAY_ADDRESS or a cluster started on "
        "this machine, else starts a local one. This process alone writes the store, so resuming works as "
        "always; --concurrency and --max-inflight are totals over the workers.")] = None,
    ray_workers: Annotated[int | None, typer.Option(
        "--ray-workers", help="Ray workers (actors), each with its own backend; worker i sends to URL i mod k of "
        "--model openai:URL1,...,URLk \\[default: one per cluster CPU, as many per URL].")] = None,
) -> None:
    """Evaluate a strategy on a task, with a live progress bar, ending with a results table.

    Results go to the store as each problem finishes; running the same command again resumes.
    """
    from ponder.display import LiveProgress, abstention_table, repeats_table, summary_table
    from ponder.metrics import summarize_run
    from ponder.runner import EvalConfig, run_eval

    if repeats < 1 or (repeats > 1 and replay is None):
        raise ConfigError("--repeats needs --replay BANK and must be at least 1")
    base = None
    if replay is not None:
        from ponder.bank import Bank

        bank = Bank.load(replay)
        if task is not None and task != bank.task.name:
            raise ConfigError(f"--task {task} does not match the bank, which holds {bank.task.name}")
        task, base = bank.task.name, bank.sampling
    spec = backend_spec(model, model_name, api_key, server_bin, slots, threads, timeout)
    config = EvalConfig(
        task=task or "gsm8k", strategy=strategy, model=spec,
        params=strategy_params(strategy, n, param),
        sampling=sampling_from(temperature, top_p, max_tokens, None if replay else seed, logprobs, extra, base,
                               top_logprobs),
        limit=limit, offset=offset, task_seed=task_seed, task_size=size, data_dir=data_dir,
        concurrency=concurrency, max_inflight=max_inflight, token_budget=budget, run_id=run,
        replay=replay, store_traces=replay is None, ray=ray, ray_workers=ray_workers,
    )
    run_ids = []
    with open_store(store, max_trace_chars=max_trace_chars) as db:
        for repeat in range(repeats):
            config.replay_seed = (seed or 0) + repeat
            live = LiveProgress(console)
            try:
                with live:
                    outcome = asyncio.run(run_eval(config, db, on_progress=live.update, on_start=live.start,
                                                   on_warning=_warn))
            except KeyboardInterrupt:
                err_console.print("interrupted: finished problems are saved; run the same command again to resume")
                raise typer.Exit(130) from None
            run_ids.append(outcome.run_id)
        model_label = f"replay:{replay.name}" if replay else config.model.describe()
        title = f"{run_ids[0]} · {config.task} · {strategy} · {model_label}"
        if repeats == 1:
            console.print(summary_table(title, summarize_run(db.results(run_ids[0]), db.traces(run_ids[0]))))
            if (abstaining := abstention_table(db.results(run_ids[0]))) is not None:
                console.print(abstaining)
        else:
            console.print(repeats_table(title, [db.results(r) for r in run_ids]))


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    strategy: StrategyOpt = "self-consistency",
    n: NOpt = None,
    param: ParamOpt = None,
    model: ModelOpt = "local",
    model_name: ModelNameOpt = None,
    api_key: ApiKeyOpt = None,
    server_bin: ServerBinOpt = None,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    max_tokens: MaxTokensOpt = None,
    seed: SeedOpt = None,
    logprobs: LogprobsOpt = True,
    top_logprobs: TopLogprobsOpt = 20,
    extra: ExtraOpt = None,
    raw: Annotated[bool, typer.Option("--raw", help="Send the question as is, without the step-by-step "
                                                     "and \\boxed{} instruction.")] = False,
    show_traces: Annotated[bool, typer.Option("--traces", help="Print every sampled trace.")] = False,
) -> None:
    """Answer one question with a strategy; print the answer, the votes and the tokens spent."""
    from ponder.asking import ask_question

    outcome = asyncio.run(ask_question(
        question, strategy=strategy, params=strategy_params(strategy, n, param),
        spec=backend_spec(model, model_name, api_key, server_bin, threads=threads, timeout_s=timeout),
        sampling=sampling_from(temperature, top_p, max_tokens, seed, logprobs, extra, top_logprobs=top_logprobs),
        raw=raw,
    ))
    result, usage = outcome
    if show_traces:
        for trace in result.traces:
            console.rule(f"trace {trace.index} → {trace.answer}")
            console.print(trace.text, markup=False, highlight=False)
    console.print(f"[bold]answer:[/] {result.answer if result.answer is not None else '(none)'}")
    if result.confidence is not None:
        console.print(f"confidence: {result.confidence:.3f}")
    if result.votes:
        votes = ", ".join(f"{a}: {w:g}" for a, w in sorted(result.votes.items(), key=lambda kv: -kv[1]))
        console.print(f"votes: {votes}", markup=False)
    console.print(f"tokens: {usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion "
                  f"in {usage.calls} calls, {usage.traces} traces")


@app.command()
def strategies() -> None:
    """List the strategies with their parameters and defaults."""
    from ponder.strategies import list_strategies

    table = Table(show_header=True, header_style="bold")
    table.add_column("strategy")
    table.add_column("parameters")
    table.add_column("description")
    for info in list_strategies():
        lines = []
        for p in info.params.values():
            bounds = f" ({p.bounds_text()})" if p.bounds else ""
            lines.append(f"{p.name}: {p.type_name()} = {p.default!r}{bounds}" + (f" — {p.help}" if p.help else ""))
        table.add_row(info.name, "\n".join(lines) or "–", info.summary)
    console.print(table)


@app.command()
def tasks() -> None:
    """List the tasks: data sets, generated testbeds and reasoning-gym (gym:NAME)."""
    from ponder.tasks import list_tasks

    table = Table(show_header=True, header_style="bold")
    table.add_column("task")
    table.add_column("source")
    table.add_column("description")
    for info in list_tasks():
        table.add_row(info.name, info.source, info.description)
    console.print(table)
    console.print("Any reasoning-gym dataset runs as gym:NAME (pip install 'ponder[tasks]').")


@app.command()
def runs(store: StoreOpt = None) -> None:
    """List the runs in the store."""
    from ponder.display import runs_table

    if not (where := store_path(store)).exists():  # nothing to list, and no empty store left behind
        console.print(f"no store at {where} yet; start one with 'ponder eval'")
        return
    with open_store(where) as db:
        rows = db.runs()
        if not rows:
            console.print(f"no runs in {db.path} yet; start one with 'ponder eval'")
            return
        console.print(runs_table(rows))


@app.command()
def show(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix of one, or 'last'.")] = "last",
    store: StoreOpt = None,
    problems: Annotated[bool, typer.Option("--problems", help="Also list every problem's result.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Print a run's results table: accuracy with 95% CI, maj@k, pass@k, tokens and latency per problem."""
    from dataclasses import asdict

    from ponder.display import abstention_table, summary_table
    from ponder.metrics import summarize_run

    with existing_store(store) as db:
        row = db.find_run(run)
        results = db.results(row.id)
        summary = summarize_run(results, db.traces(row.id))
    if as_json:
        from ponder.abstention import summarize_abstention

        abstention = summarize_abstention(results)
        console.print_json(json.dumps({"run": row.id, "config": row.config, "summary": asdict(summary),
                                       **({"abstention": asdict(abstention)} if abstention else {})}))
        return
    console.print(summary_table(f"{row.id} · {row.task} · {row.strategy} · {row.model}", summary))
    if (abstaining := abstention_table(results)) is not None:
        console.print(abstaining)
    if problems:
        table = Table(show_header=True, header_style="bold")
        for column in ("problem", "gold", "answer", "correct", "confidence", "tokens", "error"):
            table.add_column(column)
        for r in results:
            table.add_row(r.problem_id, str(r.gold), str(r.answer), "✓" if r.correct else "✗",
                          f"{r.confidence:.2f}" if r.confidence is not None else "–",
                          f"{r.prompt_tokens + r.completion_tokens:,}", r.error or "")
        console.print(table)


@app.command()
def report(
    runs: Annotated[list[str] | None, typer.Argument(
        help="Run ids, unique prefixes or 'last' \\[default: all runs in the store].")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for index.html and the PNGs.")] = Path(
        "ponder-report"),
    title: Annotated[str | None, typer.Option("--title", help="Page title.")] = None,
    store: StoreOpt = None,
) -> None:
    """Write an HTML report: accuracy against tokens with the Pareto frontier, calibration (ECE), and a table
    with 95% CIs and each strategy's paired difference against self-consistency at the same N."""
    from ponder.report import build_report

    with existing_store(store) as db:
        index = build_report(db, runs or [], out, title=title)
    console.print(f"report written to {index}")


def bare_ray(argv: list[str]) -> list[str]:
    """``--ray`` takes an optional address, which typer's options cannot: a bare ``--ray`` (last, or followed by
    another option) gets the value that means Ray's default address."""
    if "--ray" not in argv:
        return argv
    from ponder.distributed import DEFAULT_ADDRESS

    return [f"--ray={DEFAULT_ADDRESS}" if arg == "--ray" and (i + 1 == len(argv) or argv[i + 1].startswith("-"))
            else arg for i, arg in enumerate(argv)]


def main() -> None:
    """Entry point: PonderErrors become one line on stderr and exit code 2."""
    try:
        app(bare_ray(sys.argv[1:]))
    except PonderError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
