"""Turn the transport's text deltas into LangChain chunks: stop sequences, tool calls.

Pure and synchronous, so that the async and the sync paths share it exactly.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, InvalidToolCall
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.utils.json import parse_partial_json

from langchain_gprochat._tool_scan import PARTIAL_JSON_LIMIT
from langchain_gprochat._tool_stream import StreamEvent, ToolStreamParser
from langchain_gprochat._tools import parse_tool_reply

__all__ = ["Assembler", "StopFilter"]


class StopFilter:
    """Cuts the answer before the first stop sequence, even when one is split.

    Text that could be the start of a stop sequence is held back until the next delta
    shows whether it is one.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Return the text that is certainly before any stop sequence."""
        if self.stopped:
            return ""
        if not self._stops:
            return text
        text = self._held + text
        self._held = ""
        cut = min((i for i in (text.find(s) for s in self._stops) if i != -1), default=-1)
        if cut != -1:
            self.stopped = True
            return text[:cut]
        keep = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(text)), keep, -1):
                if text.endswith(stop[:k]):
                    keep = k
                    break
        if keep:
            self._held = text[-keep:]
            return text[:-keep]
        return text

    def flush(self) -> str:
        """At the end of the answer, release what was held back."""
        held, self._held = self._held, ""
        return "" if self.stopped else held


class Assembler:
    """Builds chunks (streaming) or one message (collecting) from text deltas.

    With ``tool_names`` set, the answer goes through the prompt-based tool-call parser:
    prose streams as content at once, tool calls arrive as ``tool_call_chunks``.
    """

    def __init__(
        self,
        model_name: str,
        stop: Sequence[str] | None = None,
        tool_names: Collection[str] | None = None,
    ) -> None:
        self._model_name = model_name
        self._stops = tuple(stop or ())
        self._tool_names = tool_names
        self.reset()

    def reset(self) -> None:
        """Forget every delta taken so far (the answer starts again, from a retry)."""
        self._stop = StopFilter(self._stops)
        self._tools = None if self._tool_names is None else ToolStreamParser(self._tool_names)
        self._parts: list[str] = []

    @property
    def stopped(self) -> bool:
        """Whether a stop sequence was reached: the caller should stop reading."""
        return self._stop.stopped

    def feed(self, text: str) -> list[ChatGenerationChunk]:
        """Take one delta; return the chunks to emit now."""
        return self._emit(self._stop.feed(text))

    def _emit(self, text: str) -> list[ChatGenerationChunk]:
        if not text:
            return []
        if self._tools is None:
            return [ChatGenerationChunk(message=AIMessageChunk(content=text))]
        return [_event_chunk(event) for event in self._tools.feed(text)]

    def finish(self) -> list[ChatGenerationChunk]:
        """End of the answer: the remaining chunks, the last one with the metadata."""
        chunks = self._emit(self._stop.flush())
        reason = "stop"
        if self._tools is not None:
            chunks.extend(_event_chunk(event) for event in self._tools.finish())
            result = self._tools.result
            if result.tool_calls or result.invalid_tool_calls:
                reason = "tool_calls"
        metadata = self._metadata(reason)
        last = AIMessageChunk(content="", response_metadata=metadata, chunk_position="last")
        chunks.append(ChatGenerationChunk(message=last))
        return chunks

    def collect(self, text: str) -> None:
        """Take one delta without building chunks (the non-streaming path)."""
        text = self._stop.feed(text)
        if text:
            self._parts.append(text)

    def message(self) -> AIMessage:
        """The whole answer collected with ``collect`` as one message."""
        text = "".join(self._parts) + self._stop.flush()
        if self._tool_names is None:
            return AIMessage(content=text, response_metadata=self._metadata("stop"))
        parsed = parse_tool_reply(text, self._tool_names)
        calls = parsed.tool_calls or parsed.invalid_tool_calls
        return AIMessage(
            content=parsed.content,
            tool_calls=parsed.tool_calls,
            invalid_tool_calls=parsed.invalid_tool_calls,
            response_metadata=self._metadata("tool_calls" if calls else "stop"),
        )

    def _metadata(self, finish_reason: str) -> dict[str, Any]:
        return {
            "model_name": self._model_name,
            "model_provider": "gprochat",
            "finish_reason": finish_reason,
        }


def _event_chunk(event: StreamEvent) -> ChatGenerationChunk:
    if event.kind == "content":
        message = AIMessageChunk(content=event.text)
    elif event.tool_call_chunk is not None:
        message = AIMessageChunk(content="", tool_call_chunks=[event.tool_call_chunk])
    else:
        invalid = [_merge_safe(event.invalid_tool_call)] if event.invalid_tool_call else []
        message = AIMessageChunk(content="", invalid_tool_calls=invalid)
    return ChatGenerationChunk(message=message)


def _merge_safe(call: InvalidToolCall) -> InvalidToolCall:
    """The invalid call in a form that stays invalid when chunks are summed.

    Summing ``AIMessageChunk``s rebuilds every call from its ``tool_call_chunks`` and
    keeps as valid any whose ``args`` ``parse_partial_json`` reads as a JSON object, so
    a call to an unknown tool, or arguments cut short (``{"city": "Par``), would come
    back as a *valid* call. Such ``args`` are sent JSON-encoded as a string instead
    (``json.loads`` gives the original text back); other calls are left as they are.
    Long args that are not JSON are sent encoded unasked, as ``parse_partial_json`` can take
    quadratic time on them (here, and again when langchain-core sums the chunks).
    """
    args = call.get("args")
    if not args:
        return call
    long = len(args) > PARTIAL_JSON_LIMIT
    try:
        parsed = json.loads(args, strict=False) if long else parse_partial_json(args)
    except json.JSONDecodeError:
        if not long:
            return call
        parsed = {}
    except Exception:  # langchain-core treats any parse failure as invalid, as here
        return call
    if not isinstance(parsed, dict):
        return call
    return {**call, "args": json.dumps(args, ensure_ascii=False)}
