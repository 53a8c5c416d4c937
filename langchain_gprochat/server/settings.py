"""Settings and counters of the local gprochat-compatible server."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from langchain_gprochat.protocol import DEFAULT_SECRET_KEY
from langchain_gprochat.server.faults import Fault

__all__ = ["DEFAULT_MAX_BODY", "ServerSettings", "ServerStats"]

DEFAULT_MAX_BODY = 1024 * 1024
"""Largest accepted request body, in bytes (1 MiB)."""


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


@dataclass
class ServerStats:
    """Counters of ``POST /api/generate`` traffic, for tests and monitoring.

    Attributes:
        requests: generate requests received.
        statuses: how many generate answers were sent with each status code.
        client_disconnects: streamed answers aborted because the client went away.
        active_streams: answers streaming right now.
        bytes_out: response body bytes sent to generate requests.
    """

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    client_disconnects: int = 0
    active_streams: int = 0
    bytes_out: int = 0

    def record(self, status: int, body_bytes: int) -> None:
        """Count one answer with ``status`` and ``body_bytes`` of body."""
        self.statuses[status] += 1
        self.bytes_out += body_bytes
