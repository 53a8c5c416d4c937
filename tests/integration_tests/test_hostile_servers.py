"""The client against servers that misbehave on purpose, all on 127.0.0.1.

Each test is named after what it protects: redirects that would carry the password
elsewhere, error bodies of any size or compression, timeouts when LangChain moves a stream
between tasks, an HTML page where an answer should be, malformed ``Retry-After`` values,
deeply nested bodies, forked processes and copies that change settings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import threading
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_gprochat import (
    APITimeoutError,
    ChatGPROChat,
    RedirectError,
    ServerError,
    StreamInterruptedError,
    UnexpectedResponseError,
)
from langchain_gprochat._status import status_error
from langchain_gprochat.errors import ERROR_BODY_MAX, SHOWN_MESSAGE_MAX, shown_text
from langchain_gprochat.protocol import GenerateRequest, sign, turn_text
from langchain_gprochat.server import GPROChatServer, echo_reply

from ._support import expected_echo, serve_routes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FAST: dict[str, Any] = {"retry_base_delay": 0.01, "retry_max_delay": 0.02}
HANG_GUARD = 30.0
"""Seconds after which a test gives up: only a hang (a timeout that never fires) trips it."""


@asynccontextmanager
async def hostile(
    routes: dict[str, Handler], **options: Any
) -> AsyncIterator[tuple[str, ChatGPROChat]]:
    """Serve ``routes`` and yield ``(url, llm)``, a model pointed at them, closed after."""
    async with serve_routes(routes) as url, ChatGPROChat(base_url=url, **options) as llm:
        yield url, llm


class Recorder:
    """A generate handler that checks the signature and password, and records bodies."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.bodies: list[dict[str, Any]] = []
        self.methods: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.methods.append(request.method)
        if request.method != "POST":
            return web.Response(status=405, text="POST only")
        raw = await request.read()
        body = json.loads(raw)
        self.bodies.append(body)
        parsed = GenerateRequest.model_validate(body)
        last = turn_text(parsed.messages[-1])
        assert parsed.sign == sign(parsed.time, last, "2BC120D4-BB36-1B60-26DE-DB630472A3D8")
        assert parsed.password == self.password
        return web.Response(text=echo_reply(parsed.messages), content_type="text/plain")


def redirect(status: int, location: Callable[[], str]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=status, headers={"Location": location()})

    return handler


# -- 1. redirects -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_to_another_host_never_resends_the_password(status: int) -> None:
    elsewhere = Recorder(password="site-pw")
    async with serve_routes({"/api/generate": elsewhere.handle}, host="localhost") as other:
        target = f"{other}/api/generate"
        async with serve_routes({"/api/generate": redirect(status, lambda: target)}) as url:
            llm = ChatGPROChat(base_url=url, password="site-pw", max_retries=0)
            async with llm:
                with pytest.raises(RedirectError) as caught:
                    await llm.ainvoke("secret conversation")
    error = caught.value
    assert (error.status_code, error.location) == (status, target)
    why = (
        "a 303 points at a page to fetch with GET, not at the endpoint"
        if status == 303
        else "it leads to another host"
    )
    # The wording of a RedirectError is pinned in test_chat_model_config.
    assert str(error) == str(RedirectError(status, why, url=f"{url}/api/generate", location=target))
    assert elsewhere.methods == []  # nothing reached the other host, not even a GET


@pytest.mark.parametrize("absolute", [False, True])
@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirect_on_the_same_host_is_followed_with_the_same_post(
    status: int, absolute: bool
) -> None:
    moved = Recorder(password="site-pw")
    base: list[str] = []

    def location() -> str:
        return f"{base[0]}/v2/api/generate" if absolute else "/v2/api/generate"

    routes: dict[str, Handler] = {
        "/api/generate": redirect(status, location),
        "/v2/api/generate": moved.handle,
    }
    async with serve_routes(routes) as url:
        base.append(url)
        async with ChatGPROChat(base_url=url, password="site-pw", max_retries=0) as llm:
            answer = await llm.ainvoke("moved ✓")
    assert answer.content == expected_echo("moved ✓")
    assert moved.methods == ["POST"]
    assert moved.bodies[0]["pass"] == "site-pw"


async def test_redirect_loop_stops_after_a_few_hops() -> None:
    hops: list[str] = []

    async def loop_handler(request: web.Request) -> web.StreamResponse:
        hops.append(request.path)
        return web.Response(status=307, headers={"Location": "/api/generate"})

    async with hostile({"/api/generate": loop_handler}, max_retries=0) as (_url, llm):
        with pytest.raises(RedirectError) as caught:
            await llm.ainvoke("round and round")
    error = caught.value
    assert (error.status_code, error.location) == (307, "/api/generate")
    assert str(error) == str(
        RedirectError(307, "more than 5 redirects in a row", url=error.url, location=error.location)
    )
    assert len(hops) == 6  # the request and five redirects followed


# -- 11. an HTML page instead of an answer ---------------------------------------------


async def test_html_page_is_not_delivered_as_the_answer() -> None:
    page = "<!doctype html><html><head><title> Sign in </title></head><body>x</body></html>"

    async def login(request: web.Request) -> web.StreamResponse:
        return web.Response(text=page, content_type="text/html")

    routes: dict[str, Handler] = {
        "/api/generate": redirect(302, lambda: "/login"),
        "/login": login,
    }
    async with hostile(routes, max_retries=2, **FAST) as (url, llm):
        with pytest.raises(UnexpectedResponseError) as caught:
            await llm.ainvoke("hello")
        chunks: list[str] = []
        with pytest.raises(UnexpectedResponseError):
            await _collect(llm.astream("hello"), chunks)
    error = caught.value
    assert (error.status_code, error.content_type, error.preview) == (
        200,
        "text/html; charset=utf-8",
        page,
    )
    assert str(error) == (
        f"200 from {url}/api/generate is an HTML page titled 'Sign in' (text/html; "
        "charset=utf-8), not a gprochat answer: a login page, captive portal or proxy "
        "answered, or base_url does not point at a GeminiProChat deployment; check "
        "`base_url` and `proxy`."
    )
    assert chunks == []


# -- 2. error bodies of any size --------------------------------------------------------


def _gzip(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"A" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(size >> 20)]
    return b"".join(parts) + compressor.flush()


async def _measure_peak(coro: Awaitable[Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = await coro
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_huge_error_body_is_read_bounded(caplog: pytest.LogCaptureFixture) -> None:
    sent = 0

    async def huge(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        await request.read()
        response = web.StreamResponse(status=502)
        await response.prepare(request)
        block = b"<p>bad gateway</p>" * 4096
        try:
            for _ in range(4096):  # 288 MiB, unless the client hangs up first
                await response.write(block)
                sent += len(block)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def call(llm: ChatGPROChat) -> ServerError:
        with pytest.raises(ServerError) as caught:
            await llm.ainvoke("hi")
        return caught.value

    async with hostile({"/api/generate": huge}, max_retries=1, **FAST) as (url, llm):
        with caplog.at_level(logging.WARNING, logger="langchain_gprochat"):
            error, peak = await _measure_peak(call(llm))
    assert error.body_truncated is True
    assert error.server_message == ("<p>bad gateway</p>" * 911)[:ERROR_BODY_MAX]
    assert (error.status_code, error.url) == (502, f"{url}/api/generate")
    # The message shows the bounded text (its wording is pinned in test_transport_rules).
    assert f": {shown_text(error.server_message, body_truncated=True)} (" in str(error)
    assert peak < 8 << 20  # the old client held the whole body: over 1 GB
    assert sent < 64 << 20
    (record,) = [r for r in caplog.records if r.name == "langchain_gprochat"]
    assert len(record.getMessage()) < 2 * SHOWN_MESSAGE_MAX


async def test_compressed_bomb_error_body_is_read_bounded() -> None:
    bomb = _gzip(256 << 20)  # 256 MiB of "A" in about 256 KiB

    async def bombing(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(
            status=500,
            body=bomb,
            headers={"Content-Encoding": "gzip"},
            content_type="text/plain",
        )

    async def call(llm: ChatGPROChat) -> ServerError:
        with pytest.raises(ServerError) as caught:
            await llm.ainvoke("hi")
        return caught.value

    async with hostile({"/api/generate": bombing}, max_retries=0) as (_url, llm):
        error, peak = await _measure_peak(call(llm))
    assert (error.server_message, error.body_truncated) == ("A" * ERROR_BODY_MAX, True)
    assert peak < 16 << 20


# -- 9b. a deeply nested error body -----------------------------------------------------


class FailsOnce:
    """A generate handler that answers ``failure()`` to the first request, then ``answer``."""

    def __init__(self, failure: Callable[[], web.Response], answer: str) -> None:
        self.failure, self.answer, self.seen = failure, answer, 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen += 1
        await request.read()
        if self.seen == 1:
            return self.failure()
        return web.Response(text=self.answer, content_type="text/plain")


async def test_deeply_nested_error_body_is_a_status_error_and_is_retried() -> None:
    nested = FailsOnce(lambda: web.Response(status=500, text="[" * 200_000), "recovered")
    async with serve_routes({"/api/generate": nested.handle}) as url:
        async with ChatGPROChat(base_url=url, max_retries=1, **FAST) as llm:
            assert (await llm.ainvoke("hi")).content == "recovered"
        assert nested.seen == 2  # the 500 was retried
        nested.seen = 0
        async with ChatGPROChat(base_url=url, max_retries=0) as llm:
            with pytest.raises(ServerError) as caught:
                await llm.ainvoke("hi")
    assert caught.value.server_message == "[" * ERROR_BODY_MAX
    assert caught.value.body_truncated is True


# -- 10. malformed Retry-After ----------------------------------------------------------


@pytest.mark.parametrize("value", ["soon", " ", "", "inf", "nan", "Thu, 99 Foo 2025"])
async def test_malformed_retry_after_falls_back_to_the_backoff(value: str) -> None:
    busy = FailsOnce(
        lambda: web.Response(status=503, text="busy", headers={"Retry-After": value}), "done"
    )
    async with hostile({"/api/generate": busy.handle}, max_retries=1, **FAST) as (_url, llm):
        assert (await llm.ainvoke("hi")).content == "done"
    assert busy.seen == 2


# -- 3. timeouts follow whichever task awaits -------------------------------------------


def _stalling(first: bytes) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        await response.write(first)
        await asyncio.sleep(3600)  # cancelled when the client goes away
        return response

    return handler


STALL_OPTIONS: dict[str, Any] = {"chunk_timeout": 0.3, "timeout": 3, "max_retries": 0}


def _chunk_stall_reason(url: str) -> str:
    return (
        f"between chunks timeout of 0.3s exceeded for {url}/api/generate: the server "
        "stopped sending in the middle of the answer; raise `chunk_timeout`"
    )


async def _outcome(coro: Awaitable[Any]) -> BaseException | None:
    """What ``coro`` raised; fails the test if it is still running after the hang guard.

    The guard never cancels the call into an answer: a cancellation that came out as a
    typed error would hide the hang.
    """
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=HANG_GUARD)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        pytest.fail(f"no timeout fired within {HANG_GUARD}s: the call hung")
    return task.exception()


async def _collect(stream: AsyncIterator[AIMessageChunk], into: list[str]) -> None:
    async for chunk in stream:
        into.append(str(chunk.content))


async def _next(stream: AsyncIterator[AIMessageChunk]) -> AIMessageChunk:
    return await stream.__anext__()


async def test_chunk_timeout_fires_when_every_chunk_is_pulled_from_a_new_task() -> None:
    async with hostile({"/api/generate": _stalling(b"Hello ")}, **STALL_OPTIONS) as (url, llm):
        stream = llm.astream("hi")
        texts: list[str] = []

        async def pull() -> None:
            while True:
                chunk = await asyncio.create_task(_next(stream))
                texts.append(str(chunk.content))

        error = await _outcome(pull())
    assert isinstance(error, StreamInterruptedError)
    assert (error.partial_text, error.reason) == ("Hello ", _chunk_stall_reason(url))
    assert texts == ["Hello "]


async def test_chunk_timeout_fires_in_an_lcel_chain_stream() -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    async with hostile({"/api/generate": _stalling(b"Hello ")}, **STALL_OPTIONS) as (url, llm):
        chain = prompt | llm | StrOutputParser()
        texts: list[str] = []

        async def consume() -> None:
            async for text in chain.astream({"question": "hi"}):
                texts.append(text)

        error = await _outcome(consume())
    assert isinstance(error, StreamInterruptedError)
    assert error.reason == _chunk_stall_reason(url)
    assert "".join(texts) == "Hello "


async def test_chunk_timeout_fires_in_a_chains_astream_events() -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    async with hostile({"/api/generate": _stalling(b"Hello ")}, **STALL_OPTIONS) as (url, llm):
        chain = prompt | llm | StrOutputParser()
        streamed: list[str] = []

        async def consume() -> None:
            async for event in chain.astream_events({"question": "hi"}, version="v2"):
                if event["event"] == "on_chat_model_stream":
                    streamed.append(str(event["data"]["chunk"].content))

        error = await _outcome(consume())
    assert isinstance(error, StreamInterruptedError)
    assert error.reason == _chunk_stall_reason(url)
    assert streamed == ["Hello "]


async def test_first_byte_timeout_fires_when_pulled_from_a_new_task() -> None:
    async def silent(request: web.Request) -> web.StreamResponse:
        await request.read()
        await asyncio.sleep(3600)
        return web.Response(text="never")

    options: dict[str, Any] = {"first_byte_timeout": 0.3, "max_retries": 0}
    async with hostile({"/api/generate": silent}, **options) as (_url, llm):
        error = await _outcome(asyncio.create_task(_next(llm.astream("hi"))))
    assert isinstance(error, APITimeoutError)
    assert (error.kind, error.timeout) == ("first_byte", 0.3)


@pytest.mark.parametrize("new_task_per_chunk", [False, True])
async def test_cancel_while_a_timer_is_armed_stays_a_cancellation(
    new_task_per_chunk: bool,
) -> None:
    options: dict[str, Any] = {"chunk_timeout": 10, "max_retries": 0}
    async with hostile({"/api/generate": _stalling(b"Hello ")}, **options) as (_url, llm):
        stream = llm.astream("hi")
        assert (await asyncio.create_task(_next(stream))).content == "Hello "
        waiting: asyncio.Task[Any]
        if new_task_per_chunk:
            waiting = asyncio.create_task(_next(stream))  # its chunk timer is armed
        else:
            waiting = asyncio.create_task(_collect(stream, []))
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await stream.aclose()


# -- 6. copies and assignments follow their own settings ---------------------------------


def test_model_copy_update_and_assignment_follow_the_new_settings() -> None:
    with GPROChatServer() as a, GPROChatServer() as b:
        original = ChatGPROChat(base_url=a.url)
        assert original.invoke("to A").content == expected_echo("to A")
        copy = original.model_copy(update={"base_url": b.url})
        assert copy.invoke("to B").content == expected_echo("to B")
        assert (a.stats.requests, b.stats.requests) == (1, 1)
        original.base_url = b.url
        assert original.invoke("now B").content == expected_echo("now B")
        assert (a.stats.requests, b.stats.requests) == (1, 2)
        copy.close()  # closes the copy's own client only
        assert original.invoke("still B").content == expected_echo("still B")
        assert (a.stats.requests, b.stats.requests) == (1, 3)
        original.close()


def test_closing_a_shallow_copy_never_closes_the_original() -> None:
    with GPROChatServer() as srv:
        original = ChatGPROChat(base_url=srv.url)
        original.invoke("warm")
        client = original.client
        copy = original.model_copy()
        copy.close()
        assert original.client is client
        assert client.sync_loop.started
        assert original.invoke("after").content == expected_echo("after")
        original.close()


# -- 5. fork ----------------------------------------------------------------------------


def _child(llm: ChatGPROChat, n: int, conn: Any) -> None:
    try:
        answers = [str(llm.invoke(f"child{n}-{i}").content) for i in range(3)]
        client = llm.client
        conn.send((answers, client.pid == os.getpid(), client.inherited is not None))
    except BaseException as exc:  # reported to the parent, which fails the test
        conn.send(repr(exc))
    finally:
        conn.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork exists on POSIX only")
def test_forked_children_never_use_the_parents_connections() -> None:
    ctx = multiprocessing.get_context("fork")
    with GPROChatServer() as srv, ChatGPROChat(base_url=srv.url, max_retries=0) as llm:
        assert llm.invoke("warm-up").content == expected_echo("warm-up")
        parent_client = llm.client
        workers = []
        for n in range(3):
            receiver, sender = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_child, args=(llm, n, sender))
            process.start()
            sender.close()
            workers.append((process, receiver))
        parent_answers: list[str] = []

        def parent_calls() -> None:
            parent_answers.extend(str(llm.invoke(f"parent-{i}").content) for i in range(3))

        thread = threading.Thread(target=parent_calls)
        thread.start()
        results = []
        for process, receiver in workers:
            assert receiver.poll(HANG_GUARD)
            results.append(receiver.recv())
            process.join(HANG_GUARD)
            assert process.exitcode == 0
        thread.join(HANG_GUARD)
        assert llm.client is parent_client  # the parent's pool was not replaced
        assert llm.invoke("after").content == expected_echo("after")
    assert parent_answers == [expected_echo(f"parent-{i}") for i in range(3)]
    for n, result in enumerate(results):
        assert result == ([expected_echo(f"child{n}-{i}") for i in range(3)], True, True)


# -- 7. credentials in URLs -------------------------------------------------------------


async def test_credentials_in_base_url_never_reach_errors_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def unavailable(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=503, text="down")

    async with serve_routes({"/api/generate": unavailable}) as url:
        secret_url = url.replace("http://", "http://user:URL-SECRET-9@")
        shown = url.replace("http://", "http://***@")
        async with ChatGPROChat(base_url=secret_url, max_retries=1, **FAST) as llm:
            with caplog.at_level(logging.DEBUG), pytest.raises(ServerError) as caught:
                await llm.ainvoke([HumanMessage("hi")])
            assert "URL-SECRET-9" not in repr(llm)
            assert f"base_url='{shown}'" in repr(llm)
    error = caught.value
    assert (error.status_code, error.server_message, error.url) == (
        503,
        "down",
        f"{shown}/api/generate",
    )
    assert str(error) == str(status_error(503, "down", url=error.url))
    assert caplog.records
    assert all("URL-SECRET-9" not in record.getMessage() for record in caplog.records)


# -- the total timeout holds while bytes keep arriving ----------------------------------


async def test_total_timeout_fires_while_the_answer_keeps_streaming() -> None:
    # Reads of buffered bytes arm no timer; the whole-call deadline must still hold.
    async def endless(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        try:
            while True:
                await response.write(b"x" * 65536)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async with hostile({"/api/generate": endless}, timeout=0.5, max_retries=0) as (url, llm):
        received: list[str] = []
        error = await _outcome(_collect(llm.astream("hi"), received))
    assert isinstance(error, StreamInterruptedError)
    assert error.reason == (
        f"total timeout of 0.5s exceeded for {url}/api/generate: the whole request took "
        "longer than allowed; raise `timeout`"
    )
    assert "".join(received) == error.partial_text
    assert set(error.partial_text) == {"x"}
