"""Connection-level limits: header timeout, connection cap, one shutdown deadline.

aiohttp's ``web.RequestHandler`` (one per connection) has a keep-alive timeout but no
limit on how long a request's headers may take, nor on how many connections are open.
:class:`GuardedRequestHandler` adds both, and stops within one ``shutdown_timeout``:

* **Header timeout.** A timer starts when the connection opens and again at the first
  byte of each later request; it is cancelled once the request's headers are parsed.
  If it fires, the server answers 408 and closes (or, while an answer is under way on
  the connection, closes once that answer is done). From the first byte of a request
  on, aiohttp's keep-alive (idle) timer is off until the answer has been sent.
* **Connection cap.** Past ``max_connections`` open connections, a new one is answered
  503 and closed at once, and the open ones go on being served. The cap is lowered to
  the process's open-file limit minus a reserve, so that the server never runs out of
  file descriptors (which would stall every client, the served ones included).
* **Shutdown.** aiohttp waits up to the timeout for a running answer, then up to the
  timeout again after asking it to stop; here one deadline covers both, and what runs
  past it is cancelled.

:class:`GuardedAppRunner` is an ``aiohttp.web.AppRunner`` that serves through these.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from langchain_gprochat.server.settings import ServerSettings, ServerStats

__all__ = [
    "BUSY_CONNECTIONS_MESSAGE",
    "ConnectionGuard",
    "GuardedAppRunner",
    "GuardedRequestHandler",
    "GuardedServer",
    "connection_limit",
]

logger = logging.getLogger("langchain_gprochat.server")

BUSY_CONNECTIONS_MESSAGE = "Server busy: too many open connections; retry later."
_FD_RESERVE = 64
"""File descriptors kept free for the listening socket, backends, logs and refusals."""
_CANCEL_GRACE = 1.0
"""Seconds a cancelled answer gets to run its clean-up at shutdown."""

_Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def _raw_response(status: int, message: str, retry_after: str | None = None) -> bytes:
    """A complete ``Connection: close`` answer with a JSON error body, as raw bytes."""
    body = json.dumps({"error": {"message": message}}, separators=(",", ":")).encode()
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: text/plain;charset=UTF-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if retry_after is not None:
        lines.append(f"Retry-After: {retry_after}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def connection_limit(configured: int) -> int:
    """``configured``, lowered to the soft open-file limit minus a reserve if smaller."""
    try:
        import resource  # POSIX only

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return configured
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return configured
    return max(1, min(configured, soft - _FD_RESERVE))


@dataclass
class ConnectionGuard:
    """What the connections of one server share: the limits and the counters.

    Attributes:
        stats: the server's counters (``connections``, ``connections_refused``, ...).
        max_connections: the cap actually applied (see :func:`connection_limit`).
        header_timeout: seconds for a request's headers, or ``None``.
        busy_response: the raw 503 sent to a connection over the cap.
        header_timeout_response: the raw 408 sent when headers are too slow.
    """

    stats: ServerStats
    max_connections: int
    header_timeout: float | None
    busy_response: bytes
    header_timeout_response: bytes

    @classmethod
    def from_settings(cls, settings: ServerSettings, stats: ServerStats) -> ConnectionGuard:
        """The guard for ``settings``; logs a warning if the file limit lowers the cap."""
        limit = connection_limit(settings.max_connections)
        if limit < settings.max_connections:
            logger.warning(
                "max_connections lowered from %d to %d: the process may open only %d "
                "files (raise it with ulimit -n)",
                settings.max_connections,
                limit,
                limit + _FD_RESERVE,
            )
        timeout = settings.header_timeout
        late = f"Request header timeout: the headers did not arrive within {timeout:g} s."
        return cls(
            stats=stats,
            max_connections=limit,
            header_timeout=timeout,
            busy_response=_raw_response(503, BUSY_CONNECTIONS_MESSAGE, retry_after="1"),
            header_timeout_response=_raw_response(408, late),
        )

    def admit(self) -> bool:
        """Count a new connection if there is room for it."""
        stats = self.stats
        if stats.connections >= self.max_connections:
            stats.connections_refused += 1
            return False
        stats.connections += 1
        stats.peak_connections = max(stats.peak_connections, stats.connections)
        return True

    def release(self) -> None:
        """Count a connection gone."""
        self.stats.connections -= 1


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection handler, with a header timeout and the connection cap."""

    def __init__(
        self, manager: GuardedServer, *, loop: asyncio.AbstractEventLoop, **kwargs: Any
    ) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._guard = manager.guard
        self._admitted = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # payload of the latest parsed request

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Serve the connection if there is room, else answer 503 and close it."""
        if not self._guard.admit():
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(self._guard.busy_response)
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        """Release the connection's place and timers."""
        if not self._admitted:
            return
        self._admitted = False
        self._disarm_header_timer()
        self._guard.release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse ``data``; time the headers of a request from its first byte."""
        if not self._admitted:
            return
        if data and self._between_requests():
            self._stop_idle_timer()  # not idle any more: the header timeout governs
            if self._header_timer is None:
                self._arm_header_timer()
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # the headers of a request are in
            self._disarm_header_timer()
            self._body = self._messages[-1][1] if self._messages else None

    def _between_requests(self) -> bool:
        """Whether the next byte begins a request (no body is still arriving)."""
        return self._body is None or self._body.is_eof()

    def _stop_idle_timer(self) -> None:
        # aiohttp re-arms its keep-alive timer after the answer (it arms it only when
        # there is none), and would otherwise close a connection whose next request is
        # arriving, even slowly but within the header timeout.
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
            self._keepalive_handle = None

    def _arm_header_timer(self) -> None:
        timeout = self._guard.header_timeout
        if timeout is not None:
            self._header_timer = self._loop.call_later(timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        transport = self.transport
        if transport is None or self._force_close or self._close:
            return
        self._guard.stats.header_timeouts += 1
        if self._request_in_progress or self._messages:
            self.close()  # finish the answer under way, then close
            return
        transport.write(self._guard.header_timeout_response)
        self.force_close()

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        """Let the running answer finish within ``timeout``, then cancel it; close."""
        self._force_close = True
        self._disarm_header_timer()
        self._stop_idle_timer()
        task = self._task_handler
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()
                await asyncio.wait({task}, timeout=_CANCEL_GRACE)
        self.force_close()


class GuardedServer(web.Server):
    """aiohttp's low-level server, making :class:`GuardedRequestHandler` connections."""

    def __init__(self, handler: _Handler, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.guard = guard

    def __call__(self) -> GuardedRequestHandler:
        """A handler for one new connection."""
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """An ``AppRunner`` whose connections are :class:`GuardedRequestHandler` ones.

    Args:
        app: the application.
        guard: the limits and counters the connections share.
        **kwargs: as for ``aiohttp.web.AppRunner``.
    """

    def __init__(self, app: web.Application, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # runs the app's startup, freezes it
        return GuardedServer(
            plain.request_handler,
            guard=self.guard,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **plain._kwargs,
        )
