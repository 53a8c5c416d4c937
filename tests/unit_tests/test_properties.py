"""Property-based tests (hypothesis) of the pure parts: message conversion, marker guard.

``messages_to_turns`` must, for any list of Human/AI/System/Tool messages, either return
turns that alternate, start and end with the user and keep every message's text, or
raise ``ValueError`` with the one documented message an independent oracle predicts.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call

from langchain_gprochat._convert import messages_to_turns
from langchain_gprochat._decode import Decoder
from langchain_gprochat._tools import render_tool_calls
from langchain_gprochat.protocol import INTERRUPTION_MARKER, turn_text

# Any code point, lone surrogates included: conversion is pure and must not care.
TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
NON_TEXT_KINDS = ["image", "image_url", "audio", "file", "video", "document", "thinking"]
PASSTHROUGH_AI_KINDS = ["tool_use", "tool_call", "function_call"]

NO_TURNS = "the conversation has no user or AI message; add a HumanMessage with the question"
LAST_NOT_USER = (
    "the last message must be the user's (a HumanMessage or a ToolMessage); the endpoint "
    "answers only a user turn"
)
STARTS_WITH_AI = (
    "the conversation starts with an AI message; Gemini needs a user turn first: start "
    "with a HumanMessage or a SystemMessage"
)


def _text_only(kind: object, message_type: str) -> str:
    return (
        f"the gprochat endpoint takes text only; remove the {kind!r} block from the "
        f"{message_type} message or describe its content in text"
    )


@st.composite
def blocks(draw: st.DrawFn, ai: bool) -> list[Any]:
    """List content: strings, text blocks, and sometimes a non-text block."""
    options = [
        TEXT,
        st.builds(lambda t: {"type": "text", "text": t}, TEXT),
        st.sampled_from(NON_TEXT_KINDS).map(lambda k: {"type": k, "url": "https://x/y"}),
        st.just({"type": "text"}),  # a text block without text
    ]
    if ai:
        options.append(st.sampled_from(PASSTHROUGH_AI_KINDS).map(lambda k: {"type": k, "id": "c1"}))
    return draw(st.lists(st.one_of(*options), max_size=4))


def content(ai: bool = False) -> st.SearchStrategy[Any]:
    return st.one_of(TEXT, blocks(ai))


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), TEXT)
TOOL_CALLS = st.lists(
    st.builds(
        lambda name, call_id, args: tool_call(name=name, args=args, id=call_id),
        st.sampled_from(["get_weather", "search", "ünïcode_tool"]),
        st.text("abc123", min_size=1, max_size=4),
        st.dictionaries(st.text("xyz", min_size=1, max_size=3), JSON_SCALARS, max_size=3),
    ),
    max_size=2,
)

MESSAGES = st.one_of(
    st.builds(HumanMessage, content=content()),
    st.builds(SystemMessage, content=content()),
    st.builds(
        lambda c, calls: AIMessage(content=c, tool_calls=calls), content(ai=True), TOOL_CALLS
    ),
    st.builds(
        lambda c, call_id, name, status: ToolMessage(
            content=c, tool_call_id=call_id, name=name, status=status
        ),
        content(),
        st.text("abc123", min_size=1, max_size=4),
        st.one_of(st.none(), st.sampled_from(["get_weather", "search"])),
        st.sampled_from(["success", "error"]),
    ),
)


def _oracle_text(message: BaseMessage) -> str:
    """The message's own text, or the ValueError message its content must raise."""
    parts: list[str] = []
    if isinstance(message.content, str):
        return message.content
    for block in message.content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text":
            if not isinstance(block.get("text"), str):
                raise ValueError(f"a text block of a {message.type} message has no text")
            parts.append(block["text"])
        elif isinstance(message, AIMessage) and block.get("type") in PASSTHROUGH_AI_KINDS:
            continue
        else:
            raise ValueError(_text_only(block.get("type"), message.type))
    return "".join(parts)


def _role(message: BaseMessage) -> str:
    if isinstance(message, SystemMessage):
        return "system"
    return "model" if isinstance(message, AIMessage) else "user"


def _expected_error(messages: list[BaseMessage]) -> str | None:
    """Which documented ValueError the conversion must raise, if any (in check order)."""
    for message in messages:
        try:
            _oracle_text(message)
        except ValueError as exc:
            return str(exc)
    roles = [_role(m) for m in messages if _role(m) != "system"]
    if not roles:
        return NO_TURNS
    if roles[-1] != "user":
        return LAST_NOT_USER
    has_system = any(_role(m) == "system" for m in messages)
    if roles[0] == "model" and not has_system:
        return STARTS_WITH_AI
    return None


@settings(max_examples=300, deadline=None)
@given(st.lists(MESSAGES, max_size=8))
def test_messages_to_turns_succeeds_or_raises_a_documented_error(
    messages: list[BaseMessage],
) -> None:
    expected_error = _expected_error(messages)
    if expected_error is not None:
        with pytest.raises(ValueError, match=f"^{re.escape(expected_error)}$") as info:
            messages_to_turns(messages)
        assert str(info.value) == expected_error
        return
    turns = messages_to_turns(messages)
    roles = [turn.role for turn in turns]
    assert roles[0] == "user"
    assert roles[-1] == "user"
    assert all(a != b for a, b in pairwise(roles))
    assert all(len(turn.parts) == 1 for turn in turns)
    # No text is dropped: system texts first, then every other message's text, in order.
    whole = "\x00".join(turn_text(turn) for turn in turns)
    texts = [m for m in messages if _role(m) == "system"]
    texts += [m for m in messages if _role(m) != "system"]
    position = 0
    for message in texts:
        text = _oracle_text(message)
        if isinstance(message, AIMessage) and message.tool_calls:
            rendered = render_tool_calls(message.tool_calls)
            text = f"{text}\n{rendered}" if text else rendered
        found = whole.find(text, position)
        assert found != -1, (text, whole)
        position = found + len(text)


def _chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in pairwise(edges) if b > a]


MARKER_ISH = st.text(
    st.sampled_from([*sorted(set(INTERRUPTION_MARKER)), "x", "é", "🌍"]), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(MARKER_ISH, st.booleans(), st.lists(st.integers(0, 10_000), max_size=8))
def test_decoder_never_leaks_the_marker_and_never_loses_text(
    text: str, failed: bool, cuts: list[int]
) -> None:
    # Cuts fall anywhere in the bytes, also inside a multi-byte character.
    stream = text + INTERRUPTION_MARKER if failed else text
    decoder = Decoder("http://127.0.0.1:1/api/generate")
    pieces = [decoder.feed(piece) for piece in _chunked(stream.encode(), cuts)]
    released = "".join(pieces) + decoder.feed(b"")
    if stream.endswith(INTERRUPTION_MARKER):
        # The transport reports an interruption; what reached the caller is the rest.
        assert decoder.failed
        assert released == stream[: -len(INTERRUPTION_MARKER)]
    else:
        assert not decoder.failed
        assert released == stream
