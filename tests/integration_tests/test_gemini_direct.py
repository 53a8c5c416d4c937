"""``--backend gemini``: the direct REST client, against a loopback stand-in for Gemini.

The stand-in (``GeminiStandIn`` of test_server_upstream_env.py) records each request and
streams Server-Sent Events as Google's API does; these tests check the answer through
gprochat-server (a subprocess configured by the upstream's variables alone, and in
process), the exact request, refusals, cuts, stalls and byte-by-byte events.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from langchain_gprochat import ChatGPROChat
from langchain_gprochat.protocol import APPLIED_HEADER, INTERRUPTION_MARKER, Part, Turn
from langchain_gprochat.server import GPROChatServer, create_app
from langchain_gprochat.server.gemini_direct import (
    GeminiDirectBackend,
    GeminiError,
    gemini_direct_backend,
)

from .test_server_upstream_env import (
    GEMINI_KEY,
    KEY,
    GeminiStandIn,
    _gemini_env,
    post,
    running,
    signed,
)

SAFETY = [
    {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "threshold": "BLOCK_NONE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_NONE"},
]
CONVERSATION = (("user", "Hi"), ("model", "Hello!"), ("user", "Tell me ✓"))


async def _serve(handler: Callable[[web.Request], Any]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/v1/models/{call}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def gemini() -> AsyncIterator[tuple[GeminiStandIn, str]]:
    stand_in = GeminiStandIn()
    runner, url = await _serve(stand_in.handle)
    try:
        yield stand_in, url
    finally:
        await runner.cleanup()


def _backend(base_url: str, **options: Any) -> GeminiDirectBackend:
    return GeminiDirectBackend("gemini-stand-in", GEMINI_KEY, base_url, **options)


def _turns(*texts_and_roles: tuple[str, str]) -> list[Turn]:
    return [Turn(role=r, parts=[Part(text=t)]) for r, t in texts_and_roles]  # type: ignore[arg-type]


async def test_backend_gemini_from_the_upstream_variables_alone(
    gemini: tuple[GeminiStandIn, str],
) -> None:
    stand_in, base_url = gemini
    with running(["--backend", "gemini"], _gemini_env(base_url)) as (url, logs):
        conversation = signed(*CONVERSATION, password=None)
        assert await post(url, conversation) == (200, "Hello from Gemini ✓".encode())
    contents = [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello!"}]},
        {"role": "user", "parts": [{"text": "Tell me ✓"}]},
    ]
    upstream_body = {  # the upstream's ChatSession.sendMessageStream request, in its order
        "safetySettings": SAFETY,
        "generationConfig": {"maxOutputTokens": 8000},
        "contents": contents,
    }
    assert stand_in.calls == [
        {
            "path": "/v1/models/gemini-stand-in:streamGenerateContent",
            "query": {"alt": "sse"},
            "api_key": GEMINI_KEY,
            "body": upstream_body,
        }
    ]
    # byte for byte what JSON.stringify writes
    expected_raw = json.dumps(upstream_body, ensure_ascii=False, separators=(",", ":"))
    assert stand_in.raw_bodies == [expected_raw.encode()]
    assert GEMINI_KEY not in logs[0]
    assert "Traceback" not in logs[0]


async def test_in_process_answer_and_generation_config_applied(
    gemini: tuple[GeminiStandIn, str], start: Any
) -> None:
    stand_in, base_url = gemini
    server = await start(backend=_backend(base_url), secret_key=KEY)
    llm = ChatGPROChat(base_url=server.url, secret_key=KEY)
    try:
        assert (await llm.ainvoke("Plain")).content == "Hello from Gemini ✓"
        answer = await llm.ainvoke("Tuned", temperature=0.25, top_p=0.5, max_tokens=64)
        assert answer.content == "Hello from Gemini ✓"
    finally:
        await llm.aclose()
    assert [call["body"]["generationConfig"] for call in stand_in.calls] == [
        {"maxOutputTokens": 8000},
        {"maxOutputTokens": 64, "temperature": 0.25, "topP": 0.5},
    ]
    assert [call["body"]["contents"][-1]["parts"][0]["text"] for call in stand_in.calls] == [
        "Plain",
        "Tuned",
    ]


async def test_applied_settings_are_named_in_the_header(
    gemini: tuple[GeminiStandIn, str], start: Any
) -> None:
    stand_in, base_url = gemini
    server = await start(backend=_backend(base_url), secret_key=KEY)
    body = signed(("user", "Hi"), password=None)
    body["generationConfig"] = {"temperature": 0.5, "topK": 3, "unknownSetting": 1}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.url}/api/generate", json=body) as response,
    ):
        assert (response.status, await response.text()) == (200, "Hello from Gemini ✓")
        assert response.headers[APPLIED_HEADER] == "temperature,topK"
    assert stand_in.calls[0]["body"]["generationConfig"] == {
        "maxOutputTokens": 8000,
        "temperature": 0.5,
        "topK": 3,
    }


async def test_a_gemini_400_is_a_500_with_geminis_message_and_no_key(
    gemini: tuple[GeminiStandIn, str],
) -> None:
    stand_in, base_url = gemini
    message = f"API key not valid. Please pass a valid API key. ({GEMINI_KEY})"
    error = {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
    stand_in.fail_with = (400, error)
    with running(["--backend", "gemini", "--log-level", "DEBUG"], _gemini_env(base_url)) as (
        url,
        logs,
    ):
        answer = await post(url, signed(("user", "Hi"), password=None))
    assert answer == (
        500,
        b'{"error":{"code":"GeminiError","message":"API key not valid. Please pass a valid '
        b'API key. (***)"}}',
    )
    assert GEMINI_KEY not in logs[0]
    assert len(stand_in.calls) == 1  # one attempt, as upstream


async def test_gemini_cut_mid_answer_ends_with_the_interruption_marker(
    gemini: tuple[GeminiStandIn, str],
) -> None:
    stand_in, base_url = gemini
    stand_in.cut_after_first = True
    with running(["--backend", "gemini"], _gemini_env(base_url)) as (url, logs):
        answer = await post(url, signed(("user", "Hi"), password=None))
    assert answer == (200, f"Hello from {INTERRUPTION_MARKER}".encode())
    assert INTERRUPTION_MARKER == "Internal server error"
    assert "Traceback" not in logs[0]


@pytest.mark.parametrize("separator", [b"\r\n\r\n", b"\n\n"])
async def test_events_written_one_byte_at_a_time(
    gemini: tuple[GeminiStandIn, str], start: Any, separator: bytes
) -> None:
    stand_in, base_url = gemini
    stand_in.byte_at_a_time = True
    stand_in.separator = separator
    stand_in.reply = ["Привет, ", "мир ✓ ", "🙂 done"]  # multi-byte characters split too
    server = await start(backend=_backend(base_url), secret_key=KEY)
    status, answer = await post(server.url, signed(("user", "Hi"), password=None))
    assert (status, answer.decode()) == (200, "Привет, мир ✓ 🙂 done")


async def _stream(backend: GeminiDirectBackend, text: str = "Hi") -> str:
    return "".join([chunk async for chunk in backend.stream(_turns(("user", text)))])


async def test_hostile_answers_become_readable_errors() -> None:
    answers: list[web.Response] = [
        web.Response(status=503, reason="Service Unavailable", text="<html>down</html>"),
        web.Response(status=429, body=b"x" * 1_000_000),  # read bounded, status alone
        web.json_response([{"error": {"message": "Quota exceeded."}}], status=429),
        web.Response(text='data: {"candidates": [}\r\n\r\n', content_type="text/event-stream"),
        web.Response(
            text='data: {"promptFeedback": {"blockReason": "OTHER"}}\n\n',
            content_type="text/event-stream",
        ),
        web.Response(text='data: {"candidates": [{"content"', content_type="text/event-stream"),
    ]

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return answers.pop(0)

    runner, url = await _serve(handler)
    backend = _backend(url)
    try:
        got = []
        for _ in range(6):
            with pytest.raises(GeminiError) as info:
                await _stream(backend)
            got.append((type(info.value).__name__, str(info.value)))
    finally:
        await backend.aclose()
        await runner.cleanup()
    assert got == [
        ("GeminiError", "Gemini answered HTTP 503 Service Unavailable"),
        ("GeminiError", "Gemini answered HTTP 429 Too Many Requests"),
        ("GeminiError", "Quota exceeded."),
        ("GeminiError", "Gemini sent a malformed event: not JSON"),
        ("GeminiError", "Gemini blocked the prompt (OTHER)"),
        ("GeminiError", "Gemini's answer ended inside an event"),
    ]


async def _collect(backend: GeminiDirectBackend, chunks: list[str]) -> None:
    async for chunk in backend.stream(_turns(("user", "Hi"))):
        chunks.append(chunk)


async def test_a_stalled_gemini_times_out() -> None:
    release = asyncio.Event()

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"candidates":[{"content":{"parts":[{"text":"a"}]}}]}\n\n')
        await release.wait()
        return response

    runner, url = await _serve(stall)
    backend = _backend(url, read_timeout=0.3)
    chunks: list[str] = []
    try:
        with pytest.raises(asyncio.TimeoutError):
            await _collect(backend, chunks)
    finally:
        release.set()
        await backend.aclose()
        await runner.cleanup()
    assert chunks == ["a"]


async def test_a_refused_connection_is_a_500(start: Any) -> None:
    async def unused(request: web.Request) -> web.Response:
        return web.Response()

    runner, url = await _serve(unused)
    await runner.cleanup()  # nobody listens there any more
    server = await start(backend=_backend(url), secret_key=KEY)
    status, answer = await post(server.url, signed(("user", "Hi"), password=None))
    assert status == 500
    assert json.loads(answer)["error"]["code"] == "ClientConnectorError"
    assert GEMINI_KEY not in answer.decode()


async def test_the_session_is_closed_when_the_server_stops(
    gemini: tuple[GeminiStandIn, str],
) -> None:
    _, base_url = gemini
    backend = gemini_direct_backend(_gemini_env(base_url))
    async with GPROChatServer(backend={"a": backend, "b": backend}, secret_key=KEY) as server:
        assert await post(server.url, signed(("user", "Hi"), password=None)) == (
            200,
            "Hello from Gemini ✓".encode(),
        )
        sessions = list(backend._sessions._by_loop.values())  # the one of this loop
        assert len(sessions) == 1
        assert not sessions[0].closed
    assert sessions[0].closed
    assert dict(backend._sessions._by_loop) == {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app = create_app(backend=backend)  # a new app on the same loop: a new session
        runner = web.AppRunner(app)
        await runner.setup()
        await runner.cleanup()


def test_key_and_credentials_never_shown() -> None:
    backend = GeminiDirectBackend("m", GEMINI_KEY, "https://user:pw@proxy.example/gemini")
    assert repr(backend) == (
        "GeminiDirectBackend(model='m', base_url='https://proxy.example/gemini')"
    )
    tuned, applied = backend.with_generation({"temperature": 0.5})
    assert (applied, GEMINI_KEY in repr(tuned)) == (["temperature"], False)
    assert KEY not in repr(backend)
