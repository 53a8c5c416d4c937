"""Shared helpers of the integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from langchain_core.messages import BaseMessage, HumanMessage

from langchain_gprochat._convert import messages_to_turns
from langchain_gprochat.protocol import Turn
from langchain_gprochat.server import echo_reply


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
async def serve_generate(handler: Callable[..., object]) -> AsyncIterator[str]:
    """Serve a bare ``POST /api/generate`` handler on 127.0.0.1; yields the base URL."""
    app = web.Application()
    app.router.add_post("/api/generate", handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
