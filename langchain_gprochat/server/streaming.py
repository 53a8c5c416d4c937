"""Streaming an answer to the client, with the faults that act on the stream.

The answer is the backend's text chunks encoded as UTF-8, each written as soon as it
comes, with no framing. The first chunk is fetched before the status line is sent, so
that a backend failing at once still gets a 500; a failure after that appends
``INTERRUPTION_MARKER`` and ends the 200 stream normally, as upstream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from aiohttp import web

from langchain_gprochat.protocol import INTERRUPTION_MARKER, Turn
from langchain_gprochat.server.backends import Backend
from langchain_gprochat.server.faults import Fault, filler_chunks
from langchain_gprochat.server.quiet_log import stack_summary
from langchain_gprochat.server.state import ServerState

__all__ = [
    "NO_BUFFERING_HEADER",
    "AnswerResponse",
    "StreamPlan",
    "answer_source",
    "stream_answer",
]

logger = logging.getLogger("langchain_gprochat.server")

NO_BUFFERING_HEADER = "X-Accel-Buffering"
"""Sent as ``no`` with every streamed answer: nginx then does not buffer it."""

_MARKER = INTERRUPTION_MARKER.encode()
_INVALID_UTF8 = b"\xff\xfe"


class AnswerResponse(web.StreamResponse):
    """A ``text/plain`` streamed answer that counts the body bytes it wrote.

    It carries ``X-Accel-Buffering: no``, so that nginx in front passes each chunk on
    as it comes instead of buffering the answer.
    """

    def __init__(self) -> None:
        super().__init__(status=200, headers={NO_BUFFERING_HEADER: "no"})
        self.content_type = "text/plain"
        self.charset = "utf-8"
        self.body_bytes = 0

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` and count it."""
        await super().write(data)
        self.body_bytes += len(data)


@dataclass(frozen=True)
class StreamPlan:
    """What to do to the stream besides sending it (from settings and the fault)."""

    chunk_delay: float = 0.0
    close_after_bytes: int | None = None
    invalid_utf8: bool = False
    mid_stream_error: bool = False

    @classmethod
    def build(cls, chunk_delay: float, fault: Fault | None) -> StreamPlan:
        """Combine the server's ``chunk_delay`` with an optional fault."""
        if fault is None:
            return cls(chunk_delay=chunk_delay)
        delay = fault.delay_between_chunks
        return cls(
            chunk_delay=chunk_delay if delay is None else delay,
            close_after_bytes=fault.close_after_bytes,
            invalid_utf8=fault.invalid_utf8,
            mid_stream_error=fault.mid_stream_error,
        )


class _CutOff(Exception):
    """The ``close_after_bytes`` budget is spent."""


async def _aclose(iterator: AsyncIterator[object]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def _encoded(backend: Backend, turns: list[Turn]) -> AsyncIterator[bytes]:
    chunks = backend.stream(turns)
    try:
        async for chunk in chunks:
            if chunk:
                yield chunk.encode()
    finally:
        await _aclose(chunks)


def answer_source(backend: Backend, turns: list[Turn], fault: Fault | None) -> AsyncIterator[bytes]:
    """The answer's bytes: the backend's chunks, or filler text for ``answer_bytes``."""
    if fault is not None and fault.answer_bytes is not None:
        return filler_chunks(fault.answer_bytes, fault.chunk_size)
    return _encoded(backend, turns)


class _Sink:
    """Writes to the response, enforcing the ``close_after_bytes`` budget."""

    def __init__(self, response: AnswerResponse, budget: int | None) -> None:
        self.response = response
        self.budget = budget

    async def write(self, data: bytes) -> None:
        if self.budget is not None:
            data = data[: self.budget]
            self.budget -= len(data)
        if data:
            await self.response.write(data)
        if self.budget == 0:
            raise _CutOff


async def _pump(sink: _Sink, first: bytes, rest: AsyncIterator[bytes], plan: StreamPlan) -> None:
    await sink.write(first)
    if plan.invalid_utf8:
        await sink.write(_INVALID_UTF8)
    if plan.mid_stream_error:
        await sink.write(_MARKER)
        return
    while True:
        try:
            chunk = await anext(rest, None)
        except Exception as exc:
            logger.warning("backend failed mid-answer: %s", type(exc).__name__)
            logger.debug("backend failure: %s", stack_summary(exc))
            await sink.write(_MARKER)
            return
        if chunk is None:
            return
        if plan.chunk_delay:
            await asyncio.sleep(plan.chunk_delay)
        await sink.write(chunk)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _cut_connection(request: web.Request) -> None:
    """Close the socket after flushing what was written, leaving the body unfinished."""
    transport = request.transport
    if transport is not None:
        transport.close()


async def stream_answer(
    request: web.Request,
    first: bytes | None,
    rest: AsyncIterator[bytes],
    plan: StreamPlan,
    state: ServerState,
    headers: Mapping[str, str] | None = None,
) -> AnswerResponse:
    """Send the 200 answer: ``first`` (``None`` for an empty answer), then ``rest``.

    A client that goes away mid-stream is counted in ``stats.client_disconnects`` once,
    and is not an error. Streams cut by a server shutdown are not counted.
    """
    stats = state.stats
    response = AnswerResponse()
    response.headers.update(headers or {})
    sink = _Sink(response, plan.close_after_bytes)
    stats.active_streams += 1
    counted = False

    def count() -> None:
        nonlocal counted
        if not counted:
            counted = True
            stats.active_streams -= 1
            if response.prepared:
                stats.record(200, response.body_bytes)

    try:
        await response.prepare(request)
        if first is not None:
            await _pump(sink, first, rest, plan)
        if plan.close_after_bytes is not None:
            raise _CutOff
        if _client_gone(request):  # it left before the end of the body reached it
            raise ConnectionResetError("the client went away")
        # Count before the end reaches the client: once it has the whole answer, the
        # stats already say so.
        count()
        await response.write_eof()
    except _CutOff:
        _cut_connection(request)
    except ConnectionResetError:
        if not state.closing:
            stats.client_disconnects += 1
    except asyncio.CancelledError:
        if _client_gone(request) and not state.closing:
            stats.client_disconnects += 1
        raise
    finally:
        count()
        await _aclose(rest)
    return response
