"""Settings and counters of the local gprochat-compatible server."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from langchain_gprochat.protocol import DEFAULT_SECRET_KEY
from langchain_gprochat.server.faults import Fault

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_BODY_MEMORY",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_HISTORY_MESSAGES",
    "ServerSettings",
    "ServerStats",
]

DEFAULT_MAX_BODY = 1024 * 1024
"""Largest accepted request body, in bytes (1 MiB)."""
DEFAULT_HEADER_TIMEOUT = 10.0
"""Seconds a request's headers may take to arrive."""
DEFAULT_BODY_TIMEOUT = 60.0
"""Seconds a request's body may take to arrive, once its headers are in."""
DEFAULT_KEEPALIVE_TIMEOUT = 75.0
"""Seconds an idle kept-alive connection stays open (longer than aiohttp clients' 15 s)."""
DEFAULT_MAX_CONNECTIONS = 1000
"""Most connections open at once (fewer if the process may not open that many files)."""
DEFAULT_MAX_BODY_MEMORY = 64 * 1024 * 1024
"""Most request-body bytes held at once across all requests (64 MiB)."""
DEFAULT_MAX_HISTORY_MESSAGES = 99
"""Messages the chat page sends at most, as the upstream's ``PUBLIC_MAX_HISTORY_MESSAGES``."""


@dataclass(frozen=True)
class ServerSettings:
    """How the server listens, authenticates and answers.

    ``secret_key`` and ``passwords`` never appear in ``repr()``.

    Attributes:
        host: the address to bind (loopback by default).
        port: the port to bind; 0 picks a free one.
        secret_key: the deployment's ``PUBLIC_SECRET_KEY``; ``""`` means none, and
            requests are then signed with ``""``.
        passwords: accepted site passwords; empty means no password is required. A
            single string is split on commas, like the upstream's ``SITE_PASSWORD``.
        max_body: largest accepted request body in bytes; larger ones get 413.
        max_clock_skew: when set, requests whose ``time`` differs from the server's clock
            by more than this many seconds get 401 "Request expired."; ``None`` (the
            default, as upstream) disables the check.
        enable_faults: honour the ``X-GPROChat-Fault`` header and ``fault``.
        chunk_delay: seconds to sleep between two chunks of every answer (for demos).
        fault: a fault applied to every request when ``enable_faults`` is on and the
            request carries no fault header of its own.
        header_timeout: seconds for a request's headers to arrive, counted from the
            connection's opening for its first request and from the first byte of each
            later one; then the server answers 408 and closes. ``None``: no limit.
        body_timeout: seconds for a request's whole body to arrive, counted from the
            end of its headers; then the server answers 408 and closes. ``None``: no
            limit.
        keepalive_timeout: seconds a connection may sit idle between two requests
            before the server closes it.
        max_connections: most connections open at once; more are answered 503 and
            closed at once, while the open ones keep being served. Lowered to the
            process's open-file limit minus a reserve, if that is smaller.
        max_body_memory: most request-body bytes held at once, summed over all the
            requests being read; a request that would pass it gets 503 with
            ``Retry-After``. At least ``max_body``.
        page: serve the chat page at ``GET /`` (and its static files).
        max_history_messages: the most messages the chat page sends (the latest
            ones), like the upstream's ``PUBLIC_MAX_HISTORY_MESSAGES``; the API itself
            does not cut histories, as upstream.
    """

    host: str = "127.0.0.1"
    port: int = 0
    secret_key: str = field(default=DEFAULT_SECRET_KEY, repr=False)
    passwords: tuple[str, ...] = field(default=(), repr=False)
    max_body: int = DEFAULT_MAX_BODY
    max_clock_skew: float | None = None
    enable_faults: bool = False
    chunk_delay: float = 0.0
    fault: Fault | None = None
    header_timeout: float | None = DEFAULT_HEADER_TIMEOUT
    body_timeout: float | None = DEFAULT_BODY_TIMEOUT
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_body_memory: int = DEFAULT_MAX_BODY_MEMORY
    page: bool = True
    max_history_messages: int = DEFAULT_MAX_HISTORY_MESSAGES

    def __post_init__(self) -> None:
        passwords: object = self.passwords
        if isinstance(passwords, str):
            object.__setattr__(self, "passwords", tuple(passwords.split(",")))
        elif not isinstance(passwords, tuple):
            object.__setattr__(self, "passwords", tuple(self.passwords))
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {self.port}")
        if self.max_body < 1:
            raise ValueError(f"max_body must be at least 1 byte, got {self.max_body}")
        if self.max_clock_skew is not None and not self.max_clock_skew > 0:
            raise ValueError(
                f"max_clock_skew must be a positive number of seconds or None, "
                f"got {self.max_clock_skew}"
            )
        if not (math.isfinite(self.chunk_delay) and self.chunk_delay >= 0):
            raise ValueError(f"chunk_delay must be >= 0 seconds, got {self.chunk_delay}")
        self._check_limits()

    def _check_limits(self) -> None:
        for name in ("header_timeout", "body_timeout", "keepalive_timeout"):
            value = getattr(self, name)
            optional = name != "keepalive_timeout"
            if optional and value is None:
                continue
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                none = " or None" if optional else ""
                raise ValueError(f"{name} must be a positive number of seconds{none}, got {value}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {self.max_connections}")
        if self.max_history_messages < 1:
            raise ValueError(
                f"max_history_messages must be at least 1, got {self.max_history_messages}"
            )
        if self.max_body_memory < self.max_body:
            raise ValueError(
                f"max_body_memory ({self.max_body_memory}) must be at least max_body "
                f"({self.max_body}), or no body of the largest size could ever be read"
            )


@dataclass
class ServerStats:
    """Counters of ``POST /api/generate`` traffic and of connections, for tests and monitoring.

    Attributes:
        requests: generate requests received.
        statuses: how many generate answers were sent with each status code.
        client_disconnects: streamed answers aborted because the client went away.
        active_streams: answers streaming right now.
        bytes_out: response body bytes sent to generate requests.
        connections: connections open right now (refused ones not counted).
        peak_connections: the most connections that were open at once.
        connections_refused: connections answered 503 at once, over ``max_connections``.
        header_timeouts: connections closed because a request's headers were too slow.
        body_bytes: request-body bytes held right now (all requests).
        peak_body_bytes: the most request-body bytes that were held at once.
    """

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    client_disconnects: int = 0
    active_streams: int = 0
    bytes_out: int = 0
    connections: int = 0
    peak_connections: int = 0
    connections_refused: int = 0
    header_timeouts: int = 0
    body_bytes: int = 0
    peak_body_bytes: int = 0

    def record(self, status: int, body_bytes: int) -> None:
        """Count one answer with ``status`` and ``body_bytes`` of body."""
        self.statuses[status] += 1
        self.bytes_out += body_bytes
