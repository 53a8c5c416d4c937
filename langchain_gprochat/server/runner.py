"""Running the server: on the current event loop, or on a background thread."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from aiohttp import web

from langchain_gprochat.server.app import create_app
from langchain_gprochat.server.backends import Backend
from langchain_gprochat.server.connection import ConnectionGuard, GuardedAppRunner
from langchain_gprochat.server.quiet_log import protocol_logger
from langchain_gprochat.server.settings import ServerSettings, ServerStats
from langchain_gprochat.server.state import STATE_KEY

__all__ = ["GPROChatServer"]

_LINGERING_TIME = 2.0
"""Seconds aiohttp may drain an unread body after a refusal, so the client reads it."""


class GPROChatServer:
    """A running local server, as an async or a sync context manager.

    ``async with GPROChatServer() as srv:`` serves on the current event loop;
    ``with GPROChatServer() as srv:`` serves on a daemon thread with its own loop and
    returns once the port listens. Either way ``srv.url`` is the base URL to give a
    client, and leaving the block stops the server and frees the port.

    Args:
        settings: server settings; defaults to ``ServerSettings()`` (127.0.0.1, a free
            port, the gprochat.com key, no password).
        backend: what produces the answers; defaults to the echo backend. A mapping of
            names to backends serves them all, picked by a request's ``model`` (see
            :mod:`~langchain_gprochat.server.routing`).
        ssl_context: serve HTTPS with this context.
        shutdown_timeout: seconds to let running answers finish when stopping, before
            they are cancelled; one deadline for all of them.
        **overrides: fields of :class:`ServerSettings` replacing those of ``settings``,
            e.g. ``GPROChatServer(passwords=("pw",), enable_faults=True)``.

    Example:
        .. code-block:: python

            with GPROChatServer(secret_key="my-key") as srv:
                print(srv.url)  # http://127.0.0.1:54321
    """

    def __init__(
        self,
        settings: ServerSettings | None = None,
        backend: Backend | Mapping[str, Backend] | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        shutdown_timeout: float = 5.0,
        **overrides: Any,
    ) -> None:
        base = settings if settings is not None else ServerSettings()
        self.settings = dataclasses.replace(base, **overrides) if overrides else base
        self.app = create_app(self.settings, backend)
        self.ssl_context = ssl_context
        self.shutdown_timeout = shutdown_timeout
        self._runner: GuardedAppRunner | None = None
        self._port: int | None = None
        self._used = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread_error: BaseException | None = None

    def __repr__(self) -> str:
        return f"GPROChatServer(url={self._url_or_none()!r}, settings={self.settings!r})"

    @property
    def stats(self) -> ServerStats:
        """Counters of generate traffic (kept after the server stopped)."""
        return self.app[STATE_KEY].stats

    @property
    def port(self) -> int:
        """The port the server listens on (the real one when started with port 0)."""
        if self._port is None:
            raise RuntimeError("the server is not running; use it as a context manager")
        return self._port

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:54321``."""
        url = self._url_or_none()
        if url is None:
            raise RuntimeError("the server is not running; use it as a context manager")
        return url

    def _url_or_none(self) -> str | None:
        if self._port is None:
            return None
        scheme = "https" if self.ssl_context is not None else "http"
        host = self.settings.host
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self._port}"

    def make_runner(self) -> GuardedAppRunner:
        """An aiohttp runner of :attr:`app` that applies the settings' limits, not set up.

        :meth:`start` serves through one; so does each worker of ``--workers N``
        (gunicorn's aiohttp worker sets it up and binds it to the shared sockets).
        """
        settings = self.settings
        return GuardedAppRunner(
            self.app,
            guard=ConnectionGuard.from_settings(settings, self.stats),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=self.shutdown_timeout,
            logger=protocol_logger(),
            keepalive_timeout=settings.keepalive_timeout,
            lingering_time=min(_LINGERING_TIME, settings.body_timeout or _LINGERING_TIME),
        )

    async def start(self) -> None:
        """Bind and start serving on the running event loop (once per instance)."""
        if self._used:
            raise RuntimeError("a GPROChatServer can be started only once; create a new one")
        self._used = True
        runner = self.make_runner()
        await runner.setup()
        self._runner = runner
        try:
            site = web.TCPSite(
                runner, self.settings.host, self.settings.port, ssl_context=self.ssl_context
            )
            await site.start()
        except BaseException:
            await self.stop()
            raise
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening, let running answers finish (up to ``shutdown_timeout``)."""
        runner, self._runner = self._runner, None
        self._port = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> GPROChatServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __enter__(self) -> GPROChatServer:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name="gprochat-server", daemon=True
        )
        self._thread.start()
        ready.wait()
        if self._thread_error is not None:
            self._thread.join()
            raise self._thread_error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._thread_error is not None:
            error, self._thread_error = self._thread_error, None
            raise error

    def _thread_main(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._serve_until_stopped(ready))
        except BaseException as exc:  # reported to the thread that called __enter__
            self._thread_error = exc
        finally:
            ready.set()

    async def _serve_until_stopped(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self.start()
        ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.stop()
