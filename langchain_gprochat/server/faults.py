"""Fault injection for the local server: failures on demand, for client tests.

Faults are off unless ``ServerSettings(enable_faults=True)``. Then a request may carry
the header ``X-GPROChat-Fault: key=value; key=value``, parsed by :func:`parse_fault`
into a :class:`Fault`. A fault applies only once the request passed validation, the
password and the signature checks.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = [
    "DEFAULT_FAULT_BODY",
    "FAULT_HEADER",
    "FILLER_ALPHABET",
    "Fault",
    "FaultError",
    "FaultLedger",
    "filler_chunks",
    "filler_text",
    "parse_fault",
]

FAULT_HEADER = "X-GPROChat-Fault"
DEFAULT_FAULT_BODY = '{"error":{"message":"Injected fault."}}'
FILLER_ALPHABET = "0123456789abcdef"
"""Character ``i`` of :func:`filler_text` is ``FILLER_ALPHABET[i % 16]``."""

_MAX_DELAY = 3600.0
_MAX_SIZE = 1 << 40


@dataclass(frozen=True)
class Fault:
    """One injected failure; every field left at its default does nothing.

    Attributes:
        status: answer this error status (400-599) instead of the answer.
        body: body of the ``status`` answer (default :data:`DEFAULT_FAULT_BODY`).
        retry_after: value of a ``Retry-After`` header on the ``status`` answer.
        delay_first_byte: seconds to sleep before the status line and headers.
        delay_between_chunks: seconds to sleep between chunks (replaces
            ``ServerSettings.chunk_delay``).
        close_after_bytes: send the 200 headers and exactly this many body bytes (fewer
            if the answer is shorter), then close the connection without ending the
            chunked body, so the client sees a broken stream.
        invalid_utf8: insert the two bytes FF FE (invalid UTF-8) after the first chunk.
        answer_bytes: replace the answer with this many bytes of :func:`filler_text`.
        chunk_size: chunk size in bytes for ``answer_bytes``.
        mid_stream_error: send the first chunk, then ``INTERRUPTION_MARKER``, then end
            normally, as the upstream does when Gemini fails mid-answer.
        times: apply the fault to the first ``times`` requests only (counted per header
            value); later requests are served normally. ``None`` means always.
    """

    status: int | None = None
    body: str | None = None
    retry_after: str | None = None
    delay_first_byte: float = 0.0
    delay_between_chunks: float | None = None
    close_after_bytes: int | None = None
    invalid_utf8: bool = False
    answer_bytes: int | None = None
    chunk_size: int = 16384
    mid_stream_error: bool = False
    times: int | None = None


class FaultError(ValueError):
    """The fault header is malformed; ``key`` names the offending key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"Invalid {FAULT_HEADER} header: {key} {problem}.")
        self.key = key


def _int_in(low: int, high: int) -> Callable[[str, str], int]:
    def convert(key: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise FaultError(key, f"must be an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise FaultError(key, f"must be between {low} and {high}, got {value}")
        return value

    return convert


def _seconds(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise FaultError(key, f"must be a number of seconds, got {raw!r}") from None
    if not (math.isfinite(value) and 0 <= value <= _MAX_DELAY):
        raise FaultError(key, f"must be between 0 and {_MAX_DELAY:g} seconds, got {raw!r}")
    return value


def _flag(key: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise FaultError(key, f"must be 1 or 0, got {raw!r}")


def _text(key: str, raw: str) -> str:
    return unquote(raw)


def _header_text(key: str, raw: str) -> str:
    value = unquote(raw)
    if not value.isprintable() or not value.isascii():
        raise FaultError(key, "must be printable ASCII")
    return value


_CONVERTERS: dict[str, Callable[[str, str], object]] = {
    "status": _int_in(400, 599),
    "body": _text,
    "retry_after": _header_text,
    "delay_first_byte": _seconds,
    "delay_between_chunks": _seconds,
    "close_after_bytes": _int_in(0, _MAX_SIZE),
    "invalid_utf8": _flag,
    "answer_bytes": _int_in(0, _MAX_SIZE),
    "chunk_size": _int_in(1, 16 * 1024 * 1024),
    "mid_stream_error": _flag,
    "times": _int_in(1, _MAX_SIZE),
}


def parse_fault(header: str) -> Fault:
    """Parse a fault header value such as ``"status=503; retry_after=1; times=1"``.

    Items are separated by ``;``; surrounding spaces are ignored. ``body`` and
    ``retry_after`` are percent-decoded (write ``%3B`` for a ``;``).

    Raises:
        FaultError: for an unknown or repeated key, an item without ``=``, or a value
            of the wrong type or out of range.
    """
    values: dict[str, object] = {}
    for item in header.split(";"):
        item = item.strip()
        if not item:
            continue
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise FaultError(key, "has no value (write key=value)")
        if key not in _CONVERTERS:
            raise FaultError(key, "is not a known key")
        if key in values:
            raise FaultError(key, "is given twice")
        values[key] = _CONVERTERS[key](key, raw.strip())
    return Fault(**values)  # type: ignore[arg-type]


class FaultLedger:
    """Counts how often each fault with ``times`` was applied (one per application)."""

    def __init__(self) -> None:
        self._used: dict[str, int] = {}

    def take(self, key: str, fault: Fault) -> Fault | None:
        """Return ``fault`` if it still applies to this request, else ``None``.

        Args:
            key: identifies the fault (the raw header value).
            fault: the parsed fault.
        """
        if fault.times is None:
            return fault
        used = self._used.get(key, 0)
        if used >= fault.times:
            return None
        self._used[key] = used + 1
        return fault


def filler_text(n: int, offset: int = 0) -> str:
    """``n`` characters of the repeating pattern ``0123456789abcdef``.

    Args:
        n: how many characters.
        offset: position in the infinite pattern of the first character.

    Returns:
        ASCII text whose character ``i`` is ``FILLER_ALPHABET[(offset + i) % 16]``.
    """
    period = len(FILLER_ALPHABET)
    start = offset % period
    repeats = (start + n) // period + 1
    return (FILLER_ALPHABET * repeats)[start : start + n]


async def filler_chunks(total: int, chunk_size: int) -> AsyncIterator[bytes]:
    """Yield ``filler_text(total)`` as bytes, ``chunk_size`` at a time, lazily."""
    sent = 0
    while sent < total:
        size = min(chunk_size, total - sent)
        yield filler_text(size, sent).encode("ascii")
        sent += size
