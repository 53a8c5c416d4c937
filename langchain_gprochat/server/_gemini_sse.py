r"""Reading Gemini's ``streamGenerateContent?alt=sse`` answer: Server-Sent Events to text.

Pure code, no I/O: :class:`SSEParser` turns the bytes of the answer, as they arrive in
reads of any size, into the ``data`` of each complete event (lines end with ``\r\n``,
``\n`` or ``\r``; a blank line ends an event, as the SSE standard says, so events
separated by ``\r\n\r\n`` or ``\n\n`` both work); :func:`event_text` takes the text of
one event as the upstream's SDK does.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["BAD_FINISH_REASONS", "MAX_EVENT_BYTES", "GeminiError", "SSEParser", "event_text"]

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""The largest event (or line) the parser holds; a peer that sends more is refused."""
BAD_FINISH_REASONS = frozenset({"SAFETY", "RECITATION"})
"""Finish reasons after which the upstream's SDK refuses the event's text."""

_MESSAGE_CHARS = 2000


class GeminiError(RuntimeError):
    """Gemini refused the request or sent an answer that cannot be read.

    The message is Gemini's own (``error.message`` of its answer) when it gave one.

    Attributes:
        status: the HTTP status, when the refusal came as one; else ``None``.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "…"


def error_message(payload: object) -> str | None:
    """``error.message`` of a Gemini error body (an object, or a list holding one)."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return _one_line(message) if isinstance(message, str) and message.strip() else None


class SSEParser:
    r"""Splits an SSE byte stream into the ``data`` of its events.

    Feed it the bytes as they come (:meth:`feed`), then call :meth:`close` at the end.
    A read may end anywhere, inside a line, a ``\r\n`` or a UTF-8 character: only
    complete lines are decoded, and no line ending byte occurs inside a UTF-8 character.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        """The ``data`` of every event that ``chunk`` completes, in order.

        Raises:
            GeminiError: a line is not UTF-8, or an event or a line exceeds
                :data:`MAX_EVENT_BYTES`.
        """
        buffer = self._pending + chunk if self._pending else chunk
        lines = buffer.splitlines(keepends=True)
        # The last line is incomplete without its ending; a final "\r" may be half of "\r\n".
        if lines and (not lines[-1].endswith((b"\n", b"\r")) or lines[-1].endswith(b"\r")):
            self._pending = lines.pop()
        else:
            self._pending = b""
        if len(self._pending) > MAX_EVENT_BYTES:
            raise GeminiError(f"Gemini sent a line longer than {MAX_EVENT_BYTES} bytes")
        events: list[str] = []
        for line in lines:
            self._line(line.rstrip(b"\r\n"), events)
        return events

    def close(self) -> list[str]:
        """The last events, at the end of the stream.

        Raises:
            GeminiError: the stream ended inside an event (the upstream's SDK also
                refuses that), or its last line is not UTF-8.
        """
        events: list[str] = []
        pending, self._pending = self._pending, b""
        if pending.endswith(b"\r"):  # a lone "\r" ends a line
            self._line(pending.rstrip(b"\r"), events)
            pending = b""
        if pending.strip() or self._data:
            raise GeminiError("Gemini's answer ended inside an event")
        return events

    def _line(self, line: bytes, events: list[str]) -> None:
        if not line:
            if self._data:
                events.append("\n".join(self._data))
                self._data = []
            return
        if line.startswith(b":"):  # a comment
            return
        name, _, value = line.partition(b":")
        if name != b"data":  # event, id, retry: nothing Gemini's text depends on
            return
        try:
            text = value.removeprefix(b" ").decode()
        except UnicodeDecodeError:
            raise GeminiError("Gemini sent an event that is not UTF-8") from None
        self._data.append(text)
        if sum(len(part) for part in self._data) > MAX_EVENT_BYTES:
            raise GeminiError(f"Gemini sent an event longer than {MAX_EVENT_BYTES} bytes")


def _malformed(what: str) -> GeminiError:
    return GeminiError(f"Gemini sent a malformed event: {what}")


def _blocked(event: dict[str, Any]) -> GeminiError:
    feedback = event.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    suffix = f" ({reason})" if isinstance(reason, str) else ""
    return GeminiError(f"Gemini blocked the prompt{suffix}")


def event_text(data: str) -> str:
    """The text of one event: ``candidates[0].content.parts[].text``, concatenated.

    Parts marked ``thought`` (a thinking model's reasoning) are left out; an event
    without candidates has no text.

    Raises:
        GeminiError: the event is not a JSON object of Gemini's shape, holds an
            ``error`` (its message is the exception's), a blocked prompt, or a first
            candidate that stopped for a reason in :data:`BAD_FINISH_REASONS`.
    """
    try:
        event = json.loads(data)
    except ValueError:
        raise _malformed("not JSON") from None
    if not isinstance(event, dict):
        raise _malformed("not a JSON object")
    if "error" in event:
        raise GeminiError(error_message(event) or "Gemini answered with an error")
    candidates = event.get("candidates")
    if not candidates:
        if event.get("promptFeedback"):
            raise _blocked(event)
        return ""
    if not isinstance(candidates, list) or not isinstance(candidates[0], dict):
        raise _malformed("candidates is not a list of objects")
    first = candidates[0]
    reason = first.get("finishReason")
    if reason in BAD_FINISH_REASONS:
        raise GeminiError(f"Gemini stopped the answer: finishReason {reason}")
    content = first.get("content") or {}
    parts = content.get("parts") if isinstance(content, dict) else None
    if not parts:
        return ""
    if not isinstance(parts, list):
        raise _malformed("content.parts is not a list")
    return "".join(
        part["text"]
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought")
    )
