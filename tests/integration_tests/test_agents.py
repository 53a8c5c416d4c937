"""Tool calling, structured output and agents through the real HTTP path on 127.0.0.1.

Replies are scripted (``ScriptedBackend``) so that every assertion is exact; the oracle
test double (``oracle.py``) is unit-tested at the end of this module.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import pytest
from langchain.agents import create_agent
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_json_schema
from pydantic import BaseModel, Field, ValidationError
from typing_extensions import TypedDict

from langchain_gprochat import ChatGPROChat
from langchain_gprochat._convert import messages_to_turns
from langchain_gprochat._structured import JSON_MODE_INSTRUCTIONS, JSON_SCHEMA_INSTRUCTIONS
from langchain_gprochat._tools import (
    NAMED_TOOL_CHOICE_TEMPLATE,
    TOOL_ERROR_TEMPLATE,
    TOOL_RESULT_TEMPLATE,
    format_tools,
    tool_instructions,
)
from langchain_gprochat.protocol import turn_text
from langchain_gprochat.server import GPROChatServer, ScriptedBackend

from ._support import GateBackend
from .oracle import FIXED_PHRASE, OracleBackend, oracle_reply, synthesize


@tool
def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"sunny in {city}"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


TOOLS = [get_weather, add]
CALL = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'
WEATHER = ("get_weather", {"city": "Paris"})


@contextmanager
def scripted(replies: list[Any], **params: Any) -> Iterator[tuple[ChatGPROChat, ScriptedBackend]]:
    backend = ScriptedBackend(replies)
    with (
        GPROChatServer(backend=backend) as srv,
        ChatGPROChat(base_url=srv.url, max_retries=0, **params) as llm,
    ):
        yield llm, backend


def calls(message: BaseMessage) -> list[tuple[str, dict[str, Any]]]:
    assert isinstance(message, AIMessage)
    assert all(call["id"] for call in message.tool_calls)
    return [(call["name"], call["args"]) for call in message.tool_calls]


def invalid_calls(message: BaseMessage) -> list[tuple[str | None, str | None, str | None]]:
    assert isinstance(message, AIMessage)
    assert all(call["id"] for call in message.invalid_tool_calls)
    return [(c["name"], c["args"], c["error"]) for c in message.invalid_tool_calls]


def merged(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


# --- accepted reply forms ---------------------------------------------------------------

VALID_REPLIES = {
    "bare JSON": (CALL, "", [WEATHER]),
    "fenced": (f"```json\n{CALL}\n```", "", [WEATHER]),
    "bare fence": (f"```\n{CALL}\n```", "", [WEATHER]),
    "prose and call": (
        f"Let me check the weather.\n{CALL}\nOne moment.",
        "Let me check the weather.\n\nOne moment.",
        [WEATHER],
    ),
    "single-call shorthand": (
        '{"name": "get_weather", "arguments": {"city": "Paris"}}',
        "",
        [WEATHER],
    ),
    "two calls": (
        '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, '
        '{"name": "add", "arguments": {"a": 2, "b": 3}}]}',
        "",
        [WEATHER, ("add", {"a": 2, "b": 3})],
    ),
    "plain text": ("It is sunny in Paris.", "It is sunny in Paris.", []),
    "non-call JSON stays text": ('{"answer": 42}', '{"answer": 42}', []),
}


@pytest.mark.parametrize("name", list(VALID_REPLIES))
def test_accepted_reply_forms(name: str) -> None:
    reply, content, expected = VALID_REPLIES[name]
    with scripted([reply]) as (llm, _):
        message = llm.bind_tools(TOOLS).invoke("Weather in Paris?")
    assert message.content == content
    assert calls(message) == expected
    assert message.invalid_tool_calls == []
    assert message.response_metadata["finish_reason"] == ("tool_calls" if expected else "stop")


# --- invalid calls ------------------------------------------------------------------------

UNKNOWN = '{"tool_calls": [{"name": "get_time", "arguments": {"zone": "UTC"}}]}'
BAD_ARGS = '{"tool_calls": [{"name": "get_weather", "arguments": "{city: Paris}"}]}'
TRUNCATED = 'Checking. {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}'
# reply, content, name, args, error, and the args after streamed chunks are summed: args
# that langchain-core's parse_partial_json reads as an object are streamed JSON-encoded
# as a string (else summing would turn the call into a valid one; see docs/tools.md).
INVALID_REPLIES = {
    "unknown tool": (
        UNKNOWN,
        "",
        "get_time",
        '{"zone": "UTC"}',
        "unknown tool 'get_time'; available tools: add, get_weather",
        json.dumps('{"zone": "UTC"}'),
    ),
    "unparsable arguments": (
        BAD_ARGS,
        "",
        "get_weather",
        "{city: Paris}",
        "arguments are not valid JSON: Expecting property name enclosed in double quotes "
        "at character 1",
        "{city: Paris}",
    ),
    "arguments not an object": (
        '{"tool_calls": [{"name": "add", "arguments": [2, 3]}]}',
        "",
        "add",
        "[2, 3]",
        "arguments must be a JSON object, not an array",
        "[2, 3]",
    ),
    "truncated call": (
        TRUNCATED,
        "Checking.",
        "get_weather",
        TRUNCATED.removeprefix("Checking. "),
        "tool call is not valid JSON: Expecting ',' delimiter at character 70",
        json.dumps(TRUNCATED.removeprefix("Checking. ")),
    ),
}


@pytest.mark.parametrize("name", list(INVALID_REPLIES))
def test_invalid_calls_become_invalid_tool_calls(name: str) -> None:
    reply, content, tool_name, args, error, _ = INVALID_REPLIES[name]
    with scripted([reply]) as (llm, _):
        message = llm.bind_tools(TOOLS).invoke("Weather in Paris?")
    assert message.content == content
    assert message.tool_calls == []
    assert invalid_calls(message) == [(tool_name, args, error)]
    assert message.response_metadata["finish_reason"] == "tool_calls"


# --- streaming parity ---------------------------------------------------------------------


# reply, content, calls, invalid calls (invoke), invalid calls (summed chunks)
PARITY = {name: (v[0], v[1], v[2], [], []) for name, v in VALID_REPLIES.items()} | {
    name: (v[0], v[1], [], [(v[2], v[3], v[4])], [(v[2], v[5], None)])
    for name, v in INVALID_REPLIES.items()
}


async def _final_messages(
    llm: ChatGPROChat,
) -> tuple[AIMessage, AIMessageChunk, AIMessageChunk, AIMessage, list[list[AIMessageChunk]]]:
    bound = llm.bind_tools(TOOLS)
    invoked = await asyncio.to_thread(bound.invoke, "q")
    sync_chunks: list[AIMessageChunk] = await asyncio.to_thread(lambda: list(bound.stream("q")))
    async_chunks = [chunk async for chunk in bound.astream("q")]
    ends = [
        event["data"]["output"]
        async for event in bound.astream_events("q", version="v2")
        if event["event"] == "on_chat_model_end"
    ]
    assert len(ends) == 1
    return invoked, merged(sync_chunks), merged(async_chunks), ends[0], [sync_chunks, async_chunks]


@pytest.mark.parametrize("chunking", ["echo", "chars"])
@pytest.mark.parametrize("name", list(PARITY))
async def test_invoke_stream_astream_events_parity(
    name: str, chunking: Literal["echo", "chars"]
) -> None:
    reply, content, expected_calls, expected_invalid, streamed_invalid = PARITY[name]
    script: Any = reply if chunking == "echo" else list(reply)
    with scripted([script] * 4) as (llm, backend):
        invoked, streamed, astreamed, event_end, streams = await _final_messages(llm)
    assert backend.remaining == 0
    assert (invoked.content, calls(invoked), invalid_calls(invoked)) == (
        content,
        expected_calls,
        expected_invalid,
    )
    for final in (streamed, astreamed, event_end):
        assert (final.content, calls(final), invalid_calls(final)) == (
            content,
            expected_calls,
            streamed_invalid,
        )
        assert (
            final.response_metadata["finish_reason"] == invoked.response_metadata["finish_reason"]
        )
    # Tool-call JSON never shows as streamed text: the text chunks are exactly the content.
    for chunks in streams:
        for chunk in chunks:
            assert isinstance(chunk.content, str)
            assert '"tool_calls"' not in chunk.content
            assert '"arguments"' not in chunk.content
            assert "```" not in chunk.content
        assert "".join(str(c.content) for c in chunks) == content


def test_merge_limitation_of_langchain_core_itself() -> None:
    """Why invalid calls are streamed as they are: raw ones do not survive summing."""
    raw = AIMessageChunk(
        content="",
        invalid_tool_calls=[
            {
                "type": "invalid_tool_call",
                "name": "get_time",
                "args": '{"zone": "UTC"}',
                "id": "call_1",
                "error": "unknown tool",
            },
        ],
    )
    total = raw + AIMessageChunk(content="", chunk_position="last")
    assert total.invalid_tool_calls == []
    assert calls(total) == [("get_time", {"zone": "UTC"})]
    cut = AIMessageChunk(
        content="",
        invalid_tool_calls=[
            {
                "type": "invalid_tool_call",
                "name": "get_weather",
                "args": '{"city": "Par',
                "id": "call_1",
                "error": "cut short",
            },
        ],
    )
    total = cut + AIMessageChunk(content="")
    assert calls(total) == [("get_weather", {"city": "Par"})]  # a wrong call, were it run


def test_prose_streams_before_the_call_arrives() -> None:
    backend = GateBackend("Let me check the weather. ", CALL)
    with GPROChatServer(backend=backend) as srv, ChatGPROChat(base_url=srv.url) as llm:
        stream = llm.bind_tools(TOOLS).stream("Weather in Paris?")
        first = next(stream)
        assert first.content == "Let me check the weather."  # trailing space held back
        assert not backend.finished.is_set()
        backend.release.set()
        rest = list(stream)
    final = merged([first, *rest])
    assert final.content == "Let me check the weather."
    assert calls(final) == [WEATHER]
    assert [c.content for c in rest] == ["", ""]  # the call chunk, then the closing chunk


async def test_prose_streams_before_the_call_arrives_async() -> None:
    backend = GateBackend("Let me check the weather. ", CALL)
    async with GPROChatServer(backend=backend) as srv, ChatGPROChat(base_url=srv.url) as llm:
        stream = llm.bind_tools(TOOLS).astream("Weather in Paris?")
        first = await stream.__anext__()
        assert first.content == "Let me check the weather."
        assert not backend.finished.is_set()
        backend.release.set()
        rest = [chunk async for chunk in stream]
    assert calls(merged([first, *rest])) == [WEATHER]


# --- history rendering --------------------------------------------------------------------


def test_tool_history_reaches_the_server_as_documented_text() -> None:
    conversation = [
        SystemMessage("Be brief."),
        HumanMessage("Weather in Paris, and 2 + 3?"),
        AIMessage(
            "Checking.",
            tool_calls=[
                {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"},
                {"name": "add", "args": {"a": 2, "b": 3}, "id": "call_2"},
            ],
        ),
        ToolMessage("sunny in Paris", tool_call_id="call_1"),
        ToolMessage("Error: add is down", tool_call_id="call_2", status="error"),
    ]
    with scripted(["Sunny; I could not add."]) as (llm, backend):
        answer = llm.bind_tools(TOOLS).invoke(conversation)
    assert answer.content == "Sunny; I could not add."
    instructions = tool_instructions(format_tools(TOOLS), "auto")
    assert [(t.role, turn_text(t)) for t in backend.received[0]] == [
        (
            "user",
            f"[System instructions]\n{instructions}\n\nBe brief.\n"
            "[End of system instructions]\n\nWeather in Paris, and 2 + 3?",
        ),
        (
            "model",
            'Checking.\n{"tool_calls": [{"name": "get_weather", "arguments": '
            '{"city": "Paris"}}, {"name": "add", "arguments": {"a": 2, "b": 3}}]}',
        ),
        (
            "user",
            TOOL_RESULT_TEMPLATE.format(name="get_weather", id="call_1", content="sunny in Paris")
            + "\n\n"
            + TOOL_ERROR_TEMPLATE.format(name="add", id="call_2", content="Error: add is down"),
        ),
    ]


# --- structured output --------------------------------------------------------------------


class Joke(BaseModel):
    """A joke to tell the user."""

    setup: str = Field(description="question to set up a joke")
    punchline: str = Field(description="answer to resolve the joke")


class JokeDict(TypedDict):
    """A joke to tell the user."""

    setup: str
    punchline: str


SCHEMAS: dict[str, tuple[Any, str]] = {
    "pydantic": (Joke, "Joke"),
    "typeddict": (JokeDict, "JokeDict"),
    "json_schema": (Joke.model_json_schema(), "Joke"),
}
JOKE = {
    "setup": "Why did the cat sit on the computer?",
    "punchline": "To keep an eye on the mouse.",
}
Method = Literal["function_calling", "json_schema", "json_mode"]


def _joke_reply(method: Method, tool_name: str) -> str:
    if method == "function_calling":
        return json.dumps({"tool_calls": [{"name": tool_name, "arguments": JOKE}]})
    return json.dumps(JOKE)


def _instructions(method: Method, schema: Any, tool_name: str) -> str:
    if method == "function_calling":
        return NAMED_TOOL_CHOICE_TEMPLATE.format(name=tool_name)
    if method == "json_schema":
        return JSON_SCHEMA_INSTRUCTIONS.format(
            schema=json.dumps(convert_to_json_schema(schema), ensure_ascii=False)
        )
    return JSON_MODE_INSTRUCTIONS


@pytest.mark.parametrize("include_raw", [False, True])
@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
@pytest.mark.parametrize("kind", list(SCHEMAS))
def test_structured_output(kind: str, method: Method, include_raw: bool) -> None:
    schema, tool_name = SCHEMAS[kind]
    expected = Joke(**JOKE) if kind == "pydantic" else JOKE
    reply = _joke_reply(method, tool_name)
    with scripted([reply, reply]) as (llm, backend):
        chain = llm.with_structured_output(schema, method=method, include_raw=include_raw)
        result = chain.invoke("Tell me a joke about cats.")
        streamed = list(chain.stream("Tell me a joke about cats."))
    first_turn = turn_text(backend.received[0][0])
    assert _instructions(method, schema, tool_name) in first_turn
    assert first_turn.endswith("[End of system instructions]\n\nTell me a joke about cats.")
    if not include_raw:
        assert result == expected
        assert streamed[-1] == expected
        return
    assert result["parsed"] == expected
    assert result["parsing_error"] is None
    raw = result["raw"]
    if method == "function_calling":
        assert (raw.content, calls(raw)) == ("", [(tool_name, JOKE)])
    else:
        assert (raw.content, calls(raw)) == (reply, [])


NOT_PARSABLE = {
    "prose": "I would rather not tell jokes.",
    "invalid call": '{"tool_calls": [{"name": "Joke", "arguments": "{setup: 1}"}]}',
    "incomplete object": '{"setup": "Knock knock."}',
}
NOT_PARSABLE_CASES = [
    *(
        (kind, method, "prose")
        for kind in SCHEMAS
        for method in ("function_calling", "json_schema", "json_mode")
    ),
    *((kind, "function_calling", "invalid call") for kind in SCHEMAS),
    # Only a pydantic class checks the fields of a JSON reply (see the next test).
    ("pydantic", "json_schema", "incomplete object"),
    ("pydantic", "json_mode", "incomplete object"),
]


@pytest.mark.parametrize(("kind", "method", "reply"), NOT_PARSABLE_CASES)
def test_structured_output_reply_that_does_not_parse(kind: str, method: Method, reply: str) -> None:
    schema, _ = SCHEMAS[kind]
    text = NOT_PARSABLE[reply]
    with scripted([text, text]) as (llm, _):
        with pytest.raises(OutputParserException):
            llm.with_structured_output(schema, method=method).invoke("Tell me a joke.")
        result = llm.with_structured_output(schema, method=method, include_raw=True).invoke(
            "Tell me a joke."
        )
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], OutputParserException)
    assert isinstance(result["raw"], AIMessage)
    assert result["raw"].text == ("" if reply == "invalid call" else text)


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
def test_structured_output_json_methods_with_dict_schemas_accept_any_object(
    method: Method,
) -> None:
    # LangChain's JsonOutputParser neither validates a dict schema nor rejects JSON cut
    # short: it completes it (parse_partial_json), as it does for every chat model.
    replies = ['{"setup": "Knock knock."}', '{"setup": "Knock kn']
    with scripted(replies) as (llm, _):
        chain = llm.with_structured_output(Joke.model_json_schema(), method=method)
        assert chain.invoke("Tell me a joke.") == {"setup": "Knock knock."}
        assert chain.invoke("Tell me a joke.") == {"setup": "Knock kn"}


def test_structured_output_function_calling_error_messages() -> None:
    with scripted(["No.", NOT_PARSABLE["invalid call"]]) as (llm, _):
        chain = llm.with_structured_output(Joke)
        with pytest.raises(OutputParserException) as prose:
            chain.invoke("Tell me a joke.")
        with pytest.raises(OutputParserException) as invalid:
            chain.invoke("Tell me a joke.")
    assert str(prose.value).startswith(
        "expected a call to the tool 'Joke': the reply holds no valid call to it"
    )
    assert prose.value.llm_output == "No."
    assert str(invalid.value).startswith(
        "expected a call to the tool 'Joke': arguments are not valid JSON: Expecting property "
        "name enclosed in double quotes at character 1"
    )


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
@pytest.mark.parametrize("fenced", [False, True])
def test_structured_output_default_method_takes_a_bare_matching_object(
    kind: str, fenced: bool
) -> None:
    # Some models answer a forced tool with its arguments alone, not wrapped in a call.
    schema, _ = SCHEMAS[kind]
    reply = json.dumps(JOKE)
    reply = f"```json\n{reply}\n```" if fenced else reply
    with scripted([reply]) as (llm, _):
        parsed = llm.with_structured_output(schema).invoke("Tell me a joke.")
    assert parsed == (Joke(**JOKE) if kind == "pydantic" else JOKE)


def test_structured_output_default_method_error_names_the_methods_that_fit() -> None:
    with scripted(['{"answer": 42}']) as (llm, _), pytest.raises(OutputParserException) as caught:
        llm.with_structured_output(Joke).invoke("Tell me a joke.")
    assert str(caught.value).startswith(
        "expected a call to the tool 'Joke': the reply is a JSON object that does not match "
        "the schema; if this model answers with plain JSON rather than a tool call, "
        "method='json_schema' (or 'json_mode') fits it"
    )


def test_structured_output_pydantic_validation_error() -> None:
    reply = '{"tool_calls": [{"name": "Joke", "arguments": {"setup": "Knock knock."}}]}'
    with scripted([reply, reply]) as (llm, _):
        with pytest.raises(ValidationError, match="punchline"):
            llm.with_structured_output(Joke).invoke("Tell me a joke.")
        result = llm.with_structured_output(Joke, include_raw=True).invoke("Tell me a joke.")
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], ValidationError)


def test_structured_output_strict() -> None:
    with scripted([_joke_reply("json_schema", "Joke")]) as (llm, _):
        assert llm.with_structured_output(Joke, method="json_schema", strict=True).invoke(
            "Tell me a joke."
        ) == Joke(**JOKE)
        with pytest.raises(ValueError, match=r"^strict=True needs a pydantic class"):
            llm.with_structured_output(JokeDict, strict=True)


# --- stop sequences with tools ------------------------------------------------------------

CUT = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "'
STOPS = {
    "stop before a call": (
        f"The answer is 42. STOP {CALL}",
        ["STOP"],
        "The answer is 42. ",
        [],
        [],
        [],
    ),
    "stop after a call": (f"{CALL}\nEND of turn", ["END"], "", [WEATHER], [], []),
    "stop inside a call": (
        CALL,
        ["Paris"],
        "",
        [],
        [
            (
                "get_weather",
                CUT,
                "tool call is not valid JSON: Unterminated string starting at at character 62",
            )
        ],
        [("get_weather", json.dumps(CUT), None)],
    ),
}


@pytest.mark.parametrize("name", list(STOPS))
def test_stop_sequences_with_tools_bound(name: str) -> None:
    reply, stop, content, expected_calls, expected_invalid, streamed_invalid = STOPS[name]
    with scripted([reply, reply]) as (llm, _):
        bound = llm.bind_tools(TOOLS)
        invoked = bound.invoke("q", stop=stop)
        streamed = merged(list(bound.stream("q", stop=stop)))
    assert (invoked.content, calls(invoked), invalid_calls(invoked)) == (
        content,
        expected_calls,
        expected_invalid,
    )
    assert (streamed.content, calls(streamed), invalid_calls(streamed)) == (
        content,
        expected_calls,
        streamed_invalid,
    )


# --- a multi-step agent -------------------------------------------------------------------


@tool
def capital_of(country: str) -> str:
    """Return the capital city of a country."""
    return {"France": "Paris", "Japan": "Tokyo"}[country]


@tool
def weather_in(city: str) -> str:
    """Return the current weather in a city."""
    return f"sunny, 21 °C in {city}"


AGENT_REPLIES = [
    '{"tool_calls": [{"name": "capital_of", "arguments": {"country": "France"}}]}',
    'Now the weather there.\n{"tool_calls": [{"name": "weather_in", "arguments": '
    '{"city": "Paris"}}]}',
    "It is sunny, 21 °C in Paris, the capital of France.",
]


def test_agent_loop_with_create_agent() -> None:
    with scripted(AGENT_REPLIES) as (llm, backend):
        agent = create_agent(model=llm, tools=[capital_of, weather_in], system_prompt="Be terse.")
        state = agent.invoke(
            {"messages": [HumanMessage("What is the weather in the capital of France?")]}
        )
    messages = state["messages"]
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    first_call, second_call, answer = messages[1], messages[3], messages[5]
    assert calls(first_call) == [("capital_of", {"country": "France"})]
    assert calls(second_call) == [("weather_in", {"city": "Paris"})]
    assert second_call.content == "Now the weather there."
    assert answer.content == "It is sunny, 21 °C in Paris, the capital of France."
    assert calls(answer) == []
    assert [m.content for m in (messages[2], messages[4])] == ["Paris", "sunny, 21 °C in Paris"]
    id_1, id_2 = first_call.tool_calls[0]["id"], second_call.tool_calls[0]["id"]
    assert backend.remaining == 0
    assert [len(r) for r in backend.received] == [1, 3, 5]
    assert [turn_text(t) for t in backend.received[2][1:]] == [
        AGENT_REPLIES[0],
        TOOL_RESULT_TEMPLATE.format(name="capital_of", id=id_1, content="Paris"),
        AGENT_REPLIES[1],
        TOOL_RESULT_TEMPLATE.format(name="weather_in", id=id_2, content="sunny, 21 °C in Paris"),
    ]
    instructions = tool_instructions(format_tools([capital_of, weather_in]), "auto")
    assert turn_text(backend.received[0][0]) == (
        f"[System instructions]\n{instructions}\n\nBe terse.\n[End of system instructions]"
        "\n\nWhat is the weather in the capital of France?"
    )


def test_agent_loop_streams_with_the_same_result() -> None:
    with scripted(AGENT_REPLIES) as (llm, backend):
        agent = create_agent(model=llm, tools=[capital_of, weather_in])
        tokens = [
            chunk.content
            for chunk, _ in agent.stream(
                {"messages": [HumanMessage("What is the weather in the capital of France?")]},
                stream_mode="messages",
            )
            if isinstance(chunk, AIMessageChunk) and chunk.content
        ]
    assert "".join(str(t) for t in tokens) == (
        "Now the weather there.It is sunny, 21 °C in Paris, the capital of France."
    )
    assert backend.remaining == 0


def test_agent_loop_driven_by_the_oracle() -> None:
    backend = OracleBackend()
    with GPROChatServer(backend=backend) as srv, ChatGPROChat(base_url=srv.url) as llm:
        agent = create_agent(model=llm, tools=[add])
        state = agent.invoke({"messages": [HumanMessage("What is 19 + 23?")]})
    messages = state["messages"]
    assert calls(messages[1]) == [("add", {"a": 19, "b": 23})]
    assert messages[2].content == "42"
    assert messages[3].content == "add returned: 42"
    assert len(backend.received) == 2


# --- the oracle test double ---------------------------------------------------------------


def _oracle(
    messages: list[BaseMessage],
    tools: list[Any] | None = None,
    choice: str = "auto",
    system: str | None = None,
) -> str:
    if tools is not None:
        system = tool_instructions(format_tools(tools), choice)
    if system is not None:
        messages = [SystemMessage(system), *messages]
    return oracle_reply(messages_to_turns(messages))


class Order(BaseModel):
    """Place an order."""

    item: str
    quantity: int
    express: bool
    size: Literal["small", "large"]
    notes: list[str]
    priority: int = 5


def test_oracle_calls_the_first_tool_with_arguments_from_the_question() -> None:
    reply = _oracle([HumanMessage("Add 19 and 23, not 7.")], [add, get_weather])
    assert json.loads(reply) == {"tool_calls": [{"name": "add", "arguments": {"a": 19, "b": 23}}]}


def test_oracle_calls_the_named_tool() -> None:
    reply = _oracle([HumanMessage("Weather in 'Lyon'?")], [add, get_weather], "get_weather")
    assert json.loads(reply)["tool_calls"] == [
        {"name": "get_weather", "arguments": {"city": "Lyon"}}
    ]


def test_oracle_synthesizes_every_kind_of_value() -> None:
    question = "Order 'tea' x3, note \"hot\"; it's urgent"
    reply = _oracle([HumanMessage(question)], [Order], "required")
    arguments = json.loads(reply)["tool_calls"][0]["arguments"]
    assert arguments == {
        "item": "tea",
        "quantity": 3,
        "express": True,
        "size": "small",
        "notes": ["hot"],
    }
    assert synthesize(
        {
            "type": "object",
            "properties": {"p": {"type": "integer", "default": 5}},
            "required": ["p"],
        },
        "7",
    ) == {"p": 5}
    assert synthesize({"type": "string"}, "no quotes") == FIXED_PHRASE
    assert synthesize({"type": "integer"}, "no numbers") == 0


def test_oracle_answers_tool_results_in_plain_text() -> None:
    conversation = [
        HumanMessage("What is 2 + 3?"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}, "id": "c1"}]),
        ToolMessage("5", tool_call_id="c1"),
    ]
    assert _oracle(conversation, [add]) == "add returned: 5"


def test_oracle_json_schema_and_json_mode() -> None:
    schema = convert_to_json_schema(Joke)
    system = JSON_SCHEMA_INSTRUCTIONS.format(schema=json.dumps(schema))
    reply = _oracle([HumanMessage("A joke about 'cats'.")], system=system)
    assert json.loads(reply) == {"setup": "cats", "punchline": FIXED_PHRASE}
    reply = _oracle(
        [HumanMessage("JSON with 'setup' and 'punchline' keys.")], system=JSON_MODE_INSTRUCTIONS
    )
    assert json.loads(reply) == {"setup": FIXED_PHRASE, "punchline": FIXED_PHRASE}


def test_oracle_without_instructions_or_with_tool_choice_none() -> None:
    assert _oracle([HumanMessage("Hello")]) == "Oracle reply to: Hello"
    assert _oracle([HumanMessage("Add 1 and 2")], [add], "none") == ("Oracle reply to: Add 1 and 2")
    tampered = tool_instructions(format_tools([add]), "auto").replace("Add two", "Sum two")
    assert (
        _oracle(
            [HumanMessage("Add 1 and 2")],
            system=tampered.replace("JSON schema of its arguments", "schema"),
        )
        == "Oracle reply to: Add 1 and 2"
    )
