"""Shared helpers of the integration tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from aiohttp import web
from langchain_core.messages import BaseMessage, HumanMessage

from langchain_gprochat._convert import messages_to_turns
from langchain_gprochat.protocol import Turn
from langchain_gprochat.server import GPROChatServer, echo_reply

Start = Callable[..., Awaitable[GPROChatServer]]
"""The ``start`` fixture: ``await start(backend=..., **settings_overrides)``."""


def assert_no_tracebacks_logged(
    caplog: pytest.LogCaptureFixture, *, from_level: int, handler_errors: bool = False
) -> None:
    """No record of the test logged a traceback; none at ``from_level`` or above has
    ``exc_info``, nor (unless ``handler_errors``) aiohttp's "Error handling request"."""
    for when in ("setup", "call", "teardown"):
        for record in caplog.get_records(when):
            text = record.getMessage()
            assert "Traceback" not in text, (when, text)
            if record.levelno >= from_level:
                assert record.exc_info is None, (when, text)
                assert handler_errors or "Error handling request" not in text, (when, text)


def expected_echo(messages: list[BaseMessage] | str) -> str:
    """The echo backend's exact answer to ``messages``, as ChatGPROChat sends them."""
    if isinstance(messages, str):
        messages = [HumanMessage(messages)]
    return echo_reply(messages_to_turns(messages))


def wait_until(condition: Callable[[], bool], what: str, *, limit: float = 10.0) -> None:
    """Poll ``condition`` (bounded); fail with ``what`` if it never holds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


async def async_wait_until(
    condition: Callable[[], bool], what: str, *, limit: float = 10.0
) -> None:
    """Async twin of :func:`wait_until`."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class GateBackend:
    """Streams ``first``, then waits until the test sets ``release``, then ``rest``.

    It lets a test observe what the client does while an answer is still under way.
    """

    def __init__(self, first: str = "first ", rest: str = "second") -> None:
        self.first, self.rest = first, rest
        self.release = threading.Event()
        self.finished = threading.Event()

    async def stream(self, turns: list[Turn]) -> AsyncIterator[str]:
        yield self.first
        for _ in range(3000):  # at most 30 s, cancellable when the server stops
            if self.release.is_set():
                break
            await asyncio.sleep(0.01)
        yield self.rest if self.release.is_set() else "timeout"
        self.finished.set()


@asynccontextmanager
async def serve_routes(
    routes: dict[str, Callable[..., object]], host: str = "127.0.0.1"
) -> AsyncIterator[str]:
    """Serve ``routes`` (path → handler, any method) on 127.0.0.1; yields the base URL.

    ``host`` is only the name put in the URL (``localhost`` names another host that also
    resolves to loopback). Handlers are cancelled when their client goes away, and
    stalled ones end at cleanup.
    """
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://{host}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def serve_generate(handler: Callable[..., object]) -> AbstractAsyncContextManager[str]:
    """Serve a bare ``/api/generate`` handler on 127.0.0.1; yields the base URL."""
    return serve_routes({"/api/generate": handler})
