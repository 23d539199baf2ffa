"""``ponder serve`` as a command: options, keys from the environment, a real process in front of a fake upstream."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import typer
from typer.testing import CliRunner

from ponder.cli_serve import serve
from tests.fakes.openai_server import FakeOpenAIServer

COMMAND = "import typer; from ponder.cli_serve import serve; app = typer.Typer(); app.command()(serve); app()"


def test_help_lists_the_options() -> None:
    app = typer.Typer()
    app.command()(serve)
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--model", "--model-name", "--api-key", "--server-bin", "--slots", "--host", "--port", "--key",
                   "--max-n", "--max-tokens-limit", "--max-body-bytes", "--log", "--store", "--default-strategy"):
        assert option in result.output


def test_serve_process_with_keys_from_the_environment() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with FakeOpenAIServer("The answer is 4.") as srv:
        env = {**os.environ, "PONDER_SERVE_KEY": "k1,k2"}
        proc = subprocess.Popen(
            [sys.executable, "-c", COMMAND, "--model", f"openai:{srv.base_url}", "--port", str(port),
             "--default-strategy", "self-consistency"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(url + "/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout and proc.stdout.read()
                time.sleep(0.05)
            body = {"model": "m", "messages": [{"role": "user", "content": "2+2?"}], "ponder": {"n": 2}}
            assert httpx.post(url + "/v1/chat/completions", json=body).status_code == 401
            reply = httpx.post(url + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k2"})
            assert reply.status_code == 200 and reply.json()["ponder"]["strategy"] == "self-consistency"
        finally:
            proc.terminate()
            proc.wait(10)
