"""The outputs shown in ChatGPROChat's docstring are what the snippets give."""

from __future__ import annotations

from pydantic import BaseModel, Field

from langchain_gprochat import ChatGPROChat
from langchain_gprochat.server import GPROChatServer, ScriptedBackend


def _shown(text: str) -> bool:
    doc = " ".join((ChatGPROChat.__doc__ or "").split())
    return " ".join(text.split()) in doc


class GetWeather(BaseModel):
    """Get the current weather in a given location."""

    location: str = Field(..., description="The city, e.g. Paris")


class Joke(BaseModel):
    """Joke to tell user."""

    setup: str
    punchline: str


async def test_docstring_outputs_of_the_echo_backend(echo_server: GPROChatServer) -> None:
    messages = [
        ("system", "You are a helpful translator."),
        ("human", "Translate 'I love programming' into French."),
    ]
    async with ChatGPROChat(base_url=echo_server.url) as llm:
        invoked = (await llm.ainvoke(messages)).content
        streamed = "".join([chunk.text async for chunk in llm.astream("Hi")])
        batch = [m.content for m in await llm.abatch(["a", "b"])]
    assert _shown(repr(invoked))
    assert _shown(streamed)
    assert _shown(repr(batch))


def test_docstring_outputs_of_tool_calling_and_structured_output() -> None:
    replies = [
        '{"tool_calls": [{"name": "GetWeather", "arguments": {"location": "Paris"}}]}',
        '{"tool_calls": [{"name": "Joke", "arguments": {"setup": "Why do cats sit on '
        'keyboards?", "punchline": "To keep an eye on the mouse."}}]}',
    ]
    with (
        GPROChatServer(backend=ScriptedBackend(replies)) as srv,
        ChatGPROChat(base_url=srv.url) as llm,
    ):
        calls = llm.bind_tools([GetWeather]).invoke("What is the weather like in Paris?")
        joke = llm.with_structured_output(Joke).invoke("Tell me a joke about cats")
    (call,) = calls.tool_calls
    assert call["id"] is not None
    assert call["id"].startswith("call_")
    shown = {**call, "id": "call_…"}
    assert _shown(repr([shown]))
    assert _shown(repr(joke))
