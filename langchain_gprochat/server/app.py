"""The aiohttp application of the local gprochat-compatible server.

Routes: ``POST /api/generate`` (the answer, streamed), ``POST /api/auth`` (password
check), ``GET /api/models`` (the backends' names) and ``GET /healthz`` (for load
balancers). Handlers validate (:mod:`~langchain_gprochat.server.validation`), then delegate
to the backend and the stream writer (:mod:`~langchain_gprochat.server.streaming`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping

from aiohttp import HttpVersion11, web
from aiohttp.typedefs import Handler

from langchain_gprochat.protocol import APPLIED_HEADER, AUTH_PATH, GENERATE_PATH, Turn
from langchain_gprochat.server.backends import Backend, EchoBackend
from langchain_gprochat.server.body import expects_continue, read_body, stop_reading
from langchain_gprochat.server.faults import (
    DEFAULT_FAULT_BODY,
    FAULT_HEADER,
    Fault,
    FaultError,
    parse_fault,
)
from langchain_gprochat.server.generation import parse_generation_config
from langchain_gprochat.server.page import add_page_routes
from langchain_gprochat.server.quiet_log import stack_summary
from langchain_gprochat.server.routing import MODELS_PATH, BackendRoutes
from langchain_gprochat.server.settings import ServerSettings
from langchain_gprochat.server.state import STATE_KEY, ServerState
from langchain_gprochat.server.streaming import (
    AnswerResponse,
    StreamPlan,
    answer_source,
    stream_answer,
)
from langchain_gprochat.server.validation import (
    Rejected,
    check_auth,
    parse_generate,
    parse_json_object,
    password_ok,
)

__all__ = ["ERROR_CONTENT_TYPE", "HEALTH_PATH", "create_app", "error_response"]

logger = logging.getLogger("langchain_gprochat.server")

ERROR_CONTENT_TYPE = "text/plain;charset=UTF-8"
"""The content type of JSON error bodies, as upstream sends them."""

HEALTH_PATH = "/healthz"
"""The health check: 200 ``{"status":"ok"}``, 503 ``{"status":"closing"}`` on shutdown."""

_SETTINGS_FAULT_KEY = "\x00settings"


def _json(data: object) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "replace")  # a lone surrogate in an exception message


def error_response(
    status: int,
    message: str,
    code: str | None = None,
    *,
    close: bool = False,
    retry_after: str | None = None,
) -> web.Response:
    """A JSON error body ``{"error":{["code":...,]"message":...}}`` labelled text/plain.

    Args:
        status: the HTTP status.
        message: the error's message.
        code: the error's code, if any.
        close: close the connection after this answer (``Connection: close``).
        retry_after: the value of a ``Retry-After`` header, if any.
    """
    error = {"message": message} if code is None else {"code": code, "message": message}
    response = _text_response(status, _json({"error": error}), retry_after)
    if close:
        response.force_close()
    return response


def _rejection(exc: Rejected) -> web.Response:
    return error_response(exc.status, exc.message, close=exc.close, retry_after=exc.retry_after)


def _text_response(status: int, body: bytes, retry_after: str | None = None) -> web.Response:
    headers = {"Content-Type": ERROR_CONTENT_TYPE}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return web.Response(status=status, body=body, headers=headers)


def _body_size(response: web.StreamResponse) -> int:
    if isinstance(response, AnswerResponse):
        return response.body_bytes
    body = response.body if isinstance(response, web.Response) else None
    return len(body) if isinstance(body, bytes) else 0


def _requested_fault(request: web.Request, settings: ServerSettings) -> tuple[str, Fault | None]:
    """The fault for this request and its ledger key; header first, then settings."""
    if not settings.enable_faults:
        return "", None
    raw = request.headers.get(FAULT_HEADER)
    if raw is None:
        return _SETTINGS_FAULT_KEY, settings.fault
    try:
        return raw, parse_fault(raw)
    except FaultError as exc:
        raise Rejected(400, str(exc)) from None


async def handle_generate(request: web.Request) -> web.StreamResponse:
    """``POST /api/generate``: validate, authenticate, then stream the answer."""
    state = request.app[STATE_KEY]
    state.stats.requests += 1
    try:
        response = await _generate(request, state)
    except Exception:
        state.stats.record(500, 0)
        raise
    if not isinstance(response, AnswerResponse):
        state.stats.record(response.status, _body_size(response))
    return response


async def _generate(request: web.Request, state: ServerState) -> web.StreamResponse:
    settings = state.settings
    try:
        key, fault = _requested_fault(request, settings)
        body = parse_json_object(await read_body(request, settings, state.budget))
        generate = parse_generate(body)
        check_auth(
            generate,
            passwords=settings.passwords,
            secret_key=settings.secret_key,
            max_clock_skew=settings.max_clock_skew,
        )
        generation = _generation(body)
        backend = state.pick_backend(body)
    except Rejected as exc:
        if expects_continue(request):  # no body was invited: do not wait for one
            stop_reading(request)
        return _rejection(exc)
    if fault is not None:
        fault = state.ledger.take(key, fault)
    return await _deliver(request, state, backend, generate.messages, fault, generation)


def _generation(body: dict[str, object]) -> dict[str, float | int]:
    try:
        return parse_generation_config(body)
    except ValueError as exc:
        raise Rejected(400, str(exc)) from None


def _configured(
    backend: Backend, generation: dict[str, float | int]
) -> tuple[Backend, dict[str, str]]:
    """The backend for this request, and the header naming what it applied."""
    if not generation:
        return backend, {}
    configure = getattr(backend, "with_generation", None)
    applied: list[str] = []
    if configure is not None:
        backend, applied = configure(generation)
    return backend, {APPLIED_HEADER: ",".join(applied)} if applied else {}


async def _deliver(
    request: web.Request,
    state: ServerState,
    backend: Backend,
    turns: list[Turn],
    fault: Fault | None,
    generation: dict[str, float | int],
) -> web.StreamResponse:
    if fault is not None and fault.delay_first_byte:
        await asyncio.sleep(fault.delay_first_byte)
    if fault is not None and fault.status is not None:
        body = DEFAULT_FAULT_BODY if fault.body is None else fault.body
        return _text_response(fault.status, body.encode("utf-8", "replace"), fault.retry_after)
    backend, headers = _configured(backend, generation)
    source = answer_source(backend, turns, fault)
    try:
        first = await anext(source, None)
    except Exception as exc:
        logger.warning("backend failed before the answer: %s", type(exc).__name__)
        logger.debug("backend failure: %s", stack_summary(exc))
        return error_response(500, str(exc), code=type(exc).__name__)
    plan = StreamPlan.build(state.settings.chunk_delay, fault)
    return await stream_answer(request, first, source, plan, state, headers)


async def handle_auth(request: web.Request) -> web.Response:
    """``POST /api/auth``: ``{"code":0}`` if ``pass`` is accepted, else ``{"code":-1}``."""
    state = request.app[STATE_KEY]
    settings = state.settings
    try:
        body = parse_json_object(await read_body(request, settings, state.budget))
    except Rejected as exc:
        return _rejection(exc)
    code = 0 if password_ok(body.get("pass"), settings.passwords) else -1
    return _text_response(200, _json({"code": code}))


def _json_response(status: int, data: object) -> web.Response:
    return web.Response(
        status=status, body=_json(data), content_type="application/json", charset="utf-8"
    )


async def handle_models(request: web.Request) -> web.Response:
    """``GET /api/models``: the backends' names, the default first (OpenAI's list shape)."""
    return _json_response(200, request.app[STATE_KEY].all_routes.listing())


async def handle_health(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 ``{"status":"ok"}``; 503 ``{"status":"closing"}`` on shutdown.

    Holds no setting and no secret, and is not counted in the generate stats.
    """
    if request.app[STATE_KEY].closing:
        return _json_response(503, {"status": "closing"})
    return _json_response(200, {"status": "ok"})


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log one line per request: method, path, status, latency, body bytes out.

    Never logs the body, headers or query string, so no password, signature or text.
    Health checks are logged at DEBUG, so that a load balancer's polling stays out of
    the INFO log.
    """
    started = time.perf_counter()
    status, size = 499, 0  # 499: the handler was cancelled (client or shutdown)
    try:
        response = await handler(request)
        status, size = response.status, _body_size(response)
        return response
    except web.HTTPException as exc:
        status, size = exc.status, len((exc.text or "").encode())
        raise
    except Exception:
        status = 500
        raise
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.log(
            logging.DEBUG if request.path == HEALTH_PATH else logging.INFO,
            "%s %s %d %.1fms %dB",
            request.method,
            request.rel_url.raw_path,
            status,
            elapsed_ms,
            size,
        )


async def expect_handler(request: web.Request) -> web.StreamResponse | None:
    """The routes' ``Expect`` handler: leave ``100 Continue`` to the handler.

    aiohttp's default sends ``100 Continue`` before the handler runs, inviting a body
    the handler may then refuse; :func:`~langchain_gprochat.server.body.read_body`
    sends it once the checks that need no body have passed. Other expectations get 417.
    """
    if request.version != HttpVersion11 or expects_continue(request):
        return None
    stop_reading(request)
    message = "Unsupported Expect header: only 100-continue is supported."
    return error_response(417, message, close=True)


async def _mark_closing(app: web.Application) -> None:
    app[STATE_KEY].closing = True


async def _close_backends(app: web.Application) -> None:
    """Await ``aclose()`` of every backend that has one (its clients for this loop)."""
    for backend in app[STATE_KEY].all_routes.values():
        close = getattr(backend, "aclose", None)
        if close is not None:
            await close()


def _state(
    settings: ServerSettings, backend: Backend | Mapping[str, Backend] | None
) -> ServerState:
    routes = BackendRoutes.of(backend if backend is not None else EchoBackend())
    named = routes if routes.named else None
    return ServerState(settings=settings, backend=routes.default, routes=named)


def create_app(
    settings: ServerSettings | None = None,
    backend: Backend | Mapping[str, Backend] | None = None,
) -> web.Application:
    """Build the server's aiohttp application.

    Args:
        settings: how to authenticate and answer; defaults to ``ServerSettings()``.
        backend: what produces the answers; defaults to :class:`EchoBackend`. A mapping
            of names to backends (or a
            :class:`~langchain_gprochat.server.routing.BackendRoutes`) serves them all:
            a request's ``model`` picks one, the first is the default.

    Returns:
        An application with ``POST /api/generate``, ``POST /api/auth`` and, when
        ``settings.page`` is on, the chat page (:mod:`~langchain_gprochat.server.page`);
        its shared state (settings, backend, stats) is ``app[STATE_KEY]``. Also
        ``GET /api/models`` (the backends' names) and ``GET /healthz``.

    Raises:
        ValueError: an empty mapping or an invalid backend name.
    """
    settings = settings or ServerSettings()
    app = web.Application(client_max_size=settings.max_body, middlewares=[access_log])
    app[STATE_KEY] = _state(settings, backend)
    app.on_shutdown.append(_mark_closing)
    app.on_cleanup.append(_close_backends)
    app.router.add_post(GENERATE_PATH, handle_generate, expect_handler=expect_handler)
    app.router.add_post(AUTH_PATH, handle_auth, expect_handler=expect_handler)
    app.router.add_get(MODELS_PATH, handle_models)
    app.router.add_get(HEALTH_PATH, handle_health)
    if settings.page:
        add_page_routes(app)
    return app
