"""Fixtures shared by the integration tests: servers on 127.0.0.1, started per need."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from langchain_gprochat.server import GPROChatServer

from ._support import Start


@pytest.fixture(scope="module")
def echo_server() -> Iterator[GPROChatServer]:
    """The default server (echo backend, no password), one per test module."""
    with GPROChatServer() as srv:
        yield srv


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Start servers on this loop: ``await start(backend=..., **settings_overrides)``."""
    async with AsyncExitStack() as stack:

        async def _start(backend: Any = None, **overrides: Any) -> GPROChatServer:
            return await stack.enter_async_context(GPROChatServer(backend=backend, **overrides))

        yield _start
