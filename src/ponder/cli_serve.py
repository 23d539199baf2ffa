"""``ponder serve``: the OpenAI-compatible reasoning proxy (see ``ponder.server``)."""

from __future__ import annotations

from typing import Annotated

import typer

from ponder.cli_options import (
    ApiKeyOpt,
    ModelNameOpt,
    ModelOpt,
    ServerBinOpt,
    StoreOpt,
    ThreadsOpt,
    TimeoutOpt,
    TopLogprobsOpt,
    backend_spec,
    err_console,
)
from ponder.context import Sampling
from ponder.errors import ConfigError

KEY_ENV = "PONDER_SERVE_KEY"


def serve(
    model: ModelOpt = "local",
    model_name: ModelNameOpt = None,
    api_key: ApiKeyOpt = None,
    server_bin: ServerBinOpt = None,
    slots: Annotated[int, typer.Option("--slots", help="Parallel slots of the embedded llama-server.")] = 16,
    threads: ThreadsOpt = None,
    timeout: TimeoutOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    key: Annotated[list[str] | None, typer.Option(
        "--key", envvar=KEY_ENV, show_envvar=True,
        help="API key clients must send (Authorization: Bearer KEY); repeat or comma-separate for several. "
        "None: no authentication.")] = None,
    max_n: Annotated[int, typer.Option("--max-n", help="Largest n (samples) a request may ask for.")] = 64,
    max_tokens_limit: Annotated[int, typer.Option(
        "--max-tokens-limit", help="Largest max_tokens a request may ask for.")] = 8192,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", help="Largest request body.")] = 1_000_000,
    max_inflight: Annotated[int, typer.Option(
        "--max-inflight", help="Upstream traces in flight across all requests.")] = 256,
    default_strategy: Annotated[str | None, typer.Option(
        "--default-strategy", help="Strategy for requests that name none \\[default: plain pass-through].")] = None,
    log: Annotated[bool, typer.Option(
        "--log/--no-log", help="Store every request as a problem of a 'serve-…' run (see 'ponder runs').")] = False,
    store: StoreOpt = None,
    access_log: Annotated[bool, typer.Option(
        "--access-log/--no-access-log", help="Log one line per HTTP request (costs CPU on every request).")] = False,
    top_logprobs: TopLogprobsOpt = 20,
) -> None:
    """Serve an OpenAI-compatible API that runs a reasoning strategy per request.

    Pick the strategy with a "ponder" object in the request body ({"strategy": "deepconf", "n": 32}) or a
    model-name prefix: ponder:STRATEGY:KEY=VALUE:.../MODEL (parameters and /MODEL optional), e.g.
    ponder:self-consistency:n=8. No strategy: plain pass-through.
    """
    try:
        import uvicorn

        from ponder.server.app import create_app
    except ImportError as exc:
        raise ConfigError(f"ponder serve needs the serve extra ({exc.name} is missing): pip install 'ponder[serve]'") \
            from None
    from ponder.server.requests import ServeConfig
    from ponder.strategies import get_strategy

    keys = frozenset(k.strip() for item in key or [] for k in item.replace(",", " ").split() if k.strip())
    if min(max_n, max_tokens_limit, max_body_bytes, max_inflight) < 1:
        raise ConfigError("--max-n, --max-tokens-limit, --max-body-bytes and --max-inflight must be at least 1")
    if default_strategy and default_strategy not in ("none", "passthrough"):
        get_strategy(default_strategy)  # an unknown name fails now, not on the first request
    if not 0 <= top_logprobs <= 20:
        raise ConfigError(f"--top-logprobs must be between 0 and 20, got {top_logprobs}")
    spec = backend_spec(model, model_name, api_key, server_bin, slots, threads, timeout)
    config = ServeConfig(keys=keys, max_n=max_n, max_tokens_limit=max_tokens_limit, max_body_bytes=max_body_bytes,
                         default_strategy=default_strategy, max_inflight=max_inflight, log=log,
                         store_path=str(store) if store else None, sampling=Sampling(top_logprobs=top_logprobs))
    if not keys and host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"[yellow]warning:[/] serving on {host} without --key: anyone who can reach it may use it")
    err_console.print(f"ponder serve: http://{host}:{port}/v1 → {spec.describe()}"
                      + (f", strategy {default_strategy} by default" if default_strategy else ""))
    uvicorn.run(create_app(spec, config), host=host, port=port, log_level="info", timeout_graceful_shutdown=5,
                access_log=access_log)
