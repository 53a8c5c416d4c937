"""The local gprochat-compatible server, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from langchain_gprochat.protocol import (
    DEFAULT_SECRET_KEY,
    INTERRUPTION_MARKER,
    Part,
    Turn,
    sign,
)
from langchain_gprochat.server import (
    DEFAULT_FAULT_BODY,
    FAULT_HEADER,
    ChatModelBackend,
    EchoBackend,
    Fault,
    FaultError,
    GPROChatServer,
    ScriptedBackend,
    ServerSettings,
    echo_chunks,
    echo_reply,
    filler_text,
    load_backend,
    parse_fault,
)
from langchain_gprochat.server.__main__ import main as cli_main

from ._support import Start, assert_no_tracebacks_logged

REPO_ROOT = Path(__file__).resolve().parents[2]
ERROR_TYPE = "text/plain;charset=UTF-8"
HISTORY = (
    b'{"error":{"message":"Invalid message history: The last message must be from user role."}}'
)
BAD_PASSWORD = b'{"error":{"message":"Invalid password."}}'
BAD_SIGNATURE = b'{"error":{"message":"Invalid signature."}}'
EXPIRED = b'{"error":{"message":"Request expired."}}'


# ---------------------------------------------------------------- helpers and fixtures


def user(text: str) -> Turn:
    return Turn(role="user", parts=[Part(text=text)])


def model(text: str) -> Turn:
    return Turn(role="model", parts=[Part(text=text)])


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def payload(
    *turns: tuple[str, str],
    secret: str = DEFAULT_SECRET_KEY,
    password: str | None = None,
    time_ms: int | None = None,
) -> dict[str, Any]:
    """A signed generate body; ``turns`` are (role, text), default one user "Hello"."""
    turns = turns or (("user", "Hello"),)
    stamp = now_ms() if time_ms is None else time_ms
    return {
        "messages": [{"role": role, "parts": [{"text": text}]} for role, text in turns],
        "time": stamp,
        "pass": password,
        "sign": sign(stamp, turns[-1][1], secret),
    }


def encode(body: dict[str, Any] | bytes) -> bytes:
    if isinstance(body, bytes):
        return body
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def error(message: str, code: str | None = None) -> bytes:
    inner: dict[str, str] = (
        {"message": message} if code is None else {"code": code, "message": message}
    )
    return encode({"error": inner})


def echo_bytes(*texts: str) -> bytes:
    """The echo answer to a user-only conversation of ``texts``."""
    return echo_reply([user(text) for text in texts]).encode()


@pytest.fixture(autouse=True)
def _no_tracebacks_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No test may log a traceback or aiohttp's "Error handling request" at INFO or above.

    (Debug records may carry a backend failure's traceback, for whoever asks for them.)
    """
    yield
    assert_no_tracebacks_logged(caplog, from_level=logging.INFO)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def server(start: Start) -> GPROChatServer:
    return await start()


@pytest.fixture
async def faulty(start: Start) -> GPROChatServer:
    return await start(enable_faults=True)


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any] | bytes,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, aiohttp.ClientResponse]:
    async with session.post(url, data=encode(body), headers=headers) as response:
        return response.status, await response.read(), response


async def generate(
    session: aiohttp.ClientSession,
    srv: GPROChatServer,
    body: dict[str, Any] | bytes,
    fault: str | None = None,
) -> tuple[int, bytes, aiohttp.ClientResponse]:
    headers = None if fault is None else {FAULT_HEADER: fault}
    return await post(session, f"{srv.url}/api/generate", body, headers)


async def read_until_broken(response: aiohttp.ClientResponse) -> bytes:
    """Read a body that must end with a broken connection; return what arrived."""
    received = bytearray()
    try:
        async for data in response.content.iter_any():
            received += data
    except aiohttp.ClientPayloadError:
        return bytes(received)
    raise AssertionError("the answer ended cleanly; a broken connection was expected")


async def http_chunks(response: aiohttp.ClientResponse) -> list[bytes]:
    """The body split at HTTP chunk boundaries, whatever TCP did to them."""
    chunks: list[bytes] = []
    current = b""
    async for data, end_of_chunk in response.content.iter_chunks():
        current += data
        if end_of_chunk:
            chunks.append(current)
            current = b""
    if current:
        chunks.append(current)
    return chunks


async def wait_for(condition: Callable[[], bool], attempts: int = 400) -> None:
    """Poll ``condition`` with short sleeps (bounded; never a speed assertion)."""
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("condition not reached")


# ---------------------------------------------------------------- the upstream's table


async def test_success_streams_the_echo_as_plain_utf8(
    session: aiohttp.ClientSession, server: GPROChatServer
) -> None:
    status, body, response = await generate(session, server, payload(("user", "Привет, мир 🌍")))
    assert status == 200
    assert body == echo_bytes("Привет, мир 🌍")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "Content-Length" not in response.headers
    assert response.headers["Transfer-Encoding"] == "chunked"


async def test_answer_is_sent_in_echo_chunks(
    session: aiohttp.ClientSession, server: GPROChatServer
) -> None:
    text = echo_reply([user("ünïcödé ✓ 🌍 long enough to need several chunks")])
    async with session.post(
        f"{server.url}/api/generate",
        data=encode(payload(("user", "ünïcödé ✓ 🌍 long enough to need several chunks"))),
    ) as response:
        chunks = await http_chunks(response)
    assert chunks == [piece.encode() for piece in echo_chunks(text)]
    assert len(chunks) > 3


async def test_echo_counts_user_turns(
    session: aiohttp.ClientSession, server: GPROChatServer
) -> None:
    body = payload(("user", "Hi"), ("model", "Hello!"), ("user", "Tell me a joke"))
    status, answer, _ = await generate(session, server, body)
    assert (status, answer) == (
        200,
        echo_reply([user("Hi"), model("Hello!"), user("Tell me a joke")]).encode(),
    )


async def test_request_built_like_the_gpt4free_provider(
    session: aiohttp.ClientSession, server: GPROChatServer
) -> None:
    prompt = "System: Be brief\nUser: Привет\nAssistant:"
    stamp = int(time.time() * 1000)
    data = {
        "messages": [{"role": "user", "parts": [{"text": prompt}]}],
        "time": stamp,
        "pass": None,
        "sign": sign(stamp, prompt, DEFAULT_SECRET_KEY),
    }
    headers = {
        "Content-Type": "text/plain;charset=UTF-8",
        "Origin": "https://gprochat.com",
        "Referer": "https://gprochat.com/",
    }
    status, body, _ = await post(
        session, f"{server.url}/api/generate", json.dumps(data).encode(), headers
    )
    assert status == 200
    assert body == echo_bytes(prompt)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": []},
        {"messages": None},
        {"messages": [], "time": "not even checked"},
        payload(("user", "Hi"), ("model", "Hello")),
        payload(("model", "Hello")),
    ],
    ids=["missing", "empty", "null", "empty-before-shape", "last-is-model", "only-model"],
)
async def test_history_error_like_upstream(
    session: aiohttp.ClientSession, server: GPROChatServer, body: dict[str, Any]
) -> None:
    status, answer, response = await generate(session, server, body)
    assert (status, answer) == (400, HISTORY)
    assert response.headers["Content-Type"] == ERROR_TYPE


async def test_passwords(session: aiohttp.ClientSession, start: Start) -> None:
    srv = await start(passwords=("alpha", "beta"))
    for password, expected in [
        ("alpha", (200, echo_bytes("Hello"))),
        ("beta", (200, echo_bytes("Hello"))),
        ("gamma", (401, BAD_PASSWORD)),
        (None, (401, BAD_PASSWORD)),
        ("alpha,beta", (401, BAD_PASSWORD)),
    ]:
        status, body, _ = await generate(session, srv, payload(password=password))
        assert (status, body) == expected, password


async def test_comma_separated_passwords(session: aiohttp.ClientSession, start: Start) -> None:
    srv = await start(passwords="one,two")
    assert srv.settings.passwords == ("one", "two")
    assert (await generate(session, srv, payload(password="two")))[:2] == (200, echo_bytes("Hello"))
    assert (await generate(session, srv, payload(password="three")))[:2] == (401, BAD_PASSWORD)


async def test_password_is_checked_before_signature(
    session: aiohttp.ClientSession, start: Start
) -> None:
    srv = await start(passwords=("alpha",))
    body = payload(password="wrong", secret="wrong-key")
    assert (await generate(session, srv, body))[:2] == (401, BAD_PASSWORD)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b: b.update(sign="0" * 64),
        lambda b: b.update(sign=b["sign"].upper()),
        lambda b: b.update(time=b["time"] + 1),
        lambda b: b["messages"][-1]["parts"][0].update(text="Hello!"),
        lambda b: b.update(sign="é"),
    ],
    ids=["zeros", "uppercase", "time", "text", "non-ascii"],
)
async def test_signature_mismatch(
    session: aiohttp.ClientSession, server: GPROChatServer, tamper: Callable[[dict[str, Any]], None]
) -> None:
    body = payload()
    tamper(body)
    assert (await generate(session, server, body))[:2] == (401, BAD_SIGNATURE)


async def test_other_secret_key_and_empty_key(session: aiohttp.ClientSession, start: Start) -> None:
    own = await start(secret_key="my-own-secret")
    keyless = await start(secret_key="")
    assert (await generate(session, own, payload(secret="my-own-secret")))[0] == 200
    assert (await generate(session, own, payload()))[:2] == (401, BAD_SIGNATURE)
    assert (await generate(session, keyless, payload(secret="")))[0] == 200
    assert (await generate(session, keyless, payload()))[:2] == (401, BAD_SIGNATURE)


async def test_signature_over_concatenated_parts(
    session: aiohttp.ClientSession, server: GPROChatServer
) -> None:
    stamp = now_ms()
    body = {
        "messages": [{"role": "user", "parts": [{"text": "Hel"}, {"text": "lo"}]}],
        "time": stamp,
        "pass": None,
        "sign": sign(stamp, "Hello", DEFAULT_SECRET_KEY),
    }
    assert (await generate(session, server, body))[:2] == (200, echo_bytes("Hello"))


async def test_backend_failure_before_first_chunk_is_500(
    session: aiohttp.ClientSession, start: Start
) -> None:
    srv = await start(backend=ScriptedBackend([RuntimeError("model overloaded"), "ok"]))
    status, body, response = await generate(session, srv, payload())
    assert (status, body) == (
        500,
        b'{"error":{"code":"RuntimeError","message":"model overloaded"}}',
    )
    assert response.headers["Content-Type"] == ERROR_TYPE
    assert (await generate(session, srv, payload()))[:2] == (200, b"ok")


async def test_backend_failure_mid_stream_appends_marker(
    session: aiohttp.ClientSession, start: Start
) -> None:
    srv = await start(backend=ScriptedBackend([["Hello ", "wor", ValueError("boom"), "never"]]))
    status, body, _ = await generate(session, srv, payload())
    assert (status, body) == (200, f"Hello wor{INTERRUPTION_MARKER}".encode())


async def test_scripted_backend_when_exhausted(
    session: aiohttp.ClientSession, start: Start
) -> None:
    backend = ScriptedBackend(["first"])
    srv = await start(backend=backend)
    assert (await generate(session, srv, payload(("user", "a"))))[:2] == (200, b"first")
    status, body, _ = await generate(
        session, srv, payload(("user", "Hi"), ("model", "x"), ("user", "b"))
    )
    message = "ScriptedBackend has no reply left: it was given 1 and this is request 2"
    assert (status, body) == (500, error(message, "ScriptExhaustedError"))
    assert backend.received == [[user("a")], [user("Hi"), model("x"), user("b")]]


async def test_scripted_list_is_streamed_exactly(
    session: aiohttp.ClientSession, start: Start
) -> None:
    srv = await start(backend=ScriptedBackend([["a", "", "bc", "défg"]]))
    async with session.post(f"{srv.url}/api/generate", data=encode(payload())) as response:
        assert await http_chunks(response) == [b"a", b"bc", "défg".encode()]


# ---------------------------------------------------------------- improvements on upstream

SHAPE_CASES: list[tuple[str, bytes | dict[str, Any], str]] = [
    ("not-json", b"hello", "not valid JSON"),
    ("not-utf8", b"\xff\xfe{", "not valid JSON"),
    ("too-deep", b"[" * 200_000, "not valid JSON"),
    (
        "huge-int",
        b'{"messages":[{"role":"user","parts":[{"text":"a"}]}],"time":' + b"9" * 5000 + b"}",
        "not valid JSON",
    ),
    ("array", b"[1, 2]", "the body must be a JSON object"),
    ("null", b"null", "the body must be a JSON object"),
    ("messages-string", {**payload(), "messages": "Hello"}, "messages must be a list"),
    (
        "turn-not-object",
        {**payload(), "messages": [5, {"role": "user", "parts": [{"text": "Hello"}]}]},
        "messages[0] must be an object",
    ),
    (
        "parts-missing",
        {**payload(), "messages": [{"role": "user"}]},
        "messages[0].parts is required",
    ),
    (
        "parts-empty",
        {**payload(), "messages": [{"role": "user", "parts": []}]},
        "messages[0].parts must not be empty",
    ),
    (
        "parts-string",
        {**payload(), "messages": [{"role": "user", "parts": "Hi"}]},
        "messages[0].parts must be a list",
    ),
    (
        "text-number",
        {**payload(), "messages": [{"role": "user", "parts": [{"text": 5}]}]},
        "messages[0].parts[0].text must be a string",
    ),
    (
        "text-in-2nd-turn",
        {
            **payload(("user", "a"), ("model", "b"), ("user", "c")),
            "messages": [
                {"role": "user", "parts": [{"text": "a"}]},
                {"role": "model", "parts": [{"text": None}]},
                {"role": "user", "parts": [{"text": "c"}]},
            ],
        },
        "messages[1].parts[0].text must be a string",
    ),
    (
        "role-assistant",  # not the last turn: a last one gets the history message first
        {
            **payload(),
            "messages": [
                {"role": "assistant", "parts": [{"text": "Hi"}]},
                {"role": "user", "parts": [{"text": "Hello"}]},
            ],
        },
        "messages[0].role must be 'user' or 'model'",
    ),
    ("time-string", {**payload(), "time": "1700000000000"}, "time must be an integer"),
    ("time-float", {**payload(), "time": 1.5}, "time must be an integer"),
    ("time-bool", {**payload(), "time": True}, "time must be an integer"),
    ("time-missing", {k: v for k, v in payload().items() if k != "time"}, "time is required"),
    ("sign-number", {**payload(), "sign": 5}, "sign must be a string"),
    ("sign-missing", {k: v for k, v in payload().items() if k != "sign"}, "sign is required"),
    ("pass-number", {**payload(), "pass": 5}, "pass must be a string or null"),
]


@pytest.mark.parametrize(
    ("body", "sentence"), [case[1:] for case in SHAPE_CASES], ids=[case[0] for case in SHAPE_CASES]
)
async def test_malformed_body_is_400_naming_the_field(
    session: aiohttp.ClientSession,
    server: GPROChatServer,
    body: bytes | dict[str, Any],
    sentence: str,
) -> None:
    status, answer, response = await generate(session, server, body)
    assert (status, answer) == (400, error(f"Invalid request body: {sentence}."))
    assert response.headers["Content-Type"] == ERROR_TYPE


async def test_bad_inputs_never_5xx_nor_traceback(
    session: aiohttp.ClientSession, server: GPROChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[bytes] = [
        case[1] if isinstance(case[1], bytes) else encode(case[1]) for case in SHAPE_CASES
    ]
    bodies += [
        b"",
        b"{",
        b'{"messages": {}}',
        b'{"messages": [null]}',
        b'{"messages": [[]]}',
        b'{"messages": 0}',
        b'{"messages":[{"role":"user","parts":[{"text":"x"}]}],"time":1e400,"sign":"x"}',
        b'"\\ud800"',
        b"\x00" * 100,
        "🌍".encode("utf-16"),
    ]
    for body in bodies:
        for path in ("/api/generate", "/api/auth"):
            async with session.post(f"{server.url}{path}", data=body) as response:
                assert response.status < 500, (path, body[:50])
                await response.read()
    assert "Traceback" not in caplog.text
    assert "Error handling request" not in caplog.text


async def raw_exchange(port: int, data: bytes, *, close_early: bool) -> bytes:
    """Send raw bytes; either hang up at once or read the answer to the end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return b"" if close_early else await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_broken_uploads_are_not_errors(
    server: GPROChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    head = b"POST /api/generate HTTP/1.1\r\nHost: x\r\n"
    # the client hangs up in the middle of its body
    await raw_exchange(server.port, head + b'Content-Length: 100\r\n\r\n{"mess', close_early=True)
    await wait_for(lambda: server.stats.statuses[400] == 1)
    # broken chunked encoding: aiohttp answers 400 itself
    answer = await raw_exchange(
        server.port,
        head + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        close_early=False,
    )
    assert answer.startswith(b"HTTP/1.1 400 ") or answer.startswith(b"HTTP/1.0 400 ")
    assert server.stats.statuses.keys() == {400}


async def test_lone_surrogate_is_signed_as_replacement_char(
    session: aiohttp.ClientSession, server: GPROChatServer
) -> None:
    stamp = now_ms()
    body = {
        "messages": [{"role": "user", "parts": [{"text": "a\ud800b"}]}],
        "time": stamp,
        "pass": None,
        "sign": sign(stamp, "a\ufffdb", DEFAULT_SECRET_KEY),
    }
    raw = json.dumps(body).encode()  # ensure_ascii writes the lone surrogate as \\ud800
    assert b"\\ud800" in raw
    assert (await generate(session, server, raw))[:2] == (200, echo_bytes("a\ufffdb"))


async def test_body_over_limit_is_413(session: aiohttp.ClientSession, start: Start) -> None:
    srv = await start(max_body=300)
    body = encode(payload(("user", "x" * 400)))
    status, answer, _ = await generate(session, srv, body)
    message = f"Request body too large: {len(body)} bytes exceeds the limit of 300 bytes."
    assert (status, answer) == (413, error(message))


async def test_chunked_body_over_limit_is_413(session: aiohttp.ClientSession, start: Start) -> None:
    srv = await start(max_body=300)
    body = encode(payload(("user", "x" * 400)))

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    async with session.post(f"{srv.url}/api/generate", data=pieces()) as response:
        assert response.status == 413
        assert await response.read() == error(
            "Request body too large: it exceeds the limit of 300 bytes."
        )


async def test_body_exactly_at_limit_is_accepted(
    session: aiohttp.ClientSession, start: Start
) -> None:
    base = encode(payload(("user", "")))
    text = "y" * (500 - len(base))
    body = encode(payload(("user", text)))
    assert len(body) == 500
    srv = await start(max_body=500)
    assert (await generate(session, srv, body))[:2] == (200, echo_bytes(text))


async def test_clock_skew_when_enabled(session: aiohttp.ClientSession, start: Start) -> None:
    srv = await start(max_clock_skew=60.0)
    old = now_ms() - 10 * 60 * 1000
    assert (await generate(session, srv, payload(time_ms=old)))[:2] == (401, EXPIRED)
    future = now_ms() + 10 * 60 * 1000
    assert (await generate(session, srv, payload(time_ms=future)))[:2] == (401, EXPIRED)
    assert (await generate(session, srv, payload()))[0] == 200
    # the signature is checked first
    assert (await generate(session, srv, payload(time_ms=old, secret="x")))[:2] == (
        401,
        BAD_SIGNATURE,
    )


async def test_clock_skew_off_by_default(
    session: aiohttp.ClientSession, server: GPROChatServer
) -> None:
    assert (await generate(session, server, payload(time_ms=1700000000000)))[0] == 200


async def test_auth_endpoint(session: aiohttp.ClientSession, start: Start) -> None:
    open_srv = await start()
    locked = await start(passwords=("alpha", "beta"))
    cases: list[tuple[GPROChatServer, dict[str, Any], int]] = [
        (open_srv, {"pass": "anything"}, 0),
        (open_srv, {}, 0),
        (locked, {"pass": "beta"}, 0),
        (locked, {"pass": "nope"}, -1),
        (locked, {"pass": None}, -1),
        (locked, {"pass": 5}, -1),
        (locked, {}, -1),
    ]
    for srv, body, code in cases:
        status, answer, _ = await post(session, f"{srv.url}/api/auth", body)
        assert (status, answer) == (200, encode({"code": code})), body
    status, answer, _ = await post(session, f"{locked.url}/api/auth", b"{oops")
    assert (status, answer) == (400, error("Invalid request body: not valid JSON."))


async def test_other_paths_and_methods(
    session: aiohttp.ClientSession, server: GPROChatServer
) -> None:
    async with session.get(f"{server.url}/api/generate") as response:
        assert response.status == 405
    async with session.post(f"{server.url}/api/other", data=b"{}") as response:
        assert response.status == 404
    async with session.get(f"{server.url}/nowhere") as response:
        assert response.status == 404
    async with session.get(f"{server.url}/") as response:  # the chat page (server/page.py)
        assert response.status == 200


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize(
    "header", ["status=503", "close_after_bytes=3", "bogus=1", "answer_bytes=x"]
)
async def test_faults_are_ignored_when_disabled(
    session: aiohttp.ClientSession, start: Start, header: str
) -> None:
    srv = await start(fault=Fault(status=500))
    assert (await generate(session, srv, payload(), fault=header))[:2] == (200, echo_bytes("Hello"))
    assert (await generate(session, srv, payload()))[:2] == (200, echo_bytes("Hello"))


async def test_fault_status(session: aiohttp.ClientSession, faulty: GPROChatServer) -> None:
    status, body, response = await generate(session, faulty, payload(), "status=503; retry_after=7")
    assert (status, body) == (503, DEFAULT_FAULT_BODY.encode())
    assert response.headers["Retry-After"] == "7"
    assert response.headers["Content-Type"] == ERROR_TYPE
    status, body, response = await generate(
        session, faulty, payload(), "status=429;body=slow%20down%3B%20please"
    )
    assert (status, body) == (429, b"slow down; please")
    assert "Retry-After" not in response.headers


async def test_fault_applies_only_after_validation_and_auth(
    session: aiohttp.ClientSession, faulty: GPROChatServer
) -> None:
    assert (await generate(session, faulty, payload(secret="x"), "status=503"))[:2] == (
        401,
        BAD_SIGNATURE,
    )
    assert (await generate(session, faulty, {}, "status=503"))[:2] == (400, HISTORY)


async def test_fault_times_then_success(
    session: aiohttp.ClientSession, faulty: GPROChatServer
) -> None:
    header = "status=503;retry_after=0;times=2"
    statuses = [(await generate(session, faulty, payload(), header))[0] for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    # another header value has its own counter
    assert (await generate(session, faulty, payload(), "status=502;times=1"))[0] == 502
    assert (await generate(session, faulty, payload(), "status=502;times=1"))[:2] == (
        200,
        echo_bytes("Hello"),
    )


async def test_server_wide_fault(session: aiohttp.ClientSession, start: Start) -> None:
    srv = await start(enable_faults=True, fault=Fault(status=429, retry_after="1", times=1))
    status, body, response = await generate(session, srv, payload())
    assert (status, body, response.headers["Retry-After"]) == (
        429,
        DEFAULT_FAULT_BODY.encode(),
        "1",
    )
    assert (await generate(session, srv, payload()))[:2] == (200, echo_bytes("Hello"))
    # a request's own header wins over the server-wide fault
    assert (await generate(session, srv, payload(), "status=418"))[0] == 418


async def test_fault_delays_keep_the_answer(
    session: aiohttp.ClientSession, faulty: GPROChatServer
) -> None:
    header = "delay_first_byte=0.05; delay_between_chunks=0.01"
    assert (await generate(session, faulty, payload(), header))[:2] == (200, echo_bytes("Hello"))


@pytest.mark.parametrize("n", [0, 1, 7, 12, 30])
async def test_fault_close_after_bytes(
    session: aiohttp.ClientSession, faulty: GPROChatServer, n: int
) -> None:
    expected = echo_bytes("Привет")
    assert len(expected) > 30
    async with session.post(
        f"{faulty.url}/api/generate",
        data=encode(payload(("user", "Привет"))),
        headers={FAULT_HEADER: f"close_after_bytes={n}"},
    ) as response:
        assert response.status == 200
        assert await read_until_broken(response) == expected[:n]


async def test_fault_close_after_more_bytes_than_the_answer(
    session: aiohttp.ClientSession, faulty: GPROChatServer
) -> None:
    async with session.post(
        f"{faulty.url}/api/generate",
        data=encode(payload()),
        headers={FAULT_HEADER: "close_after_bytes=100000"},
    ) as response:
        assert await read_until_broken(response) == echo_bytes("Hello")


async def test_fault_invalid_utf8(session: aiohttp.ClientSession, faulty: GPROChatServer) -> None:
    chunks = [c.encode() for c in echo_chunks(echo_reply([user("Hello")]))]
    status, body, _ = await generate(session, faulty, payload(), "invalid_utf8=1")
    assert (status, body) == (200, chunks[0] + b"\xff\xfe" + b"".join(chunks[1:]))


async def test_fault_answer_bytes(session: aiohttp.ClientSession, faulty: GPROChatServer) -> None:
    header = "answer_bytes=100000;chunk_size=4096"
    async with session.post(
        f"{faulty.url}/api/generate", data=encode(payload()), headers={FAULT_HEADER: header}
    ) as response:
        chunks = await http_chunks(response)
    body = b"".join(chunks)
    assert len(body) == 100000
    assert body == filler_text(100000).encode()
    assert {len(c) for c in chunks[:-1]} == {4096}
    assert len(chunks) == 25


async def test_fault_answer_bytes_50_mb_is_exact(
    session: aiohttp.ClientSession, faulty: GPROChatServer
) -> None:
    total = 50 * 1024 * 1024
    received = 0
    async with session.post(
        f"{faulty.url}/api/generate",
        data=encode(payload()),
        headers={FAULT_HEADER: f"answer_bytes={total}"},
    ) as response:
        async for data in response.content.iter_any():
            assert data == filler_text(len(data), offset=received).encode()
            received += len(data)
    assert received == total
    assert faulty.stats.bytes_out == total


async def test_fault_mid_stream_error(
    session: aiohttp.ClientSession, faulty: GPROChatServer
) -> None:
    first = echo_chunks(echo_reply([user("Hello")]))[0]
    status, body, _ = await generate(session, faulty, payload(), "mid_stream_error=1")
    assert (status, body) == (200, (first + INTERRUPTION_MARKER).encode())


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("bogus=1", "bogus is not a known key"),
        ("status", "status has no value (write key=value)"),
        ("status=abc", "status must be an integer, got 'abc'"),
        ("status=200", "status must be between 400 and 599, got 200"),
        ("times=0", "times must be between 1 and 1099511627776, got 0"),
        ("delay_first_byte=-1", "delay_first_byte must be between 0 and 3600 seconds, got '-1'"),
        ("invalid_utf8=maybe", "invalid_utf8 must be 1 or 0, got 'maybe'"),
        ("status=503;status=502", "status is given twice"),
        ("retry_after=a%0Db", "retry_after must be printable ASCII"),
    ],
)
async def test_invalid_fault_header_is_400(
    session: aiohttp.ClientSession, faulty: GPROChatServer, header: str, problem: str
) -> None:
    status, body, _ = await generate(session, faulty, payload(), header)
    assert (status, body) == (400, error(f"Invalid X-GPROChat-Fault header: {problem}."))


def test_parse_fault_and_filler_text() -> None:
    assert parse_fault(" status=503; retry_after=1;times=2; ") == Fault(
        status=503, retry_after="1", times=2
    )
    assert parse_fault("mid_stream_error=true;delay_between_chunks=0.5") == Fault(
        mid_stream_error=True, delay_between_chunks=0.5
    )
    assert parse_fault("") == Fault()
    with pytest.raises(FaultError) as caught:
        parse_fault("chunk_size=0")
    assert caught.value.key == "chunk_size"
    assert filler_text(20) == "0123456789abcdef0123"
    assert filler_text(3, offset=15) == "f01"
    assert filler_text(0) == ""


# ---------------------------------------------------------------- backends


def test_echo_reply_and_chunks() -> None:
    turns = [user("Hi"), model("Hello"), user("Ça va ?")]
    assert echo_reply(turns) == "Echo · turn 2 · «Ça va ?» ✓"
    assert echo_chunks("abcdefghij") == ["abcdefgh", "ij"]
    assert echo_chunks("") == []
    text = echo_reply(turns)
    assert "".join(echo_chunks(text)) == text
    assert all(len(c) <= 8 for c in echo_chunks(text))


async def test_echo_backend_with_delay() -> None:
    chunks = [c async for c in EchoBackend(chunk_delay=0.01).stream([user("Hello")])]
    assert chunks == echo_chunks(echo_reply([user("Hello")]))


async def test_chat_model_backend(session: aiohttp.ClientSession, start: Start) -> None:
    fake = GenericFakeChatModel(messages=iter(["Bonjour le monde ✓", "Second answer"]))
    srv = await start(backend=ChatModelBackend(fake))
    status, body, _ = await generate(
        session, srv, payload(("user", "Hi"), ("model", "Hello"), ("user", "Again"))
    )
    assert (status, body.decode()) == (200, "Bonjour le monde ✓")
    assert (await generate(session, srv, payload()))[:2] == (200, b"Second answer")


async def test_chat_model_backend_streams_several_chunks() -> None:
    fake = GenericFakeChatModel(messages=iter(["one two three"]))
    chunks = [c async for c in ChatModelBackend(fake).stream([user("Hi")])]
    assert "".join(chunks) == "one two three"
    assert len(chunks) > 1


def test_load_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_backends.py").write_text(
        "from langchain_core.language_models.fake_chat_models import GenericFakeChatModel\n"
        "from langchain_gprochat.server import ScriptedBackend\n"
        "model = GenericFakeChatModel(messages=iter(['hi']))\n"
        "scripted = ScriptedBackend(['x'])\n"
        "def factory():\n    return model\n"
        "class Holder:\n    inner = scripted\n"
        "number = 42\n"
        "def needs_args(a):\n    return a\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert isinstance(load_backend("echo"), EchoBackend)
    assert isinstance(load_backend("langchain_gprochat.server:EchoBackend"), EchoBackend)
    chat = load_backend("my_backends:model")
    assert isinstance(chat, ChatModelBackend)
    assert isinstance(load_backend("my_backends:factory"), ChatModelBackend)
    assert isinstance(load_backend("my_backends:scripted"), ScriptedBackend)
    assert isinstance(load_backend("my_backends:Holder.inner"), ScriptedBackend)
    for spec, fragment in [
        ("nonsense", "use 'echo' or 'module:attribute'"),
        (":model", "use 'echo' or 'module:attribute'"),
        ("no_such_module_xyz:thing", "cannot import 'no_such_module_xyz'"),
        ("my_backends:missing", "has no attribute 'missing'"),
        ("my_backends:number", "it names a int"),
        ("my_backends:needs_args", "calling it without arguments failed"),
    ]:
        with pytest.raises(ValueError, match=re.escape(fragment)):
            load_backend(spec)


# ---------------------------------------------------------------- running the server


async def test_async_server_url_port_and_close(session: aiohttp.ClientSession) -> None:
    async with GPROChatServer() as srv:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", srv.url)
        assert srv.url.endswith(f":{srv.port}")
        port = srv.port
        assert (await generate(session, srv, payload()))[0] == 200
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises(RuntimeError):
        _ = srv.url


def test_sync_server_in_a_thread() -> None:
    with GPROChatServer(passwords=("pw",)) as srv:
        port = srv.port
        assert threading.current_thread() is threading.main_thread()
        request = urllib.request.Request(
            f"{srv.url}/api/generate", data=encode(payload(password="pw")), method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            assert response.read() == echo_bytes("Hello")
        assert srv.stats.statuses[200] == 1
        assert "gprochat-server" in [t.name for t in threading.enumerate()]
    assert "gprochat-server" not in [t.name for t in threading.enumerate()]
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=5),
    ):
        pass


def test_settings_never_show_secrets() -> None:
    settings = ServerSettings(secret_key="s3cr3t-key", passwords=("pw-hidden",))
    srv = GPROChatServer(settings, port=0, max_body=10)
    for text in (repr(settings), str(settings), repr(srv)):
        assert "s3cr3t-key" not in text
        assert "pw-hidden" not in text
    assert srv.settings.max_body == 10
    assert srv.settings.secret_key == "s3cr3t-key"


async def test_https_with_trustme() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    # The client closes its TLS connection before the server stops.
    async with (
        GPROChatServer(ssl_context=server_context) as srv,
        aiohttp.ClientSession() as session,
    ):
        assert srv.url.startswith("https://127.0.0.1:")
        async with session.post(
            f"{srv.url}/api/generate", data=encode(payload()), ssl=client_context
        ) as response:
            assert (response.status, await response.read()) == (200, echo_bytes("Hello"))


class EndlessBackend:
    """Streams forever, until the client goes away."""

    async def stream(self, turns: list[Turn]) -> AsyncIterator[str]:
        while True:
            yield "tick "
            await asyncio.sleep(0.01)


async def test_client_disconnect_is_counted_once(
    session: aiohttp.ClientSession, start: Start
) -> None:
    srv = await start(backend=EndlessBackend())
    response = await session.post(f"{srv.url}/api/generate", data=encode(payload()))
    assert response.status == 200
    assert (await response.content.readany()).startswith(b"tick")
    await wait_for(lambda: srv.stats.active_streams == 1)
    response.close()
    await wait_for(lambda: srv.stats.active_streams == 0)
    assert srv.stats.client_disconnects == 1
    assert srv.stats.statuses[200] == 1
    # the server keeps serving
    assert (await generate(session, await start(), payload()))[0] == 200
    assert srv.stats.client_disconnects == 1


class GatedBackend:
    """Streams "first ", waits for the gate, then ``last`` (if any) and the end."""

    def __init__(self, last: str) -> None:
        self.gate = asyncio.Event()
        self.last = last

    async def stream(self, turns: list[Turn]) -> AsyncIterator[str]:
        yield "first "
        await self.gate.wait()
        if self.last:
            yield self.last


@pytest.mark.parametrize("last", ["last", ""], ids=["one-more-chunk", "only-the-end"])
async def test_client_leaving_before_the_end_is_counted(
    session: aiohttp.ClientSession, start: Start, last: str
) -> None:
    backend = GatedBackend(last)
    srv = await start(backend=backend)
    response = await session.post(f"{srv.url}/api/generate", data=encode(payload()))
    assert await response.content.readany() == b"first "
    response.close()
    await asyncio.sleep(0.05)  # let the server's loop see the close (ordering, not speed)
    backend.gate.set()
    await wait_for(lambda: srv.stats.active_streams == 0)
    assert srv.stats.client_disconnects == 1


async def test_shutdown_during_a_stream_is_not_a_client_disconnect(
    session: aiohttp.ClientSession,
) -> None:
    srv = GPROChatServer(backend=EndlessBackend(), shutdown_timeout=0.05)
    await srv.start()
    try:
        response = await session.post(f"{srv.url}/api/generate", data=encode(payload()))
        assert (await response.content.readany()).startswith(b"tick")
    finally:
        await srv.stop()
    await read_until_broken(response)
    response.close()
    assert (srv.stats.client_disconnects, srv.stats.active_streams) == (0, 0)


async def test_stats(session: aiohttp.ClientSession, start: Start) -> None:
    srv = await start(passwords=("pw",))
    ok = await generate(session, srv, payload(password="pw"))
    bad = await generate(session, srv, payload(password="no"))
    await post(session, f"{srv.url}/api/auth", {"pass": "pw"})
    assert srv.stats.requests == 2
    assert dict(srv.stats.statuses) == {200: 1, 401: 1}
    assert srv.stats.bytes_out == len(ok[1]) + len(bad[1])
    assert (srv.stats.client_disconnects, srv.stats.active_streams) == (0, 0)


# ---------------------------------------------------------------- the command


def _cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.pop("GPROCHAT_SECRET_KEY", None)
    env["GPROCHAT_SERVER_PASSWORDS"] = "env-pass-1,env-pass-2"
    return env


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_serves_and_exits_cleanly(stop_signal: signal.Signals) -> None:
    secret, password = "cli-secret-Zq81", "cli-pass-Xy42"
    command = [
        sys.executable,
        "-m",
        "langchain_gprochat.server",
        "--port",
        "0",
        "--secret-key",
        secret,
        "--password",
        password,
    ]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_cli_env(),
        cwd=REPO_ROOT,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.fullmatch(
                r"gprochat-server listening on (http://127\.0\.0\.1:(\d+))\n", line
            )
            assert match, line
            assert int(match.group(2)) > 0
            body = encode(payload(("user", "Привет"), secret=secret, password=password))
            request = urllib.request.Request(
                f"{match.group(1)}/api/generate", data=body, method="POST"
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.read() == echo_bytes("Привет")
            process.send_signal(stop_signal)
            stdout, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert re.search(r"POST /api/generate 200 [\d.]+ms \d+B", stderr), stderr
    for secret_text in (secret, password, "env-pass-1", body.decode()[:20], "Привет"):
        assert secret_text not in stderr
        assert secret_text not in stdout


def test_cli_uses_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_gprochat.server.__main__ import build_parser, settings_from_args

    monkeypatch.setenv("GPROCHAT_SERVER_PASSWORDS", "a,b")
    monkeypatch.setenv("GPROCHAT_SECRET_KEY", "env-key")
    settings = settings_from_args(build_parser().parse_args([]))
    assert (settings.passwords, settings.secret_key, settings.port) == (("a", "b"), "env-key", 3000)
    settings = settings_from_args(
        build_parser().parse_args(["--password", "x,y", "--password", "z", "--secret-key", ""])
    )
    assert (settings.passwords, settings.secret_key) == (("x", "y", "z"), "")


def test_cli_bad_backend_and_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--backend", "no_such_module_xyz:thing"]) == 2
    assert "cannot import 'no_such_module_xyz'" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli_main(["--port", str(port), "--log-level", "warning"]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_importing_the_package_does_not_load_the_server() -> None:
    code = (
        "import sys, langchain_gprochat; "
        "print('aiohttp.web' in sys.modules, 'langchain_gprochat.server' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_cli_env(),
        cwd=REPO_ROOT,
        check=True,
    )
    assert result.stdout.strip() == "False False"
