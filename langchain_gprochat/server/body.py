"""Reading a request body within the server's limits: size, time, memory, 100-continue.

* Size: a declared ``Content-Length`` over ``max_body`` is refused before anything is
  read (and before ``100 Continue``); a chunked body is refused once it passes the limit.
* Time: the whole body must arrive within ``body_timeout`` of the first read.
* Memory: the bytes held by all bodies being read share one :class:`BodyBudget`
  (``max_body_memory``); a request that would pass it is refused with 503.
* ``Expect: 100-continue``: ``100 Continue`` is sent only once the request passed the
  checks that need no body, so an oversized upload is refused before it starts.

Every refusal here closes the connection after the answer (``Connection: close``).
"""

from __future__ import annotations

import asyncio

from aiohttp import HttpVersion11, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import StreamReader

from langchain_gprochat.server.settings import ServerSettings, ServerStats
from langchain_gprochat.server.validation import UNREADABLE_MESSAGE, Rejected

__all__ = [
    "BUSY_MESSAGE",
    "BodyBudget",
    "BodyTimeoutError",
    "expects_continue",
    "read_body",
    "stop_reading",
]

BUSY_MESSAGE = "Server busy: too much request data is being received at once; retry later."
_READ_SIZE = 64 * 1024
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class BodyTimeoutError(asyncio.TimeoutError):
    """Set on a request's payload when its body took too long, or will not be read.

    A subclass of :class:`asyncio.TimeoutError` on purpose: when aiohttp drains the
    rest of an unread body after the answer ("lingering"), it stops quietly on this
    error instead of waiting for bytes that need not come.
    """


class BodyBudget:
    """The request-body bytes held at once, across all requests, against one limit.

    Args:
        limit: the most bytes held at once.
        stats: where the current and peak figures are kept.
    """

    def __init__(self, limit: int, stats: ServerStats) -> None:
        self.limit = limit
        self._stats = stats

    @property
    def available(self) -> int:
        """Bytes that can still be taken."""
        return self.limit - self._stats.body_bytes

    def take(self, size: int) -> bool:
        """Hold ``size`` more bytes if they fit; return whether they did."""
        stats = self._stats
        if stats.body_bytes + size > self.limit:
            return False
        stats.body_bytes += size
        stats.peak_body_bytes = max(stats.peak_body_bytes, stats.body_bytes)
        return True

    def give_back(self, size: int) -> None:
        """Release ``size`` bytes taken before."""
        self._stats.body_bytes -= size


def _too_large(limit: int, size: int | None) -> Rejected:
    if size is None:
        message = f"Request body too large: it exceeds the limit of {limit} bytes."
    else:
        message = f"Request body too large: {size} bytes exceeds the limit of {limit} bytes."
    return Rejected(413, message, close=True)


def _busy() -> Rejected:
    return Rejected(503, BUSY_MESSAGE, close=True, retry_after="1")


def expects_continue(request: web.BaseRequest) -> bool:
    """Whether the client waits for ``100 Continue`` before it sends the body."""
    expect = request.headers.get("Expect", "")
    return request.version == HttpVersion11 and expect.lower() == "100-continue"


def stop_reading(request: web.BaseRequest) -> None:
    """The body will not be read: let aiohttp close after the answer without draining it.

    Used where the client has sent no body yet (it waits for ``100 Continue``), or is
    trickling one too slowly to be worth the wait.
    """
    if not request.content.is_eof():
        request.content.set_exception(BodyTimeoutError("the body is not read"))


def _expire(content: StreamReader) -> None:
    if not content.is_eof():
        content.set_exception(BodyTimeoutError("the body took too long"))


async def read_body(request: web.Request, settings: ServerSettings, budget: BodyBudget) -> bytes:
    """Read the whole body within ``max_body``, ``body_timeout`` and the memory budget.

    Raises:
        Rejected: 413 over ``max_body``; 408 past ``body_timeout``; 503 when the bytes
            would not fit in the budget; 400 for a body cut off by a disconnect or with
            broken chunked encoding (which the client may never see).
    """
    limit = settings.max_body
    declared = request.content_length
    waiting = expects_continue(request)
    if declared is not None and declared > limit:
        if waiting:
            stop_reading(request)
        raise _too_large(limit, declared)
    if waiting:
        if declared is not None and declared > budget.available:
            stop_reading(request)
            raise _busy()
        await request.writer.write(_CONTINUE)
        request.writer.output_size = 0  # the answer's own bytes are counted from here
    content = request.content
    timer = None
    if settings.body_timeout is not None and not content.is_eof():
        timer = asyncio.get_running_loop().call_later(settings.body_timeout, _expire, content)
    body = bytearray()
    try:
        while chunk := await content.read(_READ_SIZE):
            if len(body) + len(chunk) > limit:
                raise _too_large(limit, declared)
            if not budget.take(len(chunk)):
                raise _busy()
            body += chunk
        return bytes(body)
    except BodyTimeoutError:
        message = f"Request body timeout: it did not arrive within {settings.body_timeout:g} s."
        raise Rejected(408, message, close=True) from None
    except (ConnectionResetError, HttpProcessingError):
        raise Rejected(400, UNREADABLE_MESSAGE, close=True) from None
    finally:
        if timer is not None:
            timer.cancel()
        budget.give_back(len(body))
