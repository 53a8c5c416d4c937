"""HTTP transport: aiohttp sessions, streaming, timeouts, retries and error mapping.

The transport knows nothing of LangChain. It posts a body to ``/api/generate`` and
yields the answer as text, decoded incrementally so that a chunk boundary inside a
multi-byte UTF-8 character never breaks it.

* **Sessions.** One ``aiohttp.ClientSession`` (and so one connection pool) per event
  loop. Each session is owned by a small *keeper* task on its loop: when the loop shuts
  down (``asyncio.run``, pytest-asyncio) the keeper is cancelled and closes the session,
  so no "Unclosed client session" warning appears whatever the usage. Sync calls run on
  one private loop driven by the calling threads (:mod:`langchain_gprochat._sync`).
* **Timeouts** are deadlines set around each single wait for the server
  (``asyncio.timeout_at``; ``async_timeout`` on Python 3.10), never across a ``yield``:
  they follow whichever task awaits the stream now (LangChain moves a stream between
  tasks), count only time spent waiting for the server, and a cancellation from outside
  stays a ``CancelledError``.
* **Redirects** are followed only to the same host, keeping the scheme or upgrading
  http to https (:func:`langchain_gprochat._urls.redirect_target`); any other is a
  :class:`~langchain_gprochat.errors.RedirectError`, so the password and the signed
  conversation never travel elsewhere.
* **Retries.** Connection errors, connect and first-byte timeouts, the statuses in
  :data:`RETRY_STATUSES` and a stream that failed before any text reached the caller
  are retried with exponential backoff and jitter, honouring ``Retry-After`` (capped;
  a malformed one falls back to the backoff). Nothing is retried once text has been
  delivered: that raises :class:`~langchain_gprochat.errors.StreamInterruptedError`.
* **Bounded reads.** An error body is read to at most
  :data:`~langchain_gprochat.errors.ERROR_BODY_MAX` bytes (decompressed), and a 200
  answer that is an HTML page raises
  :class:`~langchain_gprochat.errors.UnexpectedResponseError` after reading a preview.
* **Upstream mid-stream failure.** The upstream appends ``"Internal server error"`` to a
  200 stream when the model fails after it started. A stream whose text *ends* with
  exactly that marker is reported as an interruption; the marker is never delivered as
  answer text (a possible start of it is held back until the next bytes decide).
* **Invalid UTF-8** from the server is replaced with U+FFFD (as browsers do) and logged
  once per answer as a warning; it never raises.
* **Credentials in URLs** (``base_url``, ``proxy``) never appear in messages or logs:
  the URL is shown with its user info replaced by ``***``.
"""

from __future__ import annotations

import asyncio
import email.utils
import io
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing

import aiohttp

from langchain_gprochat._decode import Decoder, Delivered, read, read_bounded, timeout_at
from langchain_gprochat._sessions import Sessions, TransportSettings, certificate_error
from langchain_gprochat._status import status_error
from langchain_gprochat._urls import MAX_REDIRECTS, REDIRECT_STATUSES, redact_url, redirect_target
from langchain_gprochat.errors import (
    ERROR_BODY_MAX,
    RETRY_STATUSES,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    GPROChatError,
    RedirectError,
    StreamInterruptedError,
    TimeoutKind,
    UnexpectedResponseError,
)
from langchain_gprochat.protocol import INTERRUPTION_MARKER, parse_error_body

__all__ = ["RETRY_STATUSES", "Transport", "TransportSettings"]

logger = logging.getLogger("langchain_gprochat")

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
"""Content types of a 200 answer that is a web page, not a gprochat answer."""

_HTML_PREVIEW = 4096
_INLINE_BODY_MAX = 1 << 20
"""Larger request bodies are sent from a ``BytesIO`` (aiohttp warns about raw bytes)."""
_MARKER_HEAD = INTERRUPTION_MARKER[0]
_REPLACEMENT_BYTES = "\ufffd".encode()


class _Retry(Exception):
    """Internal: the attempt failed before any text was delivered and may be retried."""

    def __init__(self, error: GPROChatError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date).

    ``None`` for a missing or malformed value (``soon``, blank, ``inf``), so that the
    normal backoff applies; a date or a number in the past means no wait.
    """
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = parsed.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class Transport:
    """Streams answers from one gprochat endpoint, one session per event loop."""

    def __init__(self, settings: TransportSettings) -> None:
        self.settings = settings
        self.shown_url = redact_url(settings.url)
        """The endpoint's URL as messages and logs show it (credentials hidden)."""
        self.sessions = Sessions(settings)

    async def session(self) -> aiohttp.ClientSession:
        """The session of the running loop, created on first use."""
        return await self.sessions.get()

    async def aclose(self) -> None:
        """Close the session of the running loop, and ask other loops to close theirs."""
        await self.sessions.aclose()

    def close_other_loops(self) -> None:
        """Close sessions from outside any loop (sync ``close()`` and finalizers)."""
        self.sessions.close_other_loops()

    def abandon(self) -> None:
        """Forget every session without closing it (see :meth:`Sessions.abandon`)."""
        self.sessions.abandon()

    # -- streaming --------------------------------------------------------------------

    async def stream(
        self,
        body_factory: Callable[[], bytes],
        *,
        keep_partial: bool = True,
        on_response: Callable[[Mapping[str, str]], None] | None = None,
        restart: Callable[[], None] | None = None,
    ) -> AsyncGenerator[str, None]:
        """Post a freshly built body and yield the answer text as it arrives.

        ``total_timeout`` bounds the whole call, retries and backoff included; a retry
        whose backoff would outlast it is not made, and the last error is raised.

        Args:
            body_factory: called once per attempt, so that every retry is signed with a
                fresh timestamp.
            keep_partial: keep references to the text yielded so far, for
                ``StreamInterruptedError.partial_text``. With ``False`` the transport
                holds no answer text at all, so its memory stays within a few reads
                whatever the answer's size (for callers that forward and drop the text);
                ``partial_text`` is then empty and ``delivered_chars`` still counts.
            on_response: called with the headers of each 200 answer, before its text.
            restart: for a caller that has shown nothing of the text to anyone yet (a
                non-streaming call): an answer interrupted after some text is then
                retried like one that failed before its first byte, and ``restart`` is
                called first, so the caller drops the text it got.
        """
        s = self.settings
        loop = asyncio.get_running_loop()
        total = s.total_timeout
        deadline = None if total is None else loop.time() + total
        attempt = 0
        while True:
            yielded = False
            try:
                texts = self._attempt(body_factory(), deadline, keep_partial, on_response)
                async with aclosing(texts):
                    async for text in texts:
                        yielded = True
                        yield text
                return
            except StreamInterruptedError as exc:
                if restart is None:
                    raise
                retry = _Retry(exc)
            except _Retry as exc:
                retry = exc
            delay = self._backoff(attempt, retry.retry_after)
            if attempt >= s.max_retries or (
                deadline is not None and loop.time() + delay >= deadline
            ):
                raise _final(retry.error, restarted=yielded) from None
            attempt += 1
            if yielded and restart is not None:
                restart()
            logger.warning(
                "gprochat request to %s failed (%s); retry %d of %d in %.2fs",
                self.shown_url,
                retry.error.message,
                attempt,
                s.max_retries,
                delay,
            )
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        if retry_after is not None:
            return min(retry_after, s.retry_after_max)
        ceiling = min(s.retry_max_delay, s.retry_base_delay * (2.0**attempt))
        jitter: float = random.random()
        return ceiling * (0.5 + jitter / 2)

    def _deadline(
        self, phase: TimeoutKind, since: float, total: float | None
    ) -> tuple[float | None, TimeoutKind]:
        """When the wait of ``phase`` that began at ``since`` times out, and as which kind."""
        s = self.settings
        gap = s.first_byte_timeout if phase == "first_byte" else s.chunk_timeout
        limit = None if gap is None else since + gap
        if total is not None and (limit is None or total <= limit):
            return total, "total"
        return limit, phase

    def _timeout(self, kind: TimeoutKind) -> APITimeoutError:
        s = self.settings
        value = {
            "first_byte": s.first_byte_timeout,
            "between_chunks": s.chunk_timeout,
            "total": s.total_timeout,
            "connect": s.connect_timeout,
        }[kind]
        return APITimeoutError(kind, float(value or 0.0), url=self.shown_url)

    async def _attempt(
        self,
        body: bytes,
        total: float | None,
        keep_partial: bool,
        on_response: Callable[[Mapping[str, str]], None] | None,
    ) -> AsyncGenerator[str, None]:
        loop = asyncio.get_running_loop()
        session = await self.session()
        response: aiohttp.ClientResponse | None = None
        delivered = Delivered(keep_partial)
        reader = Decoder(self.shown_url)
        since = loop.time()
        when, kind = self._deadline("first_byte", since, total)
        try:
            async with timeout_at(when):
                response = await self._post(session, body)
                await self._check(response)
            if on_response is not None:
                on_response(response.headers)
            content = response.content
            while True:
                data, broke = await read(content, when)
                text = reader.feed(data)
                if text:
                    delivered.add(text)
                    yield text
                if broke is not None:
                    raise broke
                if not data:
                    break
                when, kind = self._deadline("between_chunks", loop.time(), total)
            if reader.failed:
                raise self._failed_mid_answer(delivered)
        except aiohttp.ClientError as exc:  # before TimeoutError: some are both
            raise self._client_error(exc, delivered) from exc
        except asyncio.TimeoutError:
            error = self._timeout(kind)
            if delivered.chars:
                raise delivered.interrupted(error.message.rstrip("."), self.shown_url) from None
            if kind == "first_byte":
                raise _Retry(error) from None
            raise error from None
        finally:
            if response is not None:
                response.close()

    async def _post(self, session: aiohttp.ClientSession, body: bytes) -> aiohttp.ClientResponse:
        """POST ``body``, following only the redirects :func:`redirect_target` allows."""
        s = self.settings
        url = s.url
        for _ in range(MAX_REDIRECTS + 1):
            data = body if len(body) <= _INLINE_BODY_MAX else io.BytesIO(body)
            response = await session.post(url, data=data, proxy=s.http_proxy, allow_redirects=False)
            if response.status not in REDIRECT_STATUSES:
                return response
            response.close()
            location = response.headers.get("Location", "")
            target, why = redirect_target(response.status, url, location)
            if target is None:
                raise RedirectError(
                    response.status, why, url=self.shown_url, location=redact_url(location)
                )
            url = target
        raise RedirectError(
            response.status,
            f"more than {MAX_REDIRECTS} redirects in a row",
            url=self.shown_url,
            location=redact_url(location),
        )

    async def _check(self, response: aiohttp.ClientResponse) -> None:
        """Raise for an answer that is not a 200 gprochat stream."""
        if response.status != 200:
            status = await _status_error(response, self.shown_url)
            if status.is_retryable:
                raise _Retry(status, status.retry_after)
            raise status
        if response.content_type in HTML_TYPES:
            preview, _ = await read_bounded(response, _HTML_PREVIEW)
            raise UnexpectedResponseError(
                response.status,
                response.headers.get("Content-Type", response.content_type),
                preview.decode("utf-8", "replace"),
                url=self.shown_url,
            )

    def _failed_mid_answer(self, delivered: Delivered) -> Exception:
        reason = (
            f'the server ended the stream with "{INTERRUPTION_MARKER}" (the model '
            "failed mid-answer)"
        )
        error = delivered.interrupted(reason, self.shown_url)
        return error if delivered.chars else _Retry(error)

    def _client_error(self, exc: aiohttp.ClientError, delivered: Delivered) -> Exception:
        url = self.shown_url
        broke = f"the connection broke ({type(exc).__name__}: {exc})"
        if delivered.chars:
            return delivered.interrupted(broke, url)
        if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ServerTimeoutError):
            timeout = float(self.settings.connect_timeout or 0.0)
            return _Retry(APITimeoutError("connect", timeout, url=url))
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return certificate_error(exc, url)
        if isinstance(exc, aiohttp.ClientPayloadError):
            return _Retry(delivered.interrupted(broke, url))
        return _Retry(
            APIConnectionError(
                f"could not get an answer from {url}: {type(exc).__name__}: {exc}", url=url
            )
        )


def _final(error: GPROChatError, *, restarted: bool) -> GPROChatError:
    """The error to raise when no retry is left; says so of an undelivered answer."""
    if not (restarted and isinstance(error, StreamInterruptedError)):
        return error
    return StreamInterruptedError(
        error.reason,
        partial_text=error.partial_text,
        url=error.url,
        chars=error.delivered_chars,
        retried=True,
    )


async def _status_error(response: aiohttp.ClientResponse, url: str) -> APIStatusError:
    body, truncated = await read_bounded(response, ERROR_BODY_MAX)
    message, code = parse_error_body(body)
    return status_error(
        response.status,
        message,
        url=url,
        server_code=code,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        body_truncated=truncated,
    )
