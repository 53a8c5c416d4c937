"""ChatGPROChat as a drop-in: langchain-core's error classes, retries users expect.

Every status and fault of the fault matrix raises an exception that is also the matching
``langchain_core.exceptions`` class, with ``is_retryable`` as this package retries it;
LangChain's agent middleware and ``with_fallbacks`` act on them; a non-streaming call cut
mid-answer is retried whole.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from langchain.agents import create_agent
from langchain.agents.middleware import ModelRetryMiddleware
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)
from langchain_core.messages import HumanMessage

from langchain_gprochat import ChatGPROChat, GPROChatError, StreamInterruptedError
from langchain_gprochat.server import FAULT_HEADER, GPROChatServer

from ._support import expected_echo, serve_generate

FAST: dict[str, Any] = {"retry_base_delay": 0.01, "retry_max_delay": 0.02}


@pytest.fixture(scope="module")
def srv() -> Iterator[GPROChatServer]:
    with GPROChatServer(enable_faults=True, passwords=("right",)) as server:
        yield server


def _llm(srv: GPROChatServer, fault: str | None = None, **options: Any) -> ChatGPROChat:
    headers = {FAULT_HEADER: fault} if fault else None
    defaults: dict[str, Any] = {"password": "right", "max_retries": 0, **FAST}
    return ChatGPROChat(base_url=srv.url, default_headers=headers, **{**defaults, **options})


def _raised(llm: ChatGPROChat, question: str = "hi") -> GPROChatError:
    with llm, pytest.raises(GPROChatError) as caught:
        llm.invoke(question)
    return caught.value


OVERFLOW = "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576)."


@pytest.mark.parametrize(
    ("fault", "options", "core_class", "retryable"),
    [
        ("status=400", {}, ModelInvalidRequestError, False),
        (None, {"password": "wrong"}, ModelAuthenticationError, False),
        (None, {"secret_key": "not-the-key"}, ModelAuthenticationError, False),
        ("status=403", {}, ModelPermissionDeniedError, False),
        ("status=404", {}, ModelNotFoundError, False),
        ("status=413", {}, ModelInvalidRequestError, False),
        ("status=429; retry_after=0", {}, ModelRateLimitError, True),
        ("status=500", {}, ModelAPIError, True),
        ("status=501", {}, ModelAPIError, False),
        ("status=503", {}, ModelAPIError, True),
        ("status=408", {}, ModelError, True),
        (f"status=500; body={OVERFLOW}", {}, ContextOverflowError, False),
        ("delay_first_byte=2", {"first_byte_timeout": 0.1}, ModelTimeoutError, True),
        ("delay_between_chunks=2", {"chunk_timeout": 0.1}, ModelAPIError, True),
        ("close_after_bytes=12", {}, ModelAPIError, True),
        ("close_after_bytes=0", {}, ModelAPIError, True),
        ("mid_stream_error=1", {}, ModelAPIError, True),
    ],
)
def test_every_fault_is_a_langchain_core_model_error(
    srv: GPROChatServer,
    fault: str | None,
    options: dict[str, Any],
    core_class: type[ModelError],
    retryable: bool,
) -> None:
    error = _raised(_llm(srv, fault, **options))
    assert isinstance(error, core_class)
    assert isinstance(error, ModelError)
    assert error.is_retryable is retryable


def test_connection_refused_and_timeouts_are_model_errors() -> None:
    refused = _raised(ChatGPROChat(base_url="http://127.0.0.1:9", max_retries=0))
    assert isinstance(refused, ModelConnectionError)
    assert refused.is_retryable is True


async def test_total_timeout_is_a_model_timeout_error_that_is_not_retried() -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await request.read()
        await asyncio.sleep(1)
        return web.Response(text="late")

    async with serve_generate(slow) as url:
        llm = ChatGPROChat(base_url=url, timeout=0.2, first_byte_timeout=None, max_retries=0)
        async with llm:
            with pytest.raises(GPROChatError) as caught:
                await llm.ainvoke("hi")
    assert isinstance(caught.value, ModelTimeoutError)
    assert caught.value.is_retryable is False


# -- retried whole when nothing reached the caller --------------------------------------


@pytest.mark.parametrize("fault", ["close_after_bytes=12; times=1", "mid_stream_error=1; times=1"])
def test_invoke_cut_mid_answer_returns_the_whole_answer_from_the_retry(
    srv: GPROChatServer, fault: str
) -> None:
    before = srv.stats.requests
    with _llm(srv, fault, max_retries=1) as llm:
        answer = llm.invoke("cut ✓")
    assert answer.content == expected_echo("cut ✓")  # exactly once, never joined
    assert srv.stats.requests - before == 2


async def test_ainvoke_cut_mid_answer_is_retried_whole(srv: GPROChatServer) -> None:
    async with _llm(srv, "close_after_bytes=12; times=1", max_retries=1) as llm:
        answer = await llm.ainvoke([HumanMessage("async cut")])
    assert answer.content == expected_echo("async cut")


def test_stream_cut_mid_answer_raises_with_the_partial_text(srv: GPROChatServer) -> None:
    parts: list[str] = []
    llm = _llm(srv, "close_after_bytes=12", max_retries=3)
    with llm, pytest.raises(StreamInterruptedError) as caught:
        parts.extend(str(chunk.content) for chunk in llm.stream("cut"))
    assert caught.value.partial_text == "Echo · turn"
    assert "".join(parts) == "Echo · turn"


def test_streaming_invoke_is_not_retried_once_tokens_reached_callbacks(
    srv: GPROChatServer,
) -> None:
    before = srv.stats.requests
    llm = _llm(srv, "close_after_bytes=12", max_retries=3, streaming=True)
    with llm, pytest.raises(StreamInterruptedError) as caught:
        llm.invoke("cut")
    assert caught.value.partial_text == "Echo · turn"
    assert srv.stats.requests - before == 1


# -- LangChain acts on the classes ------------------------------------------------------


def test_agent_with_model_retry_middleware_recovers_from_two_503s(srv: GPROChatServer) -> None:
    # Each request carries its own header value, so "times=2" counts this test only.
    tag = next(_TAGS)
    llm = _llm(srv, f"status=503; times=2; body=busy-{tag}")
    agent = create_agent(
        llm,
        tools=[],
        middleware=[ModelRetryMiddleware(max_retries=2, initial_delay=0.01, jitter=False)],
    )
    before = srv.stats.requests
    with llm:
        result = agent.invoke({"messages": [HumanMessage("retry me")]})
    assert result["messages"][-1].content == expected_echo("retry me")
    assert srv.stats.requests - before == 3


def test_with_fallbacks_on_model_error_switches_model_on_401(srv: GPROChatServer) -> None:
    failing = _llm(srv, password="wrong")
    working = _llm(srv)
    chain = failing.with_fallbacks([working], exceptions_to_handle=(ModelError,))
    with failing, working:
        assert chain.invoke("fall back").content == expected_echo("fall back")


_TAGS = itertools.count()
