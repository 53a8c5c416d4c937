"""What a reverse proxy in front of the server relies on (docs/server.md, "Behind a reverse proxy").

Streamed answers tell nginx not to buffer them (``X-Accel-Buffering: no``); nothing the
server does depends on forwarded headers, so a proxy needs no trusted-proxy setting.
"""

from __future__ import annotations

import logging
import time

import aiohttp
import pytest

from langchain_gprochat.protocol import DEFAULT_SECRET_KEY, Part, RequestEncoder, Turn
from langchain_gprochat.server import echo_reply
from langchain_gprochat.server.streaming import NO_BUFFERING_HEADER

from ._support import Start

TURNS = [Turn(role="user", parts=[Part(text="Hello")])]
FORWARDED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "chat.example.org",
    "Forwarded": "for=203.0.113.7;proto=https;host=chat.example.org",
    "X-Real-IP": "203.0.113.7",
}


def _body(secret_key: str = DEFAULT_SECRET_KEY) -> bytes:
    encoder = RequestEncoder(TURNS, password=None, secret_key=secret_key)
    return encoder.encode(time.time_ns() // 1_000_000)


async def _post(
    url: str, data: bytes, headers: dict[str, str] | None = None
) -> tuple[int, str, str | None]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/generate", data=data, headers=headers) as response,
    ):
        return response.status, await response.text(), response.headers.get(NO_BUFFERING_HEADER)


async def test_streamed_answers_ask_nginx_not_to_buffer(start: Start) -> None:
    srv = await start(chunk_delay=0.01)
    assert await _post(srv.url, _body()) == (200, echo_reply(TURNS), "no")


async def test_error_answers_are_whole_bodies_without_the_header(start: Start) -> None:
    srv = await start()
    status, text, header = await _post(srv.url, _body("another key"))
    assert (status, text, header) == (401, '{"error":{"message":"Invalid signature."}}', None)


async def test_forwarded_headers_change_nothing_and_are_not_logged(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    srv = await start()
    with caplog.at_level(logging.INFO, logger="langchain_gprochat.server"):
        plain = await _post(srv.url, _body())
        forwarded = await _post(srv.url, _body(), FORWARDED)
    assert forwarded == plain == (200, echo_reply(TURNS), "no")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("POST ")]
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("POST /api/generate 200 ")
        assert "203.0.113.7" not in line
        assert "example.org" not in line
