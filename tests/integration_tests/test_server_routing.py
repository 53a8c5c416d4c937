"""Named backends, ``GET /api/models``, ``GET /healthz`` and the history check's place.

Real servers on 127.0.0.1: requests pick their backend by ``model`` (ChatGPROChat sends
it when ``model`` is set per call), an unknown name is refused naming the choices, and
a history whose last turn is not the user's gets the upstream's answer before the
password, the signature or the shape are looked at.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from langchain_gprochat import ChatGPROChat
from langchain_gprochat.errors import BadRequestError
from langchain_gprochat.protocol import DEFAULT_SECRET_KEY, Part, Turn, sign
from langchain_gprochat.server import STATE_KEY, EchoBackend, GPROChatServer, ScriptedBackend

from ._support import Start, expected_echo

HISTORY = (
    b'{"error":{"message":"Invalid message history: The last message must be from user role."}}'
)
JSON_TYPE = "application/json; charset=utf-8"


def body(*turns: tuple[str, str], password: str | None = None, **extra: Any) -> dict[str, Any]:
    """A signed generate body of ``turns`` (role, text); ``extra`` fields are added."""
    turns = turns or (("user", "Hello"),)
    stamp = time.time_ns() // 1_000_000
    return {
        "messages": [{"role": role, "parts": [{"text": text}]} for role, text in turns],
        "time": stamp,
        "pass": password,
        "sign": sign(stamp, turns[-1][1], DEFAULT_SECRET_KEY),
        **extra,
    }


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def post(
    session: aiohttp.ClientSession, url: str, data: dict[str, Any] | bytes
) -> tuple[int, bytes]:
    raw = data if isinstance(data, bytes) else json.dumps(data, ensure_ascii=False).encode()
    async with session.post(f"{url}/api/generate", data=raw) as response:
        return response.status, await response.read()


# ---------------------------------------------------------------- model routing


async def test_each_request_is_answered_by_the_backend_it_names(start: Start) -> None:
    smart = ScriptedBackend(["Smart answer one", "Smart answer two"])
    srv = await start(backend={"fast": EchoBackend(), "smart": smart})
    llm = ChatGPROChat(base_url=srv.url, model="gemini-1.5-pro")
    try:
        assert (await llm.ainvoke("Hi")).content == expected_echo("Hi")  # the first: default
        assert (await llm.ainvoke("Hi", model="fast")).content == expected_echo("Hi")
        answer = await llm.ainvoke("Which one?", model="smart")
        assert (answer.content, answer.response_metadata["model_name"]) == (
            "Smart answer one",
            "smart",
        )
        chunks = [chunk.content async for chunk in llm.astream("Again", model="smart")]
        assert "".join(str(chunk) for chunk in chunks) == "Smart answer two"
        answer = await llm.ainvoke("Named", model="fast")
        assert answer.content == expected_echo("Named")
    finally:
        await llm.aclose()
    assert smart.received == [
        [Turn(role="user", parts=[Part(text="Which one?")])],
        [Turn(role="user", parts=[Part(text="Again")])],
    ]
    assert dict(srv.stats.statuses) == {200: 5}


async def test_an_unknown_model_is_refused_naming_the_choices(
    start: Start, session: aiohttp.ClientSession
) -> None:
    srv = await start(backend={"fast": EchoBackend(), "smart": ScriptedBackend([])})
    status, answer = await post(session, srv.url, body(model="gemini-1.5-pro"))
    assert (status, answer) == (
        400,
        b'{"error":{"message":"Unknown model \'gemini-1.5-pro\': this server has '
        b"'fast', 'smart'.\"}}",
    )
    status, answer = await post(session, srv.url, body(model=["fast"]))
    assert (status, answer) == (
        400,
        b'{"error":{"message":"Invalid request body: model must be a string or null."}}',
    )
    status, answer = await post(session, srv.url, body(model="\u202e" + "z" * 10_000))
    assert status == 400
    message = json.loads(answer)["error"]["message"]
    assert message == f"Unknown model '\u202e{'z' * 99}…': this server has 'fast', 'smart'."
    llm = ChatGPROChat(base_url=srv.url, max_retries=3)
    try:
        with pytest.raises(BadRequestError) as info:
            await llm.ainvoke("Hi", model="nope")
    finally:
        await llm.aclose()
    assert info.value.server_message == "Unknown model 'nope': this server has 'fast', 'smart'."
    assert dict(srv.stats.statuses) == {400: 4}  # the client did not retry the 400


async def test_authentication_comes_before_the_model(
    start: Start, session: aiohttp.ClientSession
) -> None:
    srv = await start(backend={"fast": EchoBackend()}, passwords=("pw",))
    status, answer = await post(session, srv.url, body(model="nope", password="wrong"))
    assert (status, answer) == (401, b'{"error":{"message":"Invalid password."}}')
    bad_sign = {**body(model="nope", password="pw"), "sign": "0" * 64}
    status, answer = await post(session, srv.url, bad_sign)
    assert (status, answer) == (401, b'{"error":{"message":"Invalid signature."}}')


async def test_a_single_unnamed_backend_ignores_model_as_upstream(
    start: Start, session: aiohttp.ClientSession
) -> None:
    srv = await start()
    for model in ("anything", 5, None, ["x"]):
        status, answer = await post(session, srv.url, body(("user", "Hi"), model=model))
        assert (status, answer.decode()) == (200, expected_echo("Hi"))


async def test_models_lists_the_names_the_default_first(
    start: Start, session: aiohttp.ClientSession
) -> None:
    srv = await start(backend={"smart": ScriptedBackend([]), "fast": EchoBackend()})
    async with session.get(f"{srv.url}/api/models") as response:
        assert (response.status, response.headers["Content-Type"]) == (200, JSON_TYPE)
        assert await response.read() == (
            b'{"object":"list","data":['
            b'{"id":"smart","object":"model","owned_by":"gprochat-server"},'
            b'{"id":"fast","object":"model","owned_by":"gprochat-server"}]}'
        )
    async with session.post(f"{srv.url}/api/models") as response:
        assert response.status == 405
    unnamed = await start()
    async with session.get(f"{unnamed.url}/api/models") as response:
        assert await response.json() == {
            "object": "list",
            "data": [{"id": "default", "object": "model", "owned_by": "gprochat-server"}],
        }
    assert srv.stats.requests == unnamed.stats.requests == 0


def test_bad_backend_mappings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^at least one backend is needed$"):
        GPROChatServer(backend={})
    with pytest.raises(ValueError, match=r"^invalid backend name 'a b': use 1 to 128"):
        GPROChatServer(backend={"a b": EchoBackend()})


# ---------------------------------------------------------------- health check


async def test_healthz_is_small_uncounted_and_logged_at_debug(
    start: Start, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="langchain_gprochat.server")
    srv = await start(secret_key="hidden-key-77", passwords=("hidden-pass-88",))
    async with session.get(f"{srv.url}/healthz") as response:
        assert (response.status, response.headers["Content-Type"]) == (200, JSON_TYPE)
        assert await response.read() == b'{"status":"ok"}'
    async with session.head(f"{srv.url}/healthz") as response:
        assert response.status == 200
    assert (srv.stats.requests, dict(srv.stats.statuses), srv.stats.bytes_out) == (0, {}, 0)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "/healthz" in r.getMessage()]
    assert [(level, text.split()[:3]) for level, text in lines] == [
        (logging.DEBUG, ["GET", "/healthz", "200"]),
        (logging.DEBUG, ["HEAD", "/healthz", "200"]),
    ]
    srv.app[STATE_KEY].closing = True  # as the application's shutdown sets it
    async with session.get(f"{srv.url}/healthz") as response:
        assert (response.status, await response.read()) == (503, b'{"status":"closing"}')


# ---------------------------------------------------------------- the history check first


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "assistant", "parts": [{"text": "Hi"}]}],
        [{"role": "user", "parts": [{"text": "Hi"}]}, {"role": "model", "parts": [{"text": "Yo"}]}],
        [{"role": "assistant", "parts": "not even a list"}],
        [{"role": "user", "parts": [{"text": "Hi"}]}, 5],
        [{"parts": [{"text": "no role"}]}],
        [],
    ],
    ids=["assistant", "model-last", "bad-shape", "not-an-object", "no-role", "empty"],
)
async def test_last_role_not_user_gets_the_upstream_answer_before_anything_else(
    start: Start, session: aiohttp.ClientSession, messages: list[Any]
) -> None:
    srv = await start(passwords=("pw",))
    # wrong password, wrong signature, a string time: the history still decides first
    data = {"messages": messages, "time": "soon", "pass": "wrong", "sign": "bad"}
    async with session.post(f"{srv.url}/api/generate", json=data) as response:
        assert (response.status, await response.read()) == (400, HISTORY)
        assert response.headers["Content-Type"] == "text/plain;charset=UTF-8"
    missing = {"time": 1, "pass": "wrong", "sign": "bad"}
    assert await post(session, srv.url, missing) == (400, HISTORY)
    assert dict(srv.stats.statuses) == {400: 2}


async def test_an_earlier_turn_with_a_bad_role_is_still_a_field_error(
    start: Start, session: aiohttp.ClientSession
) -> None:
    srv = await start()
    data = body(("assistant", "Hi"), ("user", "Hello"))
    assert await post(session, srv.url, data) == (
        400,
        b'{"error":{"message":"Invalid request body: messages[0].role must be '
        b"'user' or 'model'.\"}}",
    )
