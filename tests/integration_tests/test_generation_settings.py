"""LangChain's standard parameters travel as ``generationConfig`` and are confirmed.

``gprochat-server`` applies each setting to its backend model where the model has that
field, and names what it applied in ``X-GPROChat-Applied``; the client warns once per
model and setting that the endpoint did not confirm.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import ConfigurableField

from langchain_gprochat import ChatGPROChat
from langchain_gprochat.protocol import (
    APPLIED_HEADER,
    DEFAULT_SECRET_KEY,
    Part,
    RequestEncoder,
    Turn,
)
from langchain_gprochat.server import ChatModelBackend, GPROChatServer

from ._support import expected_echo


class SettingsModel(BaseChatModel):
    """Answers with the sampling settings it was given, so a test can see them."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None

    @property
    def _llm_type(self) -> str:
        return "settings-echo"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = (
            f"temperature={self.temperature} max_tokens={self.max_tokens} "
            f"top_p={self.top_p} top_k={self.top_k}"
        )
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


@pytest.fixture(scope="module")
def settings_server() -> Iterator[GPROChatServer]:
    with GPROChatServer(backend=ChatModelBackend(SettingsModel())) as srv:
        yield srv


def _no_warnings_from(call: Any) -> Any:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = call()
    assert [str(w.message) for w in seen if issubclass(w.category, UserWarning)] == []
    return result


def test_settings_at_construction_reach_the_backend_model(settings_server: GPROChatServer) -> None:
    with ChatGPROChat(
        base_url=settings_server.url, temperature=0.3, max_tokens=5, top_p=0.9, top_k=4
    ) as llm:
        answer = _no_warnings_from(lambda: llm.invoke("hi"))
        streamed = _no_warnings_from(lambda: "".join(str(c.content) for c in llm.stream("hi")))
    assert answer.content == "temperature=0.3 max_tokens=5 top_p=0.9 top_k=4"
    assert streamed == answer.content


def test_settings_per_call_bind_and_configurable_fields(settings_server: GPROChatServer) -> None:
    with ChatGPROChat(base_url=settings_server.url) as llm:
        per_call = _no_warnings_from(lambda: llm.invoke("hi", temperature=0.1))
        bound = _no_warnings_from(lambda: llm.bind(max_tokens=7, top_k=2).invoke("hi"))
        configurable = llm.configurable_fields(temperature=ConfigurableField(id="temp"))
        configured = _no_warnings_from(
            lambda: configurable.invoke("hi", config={"configurable": {"temp": 0.2}})
        )
        plain = _no_warnings_from(lambda: llm.invoke("hi"))
    assert per_call.content == "temperature=0.1 max_tokens=None top_p=None top_k=None"
    assert bound.content == "temperature=None max_tokens=7 top_p=None top_k=2"
    assert configured.content == "temperature=0.2 max_tokens=None top_p=None top_k=None"
    assert plain.content == "temperature=None max_tokens=None top_p=None top_k=None"


async def test_the_server_names_what_it_applied(settings_server: GPROChatServer) -> None:
    turns = [Turn(role="user", parts=[Part(text="hi")])]
    config = {"temperature": 0.5, "maxOutputTokens": 9, "topP": 1, "topK": 3, "seed": 1}
    body = RequestEncoder(
        turns, password=None, secret_key=DEFAULT_SECRET_KEY, generation_config=config
    ).encode(1700000000000)
    async with aiohttp.ClientSession() as session:
        url = f"{settings_server.url}/api/generate"
        async with session.post(url, data=body) as response:
            text = await response.text()
            applied = response.headers[APPLIED_HEADER]
        plain = RequestEncoder(turns, password=None, secret_key=DEFAULT_SECRET_KEY).encode(1)
        async with session.post(url, data=plain) as response:
            assert APPLIED_HEADER not in response.headers
        bad = json.loads(body)
        bad["generationConfig"] = {"topP": 2}
        async with session.post(url, data=json.dumps(bad)) as response:
            refused = (response.status, json.loads(await response.text()))
    assert text == "temperature=0.5 max_tokens=9 top_p=1.0 top_k=3"
    assert applied == "temperature,maxOutputTokens,topP,topK"  # "seed" is unknown: ignored
    assert refused == (400, {"error": {"message": "generationConfig.topP must be between 0 and 1"}})


def test_an_endpoint_that_does_not_confirm_gets_one_warning_per_setting(
    echo_server: GPROChatServer,
) -> None:
    llm = ChatGPROChat(base_url=echo_server.url, temperature=0.3, max_tokens=5)
    with llm, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        first = llm.invoke("hi")
        second = llm.invoke("hi", top_k=2)
        third = llm.invoke("hi", top_k=3)
    assert [first.content, second.content, third.content] == [expected_echo("hi")] * 3
    messages = [str(w.message) for w in seen if issubclass(w.category, UserWarning)]
    assert messages == [
        f"{echo_server.url} did not confirm `{name}` (sent as generationConfig.{wire}): the "
        "endpoint may ignore it, as the upstream GeminiProChat app does. gprochat-server "
        "applies it where its backend model has that setting."
        for name, wire in [
            ("temperature", "temperature"),
            ("max_tokens", "maxOutputTokens"),
            ("top_k", "topK"),
        ]
    ]
