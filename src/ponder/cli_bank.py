"""``ponder bank``: record trace banks and inspect them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ponder.cli_options import (
    ApiKeyOpt,
    DataDirOpt,
    ExtraOpt,
    LimitOpt,
    MaxTokensOpt,
    ModelNameOpt,
    ModelOpt,
    OffsetOpt,
    SeedOpt,
    ServerBinOpt,
    SizeOpt,
    SlotsOpt,
    StoreOpt,
    TaskSeedOpt,
    TemperatureOpt,
    ThreadsOpt,
    TimeoutOpt,
    TopPOpt,
    backend_spec,
    console,
    existing_store,
    sampling_from,
)
from ponder.errors import ConfigError

if TYPE_CHECKING:
    from ponder.bank import Bank
    from ponder.store import Store

bank_app = typer.Typer(help="Record banks of traces with logprobs, for offline replay of any strategy.",
                       no_args_is_help=True)


@bank_app.command("record")
def record(
    out: Annotated[Path, typer.Argument(help="Bank file to write, e.g. add1.bank.jsonl.gz.")],
    task: Annotated[str, typer.Option("--task", "-t", help="Task name; see 'ponder tasks'.")] = "add1",
    n: Annotated[int, typer.Option("--n", "-n", help="Traces per problem.")] = 64,
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
    top_logprobs: Annotated[int, typer.Option(
        "--top-logprobs", help="Alternatives recorded per token (capped by the server's limit; replays can serve "
        "any k up to it). DeepConf's reference uses 20.")] = 20,
    extra: ExtraOpt = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Problems recorded at once.")] = 4,
) -> None:
    """Record N traces per problem with full token logprobs into a portable bank file.

    A killed recording resumes when run again with the same settings; a larger --limit extends a bank.
    """
    from ponder.backends import open_backend
    from ponder.bank import record_bank
    from ponder.display import ProblemProgress

    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    sampling = sampling_from(temperature, top_p, max_tokens, seed, True, extra, top_logprobs=top_logprobs)
    spec = backend_spec(model, model_name, api_key, server_bin, slots, threads, timeout).sized_for(sampling.max_tokens)
    bar = ProblemProgress(console, "record")

    async def go() -> None:
        async with open_backend(spec) as backend:
            await record_bank(
                task, backend=backend, n=n, path=out, sampling=sampling, limit=limit, offset=offset, seed=task_seed,
                size=size, data_dir=data_dir, model=spec.describe(), model_name=spec.model_name,
                concurrency=concurrency, chunk=slots,
                on_progress=lambda p: bar.update(
                    p.done + p.skipped, p.total,
                    f"{p.traces:,} traces · {p.completion_tokens:,} tok · {p.tokens_per_s:,.0f} tok/s"),
            )

    bar.start()
    try:
        asyncio.run(go())
    except KeyboardInterrupt:
        console.print("interrupted: recorded problems are kept; run the same command again to resume")
        raise typer.Exit(130) from None
    finally:
        bar.stop()
    info(out)


@bank_app.command("info")
def info(bank_path: Annotated[Path, typer.Argument(
        help="A bank file, or one being recorded (its .partial file is read: what is recorded so far).")]) -> None:
    """Print a bank's model, task, sampling settings and counts, and how far an unfinished recording of it is."""
    from ponder.bank import Bank, load_partial, partial_path

    partial = bank_path if bank_path.name.endswith(".partial") else partial_path(bank_path)
    if bank_path == partial or (not bank_path.exists() and partial.exists()):
        so_far = load_partial(partial)
        of = f" of {so_far.task.limit}" if so_far.task.limit is not None else ""
        table = _bank_table(so_far, f"{bank_path} (unfinished recording)", f"{len(so_far.problems)}{of}")
        table.add_row("resume", "run the same 'ponder bank record' command again")
    else:
        bank = Bank.load(bank_path)
        table = _bank_table(bank, str(bank_path), str(len(bank.problems)))
        if partial.exists():
            table.add_row("unfinished extension", f"{len(load_partial(partial).problems)} more problems in {partial}")
    console.print(table)


def _bank_table(bank: Bank, title: str, problems: str) -> Table:
    stats = bank.stats()
    table = Table(title=title, show_header=False)
    table.add_column("field")
    table.add_column("value")
    table.add_row("model", f"{bank.model}" + (f" ({bank.model_name})" if bank.model_name else ""))
    table.add_row("task", f"{bank.task.name} (seed {bank.task.seed}, size {bank.task.size})")
    s = bank.sampling
    table.add_row("sampling", f"temperature {s.temperature}, top_p {s.top_p}, max_tokens {s.max_tokens}, "
                              f"top_logprobs {s.top_logprobs}")
    table.add_row("problems × traces", f"{problems} × {bank.n} = {stats['traces']:,} traces")
    accuracy = stats["trace_accuracy"]
    table.add_row("correct traces", f"{accuracy:.3f}" if accuracy is not None else "–")
    cut = stats["length_cut"]
    table.add_row("completion tokens", f"{stats['completion_tokens']:,} ({cut} traces cut by max_tokens)")
    table.add_row("format", f"ponder-bank v{bank.version}, written by ponder {bank.ponder_version}, {bank.created_at}")
    return table


@bank_app.command("pack")
def pack(
    bank_path: Annotated[Path, typer.Argument(help="A bank file (.bank.jsonl.gz).")],
    out: Annotated[Path | None, typer.Argument(help="Packed bank to write [default: BANK with .bank.zip].")] = None,
) -> None:
    """Write a bank in the packed format: alternatives' logprobs quantized to 1/32 nat, about a sixteenth of the size.

    Texts, tokens, answers and token counts stay exact; the alternatives' token strings are dropped. Replays
    read packed banks like any other.
    """
    from ponder.bank import Bank
    from ponder.bank.format import PACKED_SUFFIX, SUFFIX

    if out is None:
        name = bank_path.name.removesuffix(SUFFIX).removesuffix(".jsonl").removesuffix(".gz")
        out = bank_path.with_name(name + PACKED_SUFFIX)
    if not out.name.endswith(".zip"):
        raise ConfigError(f"a packed bank's name ends in .zip (e.g. {PACKED_SUFFIX}); got {out.name}")
    if out.resolve() == bank_path.resolve():
        raise ConfigError(f"{out} is the bank being packed: give another output path")
    bank = Bank.load(bank_path)
    bank.save(out)
    before, after = bank_path.stat().st_size, out.stat().st_size
    console.print(f"{out}: {after:,} bytes ({after / before:.1%} of {before:,})")
    info(out)


@bank_app.command("merge")
def merge(
    first: Annotated[Path, typer.Argument(help="A bank.")],
    second: Annotated[Path, typer.Argument(help="Another recording of the same model, task and sampling.")],
    out: Annotated[Path, typer.Argument(help="Bank to write (.bank.jsonl.gz, or .bank.zip for packed).")],
) -> None:
    """Pool two independent recordings into one bank with the traces of both (e.g. 32 + 32 = 64 per problem)."""
    from ponder.bank import Bank, merge_banks

    if out.resolve() in (first.resolve(), second.resolve()):
        raise ConfigError(f"{out} is one of the banks being merged: give another output path")
    merge_banks(Bank.load(first), Bank.load(second)).save(out)
    info(out)


@bank_app.command("from-run")
def from_run(
    run: Annotated[str, typer.Argument(help="A stored run (id, unique prefix or 'last') that sampled N traces per "
                                            "problem with logprobs, e.g. a self-consistency run.")],
    out: Annotated[Path, typer.Argument(help="Bank file to write.")],
    store: StoreOpt = None,
) -> None:
    """Turn a stored live run into a bank, so the samples it paid for can be replayed by any strategy."""
    with existing_store(store) as db:
        bank = bank_from_run(db, run)
    bank.save(out)
    info(out)


def bank_from_run(db: Store, ref: str) -> Bank:
    """A bank of a run's traces. Every problem must have the same number of finished traces with logprobs."""
    from datetime import datetime, timezone

    from ponder import __version__
    from ponder.bank import Bank, BankProblem, BankTask
    from ponder.context import Sampling

    row = db.find_run(ref)
    if "replay" in row.config:
        raise ConfigError(f"run {row.id} was itself replayed from a bank; use that bank")
    problems: dict[str, BankProblem] = {}
    gold = {r.problem_id: r.gold for r in db.results(row.id) if r.error is None}
    for problem_id, trace in db.traces(row.id):
        if problem_id not in gold:
            continue
        if trace.cancelled or not trace.logprobs:
            raise ConfigError(f"run {row.id} has cancelled traces or traces without logprobs; record a bank instead")
        entry = problems.setdefault(problem_id, BankProblem(problem_id, db.messages(row.id, problem_id),
                                                            gold[problem_id]))
        entry.traces.append(trace)
    counts = {len(p.traces) for p in problems.values()}
    if len(counts) != 1:
        raise ConfigError(f"run {row.id} has {sorted(counts) or 'no'} traces per problem; a bank needs the same N "
                          "for every problem")
    sampling = Sampling(**row.config["sampling"])
    config = row.config
    return Bank(
        task=BankTask(config["task"], seed=config.get("task_seed", 0), size=config.get("task_size")),
        sampling=sampling, n=counts.pop(), model=row.model, model_name=config.get("model_name"),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), ponder_version=__version__,
        problems=dict(sorted(problems.items(), key=lambda kv: _position(kv[0]))),
    )


def _position(problem_id: str) -> tuple[int, str]:
    tail = problem_id.rsplit("/", 1)[-1]
    return (int(tail), problem_id) if tail.isdigit() else (0, problem_id)
