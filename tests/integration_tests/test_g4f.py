"""The gpt4free-style GPROChat against servers on 127.0.0.1 (gpt4free not installed)."""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from langchain_gprochat import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ServerError,
    StreamInterruptedError,
)
from langchain_gprochat.errors import NotFoundError
from langchain_gprochat.g4f import GPROChat
from langchain_gprochat.protocol import Part, Turn
from langchain_gprochat.server import FAULT_HEADER, GPROChatServer, ScriptedBackend, echo_reply

from ._relay import ByteRelay
from ._support import async_wait_until, serve_generate

ROOT = Path(__file__).resolve().parents[2]
KEY = "2BC120D4-BB36-1B60-26DE-DB630472A3D8"
HELLO = [{"role": "user", "content": "Привет, мир 🌍"}]
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Привет 🌍"},
    {"role": "assistant", "content": "Hi!"},
    {"role": "user", "content": "Again"},
]
FLAT = "System: Be brief.\nUser: Привет 🌍\nAssistant: Hi!\nUser: Again\nAssistant:"
SNIPPET_ANSWER = "Echo · turn 1 · «System: Answer in one line.\nUser: Привет, мир 🌍\nAssistant:» ✓"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BASE_URL", "SECRET_KEY", "PASSWORD", "PROXY", "API_KEY"):
        monkeypatch.delenv(f"GPROCHAT_{name}", raising=False)


def _user(text: str) -> Turn:
    return Turn(role="user", parts=[Part(text=text)])


async def _answer(provider: type[GPROChat], messages: Any = HELLO, **kwargs: Any) -> str:
    return "".join([c async for c in provider.create_async_generator("", messages, **kwargs)])


# -- the documented usage, with only the import changed ---------------------------


def _snippets() -> tuple[str, str]:
    page = (ROOT / "docs" / "migrating.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    before = next(b for b in blocks if "from g4f.Provider import GPROChat" in b)
    after = next(b for b in blocks if "from langchain_gprochat.g4f import GPROChat" in b)
    return before, after


def test_the_two_snippets_differ_by_the_import_alone() -> None:
    before, after = _snippets()
    changed = [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == [
        "-from g4f.Provider import GPROChat",
        "+from langchain_gprochat.g4f import GPROChat",
    ]


def _run_snippet(capsys: pytest.CaptureFixture[str]) -> str:
    code = compile(_snippets()[1], "docs/migrating.md", "exec")
    exec(code, {"__name__": "__main__"})
    return capsys.readouterr().out


def test_documented_usage_gets_the_exact_answer(
    echo_server: GPROChatServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GPROCHAT_BASE_URL", echo_server.url)
    assert GPROChat.working is True
    assert _run_snippet(capsys) == SNIPPET_ANSWER + "\n"
    assert _run_snippet(capsys) == SNIPPET_ANSWER + "\n"  # a second asyncio.run, a new loop


def test_documented_usage_when_every_character_is_split(
    echo_server: GPROChatServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with ByteRelay(echo_server.url) as relay:
        monkeypatch.setenv("GPROCHAT_BASE_URL", relay.url)
        assert _run_snippet(capsys) == SNIPPET_ANSWER + "\n"
    assert relay.writes_to_client > len(SNIPPET_ANSWER.encode())  # every byte on its own


async def test_chunks_split_mid_character_stream_whole_characters(
    echo_server: GPROChatServer,
) -> None:
    with ByteRelay(echo_server.url) as relay:
        Relayed = GPROChat.configure(base_url=relay.url)
        chunks = [c async for c in Relayed.create_async_generator("", HELLO)]
        await Relayed.aclose()
    assert "".join(chunks) == "Echo · turn 1 · «Привет, мир 🌍» ✓"
    assert all(isinstance(c, str) and "\ufffd" not in c for c in chunks)


# -- the request: the original's by default, native turns on demand ---------------


async def test_default_request_is_one_flattened_user_turn(start: Any) -> None:
    backend = ScriptedBackend(["one", "two"])
    srv = await start(backend=backend)
    Local = GPROChat.configure(base_url=srv.url)
    assert await _answer(Local, CONVERSATION) == "one"
    assert await _answer(Local, CONVERSATION, history_mode="native") == "two"
    await Local.aclose()
    system = "[System instructions]\nBe brief.\n[End of system instructions]\n\nПривет 🌍"
    assert backend.received == [
        [_user(FLAT)],
        [_user(system), Turn(role="model", parts=[Part(text="Hi!")]), _user("Again")],
    ]


async def test_request_over_the_wire() -> None:
    seen: list[tuple[dict[str, str], bytes, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read(), request.transport))
        return web.Response(text="ok", content_type="text/plain")

    async with serve_generate(handler) as base_url:
        Local = GPROChat.configure(base_url=base_url)
        for _ in range(3):
            assert await _answer(Local, CONVERSATION) == "ok"
        await Local.aclose()
    headers, raw, _ = seen[0]
    body = json.loads(raw)
    sign = hashlib.sha256(f"{body['time']}:{FLAT}:{KEY}".encode()).hexdigest()
    assert body == {
        "messages": [{"role": "user", "parts": [{"text": FLAT}]}],
        "time": body["time"],
        "pass": None,
        "sign": sign,
    }
    assert isinstance(body["time"], int)
    assert (headers["Content-Type"], headers["Accept"]) == ("text/plain;charset=UTF-8", "*/*")
    assert (headers["Origin"], headers["Referer"]) == (base_url, base_url + "/")
    assert "Authorization" not in headers
    assert len({id(transport) for _, _, transport in seen}) == 1  # one connection, reused


async def test_generation_settings_and_api_key_are_sent() -> None:
    seen: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), json.loads(await request.read())))
        return web.Response(text="ok", content_type="text/plain")

    async with serve_generate(handler) as base_url:
        with pytest.warns(UserWarning, match="did not confirm") as warned:
            answer = await _answer(
                GPROChat, base_url=base_url, temperature=0.25, max_tokens=7, api_key="gw"
            )
        await GPROChat.aclose()
    assert answer == "ok"
    assert sorted(str(w.message).split("`")[1] for w in warned) == ["max_tokens", "temperature"]
    headers, body = seen[0]
    assert body["generationConfig"] == {"temperature": 0.25, "maxOutputTokens": 7}
    assert headers["Authorization"] == "Bearer gw"


# -- options honoured -------------------------------------------------------------


async def test_stop_sequences_are_honoured_across_chunks(start: Any) -> None:
    srv = await start(backend=ScriptedBackend([["Echo · tu", "rn 1 · x"], "a END b"]))
    Local = GPROChat.configure(base_url=srv.url)
    assert await _answer(Local, stop=["turn"]) == "Echo · "
    assert await _answer(Local, stop="END") == "a "
    await Local.aclose()


def test_sync_calls_share_one_connection(echo_server: GPROChatServer) -> None:
    with ByteRelay(echo_server.url, split=False) as relay:
        Local = GPROChat.configure(base_url=relay.url)
        answers = ["".join(Local.create_completion("", HELLO)) for _ in range(3)]
        Local.close()
    assert answers == ["Echo · turn 1 · «Привет, мир 🌍» ✓"] * 3
    assert relay.connections == 1


def test_repeated_asyncio_run_each_gets_the_answer(echo_server: GPROChatServer) -> None:
    Local = GPROChat.configure(base_url=echo_server.url)
    for _ in range(3):
        assert asyncio.run(_answer(Local)) == "Echo · turn 1 · «Привет, мир 🌍» ✓"
    assert len(Local._pool) == 1


async def test_environment_configures_the_call(start: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = await start(passwords=("right",), secret_key="server-key")
    monkeypatch.setenv("GPROCHAT_BASE_URL", srv.url)
    monkeypatch.setenv("GPROCHAT_SECRET_KEY", "server-key")
    monkeypatch.setenv("GPROCHAT_PASSWORD", "right")
    assert GPROChat.generate_signature(1, "x") == hashlib.sha256(b"1:x:server-key").hexdigest()
    assert await _answer(GPROChat, [{"role": "user", "content": "hi"}]) == echo_reply([_user("hi")])
    await GPROChat.aclose()


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize("password", [None, "wrong-pa55"])
async def test_wrong_password_is_an_authentication_error(start: Any, password: str | None) -> None:
    srv = await start(passwords=("right-pa55",))
    kwargs = {} if password is None else {"password": password}
    with pytest.raises(AuthenticationError) as info:
        await _answer(GPROChat, base_url=srv.url, **kwargs)
    await GPROChat.aclose()
    error = info.value
    assert (error.status_code, error.server_message, error.reason) == (
        401,
        "Invalid password.",
        "password",
    )
    assert "Invalid password." in str(error)
    assert "pa55" not in str(error)


async def test_wrong_secret_key_is_an_authentication_error(start: Any) -> None:
    srv = await start(secret_key="server-s3cret")
    Local = GPROChat.configure(base_url=srv.url, secret_key="client-s3cret")
    with pytest.raises(AuthenticationError) as info:
        await _answer(Local)
    await Local.aclose()
    assert (info.value.reason, info.value.server_message) == ("signature", "Invalid signature.")
    assert "s3cret" not in str(info.value)


async def test_failures_are_typed(start: Any, unused_tcp_port: int) -> None:
    srv = await start(enable_faults=True)
    Local = GPROChat.configure(base_url=srv.url, max_retries=0)

    def fault(value: str) -> dict[str, str]:
        return {FAULT_HEADER: value}

    with pytest.raises(ServerError) as server_error:
        await _answer(Local, headers=fault("status=503"))
    assert server_error.value.status_code == 503
    with pytest.raises(StreamInterruptedError) as interrupted:
        await _answer(Local, headers=fault("mid_stream_error=1"))
    assert interrupted.value.partial_text != ""
    with pytest.raises(APITimeoutError) as timeout:
        await _answer(Local, headers=fault("delay_first_byte=5"), first_byte_timeout=0.2)
    assert timeout.value.kind == "first_byte"
    answer = await _answer(Local, headers=fault("status=503; times=1"), max_retries=1)
    assert answer == "Echo · turn 1 · «Привет, мир 🌍» ✓"  # retried before the first byte
    with pytest.raises(APIConnectionError):
        await _answer(Local, base_url=f"http://127.0.0.1:{unused_tcp_port}")
    await Local.aclose()


async def test_no_endpoint_is_not_found() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=404, text="Not Found")

    async with serve_generate(handler) as base_url:
        with pytest.raises(NotFoundError, match="check `base_url`"):
            await _answer(GPROChat, base_url=base_url)
        await GPROChat.aclose()


class _Endless:
    """Streams ``first``, then a dot every 10 ms (at most 30 s) until the client leaves."""

    async def stream(self, turns: list[Turn]) -> AsyncIterator[str]:
        yield "first"
        for _ in range(3000):
            await asyncio.sleep(0.01)
            yield "."


async def test_breaking_off_closes_the_response(start: Any) -> None:
    srv = await start(backend=_Endless())
    Local = GPROChat.configure(base_url=srv.url)
    chunks = Local.create_async_generator("", HELLO)
    assert await anext(chunks) == "first"
    await chunks.aclose()
    await async_wait_until(lambda: srv.stats.client_disconnects == 1, "the server to notice")
    assert await _answer(Local, stop=".") == "first"  # a stop closes it too
    await async_wait_until(lambda: srv.stats.client_disconnects == 2, "the server to notice")
    await Local.aclose()
