"""GPROChat handed to gpt4free's own client, and compared with the original provider."""

from __future__ import annotations

import asyncio
import json
from types import ModuleType
from typing import Any

import g4f
import pytest
from aiohttp import web
from g4f.client import AsyncClient, Client
from g4f.errors import ModelNotFoundError, ProviderNotWorkingError
from g4f.providers.base_provider import AsyncGeneratorProvider, ProviderModelMixin
from g4f.providers.helper import format_prompt as g4f_format_prompt
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_gprochat import AuthenticationError
from langchain_gprochat._g4f_messages import format_prompt
from langchain_gprochat.g4f import GPROChat
from langchain_gprochat.server import GPROChatServer
from tests.integration_tests._relay import ByteRelay
from tests.integration_tests._support import serve_generate

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Привет, мир 🌍"},
    {"role": "assistant", "content": "Hi!"},
    {"role": "user", "content": "Again"},
]
PROMPT = "System: Be brief.\nUser: Привет, мир 🌍\nAssistant: Hi!\nUser: Again\nAssistant:"
ANSWER = f"Echo · turn 1 · «{PROMPT}» ✓"


@pytest.fixture
def local(echo_server: GPROChatServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GPROCHAT_BASE_URL", echo_server.url)
    return echo_server.url


def test_the_class_is_a_g4f_provider() -> None:
    assert issubclass(GPROChat, AsyncGeneratorProvider)
    assert issubclass(GPROChat, ProviderModelMixin)
    assert (GPROChat.__module__, GPROChat.__name__) == ("langchain_gprochat.g4f", "GPROChat")
    assert (GPROChat.url, GPROChat.working, GPROChat.get_parent()) == (
        "https://gprochat.com",
        False,
        "GPROChat",
    )
    with pytest.raises(ModelNotFoundError, match="Model not found: 'gpt-4o'"):
        GPROChat.get_model("gpt-4o")


def test_chat_completion_refuses_gprochat_com_as_not_working() -> None:
    with pytest.raises(ProviderNotWorkingError, match="GPROChat is not working"):
        g4f.ChatCompletion.create(model="", messages=MESSAGES, provider=GPROChat)


async def test_async_client_streams_the_exact_answer(local: str) -> None:
    client = AsyncClient()
    stream = client.chat.completions.create(
        model="", messages=MESSAGES, provider=GPROChat, stream=True
    )
    deltas = [chunk.choices[0].delta.content async for chunk in stream]
    assert "".join(d for d in deltas if d) == ANSWER
    await GPROChat.aclose()


async def test_async_client_streams_whole_characters_when_the_network_splits_them(
    echo_server: GPROChatServer,
) -> None:
    with ByteRelay(echo_server.url) as relay:
        client = AsyncClient()
        stream = client.chat.completions.create(
            model="",
            messages=MESSAGES,
            provider=GPROChat,
            stream=True,
            base_url=relay.url,
        )
        deltas = [chunk.choices[0].delta.content async for chunk in stream]
        await GPROChat.aclose()
    texts = [d for d in deltas if d]
    assert "".join(texts) == ANSWER
    assert all("\ufffd" not in d for d in texts)


async def test_async_client_without_streaming(local: str) -> None:
    response = await AsyncClient().chat.completions.create(
        model="gemini-1.5-pro", messages=MESSAGES, provider=GPROChat
    )
    assert response.choices[0].message.content == ANSWER
    await GPROChat.aclose()


async def test_async_client_passes_stop_through(local: str) -> None:
    response = await AsyncClient().chat.completions.create(
        model="", messages=MESSAGES, provider=GPROChat, stop="turn"
    )
    assert response.choices[0].message.content == "Echo · "
    await GPROChat.aclose()


def test_chat_completion_create(local: str) -> None:
    assert GPROChat.working is True
    assert g4f.ChatCompletion.create(model="", messages=MESSAGES, provider=GPROChat) == ANSWER
    chunks = g4f.ChatCompletion.create(model="", messages=MESSAGES, provider=GPROChat, stream=True)
    assert "".join(str(chunk) for chunk in chunks) == ANSWER


def test_sync_client(local: str) -> None:
    response = Client().chat.completions.create(model="", messages=MESSAGES, provider=GPROChat)
    assert response.choices[0].message.content == ANSWER


def test_a_configured_class_is_working(echo_server: GPROChatServer) -> None:
    Deployment = GPROChat.configure(base_url=echo_server.url)
    assert issubclass(Deployment, AsyncGeneratorProvider)
    assert Deployment.working is True
    assert g4f.ChatCompletion.create(model="", messages=MESSAGES, provider=Deployment) == ANSWER


async def test_wrong_password_through_g4f_is_an_authentication_error() -> None:
    async with GPROChatServer(passwords=("right",)) as srv:
        with pytest.raises(AuthenticationError) as info:
            await AsyncClient().chat.completions.create(
                model="", messages=MESSAGES, provider=GPROChat, base_url=srv.url, password="no"
            )
        await GPROChat.aclose()
    assert (info.value.server_message, info.value.reason) == ("Invalid password.", "password")


# -- against the original ---------------------------------------------------------


@settings(max_examples=300)
@given(timestamp=st.integers(), message=st.text())
def test_signature_equals_the_originals(original: ModuleType, timestamp: int, message: str) -> None:
    expected = original.GPROChat.generate_signature(timestamp, message)
    assert GPROChat.generate_signature(timestamp, message) == expected


_CONTENT = st.one_of(
    st.text(),
    st.lists(st.builds(lambda t: {"type": "text", "text": t}, st.text()), max_size=3),
)
_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "developer"]), "content": _CONTENT}
)


@settings(max_examples=300)
@given(messages=st.lists(_MESSAGE, min_size=1, max_size=6))
def test_prompt_equals_g4fs_format_prompt(messages: list[dict[str, Any]]) -> None:
    assert format_prompt(messages) == g4f_format_prompt(messages)


async def test_request_equals_the_originals(
    original: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), json.loads(await request.read())))
        return web.Response(text="Привет 🌍", content_type="text/plain")

    Original = original.GPROChat
    async with serve_generate(handler) as base_url:
        monkeypatch.setattr(Original, "url", base_url)
        monkeypatch.setattr(Original, "api_endpoint", base_url + "/api/generate")
        theirs = "".join([c async for c in Original.create_async_generator("", MESSAGES)])
        ours = "".join(
            [c async for c in GPROChat.create_async_generator("", MESSAGES, base_url=base_url)]
        )
        await GPROChat.aclose()
    assert theirs == ours == "Привет 🌍"
    (their_headers, their_body), (our_headers, our_body) = seen
    for body in (their_body, our_body):
        assert body["sign"] == Original.generate_signature(body["time"], PROMPT)
    assert list(our_body) == list(their_body) == ["messages", "time", "pass", "sign"]
    assert our_body["messages"] == their_body["messages"]
    assert our_body["pass"] is their_body["pass"] is None
    for name in ("Accept", "Origin", "Referer", "Content-Type"):
        assert our_headers[name] == their_headers[name], name


def test_original_and_facade_answer_alike(
    original: ModuleType, echo_server: GPROChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    Original = original.GPROChat
    monkeypatch.setattr(Original, "api_endpoint", echo_server.url + "/api/generate")

    async def collect(provider: Any, **kwargs: Any) -> str:
        return "".join([c async for c in provider.create_async_generator("", MESSAGES, **kwargs)])

    assert asyncio.run(collect(Original)) == ANSWER
    assert asyncio.run(collect(GPROChat, base_url=echo_server.url)) == ANSWER
