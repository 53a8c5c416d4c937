"""Decoding an answer: incremental UTF-8, the upstream's failure marker, what was delivered."""

from __future__ import annotations

import codecs
import logging

from langchain_gprochat.errors import StreamInterruptedError
from langchain_gprochat.protocol import INTERRUPTION_MARKER

__all__ = ["Decoder", "Delivered"]

logger = logging.getLogger("langchain_gprochat")

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
