"""HTTP transport: aiohttp sessions, streaming, timeouts, retries and error mapping.

The transport knows nothing of LangChain. It posts a body to ``/api/generate`` and
yields the answer as text, decoded incrementally so that a chunk boundary inside a
multi-byte UTF-8 character never breaks it.

* **Sessions.** One ``aiohttp.ClientSession`` (and so one connection pool) per event
  loop. Each session is owned by a small *keeper* task on its loop: when the loop shuts
  down (``asyncio.run``, pytest-asyncio) the keeper is cancelled and closes the session,
  so no "Unclosed client session" warning appears whatever the usage. Sync calls run on
  one private loop driven by the calling threads (:mod:`langchain_gprochat._sync`).
* **Retries.** Connection errors, connect and first-byte timeouts, the statuses in
  :data:`RETRY_STATUSES` and a stream that failed before any text reached the caller
  are retried with exponential backoff and jitter, honouring ``Retry-After`` (capped).
  Nothing is retried once text has been delivered: that raises
  :class:`~langchain_gprochat.errors.StreamInterruptedError`.
* **Upstream mid-stream failure.** The upstream appends ``"Internal server error"`` to a
  200 stream when the model fails after it started. A stream whose text *ends* with
  exactly that marker is reported as an interruption; the marker is never delivered as
  answer text (a possible start of it is held back until the next bytes decide).
* **Invalid UTF-8** from the server is replaced with U+FFFD (as browsers do) and logged
  once per answer as a warning; it never raises.
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import io
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from langchain_gprochat.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    GPROChatError,
    StreamInterruptedError,
    TimeoutKind,
    status_error,
)
from langchain_gprochat.protocol import GENERATE_PATH, INTERRUPTION_MARKER, parse_error_body

__all__ = ["RETRY_STATUSES", "Transport", "TransportSettings"]

logger = logging.getLogger("langchain_gprochat")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses retried with backoff; 400, 401 and 413 never are."""

_READ_SIZE = 65536
_INLINE_BODY_MAX = 1 << 20
"""Larger request bodies are sent from a ``BytesIO`` (aiohttp warns about raw bytes)."""
_MARKER_HEAD = INTERRUPTION_MARKER[0]
_REPLACEMENT_BYTES = "\ufffd".encode()


@dataclass(frozen=True)
class TransportSettings:
    """Everything the transport needs; built by the chat model from its fields."""

    base_url: str
    connect_timeout: float | None = 10.0
    first_byte_timeout: float | None = 120.0
    chunk_timeout: float | None = 60.0
    total_timeout: float | None = 600.0
    max_retries: int = 2
    retry_base_delay: float = 0.5
    retry_max_delay: float = 8.0
    retry_after_max: float = 60.0
    proxy: str | None = field(default=None, repr=False)
    ssl: ssl.SSLContext | bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    max_connections: int = 100

    @property
    def url(self) -> str:
        """The full URL of the generate endpoint."""
        return self.base_url.rstrip("/") + GENERATE_PATH


class _Retry(Exception):
    """Internal: the attempt failed before any text was delivered and may be retried."""

    def __init__(self, error: GPROChatError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class _Watchdog:
    """Cancels the waiting task when the first-byte, chunk-gap or total timeout passes.

    It only ever cancels while the transport itself is awaiting the network
    (``waiting``), never while the caller is busy with a chunk. Starting a wait costs
    no timer operation: the single timer is always armed no later than the shortest
    configured gap from now (``_horizon``), so whatever wait starts before it fires has
    a later limit; when it fires, it checks the current wait and re-arms.
    """

    def __init__(self, settings: TransportSettings, deadline_total: float | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._first_byte = settings.first_byte_timeout
        self._chunk = settings.chunk_timeout
        self._settings = settings
        gaps = [g for g in (self._first_byte, self._chunk) if g is not None]
        self._horizon = min(gaps) if gaps else None
        self._deadline_total = deadline_total
        self._phase: TimeoutKind = "first_byte"
        self._wait_started = self._loop.time()
        self._handle: asyncio.TimerHandle | None = None
        self.waiting = False
        self.fired: TimeoutKind | None = None

    def begin(self, phase: TimeoutKind) -> None:
        """Start waiting for the network in ``phase``."""
        self._phase = phase
        self._wait_started = self._loop.time()
        self.waiting = True
        if self._handle is None:
            self._arm()

    def end(self) -> None:
        """Stop waiting (data arrived)."""
        self.waiting = False

    def cancel(self) -> None:
        """Disarm the timer for good."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _limit(self) -> float | None:
        """When the current wait times out (``None``: never)."""
        gap = self._first_byte if self._phase == "first_byte" else self._chunk
        limit = None if gap is None else self._wait_started + gap
        total = self._deadline_total
        if total is not None and (limit is None or total < limit):
            return total
        return limit

    def _arm(self) -> None:
        when = self._limit()
        if self._horizon is not None:
            horizon = self._loop.time() + self._horizon
            when = horizon if when is None else min(when, horizon)
        self._handle = None if when is None else self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        if not self.waiting:
            return  # the caller holds a chunk; begin() re-arms when the wait resumes
        now = self._loop.time()
        when = self._limit()
        if when is None or now < when:
            self._arm()
            return
        total = self._deadline_total
        self.fired = "total" if total is not None and now >= total else self._phase
        if self._task is not None:
            self._task.cancel()

    def timeout_of(self, kind: TimeoutKind) -> float:
        """The configured value of the timeout ``kind``, for error messages."""
        s = self._settings
        value = {
            "first_byte": s.first_byte_timeout,
            "between_chunks": s.chunk_timeout,
            "total": s.total_timeout,
            "connect": s.connect_timeout,
        }[kind]
        return float(value or 0.0)


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value.strip() else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


class _Delivered:
    """What reached the caller: a count of characters, and the text if it is kept."""

    __slots__ = ("chars", "parts")

    def __init__(self, keep_text: bool) -> None:
        self.chars = 0
        self.parts: list[str] | None = [] if keep_text else None

    def add(self, text: str) -> None:
        self.chars += len(text)
        if self.parts is not None:
            self.parts.append(text)

    def interrupted(self, reason: str, url: str) -> StreamInterruptedError:
        text = "" if self.parts is None else "".join(self.parts)
        return StreamInterruptedError(reason, partial_text=text, url=url, chars=self.chars)


class _MarkerGuard:
    """Holds back text that may be the start of the upstream's failure marker."""

    def __init__(self) -> None:
        self.held = ""

    def feed(self, text: str) -> str:
        if self.held:
            text = self.held + text
            self.held = ""
        start = max(0, len(text) - len(INTERRUPTION_MARKER))
        idx = text.rfind(_MARKER_HEAD, start)
        if idx != -1 and INTERRUPTION_MARKER.startswith(text[idx:]):
            self.held = text[idx:]
            return text[:idx]
        return text


class Transport:
    """Streams answers from one gprochat endpoint, one session per event loop."""

    def __init__(self, settings: TransportSettings) -> None:
        self.settings = settings
        self._sessions: dict[
            asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, asyncio.Task[None]]
        ] = {}

    # -- sessions -------------------------------------------------------------------

    def _new_session(self) -> aiohttp.ClientSession:
        s = self.settings
        connector: aiohttp.BaseConnector
        if s.proxy and s.proxy.startswith("socks"):
            try:
                from aiohttp_socks import ProxyConnector
            except ImportError as exc:  # pragma: no cover - depends on the extra
                raise ImportError(
                    "a SOCKS proxy needs the optional extra: pip install "
                    "'langchain-gprochat[socks]'"
                ) from exc
            connector = ProxyConnector.from_url(s.proxy, limit=s.max_connections, ssl=s.ssl)
        else:
            connector = aiohttp.TCPConnector(limit=s.max_connections, ssl=s.ssl)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=s.connect_timeout, sock_read=None
        )
        return aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=dict(s.headers)
        )

    async def session(self) -> aiohttp.ClientSession:
        """The session of the running loop, created on first use."""
        loop = asyncio.get_running_loop()
        entry = self._sessions.get(loop)
        if entry is not None and not entry[0].closed and not entry[1].done():
            return entry[0]
        self._prune()
        session = self._new_session()
        keeper = loop.create_task(_keep(session), name="gprochat-session-keeper")
        # The keeper waits for the loop's shutdown by design; never warn about it.
        keeper._log_destroy_pending = False  # type: ignore[attr-defined]
        self._sessions[loop] = (session, keeper)
        return session

    def _prune(self) -> None:
        """Forget the sessions of loops that have shut down (their keepers closed them)."""
        for loop, (_, keeper) in list(self._sessions.items()):
            if keeper.done() or loop.is_closed():
                del self._sessions[loop]

    async def aclose(self) -> None:
        """Close the session of the running loop, and ask other loops to close theirs."""
        current = asyncio.get_running_loop()
        for loop, (session, keeper) in list(self._sessions.items()):
            if loop is current:
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
                await session.close()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(keeper.cancel)
        self._sessions.clear()

    def close_other_loops(self) -> None:
        """Close sessions from outside any loop (sync ``close()`` and finalizers)."""
        for loop, (session, keeper) in list(self._sessions.items()):
            if loop.is_closed():
                continue
            if loop.is_running():
                loop.call_soon_threadsafe(keeper.cancel)
            else:
                keeper.cancel()
                loop.run_until_complete(asyncio.gather(keeper, return_exceptions=True))
                if not session.closed:
                    loop.run_until_complete(session.close())
        self._sessions.clear()

    # -- streaming --------------------------------------------------------------------

    async def stream(
        self, body_factory: Callable[[], bytes], *, keep_partial: bool = True
    ) -> AsyncIterator[str]:
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
        """
        s = self.settings
        loop = asyncio.get_running_loop()
        total = s.total_timeout
        deadline = None if total is None else loop.time() + total
        attempt = 0
        while True:
            try:
                async for text in self._attempt(body_factory(), deadline, keep_partial):
                    yield text
                return
            except _Retry as retry:
                delay = self._backoff(attempt, retry.retry_after)
                if attempt >= s.max_retries or (
                    deadline is not None and loop.time() + delay >= deadline
                ):
                    raise retry.error from None
                attempt += 1
                logger.warning(
                    "gprochat request to %s failed (%s); retry %d of %d in %.2fs",
                    s.url, retry.error.message, attempt, s.max_retries, delay,
                )
                await asyncio.sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        if retry_after is not None:
            return min(retry_after, s.retry_after_max)
        ceiling = min(s.retry_max_delay, s.retry_base_delay * (2.0**attempt))
        jitter: float = random.random()
        return ceiling * (0.5 + jitter / 2)

    async def _attempt(
        self, body: bytes, deadline: float | None, keep_partial: bool
    ) -> AsyncIterator[str]:
        s = self.settings
        session = await self.session()
        watchdog = _Watchdog(s, deadline)
        response: aiohttp.ClientResponse | None = None
        delivered = _Delivered(keep_partial)
        try:
            watchdog.begin("first_byte")
            data = body if len(body) <= _INLINE_BODY_MAX else io.BytesIO(body)
            response = await session.post(s.url, data=data, proxy=_http_proxy(s.proxy))
            if response.status != 200:
                status = await _status_error(response, s.url)
                if status.status_code in RETRY_STATUSES:
                    raise _Retry(status, status.retry_after)
                raise status
            async for text in self._read(response, watchdog, delivered):
                yield text
        except asyncio.CancelledError:
            kind = watchdog.fired
            if kind is None:
                raise
            _uncancel()
            error = APITimeoutError(kind, watchdog.timeout_of(kind), url=s.url)
            if delivered.chars:
                raise delivered.interrupted(error.message.rstrip("."), s.url) from None
            if kind == "first_byte":
                raise _Retry(error) from None
            raise error from None
        except aiohttp.ClientError as exc:
            raise self._client_error(exc, delivered) from exc
        finally:
            watchdog.cancel()
            if response is not None:
                response.close()

    async def _read(
        self, response: aiohttp.ClientResponse, watchdog: _Watchdog, delivered: _Delivered
    ) -> AsyncIterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        guard = _MarkerGuard()
        content = response.content
        replaced = False
        while True:
            data = await content.read(_READ_SIZE)
            watchdog.end()
            if not data:
                break
            decoded = decoder.decode(data)
            if not replaced and "\ufffd" in decoded:
                replaced = _warn_if_replaced(decoded, data, self.settings.url)
            text = guard.feed(decoded)
            if text:
                delivered.add(text)
                yield text
            watchdog.begin("between_chunks")
        tail = guard.feed(decoder.decode(b"", final=True))
        failed = guard.held == INTERRUPTION_MARKER
        if not failed:
            tail += guard.held
        if tail:
            delivered.add(tail)
            yield tail
        if failed:
            reason = (
                f'the server ended the stream with "{INTERRUPTION_MARKER}" (the model '
                "failed mid-answer)"
            )
            error = delivered.interrupted(reason, self.settings.url)
            if delivered.chars:
                raise error
            raise _Retry(error)

    def _client_error(self, exc: aiohttp.ClientError, delivered: _Delivered) -> Exception:
        url = self.settings.url
        broke = f"the connection broke ({type(exc).__name__}: {exc})"
        if delivered.chars:
            return delivered.interrupted(broke, url)
        if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ServerTimeoutError):
            timeout = float(self.settings.connect_timeout or 0.0)
            return _Retry(APITimeoutError("connect", timeout, url=url))
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return APIConnectionError(
                f"TLS certificate verification failed for {url}: {exc.certificate_error}. "
                "Pass `verify` (a CA bundle path) or `ssl_context` to trust the server",
                url=url,
            )
        if isinstance(exc, aiohttp.ClientPayloadError):
            return _Retry(delivered.interrupted(broke, url))
        return _Retry(
            APIConnectionError(
                f"could not get an answer from {url}: {type(exc).__name__}: {exc}", url=url
            )
        )


async def _keep(session: aiohttp.ClientSession) -> None:
    """Wait for the loop to shut down (this task is cancelled), then close ``session``.

    A loop closed without cancelling its tasks never runs this; call
    ``ChatGPROChat.aclose()`` before closing a loop you manage yourself.
    """
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:
        await session.close()
        raise


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()


def _http_proxy(proxy: str | None) -> str | None:
    return None if proxy is None or proxy.startswith("socks") else proxy


def _warn_if_replaced(decoded: str, data: bytes, url: str) -> bool:
    """Warn when the decoder replaced bytes (a U+FFFD the server sent itself is fine)."""
    if decoded.count("\ufffd") <= data.count(_REPLACEMENT_BYTES):
        return False
    logger.warning(
        "the answer from %s contains bytes that are not valid UTF-8; they were replaced "
        "with U+FFFD",
        url,
    )
    return True


async def _status_error(response: aiohttp.ClientResponse, url: str) -> APIStatusError:
    body = await response.read()
    message, code = parse_error_body(body)
    return status_error(
        response.status,
        message,
        url=url,
        server_code=code,
        retry_after=_parse_retry_after(response.headers.get("Retry-After")),
    )


