"""Small bounded GET and POST requests for discovery, on the transport's sessions.

Every request goes through :class:`~langchain_gprochat._sessions.Sessions` (the same
proxy, TLS and connect settings as the chat model), reads at most a given number of
bytes (after decompression), follows only the redirects it is allowed to, and runs
under the settings' first-byte and between-chunks timeouts and one overall deadline.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from langchain_gprochat._decode import read, timeout_at
from langchain_gprochat._sessions import Sessions, TransportSettings, certificate_error
from langchain_gprochat._urls import MAX_REDIRECTS, REDIRECT_STATUSES, redact_url, redirect_target
from langchain_gprochat.errors import APIConnectionError, APITimeoutError, TimeoutKind

__all__ = ["Fetcher", "RedirectRefused", "Response", "origin_of", "without_userinfo"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, the default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def without_userinfo(url: str) -> str:
    """``url`` without ``user:password@``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


@dataclass(frozen=True)
class Response:
    """A bounded answer: ``body`` holds at most the limit; ``truncated`` says there was more."""

    url: str
    status: int
    content_type: str
    body: bytes
    truncated: bool

    def json(self) -> Any:
        """The body as JSON, or ``None`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class RedirectRefused(Exception):
    """A redirect that was not followed (``why``), to ``location``."""

    def __init__(self, status: int, why: str, location: str) -> None:
        super().__init__(f"{status} redirect to {location}: {why}")
        self.status = status
        self.why = why
        self.location = location


class Fetcher:
    """Bounded requests under one deadline, on sessions of ``settings``.

    Args:
        settings: proxy, TLS, headers and the connect, first-byte and between-chunks
            timeouts; ``total_timeout`` bounds everything this fetcher does.
    """

    def __init__(self, settings: TransportSettings) -> None:
        self.settings = settings
        self.sessions = Sessions(settings)
        self.requests = 0
        """Requests sent so far (redirect hops included)."""
        self._deadline: float | None = None

    async def __aenter__(self) -> Fetcher:
        total = self.settings.total_timeout
        self._deadline = None if total is None else asyncio.get_running_loop().time() + total
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.sessions.aclose()

    async def get(
        self,
        url: str,
        *,
        limit: int,
        headers: dict[str, str],
        origin: tuple[str, str, int | None] | None = None,
    ) -> Response:
        """GET ``url`` and read at most ``limit`` bytes of its body.

        Redirects are followed as :func:`redirect_target` allows (a 303 too, since this
        is a GET); with ``origin``, only to that same origin.

        Raises:
            RedirectRefused: a redirect that was not followed.
            APITimeoutError: a timeout fired.
            APIConnectionError: the server could not be reached.
        """
        parts = urlsplit(url)
        if not parts.path:
            url = urlunsplit(parts._replace(path="/"))
        for _ in range(MAX_REDIRECTS + 1):
            status, location, response = await self._send("GET", url, headers, limit, None)
            if response is not None:
                return response
            target, why = redirect_target(302 if status == 303 else status, url, location)
            if target is not None and origin is not None and origin_of(target) != origin:
                target, why = None, "it leads to another origin"
            if target is None:
                raise RedirectRefused(status, why, redact_url(location or ""))
            url = target
        raise RedirectRefused(status, f"more than {MAX_REDIRECTS} redirects", redact_url(location))

    async def post_json(self, url: str, payload: object, *, limit: int) -> Response:
        """POST ``payload`` as JSON to ``url`` and read at most ``limit`` bytes.

        Raises:
            RedirectRefused: a redirect (none is followed).
            APITimeoutError: a timeout fired.
            APIConnectionError: the server could not be reached.
        """
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        status, location, response = await self._send("POST", url, headers, limit, body)
        if response is None:
            raise RedirectRefused(status, "a POST is not re-sent", redact_url(location))
        return response

    def _when(self, seconds: float | None) -> tuple[float | None, float | None]:
        """``(deadline, total)``: when a wait of ``seconds`` times out, and the overall one."""
        now = asyncio.get_running_loop().time()
        limit = None if seconds is None else now + seconds
        total = self._deadline
        if total is not None and (limit is None or total <= limit):
            return total, total
        return limit, total

    def _timeout(
        self, kind: TimeoutKind, url: str, when: float | None, total: float | None
    ) -> APITimeoutError:
        s = self.settings
        if when is not None and when == total:
            return APITimeoutError("total", float(s.total_timeout or 0.0), url=url)
        value = s.first_byte_timeout if kind == "first_byte" else s.chunk_timeout
        return APITimeoutError(kind, float(value or 0.0), url=url)

    async def _send(
        self, method: str, url: str, headers: dict[str, str], limit: int, body: bytes | None
    ) -> tuple[int, str, Response | None]:
        """``(status, location, None)`` for a redirect, else ``(status, "", response)``."""
        shown = redact_url(url)
        session = await self.sessions.get()
        when, total = self._when(self.settings.first_byte_timeout)
        self.requests += 1
        try:
            async with timeout_at(when):
                response = await session.request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    proxy=self.settings.http_proxy,
                )
        except asyncio.TimeoutError:
            raise self._timeout("first_byte", shown, when, total) from None
        except aiohttp.ClientError as exc:
            raise _connection_error(exc, shown, self.settings) from exc
        try:
            if response.status in REDIRECT_STATUSES:
                return response.status, response.headers.get("Location", ""), None
            data, truncated = await self._read(response, limit, shown)
        finally:
            response.close()
        answer = Response(url, response.status, response.content_type, data, truncated)
        return response.status, "", answer

    async def _read(
        self, response: aiohttp.ClientResponse, limit: int, shown: str
    ) -> tuple[bytes, bool]:
        """At most ``limit`` bytes of the body, each wait under the chunk timeout."""
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            when, total = self._when(self.settings.chunk_timeout)
            try:
                data, broke = await read(response.content, when)
                if broke is not None:
                    raise broke
            except asyncio.TimeoutError:
                raise self._timeout("between_chunks", shown, when, total) from None
            except aiohttp.ClientError as exc:
                raise _connection_error(exc, shown, self.settings) from exc
            if not data:
                break
            chunks.append(data)
            size += len(data)
        return b"".join(chunks)[:limit], size > limit


def _connection_error(
    exc: aiohttp.ClientError, url: str, settings: TransportSettings
) -> APIConnectionError | APITimeoutError:
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ServerTimeoutError):
        return APITimeoutError("connect", float(settings.connect_timeout or 0.0), url=url)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return certificate_error(exc, url)
    return APIConnectionError(f"could not fetch {url}: {type(exc).__name__}: {exc}", url=url)
