"""Reliability: retries, timeouts, interruptions, cancellation, and the fault matrix.

Each row of the fault matrix in ``docs/reliability.md`` has a test here, driven by the
local server's fault injection (``X-GPROChat-Fault``). Every test asserts the exact
outcome (exception class, attributes, message), that the streamed text is exactly the
expected answer or partial text (nothing duplicated), how many requests the server saw,
and that nothing leaked (sessions closed, no active stream on the server). Timeouts and
retry delays are small; no test asserts a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
import tracemalloc
import types
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast

import aiohttp
import pytest
from aiohttp import web
from langchain_core.messages import HumanMessage

import langchain_gprochat._request as request_module
import langchain_gprochat._transport as transport_module
from langchain_gprochat import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ChatGPROChat,
    GPROChatError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from langchain_gprochat._convert import messages_to_turns
from langchain_gprochat._status import status_error
from langchain_gprochat._transport import Transport, TransportSettings
from langchain_gprochat.protocol import (
    DEFAULT_SECRET_KEY,
    INTERRUPTION_MARKER,
    RequestEncoder,
    sign,
)
from langchain_gprochat.server import (
    FAULT_HEADER,
    GPROChatServer,
    ScriptedBackend,
    filler_text,
)

from ._support import async_wait_until, expected_echo, serve_generate, wait_until

QUESTION = "Привет, мир 🌍 — ça va?"
EXPECTED = expected_echo(QUESTION)
FIRST_CHUNK = "Echo · t"  # the echo backend streams 8-character chunks
FAST_RETRIES: dict[str, Any] = {"retry_base_delay": 0.01, "retry_max_delay": 0.05}
MARKER_REASON = (
    f'the server ended the stream with "{INTERRUPTION_MARKER}" (the model failed mid-answer)'
)
PAYLOAD_BROKEN = (
    "the connection broke (ClientPayloadError: Response payload is not completed: "
    "<TransferEncodingError: 400, message='Not enough data to satisfy transfer length "
    "header.'>)"
)

Api = Literal["ainvoke", "astream", "invoke", "stream"]
APIS: tuple[Api, ...] = ("ainvoke", "astream", "invoke", "stream")


# -- helpers ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a caller saw: the text that reached it, and the error that ended the call."""

    text: str
    error: GPROChatError | None


def _interrupted_message(url: str, partial: str, reason: str, api: str = "astream") -> str:
    why = (
        "it was never delivered, and the retries that `max_retries` allows are spent"
        if api.endswith("invoke")
        else "the request was not retried because part of the answer had already been delivered"
    )
    return (
        f"the answer from {url} was interrupted after {len(partial)} characters had "
        f"arrived: {reason}. The partial text is in `partial_text`; {why}."
    )


def _attempts(api: str) -> int:
    """Requests a call makes for an answer that breaks off every time (max_retries=2).

    A non-streaming call retries it (nothing was delivered); a stream does not.
    """
    return 3 if api.endswith("invoke") else 1


def _sync_call(llm: ChatGPROChat, api: Api, question: str) -> Outcome:
    parts: list[str] = []
    try:
        if api == "invoke":
            parts.append(str(llm.invoke(question).content))
        else:
            parts.extend(str(chunk.content) for chunk in llm.stream(question))
    except GPROChatError as exc:
        return Outcome("".join(parts), exc)
    return Outcome("".join(parts), None)


async def call(llm: ChatGPROChat, api: Api, question: str = QUESTION) -> Outcome:
    """Run one call through ``api``; sync ones run on a worker thread."""
    if api in ("invoke", "stream"):
        return await asyncio.to_thread(_sync_call, llm, api, question)
    parts: list[str] = []
    try:
        if api == "ainvoke":
            parts.append(str((await llm.ainvoke(question)).content))
        else:
            async for chunk in llm.astream(question):
                parts.append(str(chunk.content))
    except GPROChatError as exc:
        return Outcome("".join(parts), exc)
    return Outcome("".join(parts), None)


def make_llm(url: str, fault: str | None = None, **options: Any) -> ChatGPROChat:
    headers = {FAULT_HEADER: fault} if fault is not None else None
    return ChatGPROChat(base_url=url, default_headers=headers, **{**FAST_RETRIES, **options})


async def close_and_check(llm: ChatGPROChat, srv: GPROChatServer | None = None) -> None:
    """Close ``llm``; every session it opened must be closed, no stream left running."""
    sessions = list(llm.client.transport.sessions)
    await llm.aclose()
    assert all(session.closed for session in sessions)
    assert llm._client is None
    if srv is not None:
        await async_wait_until(lambda: srv.stats.active_streams == 0, "streams to end")


async def run_once(
    url: str,
    fault: str | None = None,
    *,
    api: Api = "astream",
    srv: GPROChatServer | None = None,
    question: str = QUESTION,
    **options: Any,
) -> Outcome:
    llm = make_llm(url, fault, **options)
    try:
        return await call(llm, api, question)
    finally:
        await close_and_check(llm, srv)


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The ``retry i of n`` part of each retry warning, in order."""
    return [
        r.getMessage().rsplit("; ", 1)[1].rsplit(" in ", 1)[0]
        for r in caplog.records
        if r.name == "langchain_gprochat" and "; retry " in r.getMessage()
    ]


def statuses(srv: GPROChatServer) -> dict[int, int]:
    return dict(srv.stats.statuses)


@pytest.fixture
def srv() -> Iterator[GPROChatServer]:
    """A fresh fault-enabled server per test, so that counters start at zero."""
    with GPROChatServer(enable_faults=True, shutdown_timeout=0.1) as server:
        yield server


@pytest.fixture(autouse=True)
def _capture_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="langchain_gprochat")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- connection refused -----------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_connection_refused_is_retried_then_raised(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    port = _closed_port()
    url = f"http://127.0.0.1:{port}"
    outcome = await run_once(url, api=api)
    error = outcome.error
    assert type(error) is APIConnectionError
    assert error.url == f"{url}/api/generate"
    assert str(error) == (
        f"could not get an answer from {url}/api/generate: ClientConnectorError: Cannot "
        f"connect to host 127.0.0.1:{port} ssl:default [Connect call failed "
        f"('127.0.0.1', {port})]"
    )
    assert outcome.text == ""
    assert retry_lines(caplog) == ["retry 1 of 2", "retry 2 of 2"]


# -- retryable statuses -----------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_status_then_success(
    srv: GPROChatServer, status: int, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    outcome = await run_once(srv.url, f"status={status}; times=1", api=api, srv=srv)
    assert outcome == Outcome(EXPECTED, None)
    assert srv.stats.requests == 2
    assert statuses(srv) == {status: 1, 200: 1}
    assert retry_lines(caplog) == ["retry 1 of 2"]


@pytest.mark.parametrize("max_retries", [0, 1, 2, 3])
async def test_retries_exhausted(
    srv: GPROChatServer, max_retries: int, caplog: pytest.LogCaptureFixture
) -> None:
    outcome = await run_once(srv.url, "status=503", srv=srv, max_retries=max_retries)
    error = outcome.error
    assert type(error) is ServerError
    assert (error.status_code, error.server_message, error.server_code) == (
        503,
        "Injected fault.",
        None,
    )
    assert str(error) == (
        f"503 from {srv.url}/api/generate: Injected fault. (the server failed; retried up "
        "to `max_retries` times)"
    )
    assert outcome.text == ""
    assert srv.stats.requests == max_retries + 1
    assert statuses(srv) == {503: max_retries + 1}
    assert retry_lines(caplog) == [f"retry {i} of {max_retries}" for i in range(1, max_retries + 1)]


async def test_model_failing_before_the_answer_is_a_retried_500() -> None:
    backend = ScriptedBackend([RuntimeError("quota exceeded"), "fine"])
    with GPROChatServer(backend=backend) as srv:
        assert await run_once(srv.url, srv=srv) == Outcome("fine", None)
        assert statuses(srv) == {500: 1, 200: 1}
    backend = ScriptedBackend([RuntimeError("quota exceeded")] * 2)
    with GPROChatServer(backend=backend) as srv:
        outcome = await run_once(srv.url, srv=srv, max_retries=1)
    error = outcome.error
    assert type(error) is ServerError
    assert (error.status_code, error.server_message, error.server_code) == (
        500,
        "quota exceeded",
        "RuntimeError",
    )
    assert srv.stats.requests == 2


# -- Retry-After ------------------------------------------------------------------------


class _RecordingAsyncio(types.SimpleNamespace):
    """Stands in for the ``asyncio`` module inside _transport.py only: records sleeps."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
def recorded_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    fake = _RecordingAsyncio()
    monkeypatch.setattr(transport_module, "asyncio", fake)
    return fake.sleeps


@pytest.mark.parametrize(
    ("retry_after", "options", "slept"),
    [
        ("7", {}, 7.0),
        ("0.25", {}, 0.25),
        ("7", {"retry_after_max": 2.5}, 2.5),
        ("Wed, 21 Oct 2099 07:28:00 GMT", {}, 60.0),  # an HTTP date, capped at 60 s
        ("Wed, 21 Oct 2099 07:28:00 GMT", {"retry_after_max": 3}, 3.0),
    ],
)
async def test_429_retry_after_is_honoured_and_capped(
    srv: GPROChatServer,
    recorded_sleeps: list[float],
    retry_after: str,
    options: dict[str, Any],
    slept: float,
) -> None:
    fault = f"status=429; retry_after={retry_after}; times=1"
    outcome = await run_once(srv.url, fault, srv=srv, **options)
    assert outcome == Outcome(EXPECTED, None)
    assert recorded_sleeps == [slept]
    assert statuses(srv) == {429: 1, 200: 1}


async def test_429_retries_exhausted_carries_retry_after(
    srv: GPROChatServer, recorded_sleeps: list[float]
) -> None:
    outcome = await run_once(srv.url, "status=429; retry_after=1", srv=srv, max_retries=1)
    error = outcome.error
    assert type(error) is RateLimitError
    assert (error.status_code, error.retry_after, error.server_message) == (
        429,
        1.0,
        "Injected fault.",
    )
    assert str(error) == (
        f"429 from {srv.url}/api/generate: Injected fault. (too many requests; wait, or "
        "raise `max_retries`)"
    )
    assert recorded_sleeps == [1.0]
    assert statuses(srv) == {429: 2}


def test_backoff_is_exponential_with_jitter_and_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = Transport(
        TransportSettings(
            base_url="http://127.0.0.1:1",
            retry_base_delay=0.5,
            retry_max_delay=3.0,
            retry_after_max=10.0,
        )
    )
    monkeypatch.setattr(random, "random", lambda: 0.0)
    assert [transport._backoff(i, None) for i in range(5)] == [0.25, 0.5, 1.0, 1.5, 1.5]
    monkeypatch.setattr(random, "random", lambda: 1.0)
    assert [transport._backoff(i, None) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert transport._backoff(0, 4.0) == 4.0  # Retry-After replaces the backoff
    assert transport._backoff(3, 0.0) == 0.0
    assert transport._backoff(0, 3600.0) == 10.0  # capped by retry_after_max


# -- never retried: 400, 401, 413 -------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_wrong_password_is_not_retried(api: Api) -> None:
    with GPROChatServer(passwords=("right",)) as srv:
        outcome = await run_once(srv.url, api=api, srv=srv, password="wrong-pw")
        assert srv.stats.requests == 1
    error = outcome.error
    assert type(error) is AuthenticationError
    assert (error.status_code, error.reason, error.server_message) == (
        401,
        "password",
        "Invalid password.",
    )
    assert str(error) == str(status_error(401, "Invalid password.", url=error.url))
    assert outcome.text == ""


async def test_wrong_signature_is_not_retried() -> None:
    with GPROChatServer(secret_key="server-key") as srv:
        outcome = await run_once(srv.url, srv=srv, secret_key="client-key")
        assert statuses(srv) == {401: 1}
    error = outcome.error
    assert type(error) is AuthenticationError
    assert (error.status_code, error.reason, error.server_message) == (
        401,
        "signature",
        "Invalid signature.",
    )
    assert str(error) == str(status_error(401, "Invalid signature.", url=error.url))


async def test_expired_request_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = types.SimpleNamespace(time_ns=lambda: 1_700_000_000_000_000_000)  # 2023
    monkeypatch.setattr(request_module, "time", clock)
    with GPROChatServer(max_clock_skew=60) as srv:
        outcome = await run_once(srv.url, srv=srv)
        assert statuses(srv) == {401: 1}
    error = outcome.error
    assert type(error) is AuthenticationError
    assert (error.reason, error.server_message) == ("expired", "Request expired.")


async def test_400_is_not_retried(srv: GPROChatServer) -> None:
    body = (
        '{"error":{"message":"Invalid message history: The last message must be from user role."}}'
    )
    outcome = await run_once(srv.url, f"status=400; body={body}", srv=srv)
    error = outcome.error
    assert type(error) is BadRequestError
    assert (error.status_code, error.server_message) == (
        400,
        "Invalid message history: The last message must be from user role.",
    )
    assert str(error) == (
        f"400 from {srv.url}/api/generate: Invalid message history: The last message must "
        "be from user role. (the request was malformed; the message above says which field)"
    )
    assert statuses(srv) == {400: 1}


def _body_size(question: str) -> int:
    turns = messages_to_turns([HumanMessage(question)])
    encoder = RequestEncoder(turns, password=None, secret_key=DEFAULT_SECRET_KEY)
    return len(encoder.encode(1_700_000_000_000))  # every time has 13 digits


@pytest.mark.parametrize(
    ("max_body", "question"),
    [(100, QUESTION), (1024 * 1024, "й" * (1024 * 1024))],
    ids=["small-limit", "huge-message"],
)
async def test_413_is_not_retried(max_body: int, question: str) -> None:
    with GPROChatServer(max_body=max_body, shutdown_timeout=0.1) as srv:
        outcome = await run_once(srv.url, srv=srv, question=question)
        assert statuses(srv) == {413: 1}
    error = outcome.error
    assert type(error) is PayloadTooLargeError
    size = _body_size(question)
    assert error.server_message == (
        f"Request body too large: {size} bytes exceeds the limit of {max_body} bytes."
    )
    assert str(error) == str(status_error(413, error.server_message, url=error.url))


# -- timeouts ---------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_stall_before_first_byte_is_retried(
    srv: GPROChatServer, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    fault = "delay_first_byte=5; times=1"
    outcome = await run_once(srv.url, fault, api=api, srv=srv, first_byte_timeout=0.2)
    assert outcome == Outcome(EXPECTED, None)
    assert srv.stats.requests == 2
    assert statuses(srv) == {200: 1}  # the stalled one never answered
    assert retry_lines(caplog) == ["retry 1 of 2"]


async def test_stall_before_first_byte_retries_exhausted(srv: GPROChatServer) -> None:
    outcome = await run_once(
        srv.url, "delay_first_byte=5", srv=srv, first_byte_timeout=0.2, max_retries=1
    )
    error = outcome.error
    assert type(error) is APITimeoutError
    assert isinstance(error, TimeoutError)
    assert (error.kind, error.timeout) == ("first_byte", 0.2)
    assert str(error) == (
        f"first byte timeout of 0.2s exceeded for {srv.url}/api/generate: the server "
        "accepted the request but sent no answer in time; raise `first_byte_timeout`."
    )
    assert srv.stats.requests == 2


@pytest.mark.parametrize("api", APIS)
async def test_stall_mid_stream_is_an_interruption(srv: GPROChatServer, api: Api) -> None:
    # The default first_byte_timeout (120 s) is longer: the chunk gap must still apply.
    outcome = await run_once(srv.url, "delay_between_chunks=1", api=api, srv=srv, chunk_timeout=0.2)
    error = outcome.error
    assert type(error) is StreamInterruptedError
    url = f"{srv.url}/api/generate"
    reason = (
        f"between chunks timeout of 0.2s exceeded for {url}: the server stopped sending "
        "in the middle of the answer; raise `chunk_timeout`"
    )
    assert (error.partial_text, error.reason, error.delivered_chars) == (FIRST_CHUNK, reason, 8)
    assert str(error) == _interrupted_message(url, FIRST_CHUNK, reason, api)
    # Streams saw the first chunk, invoke saw nothing; no text twice either way.
    assert outcome.text == ("" if api.endswith("invoke") else FIRST_CHUNK)
    assert srv.stats.requests == _attempts(api)
    assert srv.stats.client_disconnects == _attempts(api)  # seen at the next write


async def test_total_timeout_spans_the_retries(srv: GPROChatServer) -> None:
    # Attempt 1 stalls until first_byte_timeout (0.5 s) and is retried; attempt 2 is cut
    # by the total timeout (0.8 s, for the whole call) before its own first-byte timeout.
    outcome = await run_once(
        srv.url,
        "delay_first_byte=5",
        srv=srv,
        first_byte_timeout=0.5,
        timeout=0.8,
        max_retries=5,
    )
    error = outcome.error
    assert type(error) is APITimeoutError
    assert (error.kind, error.timeout) == ("total", 0.8)
    assert str(error) == (
        f"total timeout of 0.8s exceeded for {srv.url}/api/generate: the whole request "
        "took longer than allowed; raise `timeout`."
    )
    assert srv.stats.requests == 2


async def test_total_timeout_mid_stream_is_an_interruption(srv: GPROChatServer) -> None:
    outcome = await run_once(srv.url, "delay_between_chunks=0.1", srv=srv, timeout=0.3)
    error = outcome.error
    assert type(error) is StreamInterruptedError
    url = f"{srv.url}/api/generate"
    assert error.reason == (
        f"total timeout of 0.3s exceeded for {url}: the whole request took longer than "
        "allowed; raise `timeout`"
    )
    assert error.partial_text != ""
    assert EXPECTED.startswith(error.partial_text)
    assert error.partial_text != EXPECTED
    assert outcome.text == error.partial_text
    assert srv.stats.requests == 1


async def test_slow_consumer_is_not_a_chunk_timeout(srv: GPROChatServer) -> None:
    """The chunk gap counts only network waiting, not the time the caller holds a chunk."""
    llm = make_llm(srv.url, "delay_between_chunks=0.01", first_byte_timeout=0.1, chunk_timeout=0.1)
    parts: list[str] = []
    try:
        async for chunk in llm.astream("slow"):
            parts.append(str(chunk.content))
            await asyncio.sleep(0.3)  # hold each chunk three chunk timeouts long
    finally:
        await close_and_check(llm, srv)
    assert "".join(parts) == expected_echo("slow")


def test_slow_sync_consumer_is_not_a_chunk_timeout(srv: GPROChatServer) -> None:
    # A sync stream reads nothing ahead of its caller: while the caller sleeps, no read
    # is pending, so no timer runs (the server's chunks wait in the socket).
    llm = make_llm(srv.url, "delay_between_chunks=0.01", first_byte_timeout=0.2, chunk_timeout=0.2)
    parts: list[str] = []
    with llm:
        for chunk in llm.stream("slow sync"):
            parts.append(str(chunk.content))
            time.sleep(0.5)  # hold each chunk more than two chunk timeouts long
    assert "".join(parts) == expected_echo("slow sync")
    assert srv.stats.requests == 1


# -- broken streams ---------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_connection_cut_mid_stream(srv: GPROChatServer, api: Api) -> None:
    outcome = await run_once(srv.url, "close_after_bytes=12", api=api, srv=srv)
    error = outcome.error
    assert type(error) is StreamInterruptedError
    partial = "Echo · turn"  # 12 bytes: "·" takes two
    url = f"{srv.url}/api/generate"
    assert (error.partial_text, error.reason) == (partial, PAYLOAD_BROKEN)
    assert str(error) == _interrupted_message(url, partial, PAYLOAD_BROKEN, api)
    assert outcome.text == ("" if api.endswith("invoke") else partial)
    assert srv.stats.requests == _attempts(api)


async def test_connection_cut_before_any_text_is_retried(srv: GPROChatServer) -> None:
    outcome = await run_once(srv.url, "close_after_bytes=0; times=1", srv=srv)
    assert outcome == Outcome(EXPECTED, None)
    assert srv.stats.requests == 2


async def test_connection_cut_before_any_text_retries_exhausted(srv: GPROChatServer) -> None:
    outcome = await run_once(srv.url, "close_after_bytes=0", srv=srv, max_retries=1)
    error = outcome.error
    assert type(error) is StreamInterruptedError
    assert (error.partial_text, error.delivered_chars) == ("", 0)
    assert str(error) == (
        f"the answer from {srv.url}/api/generate broke off before any text arrived: "
        f"{PAYLOAD_BROKEN}."
    )
    assert srv.stats.requests == 2


@pytest.mark.parametrize("api", APIS)
async def test_invalid_utf8_is_replaced_and_logged_once(
    srv: GPROChatServer, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    outcome = await run_once(srv.url, "invalid_utf8=1", api=api, srv=srv)
    # FF and FE are each an invalid start byte: two U+FFFD, after the first chunk.
    assert outcome == Outcome(FIRST_CHUNK + "\ufffd\ufffd" + EXPECTED[8:], None)
    warnings = [r.getMessage() for r in caplog.records if r.name == "langchain_gprochat"]
    assert warnings == [
        f"the answer from {srv.url}/api/generate contains bytes that are not valid UTF-8; "
        "they were replaced with U+FFFD"
    ]


async def test_replacement_character_sent_by_the_server_is_not_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        GPROChatServer(backend=ScriptedBackend([["a\ufffdb", "c"]])) as server,
        ChatGPROChat(base_url=server.url) as llm,
    ):
        assert (await llm.ainvoke("q")).content == "a\ufffdbc"
    assert [r for r in caplog.records if r.name == "langchain_gprochat"] == []


@pytest.mark.parametrize("api", APIS)
async def test_mid_stream_internal_server_error(srv: GPROChatServer, api: Api) -> None:
    outcome = await run_once(srv.url, "mid_stream_error=1", api=api, srv=srv)
    error = outcome.error
    assert type(error) is StreamInterruptedError
    url = f"{srv.url}/api/generate"
    assert (error.partial_text, error.reason) == (FIRST_CHUNK, MARKER_REASON)
    assert str(error) == _interrupted_message(url, FIRST_CHUNK, MARKER_REASON, api)
    assert outcome.text == ("" if api.endswith("invoke") else FIRST_CHUNK)
    assert INTERRUPTION_MARKER not in outcome.text
    assert srv.stats.requests == _attempts(api)


async def test_marker_split_across_chunks_never_reaches_the_caller() -> None:
    # "Inter" could start the marker: it is held back, then released as answer text
    # once the real marker follows it.
    backend = ScriptedBackend([["Hello ", "Inter", "nal", RuntimeError("model died")]])
    with GPROChatServer(backend=backend) as srv:
        outcome = await run_once(srv.url, srv=srv)
    error = outcome.error
    assert type(error) is StreamInterruptedError
    assert error.partial_text == "Hello Internal"
    assert outcome.text == "Hello Internal"
    assert INTERRUPTION_MARKER not in error.partial_text


async def test_marker_inside_an_answer_is_text() -> None:
    answer = f"{INTERRUPTION_MARKER} is what the upstream appends. {INTERRUPTION_MARKER}!"
    with GPROChatServer(backend=ScriptedBackend([answer, answer])) as srv:
        assert await run_once(srv.url, srv=srv) == Outcome(answer, None)
        assert await run_once(srv.url, api="invoke", srv=srv) == Outcome(answer, None)
        assert srv.stats.requests == 2


async def test_answer_that_is_only_the_marker_is_retried() -> None:
    backend = ScriptedBackend(
        [INTERRUPTION_MARKER, [INTERRUPTION_MARKER[:9], "server error"], "recovered"]
    )
    with GPROChatServer(backend=backend) as srv:
        outcome = await run_once(srv.url, srv=srv)
        assert statuses(srv) == {200: 3}
    assert outcome == Outcome("recovered", None)


async def test_answer_that_is_only_the_marker_retries_exhausted() -> None:
    with GPROChatServer(backend=ScriptedBackend([INTERRUPTION_MARKER] * 2)) as srv:
        outcome = await run_once(srv.url, srv=srv, max_retries=1)
        assert srv.stats.requests == 2
    error = outcome.error
    assert type(error) is StreamInterruptedError
    assert (error.partial_text, error.reason) == ("", MARKER_REASON)
    assert str(error) == (
        f"the answer from {error.url} broke off before any text arrived: {MARKER_REASON}."
    )


# -- a 50 MB answer ---------------------------------------------------------------------

BIG = 52_428_800
TRANSPORT_PEAK_LIMIT = 2 * 1024 * 1024
"""Peak traced memory for a 50 MiB answer through the transport, server included.

The client reads 64 KiB at a time (one bytes object and its decoded text, plus one
copy when the marker guard joins held text), aiohttp pauses the socket once 128 KiB are
buffered, and the in-process server holds one 16 KiB chunk and its write buffer. That
is well under 1 MiB (0.83 MiB measured); 2 MiB leaves room for allocator noise while
any copy of the answer (50 MiB) fails by a factor of 25.
"""


def _encoder() -> RequestEncoder:
    turns = messages_to_turns([HumanMessage("big")])
    return RequestEncoder(turns, password=None, secret_key=DEFAULT_SECRET_KEY)


async def test_50_mb_answer_through_the_transport_in_bounded_memory(
    srv: GPROChatServer,
) -> None:
    settings = TransportSettings(base_url=srv.url, headers={FAULT_HEADER: f"answer_bytes={BIG}"})
    transport = Transport(settings)
    encoder = _encoder()
    chars = mismatches = 0
    tracemalloc.start()
    try:
        async for text in transport.stream(
            lambda: encoder.encode(1_700_000_000_000), keep_partial=False
        ):
            mismatches += text != filler_text(len(text), chars)
            chars += len(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await transport.aclose()
    assert (chars, mismatches) == (BIG, 0)
    assert peak < TRANSPORT_PEAK_LIMIT, f"peak {peak} bytes"
    await async_wait_until(lambda: srv.stats.active_streams == 0, "the stream to end")
    assert statuses(srv) == {200: 1}
    assert srv.stats.bytes_out == BIG


async def test_50_mb_answer_through_astream(srv: GPROChatServer) -> None:
    """langchain-core's astream keeps every chunk and merges them at the end.

    So memory through ``astream`` is proportional to the answer, whatever the
    transport does: the chunks (1x), the merge's intermediate (2x) and the merged
    message (1x), 4.0x measured. The transport's partial-text list adds nothing: it
    holds the very ``str`` objects the chunks hold.
    """
    llm = make_llm(srv.url, f"answer_bytes={BIG}")
    chars = mismatches = 0
    tracemalloc.start()
    try:
        async for chunk in llm.astream("big"):
            text = str(chunk.content)
            mismatches += text != filler_text(len(text), chars)
            chars += len(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await close_and_check(llm, srv)
    assert (chars, mismatches) == (BIG, 0)
    assert peak < 4 * BIG + 8 * 1024 * 1024, f"peak {peak} bytes"


# -- cancellation -----------------------------------------------------------------------

LONG_ANSWER = "answer_bytes=100000000; chunk_size=1024; delay_between_chunks=0.005; times=1"
"""A long answer written every 5 ms, so the server notices a disconnect at once; only the
first request with this header gets it."""


async def test_cancelling_ainvoke_closes_the_connection(srv: GPROChatServer) -> None:
    llm = make_llm(srv.url, LONG_ANSWER)
    try:
        task = asyncio.create_task(llm.ainvoke(QUESTION))
        await async_wait_until(lambda: srv.stats.active_streams == 1, "the answer to start")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await async_wait_until(lambda: srv.stats.client_disconnects == 1, "the disconnect")
        assert srv.stats.active_streams == 0
        assert (await llm.ainvoke("again ✓")).content == expected_echo("again ✓")
    finally:
        await close_and_check(llm, srv)
    assert srv.stats.requests == 2


async def test_cancelling_astream_task_mid_stream(srv: GPROChatServer) -> None:
    llm = make_llm(srv.url, LONG_ANSWER)
    got_first = asyncio.Event()
    parts: list[str] = []

    async def consume() -> None:
        async for chunk in llm.astream(QUESTION):
            parts.append(str(chunk.content))
            got_first.set()

    try:
        task = asyncio.create_task(consume())
        await asyncio.wait_for(got_first.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await async_wait_until(lambda: srv.stats.client_disconnects == 1, "the disconnect")
        assert "".join(parts) == filler_text(len("".join(parts)))
        assert "".join([str(c.content) async for c in llm.astream("next")]) == expected_echo("next")
    finally:
        await close_and_check(llm, srv)
    assert statuses(srv) == {200: 2}


async def test_breaking_out_of_astream_closes_the_connection(srv: GPROChatServer) -> None:
    llm = make_llm(srv.url, LONG_ANSWER)
    try:
        stream = cast("AsyncGenerator[Any, None]", llm.astream(QUESTION))
        async with contextlib.aclosing(stream):
            async for chunk in stream:
                assert str(chunk.content) == filler_text(len(str(chunk.content)))
                break
        await async_wait_until(lambda: srv.stats.client_disconnects == 1, "the disconnect")
        assert (await llm.ainvoke("again")).content == expected_echo("again")
    finally:
        await close_and_check(llm, srv)


def test_breaking_out_of_sync_stream_closes_the_connection(srv: GPROChatServer) -> None:
    with make_llm(srv.url, LONG_ANSWER) as llm:
        for chunk in llm.stream(QUESTION):
            assert str(chunk.content) == filler_text(len(str(chunk.content)))
            break
        wait_until(lambda: srv.stats.client_disconnects == 1, "the disconnect")
        assert srv.stats.active_streams == 0
        assert llm.invoke("again").content == expected_echo("again")
        session = next(iter(llm.client.transport.sessions))
    assert session.closed
    assert srv.stats.requests == 2


def test_sync_model_closes_every_session(srv: GPROChatServer) -> None:
    llm = make_llm(srv.url)
    assert llm.invoke("a").content == expected_echo("a")
    assert asyncio.run(llm.ainvoke("b")).content == expected_echo("b")
    sessions = list(llm.client.transport.sessions)
    assert len(sessions) == 2  # the private sync loop's, and asyncio.run's (closed)
    llm.close()
    assert all(session.closed for session in sessions)
    assert srv.stats.active_streams == 0


# -- retries re-sign --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _recording_stub(
    failures: int,
) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A stub endpoint that records bodies and answers 503 ``failures`` times first."""
    bodies: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        if len(bodies) <= failures:
            return web.Response(status=503, text='{"error":{"message":"busy"}}')
        return web.Response(text="done")

    async with serve_generate(handler) as base_url:
        yield base_url, bodies


async def test_each_retry_is_signed_with_a_fresh_timestamp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks = iter(range(1_700_000_000_000, 1_700_000_100_000, 1000))
    clock = types.SimpleNamespace(time_ns=lambda: next(ticks) * 1_000_000)
    monkeypatch.setattr(request_module, "time", clock)
    async with _recording_stub(failures=2) as (url, bodies):
        assert await run_once(url, question="sign me ✓") == Outcome("done", None)
    assert [body["time"] for body in bodies] == [
        1_700_000_000_000,
        1_700_000_001_000,
        1_700_000_002_000,
    ]
    for body in bodies:
        assert body["sign"] == sign(body["time"], "sign me ✓", DEFAULT_SECRET_KEY)
    assert len({body["sign"] for body in bodies}) == 3


async def test_retry_passes_a_server_checking_the_clock() -> None:
    # A retried request must not carry the first attempt's timestamp: with a skew
    # limit on the server, every attempt is verified afresh.
    with GPROChatServer(enable_faults=True, max_clock_skew=30) as srv:
        outcome = await run_once(srv.url, "status=503; times=2", srv=srv)
        assert statuses(srv) == {503: 2, 200: 1}
    assert outcome == Outcome(EXPECTED, None)


# -- leak checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        "status=503",
        "close_after_bytes=12",
        "mid_stream_error=1",
        "invalid_utf8=1",
        "delay_first_byte=5",
    ],
)
async def test_repeated_failures_leave_no_connection_in_use(
    srv: GPROChatServer, fault: str
) -> None:
    # Only the stall needs a short first-byte timeout; for the other faults a short one
    # would let a loaded machine time out before the server read the request.
    stall = fault.startswith("delay_first_byte")
    llm = make_llm(srv.url, fault, max_retries=0, first_byte_timeout=0.1 if stall else 30)
    try:
        outcomes = [await call(llm, api) for api in APIS * 2]
        session = await llm.client.transport.session()
        connector = session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        assert len(connector._acquired) == 0
    finally:
        await close_and_check(llm, srv)
    if fault == "delay_first_byte=5":
        # The client gives up after 0.1 s; on a loaded machine the server may not have
        # read a request by then, so only the client's side is exact here.
        assert {type(o.error) for o in outcomes} == {APITimeoutError}
        assert {cast(APITimeoutError, o.error).kind for o in outcomes} == {"first_byte"}
    else:
        assert srv.stats.requests == len(APIS) * 2
        assert len({type(o.error) for o in outcomes}) == 1
