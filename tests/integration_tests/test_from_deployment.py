"""``ChatGPROChat.from_deployment``: discovered settings, the password rules, the model's
own timeouts and TLS for the discovery, and signed multi-turn requests that
``gprochat-server`` verifies."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from aiohttp import web
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from langchain_gprochat import APIConnectionError, APITimeoutError, ChatGPROChat, DiscoveryError
from langchain_gprochat.protocol import sign
from langchain_gprochat.server import echo_reply
from langchain_gprochat.server.backends import EchoBackend

from ._deployments import (
    deployment_server,
    island_page,
    page_files,
    serve_deployment,
    signing_chunk,
)
from ._support import serve_routes

KEY = "D1SC-0VER-3D"
FAST = {"discovery_timeout": 5.0, "first_byte_timeout": 2.0, "chunk_timeout": 2.0}


def conversation(user_turns: int) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for i in range(1, user_turns + 1):
        messages.append(HumanMessage(f"q{i}"))
        if i < user_turns:
            messages.append(AIMessage(f"a{i}"))
    return messages


class RecordingEcho(EchoBackend):
    """The echo backend, keeping the turns of every request it answered."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[str]] = []

    async def stream(self, turns: Any) -> Any:
        self.seen.append([t.role for t in turns])
        async for piece in super().stream(turns):
            yield piece


async def test_a_deployment_without_a_password_answers_a_signed_multi_turn_request() -> None:
    backend = RecordingEcho()
    async with serve_deployment(page_files(KEY, '"3"'), backend=backend, secret_key=KEY) as (
        srv,
        _,
    ):
        url = srv.url
        llm = await ChatGPROChat.afrom_deployment(url, **FAST)
        async with llm:
            answer = await llm.ainvoke(conversation(4))
        assert srv.stats.statuses[200] == 1
    assert llm.secret_key.get_secret_value() == KEY
    assert (llm.base_url, llm.max_history_messages, llm.password) == (url, 3, None)
    assert llm.default_headers == {"origin": url, "referer": f"{url}/"}
    # the page's limit cut 7 messages to the last 3, as the web client would
    assert backend.seen == [["user", "model", "user"]]
    assert answer.content == "Echo · turn 2 · «q4» ✓"


async def test_the_password_rules() -> None:
    files = page_files(KEY)
    async with serve_deployment(files, secret_key=KEY, passwords=("pw-1", "pw-2")) as (srv, _):
        url = srv.url
        with pytest.raises(DiscoveryError) as missing:
            await ChatGPROChat.afrom_deployment(srv.url, **FAST)
        with pytest.raises(DiscoveryError) as refused:
            await ChatGPROChat.afrom_deployment(srv.url, password="nope-secret", **FAST)
        llm = await ChatGPROChat.afrom_deployment(srv.url, password="pw-2", **FAST)
        async with llm:
            answer = await llm.ainvoke(conversation(2))
    assert (missing.value.reason, refused.value.reason) == ("password_required", "password_refused")
    assert str(refused.value) == (
        f"could not discover the GeminiProChat deployment at {url}/: /api/auth refused "
        "the password that was given. Found: its signing key and settings. Missing: a "
        "password the deployment accepts. Set `password` (or GPROCHAT_PASSWORD, or "
        "`gprochat ... --password`) to the site password."
    )
    assert "nope-secret" not in repr(refused.value.__dict__)
    assert answer.content == "Echo · turn 2 · «q2» ✓"


async def test_the_password_comes_from_the_environment_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GPROCHAT_PASSWORD", "env-pw")
    async with serve_deployment(page_files(KEY), secret_key=KEY, passwords=("env-pw",)) as (
        srv,
        _,
    ):
        llm = await ChatGPROChat.afrom_deployment(srv.url, **FAST)
        async with llm:
            assert (await llm.ainvoke("hi")).content == "Echo · turn 1 · «hi» ✓"
    assert llm.password is not None
    assert llm.password.get_secret_value() == "env-pw"


async def test_given_arguments_win_and_headers_are_merged_and_sent() -> None:
    got: list[dict[str, str]] = []

    async def generate(request: web.Request) -> web.Response:
        body = await request.json()
        text = body["messages"][-1]["parts"][0]["text"]
        ok = body["sign"] == sign(body["time"], text, KEY)
        got.append({k: request.headers.get(k, "") for k in ("origin", "referer", "x-team")})
        return web.Response(text="signed" if ok else "bad", content_type="text/plain")

    async def auth(request: web.Request) -> web.Response:
        return web.json_response({"code": 0})

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=island_page(), content_type="text/html")

    async def chunk(request: web.Request) -> web.Response:
        return web.Response(text=signing_chunk(KEY), content_type="text/javascript")

    routes = {
        "/": page,
        "/_x/Gen.1.js": chunk,
        "/api/auth": auth,
        "/api/generate": generate,
    }
    async with serve_routes(routes) as url:
        llm = await ChatGPROChat.afrom_deployment(
            url, max_history_messages=5, default_headers={"x-team": "t1"}, **FAST
        )
        async with llm:
            answer = await llm.ainvoke("hello")
    assert (llm.max_history_messages, answer.content) == (5, "signed")
    assert got == [{"origin": url, "referer": f"{url}/", "x-team": "t1"}]


async def test_discovery_uses_the_models_timeouts() -> None:
    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response()

    async with serve_routes({"/": silent}) as url:
        with pytest.raises(APITimeoutError) as caught:
            await ChatGPROChat.afrom_deployment(url, first_byte_timeout=0.3)
    assert (caught.value.kind, caught.value.timeout) == ("first_byte", 0.3)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_deployment(ca: trustme.CA) -> Iterator[str]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    with deployment_server(page_files(KEY), ssl_context=server_ctx, secret_key=KEY) as srv:
        yield srv.url


def test_discovery_uses_the_models_tls_settings(ca: trustme.CA, tls_deployment: str) -> None:
    with pytest.raises(APIConnectionError) as caught:
        ChatGPROChat.from_deployment(tls_deployment, **FAST)
    assert str(caught.value).startswith(
        f"TLS certificate verification failed for {tls_deployment}/: "
    )
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with ChatGPROChat.from_deployment(tls_deployment, ssl_context=client_ctx, **FAST) as llm:
        assert llm.invoke(conversation(3)).content == "Echo · turn 3 · «q3» ✓"


def test_no_secret_in_reprs_dumps_or_errors() -> None:
    from langchain_gprochat import discover

    secret_key, password = "Very-Secret-Key-77", "Very-Secret-Pass-88"
    files = page_files(secret_key)
    with deployment_server(files, secret_key=secret_key, passwords=(password,)) as srv:
        port = srv.port
        url = srv.url.replace("http://", "http://user:Very-Secret-Url-99@")
        deployment = discover(url, password=password)
        llm = ChatGPROChat.from_deployment(url, password=password, **FAST)
    shown = [repr(deployment), str(deployment), deployment.model_dump_json(), repr(llm)]
    shown.append(json.dumps(deployment.model_dump(mode="json")))
    for text in shown:
        for secret in (secret_key, password, "Very-Secret-Url-99"):
            assert secret not in text
    assert deployment.secret_key.get_secret_value() == secret_key
    assert deployment.base_url == url  # the model keeps the credentials to use them
    assert repr(deployment).startswith(
        f"Deployment(base_url='http://***@127.0.0.1:{port}', "
        f"page_url='http://***@127.0.0.1:{port}/', secret_key=SecretStr('**********'), "
        "max_history_messages=12, history_limit_found=True, password_required=True, "
        "password_accepted=True, app_name='My Chat', app_version=None, "
        "generator='Astro v2.7.0', "
    )
    with pytest.raises(ValueError, match="frozen"):
        deployment.max_history_messages = 3  # type: ignore[misc]
    assert echo_reply  # the expected answers above follow its format


async def test_discovery_goes_through_the_models_proxy() -> None:
    # The "proxy" answers for the deployment itself: nothing listens at the target.
    asked: list[tuple[str, str, str]] = []

    async def proxy(request: web.Request) -> web.Response:
        asked.append((request.method, request.headers["Host"], request.path))
        if request.path == "/api/auth":
            return web.json_response({"code": 0})
        if request.path == "/":
            return web.Response(text=island_page(), content_type="text/html")
        return web.Response(text=signing_chunk(KEY), content_type="text/javascript")

    async with serve_routes({"/{tail:.*}": proxy}) as proxy_url:
        llm = await ChatGPROChat.afrom_deployment("http://127.0.0.1:9", proxy=proxy_url, **FAST)
    assert llm.secret_key.get_secret_value() == KEY
    assert asked == [
        ("GET", "127.0.0.1:9", "/"),
        ("GET", "127.0.0.1:9", "/_x/Gen.1.js"),
        ("POST", "127.0.0.1:9", "/api/auth"),
    ]
