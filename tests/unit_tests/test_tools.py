from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_gprochat._convert import messages_to_turns
from langchain_gprochat._tool_stream import StreamEvent, ToolStreamParser
from langchain_gprochat._tools import (
    NO_TOOLS_INSTRUCTIONS,
    TOOL_ERROR_TEMPLATE,
    TOOL_RESULT_TEMPLATE,
    ParsedReply,
    format_tools,
    new_tool_call_id,
    normalize_tool_choice,
    parse_tool_reply,
    render_tool_calls,
    tool_instructions,
)

NAMES = frozenset({"get_weather", "add"})
CALL = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'


def raises(message: str) -> Any:
    return pytest.raises(ValueError, match=f"^{re.escape(message)}$")


def ids() -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"call_{next(counter)}"


def parse(text: str) -> ParsedReply:
    return parse_tool_reply(text, NAMES, id_factory=ids())


def weather(city: str = "Paris", call_id: str = "call_0") -> dict[str, Any]:
    return tool_call(name="get_weather", args={"city": city}, id=call_id)


def invalid(name: str | None, args: str, error: str, call_id: str = "call_0") -> dict[str, Any]:
    return {"type": "invalid_tool_call", "name": name, "args": args, "id": call_id, "error": error}


# --- tool_choice -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, "auto"),
        ("auto", "auto"),
        ("any", "required"),
        ("required", "required"),
        (True, "required"),
        ("none", "none"),
        (False, "none"),
        ("get_weather", "get_weather"),
        ({"type": "function", "function": {"name": "add"}}, "add"),
    ],
)
def test_normalize_tool_choice(choice: Any, expected: str) -> None:
    assert normalize_tool_choice(choice, NAMES) == expected


@pytest.mark.parametrize(
    "choice", ["get_time", {"type": "function", "function": {"name": "get_time"}}]
)
def test_normalize_tool_choice_unknown_tool(choice: Any) -> None:
    with pytest.raises(
        ValueError,
        match=r"^tool_choice 'get_time' is not a bound tool; "
        r"bound tools: add, get_weather$",
    ):
        normalize_tool_choice(choice, NAMES)


@pytest.mark.parametrize(
    "choice", [1, 0, ["add"], {"type": "function"}, {"name": "add"}, {"type": "tool"}]
)
def test_normalize_tool_choice_unsupported(choice: Any) -> None:
    expected = (
        f"unsupported tool_choice {choice!r}; use 'auto' or None, 'any', 'required' or "
        "True, 'none' or False, the name of a bound tool, or "
        "{'type': 'function', 'function': {'name': <tool name>}}"
    )
    with raises(expected):
        normalize_tool_choice(choice, NAMES)


# --- format_tools ------------------------------------------------------------------------


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str = Field(description="The city name")


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: First integer.
        b: Second integer.
    """
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


SEARCH_SCHEMA = {
    "title": "search",
    "description": "Search the web.",
    "type": "object",
    "properties": {"query": {"type": "string"}},
    "required": ["query"],
}


def test_format_tools() -> None:
    assert format_tools([GetWeather, add, multiply, SEARCH_SCHEMA]) == [
        {
            "type": "function",
            "function": {
                "name": "GetWeather",
                "description": "Get the current weather in a city.",
                "parameters": {
                    "properties": {"city": {"description": "The city name", "type": "string"}},
                    "required": ["city"],
                    "type": "object",
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two integers.",
                "parameters": {
                    "properties": {
                        "a": {"description": "First integer.", "type": "integer"},
                        "b": {"description": "Second integer.", "type": "integer"},
                    },
                    "required": ["a", "b"],
                    "type": "object",
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "multiply",
                "description": "Multiply two integers.",
                "parameters": {
                    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                    "required": ["a", "b"],
                    "type": "object",
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "search",
                "description": "Search the web.",
                "parameters": {
                    "type": "object",
                    "properties": {"query": {"type": "string"}},
                    "required": ["query"],
                },
            },
        },
    ]


def test_format_tools_keeps_openai_dicts() -> None:
    tools = format_tools([SEARCH_SCHEMA])
    assert format_tools(tools) == tools


def test_format_tools_rejects_different_tools_with_one_name() -> None:
    with raises("two different tools are named 'add'; tool names must be unique"):
        format_tools([add, {**SEARCH_SCHEMA, "title": "add"}])


def test_format_tools_lists_the_same_tool_once() -> None:
    class Person(BaseModel):
        """Record a person."""

        name: str = Field(description="The name.")

    once = format_tools([Person])
    assert format_tools([Person, Person.model_json_schema()]) == once


def test_format_tools_rejects_builtin_tools() -> None:
    with raises(
        "tool {'type': 'web_search_preview'} is not a function tool; a text-only endpoint "
        "can only use tools described by a name and a JSON schema"
    ):
        format_tools([{"type": "web_search_preview"}])


# --- tool_instructions -------------------------------------------------------------------

WEATHER_TOOLS = format_tools(
    [
        {
            "title": "get_weather",
            "description": "Get the weather in a city.",
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        }
    ]
)

INSTRUCTIONS_HEAD = """\
You have access to the following tools, each listed with its name, what it does and the \
JSON schema of its arguments:

- get_weather: Get the weather in a city.
  Arguments schema: {"type": "object", "properties": {"city": {"type": "string"}}, \
"required": ["city"]}

To call tools, reply with ONLY a JSON object of exactly this form, with no other text and \
no Markdown code fence:
{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments matching the tool's \
schema>}}]}
To call several tools at once, put several calls in the "tool_calls" list. When you do not \
call a tool, answer in plain text.
Tool results come back as user turns that start with "[Tool result] <tool name> (call \
<call id>):", or with "[Tool error] <tool name> (call <call id>):" when the tool failed.

"""


@pytest.mark.parametrize(
    ("choice", "last_line"),
    [
        ("auto", "Call a tool when it helps you answer; otherwise answer in plain text."),
        ("required", "You must call at least one tool in this reply."),
        ("get_weather", 'You must call the tool "get_weather" in this reply, and no other tool.'),
    ],
)
def test_tool_instructions(choice: str, last_line: str) -> None:
    assert tool_instructions(WEATHER_TOOLS, choice) == INSTRUCTIONS_HEAD + last_line


def test_tool_instructions_none() -> None:
    assert tool_instructions(WEATHER_TOOLS, "none") == NO_TOOLS_INSTRUCTIONS
    assert tool_instructions([], "auto") == NO_TOOLS_INSTRUCTIONS
    assert NO_TOOLS_INSTRUCTIONS == (
        "No tools are available for this reply: do not call any tool and do not write a "
        '"tool_calls" JSON object; answer in plain text. Tool calls and tool results in '
        "earlier turns are history only."
    )


def test_tool_instructions_tool_without_description_or_parameters() -> None:
    tools = [{"type": "function", "function": {"name": "ping"}}]
    text = tool_instructions(tools, "auto")
    expected = (
        '- ping: (no description)\n  Arguments schema: {"type": "object", "properties": {}}\n'
    )
    assert expected in text


def test_tool_instructions_errors() -> None:
    with raises("tool_choice 'required' needs at least one tool"):
        tool_instructions([], "required")
    with raises("tool_choice 'add' is not one of the tools ['get_weather']"):
        tool_instructions(WEATHER_TOOLS, "add")


def test_instructions_agree_with_protocol() -> None:
    """The format taught, the format rendered into history and the format parsed agree."""
    rendered = render_tool_calls([weather()])
    assert rendered == CALL
    assert rendered.startswith('{"tool_calls": [{"name": "get_weather", "arguments": {')
    assert '{"tool_calls": [{"name": "<tool name>", "arguments": {' in tool_instructions(
        WEATHER_TOOLS, "auto"
    )
    assert parse(rendered) == ParsedReply(content="", tool_calls=[weather()])
    # An AI message with text and calls renders as text, newline, JSON; it parses back.
    turns = messages_to_turns(
        [
            HumanMessage(content="Weather in Paris?"),
            AIMessage(content="Let me check.", tool_calls=[weather()]),
            ToolMessage(content="sunny", tool_call_id="call_0"),
        ]
    )
    assert [turn.role for turn in turns] == ["user", "model", "user"]
    history = turns[1].parts[0].text
    assert history == f"Let me check.\n{CALL}"
    assert turns[2].parts[0].text == TOOL_RESULT_TEMPLATE.format(
        name="get_weather", id="call_0", content="sunny"
    )
    assert parse(history) == ParsedReply(content="Let me check.", tool_calls=[weather()])
    # The templates, pinned here once (elsewhere tests format them): the prefixes are
    # those the instructions announce.
    assert TOOL_RESULT_TEMPLATE == "[Tool result] {name} (call {id}):\n{content}"
    assert TOOL_ERROR_TEMPLATE == "[Tool error] {name} (call {id}):\n{content}"


# --- parse_tool_reply: accepted forms ----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        CALL,
        f"  \n{CALL}\n\n",
        f"```json\n{CALL}\n```",
        f"```JSON\n{CALL}\n```\n",
        f"```\n{CALL}\n```",
        f"```json {CALL}```",
        '{"name": "get_weather", "arguments": {"city": "Paris"}}',
        '{"name": "get_weather", "args": {"city": "Paris"}}',
        '{"name": "get_weather", "parameters": {"city": "Paris"}}',
        '{"tool_calls": [{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}]}',
        '{"tool_calls": {"name": "get_weather", "arguments": {"city": "Paris"}}}',
        '{"tool_calls": [{"type": "function", "function": {"name": "get_weather", '
        '"arguments": "{\\"city\\": \\"Paris\\"}"}}]}',
        '{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}',
        '{"tool_calls":[{"name":"get_weather","arguments":{"city":"Paris"},"id":"x"}]}',
    ],
)
def test_parse_bare_and_fenced_call(text: str) -> None:
    assert parse(text) == ParsedReply(content="", tool_calls=[weather()])


def test_parse_without_arguments_and_with_empty_string_arguments() -> None:
    assert parse('{"tool_calls": [{"name": "add"}, {"name": "add", "arguments": " "}]}') == (
        ParsedReply(
            content="",
            tool_calls=[
                tool_call(name="add", args={}, id="call_0"),
                tool_call(name="add", args={}, id="call_1"),
            ],
        )
    )


@pytest.mark.parametrize(
    ("text", "content"),
    [
        (f"Let me check the weather.\n{CALL}", "Let me check the weather."),
        (f"Let me check.\n```json\n{CALL}\n```\nOne moment.", "Let me check.\n\nOne moment."),
        (f"\nSure: {CALL} ", "\nSure:"),
        (f"A {CALL} B", "A  B"),
        (f"  {CALL}\n\nThe result will follow. ", "The result will follow."),
    ],
)
def test_parse_prose_around_call(text: str, content: str) -> None:
    assert parse(text) == ParsedReply(content=content, tool_calls=[weather()])


def test_parse_several_calls() -> None:
    two = (
        '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, '
        '{"name": "add", "arguments": {"a": 1, "b": 2}}]}'
    )
    expected = ParsedReply(
        content="",
        tool_calls=[
            weather(),
            tool_call(name="add", args={"a": 1, "b": 2}, id="call_1"),
        ],
    )
    assert parse(two) == expected
    separate = (
        '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        '{"name": "add", "arguments": {"a": 1, "b": 2}}\n```'
    )
    assert parse(separate) == expected
    array = (
        '[{"name": "get_weather", "arguments": {"city": "Paris"}}, '
        '{"name": "add", "arguments": {"a": 1, "b": 2}}]'
    )
    assert parse(array) == expected
    assert parse(f"```json\n{array}\n```") == expected


@pytest.mark.parametrize(
    "text",
    [
        "The weather in Paris is sunny.",
        "",
        "  leading and trailing whitespace is kept  \n",
        '{"answer": 42}',
        '```json\n{"answer": 42}\n```',
        '{"name": "Bob", "age": 3}',
        '{"answer": {"name": "get_weather", "arguments": {"city": "Paris"}}}',
        '[{"answer": 1}, {"name": "get_weather", "arguments": {}}] mixed arrays are text',
        "[links](https://example.com) and [ ] and [{}] and [1]",
        "use {x} here, or {} or {'a': 1}",
        'a set {1, 2} and a dict {"a" 1}',
        '{"tool_calls": "none"}',
        "```python\nprint({'tool_calls': []})\n```",
    ],
)
def test_parse_text_stays_text(text: str) -> None:
    assert parse(text) == ParsedReply(content=text)


def test_parse_empty_call_list_is_removed() -> None:
    assert parse('No tool needed. {"tool_calls": []}') == ParsedReply(content="No tool needed.")


# --- parse_tool_reply: invalid calls -----------------------------------------------------


def _json_error(text: str) -> str:
    """The decoder's own words: Python 3.13 reports trailing commas differently."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at character {exc.pos}"
    raise AssertionError("valid JSON")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"name": "get_time", "arguments": {"tz": "UTC"}}',
            invalid(
                "get_time",
                '{"tz": "UTC"}',
                "unknown tool 'get_time'; available tools: add, get_weather",
            ),
        ),
        (
            '{"tool_calls": [{"name": "add", "arguments": [1, 2]}]}',
            invalid("add", "[1, 2]", "arguments must be a JSON object, not an array"),
        ),
        (
            '{"tool_calls": [{"name": "add", "arguments": "[1, 2]"}]}',
            invalid("add", "[1, 2]", "arguments must be a JSON object, not an array"),
        ),
        (
            '{"tool_calls": [{"name": "add", "arguments": 3}]}',
            invalid("add", "3", "arguments must be a JSON object, not a number"),
        ),
        (
            '{"tool_calls": [{"name": "add", "arguments": "\\"x\\""}]}',
            invalid("add", '"x"', "arguments must be a JSON object, not a string"),
        ),
        (
            '{"tool_calls": [{"name": "add", "arguments": null}]}',
            invalid("add", "null", "arguments must be a JSON object, not null"),
        ),
        (
            '{"tool_calls": [{"name": "add", "arguments": true}]}',
            invalid("add", "true", "arguments must be a JSON object, not a boolean"),
        ),
        (
            '{"tool_calls": [{"name": "add", "arguments": "{a: 1}"}]}',
            invalid(
                "add",
                "{a: 1}",
                "arguments are not valid JSON: Expecting property name "
                "enclosed in double quotes at character 1",
            ),
        ),
        (
            '{"tool_calls": [{"arguments": {"a": 1}}]}',
            invalid(None, '{"a": 1}', 'tool call has no "name"'),
        ),
        ('{"tool_calls": ["add"]}', invalid(None, '"add"', "tool call is not a JSON object")),
        (
            '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}',
            invalid(
                "get_weather",
                '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}',
                "tool call is not valid JSON: Expecting ',' delimiter at character 70",
            ),
        ),
        (
            '```json\n{"tool_calls": [{"name": "add", "arguments": {"a": 1,}}]}\n```',
            invalid(
                "add",
                '{"tool_calls": [{"name": "add", "arguments": {"a": 1,}}]}',
                "tool call is not valid JSON: "
                + _json_error('{"tool_calls": [{"name": "add", "arguments": {"a": 1,}}]}'),
            ),
        ),
        (
            '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]',
            invalid(
                "get_weather",
                '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]',
                "tool call is not valid JSON: Expecting ',' delimiter at character 72",
            ),
        ),
    ],
)
def test_parse_invalid_calls(text: str, expected: dict[str, Any]) -> None:
    assert parse(text) == ParsedReply(content="", invalid_tool_calls=[expected])


def test_parse_broken_call_swallows_the_rest_and_keeps_prose_before() -> None:
    text = 'Checking.\n{"name": "add", "arguments": {"a": 1 "b": 2}} and more text'
    assert parse(text) == ParsedReply(
        content="Checking.",
        invalid_tool_calls=[
            invalid(
                "add",
                '{"name": "add", "arguments": {"a": 1 "b": 2}} and more text',
                "tool call is not valid JSON: Expecting ',' delimiter at character 37",
            )
        ],
    )


def test_parse_broken_call_with_two_names_has_no_name() -> None:
    text = '{"tool_calls": [{"name": "add"} {"name": "get_weather"}]}'
    assert parse(text).invalid_tool_calls == [
        invalid(None, text, "tool call is not valid JSON: Expecting ',' delimiter at character 32")
    ]


def test_parse_mixed_valid_and_invalid_calls_keep_order_of_ids() -> None:
    text = (
        '{"tool_calls": [{"name": "nope", "arguments": {}}, '
        '{"name": "get_weather", "arguments": {"city": "Oslo"}}]}'
    )
    assert parse(text) == ParsedReply(
        content="",
        tool_calls=[weather("Oslo", "call_1")],
        invalid_tool_calls=[
            invalid("nope", "{}", "unknown tool 'nope'; available tools: add, get_weather")
        ],
    )


def test_parse_without_tools() -> None:
    reply = parse_tool_reply(CALL, [], id_factory=ids())
    assert reply.invalid_tool_calls == [
        invalid(
            "get_weather", '{"city": "Paris"}', "unknown tool 'get_weather'; available tools: none"
        )
    ]


def test_default_ids_are_unique() -> None:
    text = '{"tool_calls": [' + ", ".join(['{"name": "add", "arguments": {}}'] * 50) + "]}"
    reply = parse_tool_reply(text + ' {"name": "x", "args": 1}', NAMES)
    ids_ = [call["id"] for call in [*reply.tool_calls, *reply.invalid_tool_calls]]
    assert len(ids_) == 51
    assert len(set(ids_)) == 51
    assert all(i is not None and len(i) == 29 and i.startswith("call_") for i in ids_)
    assert new_tool_call_id() != new_tool_call_id()


# --- streaming -----------------------------------------------------------------------------


def run_stream(deltas: list[str]) -> tuple[list[list[StreamEvent]], ToolStreamParser]:
    parser = ToolStreamParser(NAMES, id_factory=ids())
    batches = [parser.feed(delta) for delta in deltas]
    batches.append(parser.finish())
    return batches, parser


def texts(events: list[StreamEvent]) -> list[str]:
    return [event.text for event in events if event.kind == "content"]


def test_stream_prose_passes_through_at_once() -> None:
    batches, parser = run_stream(["Hello", ", world", " and more.  ", "\n"])
    assert [texts(batch) for batch in batches] == [
        ["Hello"],
        [", world"],
        [" and more."],
        [],
        ["  \n"],
    ]
    assert parser.result == ParsedReply(content="Hello, world and more.  \n")


def test_stream_bare_call_never_shows_as_content() -> None:
    deltas = ['{"tool_', 'calls": [{"name": "get_weather", ', '"arguments": {"city": "Paris"}}]}']
    batches, parser = run_stream(deltas)
    assert batches[:2] == [[], []]
    assert batches[2] == [
        StreamEvent(
            kind="tool_call_chunk",
            tool_call_chunk={
                "name": "get_weather",
                "args": '{"city": "Paris"}',
                "id": "call_0",
                "index": 0,
                "type": "tool_call_chunk",
            },
        )
    ]
    assert batches[3] == []
    assert parser.result == ParsedReply(content="", tool_calls=[weather()])


def test_stream_fenced_call_waits_for_the_closing_fence() -> None:
    batches, _ = run_stream(["``", "`json\n", CALL, "\n``", "`\nDone."])
    assert [[e.kind for e in batch] for batch in batches] == [
        [],
        [],
        [],
        [],
        ["tool_call_chunk", "content"],
        [],
    ]
    assert texts(batches[4]) == ["Done."]


def test_stream_non_call_json_is_emitted_once_complete() -> None:
    batches, parser = run_stream(['{"answer"', ": 42}", " ok"])
    assert [texts(batch) for batch in batches] == [[], ['{"answer": 42}'], [" ok"], []]
    assert parser.result == ParsedReply(content='{"answer": 42} ok')


def test_stream_prose_then_call_holds_back_from_the_brace() -> None:
    batches, parser = run_stream(
        ["Let me check.\n", '{"name": "get_weather", ', '"arguments": {"city": "Paris"}}', "\n"]
    )
    assert [texts(batch) for batch in batches] == [["Let me check."], [], [], [], []]
    assert parser.result == ParsedReply(content="Let me check.", tool_calls=[weather()])


def test_stream_stray_brace_is_released_once_it_cannot_be_json() -> None:
    batches, _ = run_stream(["use {x", "} here and then", " some more words"])
    assert [texts(batch) for batch in batches] == [
        ["use"],
        [" {x} here and then"],
        [" some more words"],
        [],
    ]


def test_stream_invalid_call_event() -> None:
    batches, parser = run_stream(['{"name": "nope", "arguments": {}}'])
    error = "unknown tool 'nope'; available tools: add, get_weather"
    assert batches[0] == [
        StreamEvent(kind="invalid_tool_call", invalid_tool_call=invalid("nope", "{}", error))
    ]
    assert parser.result.invalid_tool_calls == [invalid("nope", "{}", error)]


def test_stream_misuse() -> None:
    parser = ToolStreamParser(NAMES)
    with pytest.raises(RuntimeError, match="not finished"):
        _ = parser.result
    parser.finish()
    with pytest.raises(RuntimeError, match="after finish"):
        parser.feed("x")
    with pytest.raises(RuntimeError, match="twice"):
        parser.finish()


def test_stream_events_build_an_ai_message_chunk() -> None:
    batches, _ = run_stream(["Sure.\n", CALL])
    events = [event for batch in batches for event in batch]
    chunks = [
        AIMessageChunk(content=event.text)
        if event.kind == "content"
        else AIMessageChunk(content="", tool_call_chunks=[event.tool_call_chunk])
        for event in events
        if event.kind != "invalid_tool_call"
    ]
    message = chunks[0]
    for chunk in chunks[1:]:
        message = message + chunk
    assert message.content == "Sure."
    assert message.tool_calls == [weather()]


SAMPLES = [
    "The weather in Paris is sunny, 21 °C.",
    CALL,
    f"```json\n{CALL}\n```",
    f"Let me check the weather.\n{CALL}",
    f"Let me check.\n```json\n{CALL}\n```\nI will report back. ",
    '{"answer": 42}',
    '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, '
    '{"name": "add", "arguments": "{\\"a\\": 1, \\"b\\": 2}"}]}',
    '{"name": "get_time", "arguments": {"tz": "UTC"}}',
    '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}',
    'use {x} here, and {"y" there} too; } { ``` ` ``',
    '  \n```\n{"name": "add", "args": [1]}\n```\n\n```json\n{"answer": {"name": "add"}}\n```',
    'Text with "quotes" and {"unterminated: string  ',
    '```json\n{"name": "add", "arguments": {}}\n{"name": "add", "arguments": {}}\n```  ',
    'Numbers {"a": 1.5e3, "b": -Infinity, "c": tru} after',
]


def splits(text: str) -> st.SearchStrategy[list[str]]:
    cuts = st.lists(st.integers(min_value=0, max_value=len(text)), max_size=12)
    return cuts.map(
        lambda points: [text[a:b] for a, b in itertools.pairwise([0, *sorted(points), len(text)])]
    )


def check_parity(deltas: list[str]) -> None:
    text = "".join(deltas)
    batches, parser = run_stream(deltas)
    events = [event for batch in batches for event in batch]
    expected = parse(text)
    assert "".join(texts(events)) == expected.content
    chunks = [e.tool_call_chunk for e in events if e.tool_call_chunk is not None]
    assert [(c["name"], json.loads(c["args"] or "")) for c in chunks] == [
        (call["name"], call["args"]) for call in expected.tool_calls
    ]
    invalids = [e.invalid_tool_call for e in events if e.invalid_tool_call is not None]
    assert invalids == expected.invalid_tool_calls  # same id factory → same ids
    assert parser.result == expected
    assert all(e.text for e in events if e.kind == "content")


@pytest.mark.parametrize("sample", SAMPLES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_stream_parity_for_samples(sample: str, data: st.DataObject) -> None:
    check_parity(data.draw(splits(sample)))


def test_stream_parity_one_character_at_a_time() -> None:
    for sample in SAMPLES:
        check_parity(list(sample))


FRAGMENTS = st.sampled_from(
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
        "`",
        "```",
        "```json",
        "json",
        "x",
        '"tool_calls"',
        '"name"',
        '"arguments"',
        '"add"',
        '"get_weather"',
        '"nope"',
        "1",
        "tru",
        "true",
        "\\",
        CALL,
        '{"name": "add", "args": {}}',
        '{"answer": 1}',
        "Hello.",
    ]
)


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(FRAGMENTS, max_size=25), data=st.data())
def test_stream_parity_for_generated_text(pieces: list[str], data: st.DataObject) -> None:
    check_parity(data.draw(splits("".join(pieces))))
