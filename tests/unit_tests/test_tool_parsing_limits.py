"""Tool-call parsing on hostile text: linear time (hang guards) and bounded nesting.

The timeouts only trip on a hang: each input here parses in about a second or less, the
quadratic parser they guard against took from minutes to hours on them (it took 35 s
on 1 MiB of JavaScript and 6 s to stream 512 KiB of arguments, hence 4 MiB here).
Nothing else is timed.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel

from langchain_gprochat._json_check import Run
from langchain_gprochat._streaming import Assembler
from langchain_gprochat._structured import structured_output
from langchain_gprochat._tool_stream import StreamEvent, ToolStreamParser
from langchain_gprochat._tools import (
    MAX_DEPTH,
    ParsedReply,
    parse_tool_reply,
)

NAMES = frozenset({"get_weather", "add"})
MIB = 1 << 20
CALL = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'
JS_UNIT = (
    "function render(items, opts = {}) {\n"
    "  const seen = new Set(), out = [];\n"
    "  for (const { id, tags = [] } of items) {\n"
    "    if (seen.has(id)) { continue; } else { seen.add(id); }\n"
    '    out.push({ id, label: `#${id}`, tags: [...tags, "x"], meta: { ok: true } });\n'
    "  }\n"
    '  const cfg = JSON.parse(\'{"depth": 2, "keys": ["a", "b"]}\');\n'
    '  return out.map((o) => ({ ...o, s: "{\\"k\\": [1, {"} ));\n'
    "}\n"
)
TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"


def ids() -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"call_{next(counter)}"


def parse(text: str) -> ParsedReply:
    return parse_tool_reply(text, NAMES, id_factory=ids())


def stream(text: str, size: int) -> tuple[list[StreamEvent], ParsedReply]:
    parser = ToolStreamParser(NAMES, id_factory=ids())
    events: list[StreamEvent] = []
    for start in range(0, len(text), size):
        events += parser.feed(text[start : start + size])
    events += parser.finish()
    return events, parser.result


def content_of(events: list[StreamEvent]) -> str:
    return "".join(event.text for event in events if event.kind == "content")


def weather(city: Any, call_id: str = "call_0") -> dict[str, Any]:
    return {"name": "get_weather", "args": {"city": city}, "id": call_id, "type": "tool_call"}


def invalid(name: str | None, args: str, error: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": "call_0", "error": error, "type": "invalid_tool_call"}


# --- hang guards (finding 8) ---------------------------------------------------------------


@pytest.mark.timeout(60)
def test_adversarial_braces_whole() -> None:
    text = "{" * MIB
    assert parse(text) == ParsedReply(content=text)


@pytest.mark.timeout(60)
def test_adversarial_braces_streamed() -> None:
    text = "{" * MIB
    events, result = stream(text, 16)
    assert content_of(events) == text
    assert result == ParsedReply(content=text)


@pytest.mark.timeout(60)
def test_javascript_like_code_then_a_call() -> None:
    code = JS_UNIT * (4 * MIB // len(JS_UNIT) + 1)
    text = f"{code}\n{CALL}"
    assert parse(text) == ParsedReply(content=code.rstrip(), tool_calls=[weather("Paris")])


@pytest.mark.timeout(60)
def test_javascript_like_code_streamed() -> None:
    code = JS_UNIT * (4 * MIB // len(JS_UNIT) + 1)
    events, result = stream(code, 16)
    assert content_of(events) == code
    assert result == ParsedReply(content=code)


@pytest.mark.timeout(60)
def test_streamed_call_with_4_mib_of_arguments() -> None:
    city = "x" * (4 * MIB)
    call = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "' + city + '"}}]}'
    events, result = stream(f"Let me check.\n{call}", 16)
    assert events == [
        StreamEvent(kind="content", text="Let me check."),
        StreamEvent(
            kind="tool_call_chunk",
            tool_call_chunk={
                "name": "get_weather",
                "args": json.dumps({"city": city}),
                "id": "call_0",
                "index": 0,
                "type": "tool_call_chunk",
            },
        ),
    ]
    assert result == ParsedReply(content="Let me check.", tool_calls=[weather(city)])


@pytest.mark.timeout(60)
def test_keys_holding_braces() -> None:
    text = '"{' * (MIB // 2)
    assert parse(text) == ParsedReply(content=text)


@pytest.mark.timeout(60)
def test_broken_call_with_a_megabyte_of_spaces() -> None:
    """parse_partial_json, which names broken calls, retries once per space here."""
    text = '{"name": "add", "arguments":' + " " * MIB + "x"
    error = f"tool call is not valid JSON: Expecting value at character {len(text) - 1}"
    assert parse(text) == ParsedReply(content="", invalid_tool_calls=[invalid("add", text, error)])


JSON_BITS = st.sampled_from(
    [
        "{",
        "}",
        "[",
        "]",
        '"',
        ":",
        ",",
        " ",
        "\n",
        "\u00a0",
        "x",
        "1",
        "-",
        "0",
        ".",
        "e",
        "+",
        "12",
        "tru",
        "true",
        "null",
        "NaN",
        "-Inf",
        "Infinity",
        "\\",
        "\\u00",
        "\\u00e9",
        '\\"',
        '"a"',
        '{"a": 1}',
        "[1, 2]",
        '"x\\ny"',
    ]
)


@settings(max_examples=2000, deadline=None)
@given(bits=st.lists(JSON_BITS, max_size=20), cuts=st.lists(st.integers(0, 60), max_size=6))
def test_json_checker_agrees_with_the_decoder(bits: list[str], cuts: list[int]) -> None:
    """The scanner trusts its checker to say when raw_decode's answer is settled."""
    text = "{" + "".join(bits)
    whole, pieces = Run(0), Run(0)
    whole.feed(text, 0, 0)
    points = sorted({min(cut, len(text)) for cut in cuts} | {0, len(text)})
    for start, end in itertools.pairwise(points):
        pieces.feed(text[start:end], 0, start)
    assert (pieces.end, pieces.error) == (whole.end, whole.error)
    end, error, curable = decoded(text)
    assert whole.end == end
    if end is None:
        assert whole.error is not None or curable  # cut short: more text may cure it
        # json reports a bad literal at its start, a bad \\u escape just after the "\\":
        # the scanner asks it for its message on text that reaches 16 characters further.
        assert whole.error is None or whole.error - 8 <= error <= whole.error + 1


def decoded(text: str) -> tuple[int | None, int, bool]:
    """Where raw_decode's value ends, or where its error is and whether text may cure it."""
    try:
        return json.JSONDecoder(strict=False).raw_decode(text)[1], 0, False
    except json.JSONDecodeError as exc:
        cut_short = exc.msg.startswith("Unterminated string") or exc.pos + 16 > len(text)
        return None, exc.pos, cut_short


# --- nesting (finding 9a) ------------------------------------------------------------------

DEEP = '[{"name":"get_weather","arguments":{"city":"P"}},' + "[" * 600 + "]" * 600 + "]"
DEEP_CALL = (
    '{"tool_calls": [{"name": "get_weather", "arguments": {"city": '
    + "[" * 150
    + "]" * 150
    + "}}]}"
)
CUT_SHORT = '{"name": "get_weather", "arguments": {"city": ' + "[" * 600
STRING_ARGS = '{"name": "get_weather", "arguments": "' + "[" * 600 + "]" * 600 + '"}'


def nested(levels: int) -> str:
    """A call whose JSON nests ``levels`` deep: call, arguments, then arrays."""
    return (
        '{"name": "get_weather", "arguments": {"city": '
        + "[" * (levels - 2)
        + "]" * (levels - 2)
        + "}}"
    )


def int_limit_error() -> str:
    try:
        int("1" + "0" * 5000)
    except ValueError as exc:
        return str(exc)
    raise AssertionError("no limit")


CASES = {
    "deep array after a call": (DEEP, ParsedReply(content=DEEP)),
    "deep arguments": (
        DEEP_CALL,
        ParsedReply(
            content="",
            invalid_tool_calls=[invalid("get_weather", DEEP_CALL, f"tool call is {TOO_DEEP}")],
        ),
    ),
    "deep call cut short": (
        CUT_SHORT,
        ParsedReply(
            content="",
            invalid_tool_calls=[
                invalid("get_weather", CUT_SHORT, f"tool call is not valid JSON: {TOO_DEEP}")
            ],
        ),
    ),
    "deep string arguments": (
        STRING_ARGS,
        ParsedReply(
            content="",
            invalid_tool_calls=[
                invalid(
                    "get_weather",
                    "[" * 600 + "]" * 600,
                    f"arguments are not valid JSON: {TOO_DEEP}",
                )
            ],
        ),
    ),
    "prose, deep value, call": (
        f"See {DEEP} then\n{CALL}",
        ParsedReply(content=f"See {DEEP} then", tool_calls=[weather("Paris")]),
    ),
    "at the limit": (
        nested(MAX_DEPTH),
        ParsedReply(
            content="", tool_calls=[weather(json.loads(nested(MAX_DEPTH))["arguments"]["city"])]
        ),
    ),
    "over the limit": (
        nested(MAX_DEPTH + 1),
        ParsedReply(
            content="",
            invalid_tool_calls=[
                invalid("get_weather", nested(MAX_DEPTH + 1), f"tool call is {TOO_DEEP}")
            ],
        ),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_deep_nesting_parses(name: str) -> None:
    text, expected = CASES[name]
    assert parse(text) == expected


@pytest.mark.parametrize("size", [1, 16, 1 << 30])
@pytest.mark.parametrize("name", list(CASES))
def test_deep_nesting_streams(name: str, size: int) -> None:
    text, expected = CASES[name]
    events, result = stream(text, size)
    assert result == expected
    assert content_of(events) == expected.content
    assert [e.invalid_tool_call for e in events if e.invalid_tool_call] == (
        expected.invalid_tool_calls
    )


@pytest.mark.skipif(not hasattr(sys, "get_int_max_str_digits"), reason="no int limit")
def test_number_too_long_for_int_is_an_invalid_call() -> None:
    text = '{"name": "add", "arguments": {"a": 1' + "0" * 5000 + "}}"
    error = f"tool call is not valid JSON: {int_limit_error()}"
    expected = ParsedReply(content="", invalid_tool_calls=[invalid("add", text, error)])
    assert parse(text) == expected
    assert stream(text, 16)[1] == expected
    args = '{"a": 1' + "0" * 5000 + "}"
    text = json.dumps({"name": "add", "arguments": args})
    assert parse(text) == ParsedReply(
        content="",
        invalid_tool_calls=[
            invalid("add", args, f"arguments are not valid JSON: {int_limit_error()}")
        ],
    )


# --- the layers above: Assembler, with_structured_output -----------------------------------


def assembled(text: str) -> tuple[AIMessage, list[AIMessageChunk]]:
    collecting = Assembler("m", tool_names=NAMES)
    collecting.collect(text)
    streaming = Assembler("m", tool_names=NAMES)
    chunks = [c.message for piece in (text[:7], text[7:]) for c in streaming.feed(piece)]
    chunks += [c.message for c in streaming.finish()]
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    return collecting.message(), [c for c in chunks if isinstance(c, AIMessageChunk)]


def test_assembler_deep_array_is_content() -> None:
    message, chunks = assembled(DEEP)
    assert (message.content, message.tool_calls, message.invalid_tool_calls) == (DEEP, [], [])
    assert message.response_metadata["finish_reason"] == "stop"
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert (total.content, total.tool_calls, total.invalid_tool_calls) == (DEEP, [], [])
    assert total.response_metadata["finish_reason"] == "stop"


@pytest.mark.parametrize("levels", [150, 100_000])
def test_assembler_deep_call_is_an_invalid_call(levels: int) -> None:
    text = '{"name": "get_weather", "arguments": {"x": ' + "[" * levels + "]" * levels + "}}"
    message, chunks = assembled(text)
    assert message.invalid_tool_calls == [
        {
            **invalid("get_weather", text, f"tool call is {TOO_DEEP}"),
            "id": message.invalid_tool_calls[0]["id"],
        }
    ]
    assert (message.content, message.tool_calls) == ("", [])
    streamed = [call for chunk in chunks for call in chunk.invalid_tool_calls]
    # args that parse_partial_json reads as an object are sent JSON-encoded (_merge_safe);
    # 100,000 levels make it raise RecursionError, so those args are sent as they are.
    args = json.dumps(text) if levels == 150 else text
    assert [(c["name"], c["args"], c["error"]) for c in streamed] == [
        ("get_weather", args, f"tool call is {TOO_DEEP}")
    ]
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk  # langchain-core re-reads the args here: it must not raise
    assert (total.content, total.tool_calls) == ("", [])
    assert [(c["name"], c["args"]) for c in total.invalid_tool_calls] == [("get_weather", args)]
    assert total.response_metadata["finish_reason"] == "tool_calls"


@pytest.mark.timeout(60)
def test_assembler_streams_a_long_broken_call() -> None:
    """Long args that are not JSON go out encoded, unread by parse_partial_json."""
    text = '{"name": "add", "arguments":' + " " * MIB + "x"
    error = f"tool call is not valid JSON: Expecting value at character {len(text) - 1}"
    message, chunks = assembled(text)
    assert [(c["name"], c["args"], c["error"]) for c in message.invalid_tool_calls] == [
        ("add", text, error)
    ]
    streamed = [call for chunk in chunks for call in chunk.invalid_tool_calls]
    assert [(c["name"], c["args"], c["error"]) for c in streamed] == [
        ("add", json.dumps(text), error)
    ]
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert [(c["name"], c["args"]) for c in total.invalid_tool_calls] == [("add", json.dumps(text))]
    assert total.tool_calls == []


class GetWeather(BaseModel):
    """Get the weather."""

    city: str


class ReplyModel(BaseChatModel):
    """Answers every request with ``reply``, parsed as ChatGPROChat parses replies."""

    reply: str
    tool_names: frozenset[str] = frozenset()

    @property
    def _llm_type(self) -> str:
        return "reply"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        assembler = Assembler("reply", tool_names=self.tool_names or None)
        assembler.collect(self.reply)
        return ChatResult(generations=[ChatGeneration(message=assembler.message())])

    def bind_tools(self, tools: Any, **kwargs: Any) -> Runnable[Any, BaseMessage]:
        names = frozenset(convert_to_openai_tool(t)["function"]["name"] for t in tools)
        return self.model_copy(update={"tool_names": names})


def test_structured_output_include_raw_never_raises_on_deep_replies() -> None:
    llm = ReplyModel(reply=DEEP)
    runnable = structured_output(
        llm, GetWeather, method="function_calling", include_raw=True, strict=None
    )
    result = runnable.invoke("weather?")
    assert result["raw"].content == DEEP
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], OutputParserException)
    assert str(result["parsing_error"]).startswith(
        "expected a call to the tool 'GetWeather': the reply holds no valid call to it"
    )
    deeper = "[" * 100_000 + "]" * 100_000  # json itself recurses too deeply on this one
    runnable = structured_output(
        ReplyModel(reply=deeper), GetWeather, method="json_mode", include_raw=True, strict=None
    )
    result = runnable.invoke("weather?")
    assert (result["raw"].content, result["parsed"]) == (deeper, None)
    assert isinstance(result["parsing_error"], RecursionError)
