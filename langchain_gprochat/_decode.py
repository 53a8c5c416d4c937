"""Reading an answer: bounded reads, incremental UTF-8, the failure marker, what arrived."""

from __future__ import annotations

import asyncio
import codecs
import logging
import sys

import aiohttp

from langchain_gprochat.errors import StreamInterruptedError
from langchain_gprochat.protocol import INTERRUPTION_MARKER

__all__ = ["READ_SIZE", "Decoder", "Delivered", "read", "read_bounded", "timeout_at"]

logger = logging.getLogger("langchain_gprochat")

if sys.version_info >= (3, 11):
    from asyncio import timeout_at
else:  # pragma: no cover - exercised on Python 3.10
    from async_timeout import timeout_at  # type: ignore[import-not-found,unused-ignore]

READ_SIZE = 65536
"""Bytes asked of the connection per read of an answer."""

_MARKER_HEAD = INTERRUPTION_MARKER[0]
_REPLACEMENT_BYTES = "\ufffd".encode()


class Delivered:
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


class Decoder:
    """Decodes the answer's bytes incrementally and holds back the failure marker.

    Text that may be the start of the upstream's ``Internal server error`` marker is
    held until the next bytes decide; at the end (``feed(b"")``) the marker, if that is
    how the text ends, is dropped and ``failed`` is set.
    """

    def __init__(self, shown_url: str) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""
        self._shown_url = shown_url
        self._warned = False
        self.failed = False

    def feed(self, data: bytes) -> str:
        """The text of ``data`` that is certainly answer text; ``b""`` ends the answer."""
        final = not data
        text = self._decoder.decode(data, final=final)
        if not self._warned and "\ufffd" in text:
            self._warned = _warn_if_replaced(text, data, self._shown_url)
        text, self._held = self._held + text, ""
        if final:
            self.failed = text.endswith(INTERRUPTION_MARKER)
            return text[: -len(INTERRUPTION_MARKER)] if self.failed else text
        start = max(0, len(text) - len(INTERRUPTION_MARKER))
        idx = text.rfind(_MARKER_HEAD, start)
        if idx != -1 and INTERRUPTION_MARKER.startswith(text[idx:]):
            self._held = text[idx:]
            return text[:idx]
        return text


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


async def read(
    content: aiohttp.StreamReader, when: float | None
) -> tuple[bytes, aiohttp.ClientPayloadError | None]:
    """The next bytes of the answer (waiting until ``when``), and the error that ended it.

    Bytes already buffered are taken without a wait, so no timer is armed for them
    (most reads of a fast answer); a deadline already past still raises. When the
    connection breaks, aiohttp raises at the next read even if bytes that arrived before
    the break are still buffered (a caller that was busy had not read them yet): those
    bytes are returned with the error, so that they are delivered before it and
    ``partial_text`` is everything that arrived.
    """
    try:
        if content.at_eof():
            return b"", None
        if when is not None and asyncio.get_running_loop().time() >= when:
            raise asyncio.TimeoutError
        data = content.read_nowait(READ_SIZE)
        if data:
            return data, None
        async with timeout_at(when):
            return await content.read(READ_SIZE), None
    except aiohttp.ClientPayloadError as exc:
        buffered = getattr(content, "_buffer", None)  # aiohttp keeps it; no public way
        if not buffered:
            raise
        data = b"".join(buffered)
        buffered.clear()
        return data, exc


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the (decompressed) body, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        data = await response.content.read(limit + 1 - size)
        if not data:
            break
        chunks.append(data)
        size += len(data)
    body = b"".join(chunks)
    return body[:limit], size > limit
