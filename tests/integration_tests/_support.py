"""Shared helpers of the integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from langchain_core.messages import BaseMessage, HumanMessage

from langchain_gprochat.protocol import messages_to_turns
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
