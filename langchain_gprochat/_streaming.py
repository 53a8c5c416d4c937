"""Turn the transport's text deltas into LangChain chunks: stop sequences, tool calls.

Pure and synchronous, so that the async and the sync paths share it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

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
    """Builds chunks (streaming) or one message (collecting) from text deltas."""

    def __init__(
        self,
        model_name: str,
        stop: Sequence[str] | None = None,
        tool_parser: Any | None = None,
    ) -> None:
        self._model_name = model_name
        self._stop = StopFilter(stop or ())
        self._tools = tool_parser
        self._parts: list[str] = []

    @property
    def stopped(self) -> bool:
        """Whether a stop sequence was reached: the caller should stop reading."""
        return self._stop.stopped

    def feed(self, text: str) -> list[ChatGenerationChunk]:
        """Take one delta; return the chunks to emit now."""
        text = self._stop.feed(text)
        if not text:
            return []
        self._parts.append(text)
        if self._tools is None:
            return [ChatGenerationChunk(message=AIMessageChunk(content=text))]
        return [self._tool_event_chunk(event) for event in self._tools.feed(text)]

    def finish(self) -> list[ChatGenerationChunk]:
        """End of the answer: the remaining chunks, the last one with the metadata."""
        chunks = self.feed(self._stop.flush()) if not self._stop.stopped else []
        tool_calls = False
        if self._tools is not None:
            events = self._tools.finish()
            chunks.extend(self._tool_event_chunk(event) for event in events)
            tool_calls = any(event.kind == "tool_call_chunk" for event in events)
        metadata = self._metadata("tool_calls" if tool_calls else "stop")
        last = AIMessageChunk(content="", response_metadata=metadata, chunk_position="last")
        chunks.append(ChatGenerationChunk(message=last))
        return chunks

    def message(self) -> AIMessage:
        """The whole answer as one message (the non-streaming path)."""
        text = "".join(self._parts) + self._stop.flush()
        if self._tools is None:
            return AIMessage(content=text, response_metadata=self._metadata("stop"))
        parsed = self._tools.parse(text)
        reason = "tool_calls" if parsed.tool_calls else "stop"
        return AIMessage(
            content=parsed.content,
            tool_calls=parsed.tool_calls,
            invalid_tool_calls=parsed.invalid_tool_calls,
            response_metadata=self._metadata(reason),
        )

    def collect(self, text: str) -> None:
        """Take one delta without building chunks (the non-streaming path)."""
        text = self._stop.feed(text)
        if text:
            self._parts.append(text)

    def _metadata(self, finish_reason: str) -> dict[str, Any]:
        return {
            "model_name": self._model_name,
            "model_provider": "gprochat",
            "finish_reason": finish_reason,
        }

    @staticmethod
    def _tool_event_chunk(event: Any) -> ChatGenerationChunk:
        if event.kind == "content":
            return ChatGenerationChunk(message=AIMessageChunk(content=event.text))
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                tool_call_chunks=[
                    {
                        "name": event.name,
                        "args": event.args,
                        "id": event.id,
                        "index": event.index,
                        "type": "tool_call_chunk",
                    }
                ],
            )
        )
