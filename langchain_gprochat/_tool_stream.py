"""Tool calls parsed while the answer streams: ``ToolStreamParser`` and its events.

The streaming twin of :func:`~langchain_gprochat._tools.parse_tool_reply`, over the same
scanner (:mod:`~langchain_gprochat._tool_scan`) and with the same result, whatever way
the text is split into deltas.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal, cast

from langchain_core.messages import InvalidToolCall, ToolCall, ToolCallChunk
from langchain_core.messages.tool import tool_call_chunk

from langchain_gprochat._tool_scan import Scanner, dump
from langchain_gprochat._tools import ParsedReply, new_tool_call_id, reply

__all__ = ["StreamEvent", "ToolStreamParser"]


@dataclass(frozen=True)
class StreamEvent:
    """One output of ``ToolStreamParser``.

    ``kind`` says which field is set: ``"content"`` → ``text`` (visible text),
    ``"tool_call_chunk"`` → ``tool_call_chunk`` (a complete valid call: name, arguments
    as a JSON string, id, index), ``"invalid_tool_call"`` → ``invalid_tool_call`` (a
    ``ToolCallChunk`` cannot say that a call is invalid, so these travel apart; put
    them in ``AIMessageChunk(invalid_tool_calls=...)``). Each call has its own
    ``index``, numbered over valid and invalid calls together.
    """

    kind: Literal["content", "tool_call_chunk", "invalid_tool_call"]
    text: str = ""
    tool_call_chunk: ToolCallChunk | None = None
    invalid_tool_call: InvalidToolCall | None = None


class ToolStreamParser:
    """Split a streamed reply into visible text and tool calls as its deltas arrive.

    Text is emitted as soon as it is known not to belong to a tool call. From a ``{``,
    a ``[`` followed by ``{``, or backticks that may open a code fence onward, text is
    held back until the JSON is complete or can no longer become valid (a JSON error
    16 characters behind the end of the text, or any error once the reply is
    finished): a call is then emitted as its call events (at once, not only at
    ``finish``), anything else as text. Trailing whitespace is held back too, since a
    reply with calls drops it, and so is leading whitespace until prose shows. So a
    reply that starts with ``{`` or a fence shows nothing until it is resolved, prose
    streams at once, text with a stray brace is delayed by a few characters, and tool
    calls never show up as text.

    Whatever way the text is split into deltas, the concatenated ``"content"`` events
    equal ``parse_tool_reply(text).content`` and the call events carry the same calls
    (names, arguments, errors) in the same order; the ids come from ``id_factory``.
    """

    def __init__(
        self, tool_names: Collection[str], *, id_factory: Callable[[], str] = new_tool_call_id
    ) -> None:
        self._scanner = Scanner(tool_names, id_factory)
        self._deltas: list[str] = []
        self._held: list[str] = []  # whitespace that a call after it would drop
        self._content: list[str] = []
        self._calls: list[ToolCall | InvalidToolCall] = []
        self._has_span = False
        self._result: ParsedReply | None = None

    @property
    def text(self) -> str:
        """All the text fed so far."""
        self._deltas[:] = ["".join(self._deltas)]
        return self._deltas[0]

    @property
    def result(self) -> ParsedReply:
        """The whole reply as the emitted events describe it; only after ``finish``."""
        if self._result is None:
            raise RuntimeError("the reply is not finished; call finish() first")
        return self._result

    def feed(self, delta: str) -> list[StreamEvent]:
        """Take the next piece of the reply and return what can be emitted now."""
        if self._result is not None:
            raise RuntimeError("feed() after finish()")
        self._deltas.append(delta)
        return self._advance(delta, final=False)

    def finish(self) -> list[StreamEvent]:
        """Resolve whatever is still held back, at the end of the reply."""
        if self._result is not None:
            raise RuntimeError("finish() called twice")
        events = self._advance("", final=True)
        if self._held and not self._has_span:
            events.append(self._emit_text("".join(self._held)))
        self._held = []
        self._result = reply("".join(self._content), self._calls)
        return events

    def _advance(self, delta: str, *, final: bool) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for piece in self._scanner.scan(delta, final=final):
            if isinstance(piece, str):
                dropped = self._has_span and not self._content  # leading whitespace
                if piece.isspace():
                    self._held += [] if dropped else [piece]
                    continue
                pending = "".join([*self._held, piece])
                pending = pending.lstrip() if dropped else pending
                visible = pending.rstrip()
                self._held = [pending[len(visible) :]] if len(visible) < len(pending) else []
                if visible:
                    events.append(self._emit_text(visible))
                continue
            self._has_span = True
            if not self._content:
                self._held = []
            for call in piece.calls:
                events.append(self._emit_call(call))
        return events

    def _emit_text(self, text: str) -> StreamEvent:
        self._content.append(text)
        return StreamEvent(kind="content", text=text)

    def _emit_call(self, call: ToolCall | InvalidToolCall) -> StreamEvent:
        index = len(self._calls)
        self._calls.append(call)
        if call.get("type") == "invalid_tool_call":
            return StreamEvent(
                kind="invalid_tool_call", invalid_tool_call=cast("InvalidToolCall", call)
            )
        call = cast("ToolCall", call)
        chunk = tool_call_chunk(
            name=call["name"], args=dump(call["args"]), id=call["id"], index=index
        )
        return StreamEvent(kind="tool_call_chunk", tool_call_chunk=chunk)
