"""``gprochat-server`` configured by the upstream GeminiProChat app's variables alone.

Subprocess tests: a server whose environment holds only the upstream's variables
(``PUBLIC_SECRET_KEY``, ``SITE_PASSWORD``, ``PUBLIC_MAX_HISTORY_MESSAGES``) honours them,
and ``--backend gemini-langchain`` answers through a loopback stand-in for the Gemini REST API
(``POST /v1/models/{model}:streamGenerateContent?alt=sse``, the path google-genai and
the upstream's SDK both call, answered as Server-Sent Events like Google's API).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from langchain_gprochat import ChatGPROChat
from langchain_gprochat.protocol import sign
from langchain_gprochat.server.env import ENV_VARIABLES

from ._support import expected_echo

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "upstream-key-Qm31"
GEMINI_KEY = "gemini-key-Zx90"
CLEARED = {variable.name for variable in ENV_VARIABLES} | {
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "LANGSMITH_GATEWAY",
}


def _env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(variables)
    return env


@contextmanager
def running(args: list[str], env: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """Run ``gprochat-server`` on a free port; yield its URL and, once it stopped, stderr."""
    command = [sys.executable, "-m", "langchain_gprochat.server", "--port", "0", *args]
    logs: list[str] = []
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.fullmatch(r"gprochat-server listening on (http://127\.0\.0\.1:\d+)\n", line)
            assert match, (line, process.stderr.read() if process.stderr else "")
            yield match.group(1), logs
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
            logs.append(stderr)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, logs


def signed(*texts_and_roles: tuple[str, str], password: str | None) -> dict[str, Any]:
    stamp = time.time_ns() // 1_000_000
    return {
        "messages": [{"role": r, "parts": [{"text": t}]} for r, t in texts_and_roles],
        "time": stamp,
        "pass": password,
        "sign": sign(stamp, texts_and_roles[-1][1], KEY),
    }


async def post(url: str, data: dict[str, Any]) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/generate", json=data) as response,
    ):
        return response.status, await response.read()


async def test_the_upstream_variables_alone_configure_the_server() -> None:
    env = _env(
        PUBLIC_SECRET_KEY=KEY, SITE_PASSWORD="first-pw,second-pw", PUBLIC_MAX_HISTORY_MESSAGES="7"
    )
    with running(["--log-level", "INFO"], env) as (url, logs):
        ok = await post(url, signed(("user", "Привет"), password="second-pw"))
        assert ok == (200, expected_echo("Привет").encode())
        whole = await post(url, signed(("user", "Hi"), password="first-pw,second-pw"))
        assert whole == (200, expected_echo("Hi").encode())  # as upstream: the whole value
        wrong = await post(url, signed(("user", "Hi"), password="third-pw"))
        assert wrong == (401, b'{"error":{"message":"Invalid password."}}')
        missing = await post(url, signed(("user", "Hi"), password=None))
        assert missing == (401, b'{"error":{"message":"Invalid password."}}')
        stale_key = {**signed(("user", "Hi"), password="first-pw")}
        stale_key["sign"] = sign(stale_key["time"], "Hi", "2BC120D4-BB36-1B60-26DE-DB630472A3D8")
        assert await post(url, stale_key) == (401, b'{"error":{"message":"Invalid signature."}}')
        llm = ChatGPROChat(base_url=url, secret_key=KEY, password="first-pw")
        try:
            assert (await llm.ainvoke("Через клиент")).content == expected_echo("Через клиент")
        finally:
            await llm.aclose()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/settings.js") as response:
                script = await response.text()
            async with session.post(f"{url}/api/auth", json={"pass": "second-pw"}) as response:
                assert await response.read() == b'{"code":0}'
            async with session.post(f"{url}/api/auth", json={"pass": "nope"}) as response:
                assert await response.read() == b'{"code":-1}'
        limit = re.search(r"export const maxHistoryMessages = \D*(\d+)\D*;\n", script)
        assert limit is not None, script
        assert limit.group(1) == "7"
        assert f":{KEY}`" in script  # the page signs with the upstream's key
    stderr = logs[0]
    assert "POST /api/generate 200" in stderr
    for secret in ("first-pw", "second-pw", "third-pw"):
        assert secret not in stderr


def test_own_variables_win_over_the_upstreams() -> None:
    env = _env(
        PUBLIC_SECRET_KEY="upstream-key",
        GPROCHAT_SECRET_KEY=KEY,
        SITE_PASSWORD="upstream-pw",
        GPROCHAT_SERVER_PASSWORDS="own-pw",
    )
    with running([], env) as (url, _):
        assert asyncio.run(post(url, signed(("user", "Hi"), password="own-pw")))[0] == 200
        refused = asyncio.run(post(url, signed(("user", "Hi"), password="upstream-pw")))
        assert refused == (401, b'{"error":{"message":"Invalid password."}}')


# ---------------------------------------------------------------- --backend gemini-langchain
# (--backend gemini, the direct client, is tested in test_gemini_direct.py)


@dataclass
class GeminiStandIn:
    """A loopback stand-in for ``streamGenerateContent``: records calls, streams ``reply``."""

    reply: list[str] = field(default_factory=lambda: ["Hello from ", "Gemini ✓"])
    calls: list[dict[str, Any]] = field(default_factory=list)
    raw_bodies: list[bytes] = field(default_factory=list)
    fail_with: tuple[int, dict[str, Any]] | None = None
    cut_after_first: bool = False
    separator: bytes = b"\r\n\r\n"
    byte_at_a_time: bool = False  # every byte its own write (and its own chunk)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.raw_bodies.append(raw)
        self.calls.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "api_key": request.headers.get("x-goog-api-key"),
                "body": json.loads(raw),
            }
        )
        if self.fail_with is not None:
            status, error = self.fail_with
            return web.json_response(error, status=status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for index, text in enumerate(self.reply):
            candidate: dict[str, Any] = {
                "content": {"parts": [{"text": text}], "role": "model"},
                "index": 0,
            }
            if index == len(self.reply) - 1:
                candidate["finishReason"] = "STOP"
            event = {"candidates": [candidate], "modelVersion": "stand-in"}
            await self._write(response, b"data: " + json.dumps(event).encode() + self.separator)
            if self.cut_after_first:  # a broken connection mid-answer
                assert request.transport is not None
                request.transport.close()
                return response
        await response.write_eof()
        return response

    async def _write(self, response: web.StreamResponse, data: bytes) -> None:
        if not self.byte_at_a_time:
            await response.write(data)
            return
        for index in range(len(data)):
            await response.write(data[index : index + 1])
            await asyncio.sleep(0.001)  # let each byte leave on its own


@pytest.fixture
async def gemini() -> AsyncIterator[tuple[GeminiStandIn, str]]:
    stand_in = GeminiStandIn()
    app = web.Application()
    app.router.add_post("/v1/models/{call}", stand_in.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield stand_in, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _gemini_env(base_url: str, **more: str) -> dict[str, str]:
    return _env(
        GEMINI_API_KEY=GEMINI_KEY,
        GEMINI_MODEL_NAME="gemini-stand-in",
        API_BASE_URL=f" {base_url}/ ",  # trimmed and one '/' dropped, as upstream
        PUBLIC_SECRET_KEY=KEY,
        **more,
    )


async def test_backend_gemini_langchain_answers_through_the_rest_api(
    gemini: tuple[GeminiStandIn, str],
) -> None:
    stand_in, base_url = gemini
    with running(["--backend", "gemini-langchain"], _gemini_env(base_url)) as (url, logs):
        conversation = signed(
            ("user", "Hi"), ("model", "Hello!"), ("user", "Tell me ✓"), password=None
        )
        assert await post(url, conversation) == (200, "Hello from Gemini ✓".encode())
    assert stand_in.calls == [
        {
            "path": "/v1/models/gemini-stand-in:streamGenerateContent",
            "query": {"alt": "sse"},
            "api_key": GEMINI_KEY,
            "body": {
                "contents": [
                    {"parts": [{"text": "Hi"}], "role": "user"},
                    {"parts": [{"text": "Hello!"}], "role": "model"},
                    {"parts": [{"text": "Tell me ✓"}], "role": "user"},
                ],
                "safetySettings": [
                    {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"},
                    {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"},
                    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "threshold": "BLOCK_NONE"},
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_NONE"},
                ],
                "generationConfig": {"candidateCount": 1, "maxOutputTokens": 8000},
            },
        }
    ]
    assert GEMINI_KEY not in logs[0]


async def test_gemini_langchain_and_echo_as_named_backends(
    gemini: tuple[GeminiStandIn, str],
) -> None:
    stand_in, base_url = gemini
    stand_in.reply = ["Pro ", "answer"]
    args = ["--backend", "echo=echo", "--backend", "pro=gemini-langchain/gemini-2.5-pro"]
    with running(args, _gemini_env(base_url)) as (url, _):
        llm = ChatGPROChat(base_url=url, secret_key=KEY)
        try:
            assert (await llm.ainvoke("Hi")).content == expected_echo("Hi")
            answer = await llm.ainvoke("Hi", model="pro", temperature=0.25)
            assert (answer.content, answer.response_metadata["model_name"]) == (
                "Pro answer",
                "pro",
            )
        finally:
            await llm.aclose()
        async with aiohttp.ClientSession() as session, session.get(f"{url}/api/models") as got:
            assert [model["id"] for model in (await got.json())["data"]] == ["echo", "pro"]
    assert [call["path"] for call in stand_in.calls] == [
        "/v1/models/gemini-2.5-pro:streamGenerateContent"
    ]
    assert stand_in.calls[0]["body"]["generationConfig"] == {
        "temperature": 0.25,  # the request's generationConfig, applied to the model
        "candidateCount": 1,
        "maxOutputTokens": 8000,
    }


async def test_a_gemini_langchain_refusal_is_a_500_without_the_key(
    gemini: tuple[GeminiStandIn, str],
) -> None:
    stand_in, base_url = gemini
    error = {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}
    stand_in.fail_with = (400, error)
    with running(["--backend", "gemini-langchain"], _gemini_env(base_url)) as (url, logs):
        status, answer = await post(url, signed(("user", "Hi"), password=None))
    assert status == 500
    failure = json.loads(answer)["error"]
    assert failure == {
        "code": "GoogleInvalidRequestError",  # langchain-google-genai's class for a 400
        "message": "Error calling model 'gemini-stand-in' (INVALID_ARGUMENT): 400 "
        "INVALID_ARGUMENT. {'error': {'code': 400, 'message': 'API key not valid.', "
        "'status': 'INVALID_ARGUMENT'}}",
    }
    assert GEMINI_KEY not in answer.decode()
    assert GEMINI_KEY not in logs[0]
    assert len(stand_in.calls) == 1  # one attempt, as upstream: the client retries


async def test_gemini_langchain_failing_mid_answer_ends_as_the_upstream_does(
    gemini: tuple[GeminiStandIn, str],
) -> None:
    stand_in, base_url = gemini
    stand_in.cut_after_first = True
    with running(["--backend", "gemini-langchain"], _gemini_env(base_url)) as (url, logs):
        answer = await post(url, signed(("user", "Hi"), password=None))
    assert answer == (200, b"Hello from Internal server error")
    assert "Traceback" not in logs[0]
