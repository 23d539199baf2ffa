"""The FastAPI app: ``/v1/chat/completions``, ``/v1/models``, ``/health``. Routes stay thin; the work is in
``requests`` (parsing, limits), ``passthrough`` / ``strategy`` (calls) and ``responses`` (wire format)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ponder.backends import Backend, BackendSpec
from ponder.context import Slots
from ponder.errors import PonderError
from ponder.server import passthrough, strategy
from ponder.server.requests import PREFIX, ChatRequest, RequestError, ServeConfig, parse_chat_request
from ponder.server.responses import error_body, error_response, json_response, new_id
from ponder.server.streaming import ClientGone, Emit, guarded, stream_response
from ponder.session import Session
from ponder.strategies import list_strategies
from ponder.types import Result

log = logging.getLogger("ponder.serve")


class _State:
    session: Session
    backend: Backend
    slots: Slots
    models: frozenset[str] = frozenset()
    default_model: str = ""
    log: strategy.RequestLog | None = None


def create_app(upstream: Backend | BackendSpec, config: ServeConfig) -> FastAPI:
    """The proxy app. A BackendSpec is opened (and closed) by the app's lifespan; a ready Backend is used as
    is and closed at shutdown too (it must be closed on the event loop that used it).

    ``/v1/chat/completions`` is answered before FastAPI's middleware and routing (``_fast_route``): it is the
    one hot route, its handler already turns every error into an OpenAI-shaped response, and the stack of
    generic middleware cost a sixth of the proxy's CPU per request.
    """
    state = _State()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            # The session owns the upstream, the in-flight bound and the agent models that multi-agent strategy
            # requests open; all close at shutdown.
            state.session = await stack.enter_async_context(Session(upstream, max_inflight=config.max_inflight))
            state.backend, state.slots = state.session.backend, state.session.slots
            state.models = await _upstream_models(state.backend)
            state.default_model = (getattr(state.backend, "model", None) or min(state.models, default="")
                                   or state.backend.name)
            if config.log:
                from ponder.store import Store, default_store_path

                store = Store(Path(config.store_path) if config.store_path else default_store_path())
                state.log = strategy.RequestLog(store, state.backend.name)
                stack.push_async_callback(state.log.aclose)
            yield

    app = FastAPI(title="ponder serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def denied(request: Request) -> Response | None:
        if not config.keys:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and any(hmac.compare_digest(token.strip().encode(), k.encode())
                                              for k in config.keys):
            return None
        message = "missing API key" if not token else "incorrect API key"
        return json_response(error_body(f"{message}: send 'Authorization: Bearer KEY' with a key given to "
                                        "ponder serve --key", code="invalid_api_key"), 401)

    @app.get("/health")
    async def health() -> Response:
        return json_response({"status": "ok", "upstream": state.backend.name})

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        names = sorted(state.models or {state.default_model})
        data = [_model(m, "upstream") for m in names]
        data += [_model(f"ponder:{s.name}/{state.default_model}", "ponder") for s in list_strategies()]
        return json_response({"object": "list", "data": data})

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str, request: Request) -> Response:
        """A listed upstream model, or any ``ponder:`` name a request could use (parameters checked)."""
        if (refused := denied(request)) is not None:
            return refused
        if model_id in (state.models or {state.default_model}):
            return json_response(_model(model_id, "upstream"))
        if model_id.startswith(PREFIX):
            try:
                parse_chat_request({"model": model_id, "messages": [{"role": "user", "content": "."}]}, config,
                                   state.models)
            except RequestError as exc:
                return json_response(error_body(f"no such model: {exc}", param="model", code="model_not_found"), 404)
            return json_response(_model(model_id, "ponder"))
        return json_response(error_body(
            f"the model {model_id!r} does not exist here; GET /v1/models lists the upstream's models and a "
            "ponder:STRATEGY/MODEL name per strategy", param="model", code="model_not_found"), 404)

    @app.exception_handler(StarletteHTTPException)
    async def not_served(request: Request, exc: StarletteHTTPException) -> Response:
        # Every error this server sends has OpenAI's shape, unknown routes included, so clients show the reason.
        path = request.url.path
        if exc.status_code == 404:
            message = UNSUPPORTED.get(path.rstrip("/"), f"ponder serve has no route {path}; it serves "
                                      "POST /v1/chat/completions, GET /v1/models and GET /health")
            code = "unsupported_endpoint" if path.rstrip("/") in UNSUPPORTED else "not_found"
            return json_response(error_body(message, code=code), 404)
        return json_response(error_body(f"{request.method} {path}: {exc.detail}", code=f"http_{exc.status_code}"),
                             exc.status_code)

    async def chat_completions(request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        try:
            body = await _read_json(request, config.max_body_bytes)
            chat = parse_chat_request(body, config, state.models)
        except RequestError as exc:
            return error_response(exc)
        return await _serve(request, chat, state, config)

    app.post("/v1/chat/completions")(chat_completions)  # listed in the app's routes; served by _fast_route
    app.add_middleware(_FastRoute, path="/v1/chat/completions", handler=chat_completions)
    return app


# Endpoints clients may try that this proxy does not serve, and why (404 with this message).
UNSUPPORTED = {
    "/v1/completions": (
        "/v1/completions (text completions) is not supported by ponder serve: strategies sample and vote over "
        "chat answers, and loglikelihood scoring (echo with prompt logprobs) has no strategy to run. Use "
        "/v1/chat/completions (lm-eval: --model local-chat-completions with generate_until tasks); point "
        "loglikelihood clients at the upstream directly"),
    "/v1/responses": (
        "/v1/responses (the Responses API) is not supported by ponder serve: use /v1/chat/completions "
        "(inspect-ai's openai-api provider does by default)"),
    "/v1/embeddings": (
        "/v1/embeddings is not supported by ponder serve, which runs reasoning strategies over chat "
        "completions; ask the upstream directly"),
}


def _model(name: str, owner: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": owner}


class _FastRoute:
    """Outermost ASGI layer: ``POST path`` goes straight to ``handler``; everything else to the app."""

    def __init__(self, app: ASGIApp, path: str, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self.app, self.path, self.handler = app, path, handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            response = await self.handler(Request(scope, receive, send))
        except Exception as exc:  # the handler answers errors itself; this is the last resort, as Starlette's
            log.error("unhandled error in %s", self.path, exc_info=exc)
            response = error_response(exc)
        await response(scope, receive, send)


async def _serve(request: Request, chat: ChatRequest, state: _State, config: ServeConfig) -> Response:
    cid = new_id()
    ctxs = strategy.contexts(state.backend, state.slots, chat, cid)
    started = time.perf_counter()
    results: list[Result] = []

    def finish(error: BaseException | None) -> None:
        if error is not None and not isinstance(error, PonderError | asyncio.CancelledError):
            log.error("request %s failed", cid, exc_info=error)
        if state.log is not None:
            for i, ctx in enumerate(ctxs):
                state.log.save(chat, ctx, results[i] if i < len(results) else None, error,
                               time.perf_counter() - started)

    if chat.stream:
        if chat.strategy:
            async def produce(emit: Emit) -> None:
                with state.session.active():  # agent models the strategy opens belong to the session
                    results.extend(await strategy.stream(ctxs, chat, cid, emit, config.progress_interval_s))

            return await stream_response(request, produce, finish)
        return await stream_response(request, partial(passthrough.stream, ctxs[0], chat, cid), finish)
    body: dict[str, Any]
    try:
        if chat.strategy:
            async def solve() -> tuple[dict[str, Any], list[Result]]:
                with state.session.active():  # agent models the strategy opens belong to the session
                    return await strategy.complete(ctxs, chat, cid)

            body, done = await guarded(request, solve())
            results.extend(done)
        else:
            body = await guarded(request, passthrough.complete(ctxs[0], chat, cid))
    except ClientGone:
        finish(asyncio.CancelledError())
        return Response(status_code=499)
    except Exception as exc:
        finish(exc)
        return error_response(exc)
    finish(None)
    return json_response(body)


async def _read_json(request: Request, limit: int) -> Any:
    too_big = RequestError(f"the request body exceeds this server's limit of {limit:,} bytes "
                           "(ponder serve --max-body-bytes)", status=413, code="body_too_large")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_big
    try:
        return json.loads(body)
    except ValueError as exc:
        raise RequestError(f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:  # the decoder recurses per nesting level; no real request nests this deep
        raise RequestError("the request body is nested too deeply to be a chat request",
                           code="invalid_json") from None


async def _upstream_models(backend: Backend) -> frozenset[str]:
    list_models = getattr(backend, "list_models", None)
    if list_models is None:
        return frozenset()
    try:
        return frozenset(await list_models())
    except PonderError:
        return frozenset()
