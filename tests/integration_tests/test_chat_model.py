"""ChatGPROChat against the local server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_gprochat import AuthenticationError, ChatGPROChat
from langchain_gprochat.protocol import Turn, turn_text
from langchain_gprochat.server import GPROChatServer, ScriptedBackend

from ._support import GateBackend, expected_echo, serve_generate, wait_until

QUESTION = "Привет, мир 🌍 — how are you?"


@pytest.fixture
def llm(echo_server: GPROChatServer) -> Iterator[ChatGPROChat]:
    with ChatGPROChat(base_url=echo_server.url, retry_base_delay=0.01) as model:
        yield model


def test_invoke(llm: ChatGPROChat) -> None:
    message = llm.invoke(QUESTION)
    assert isinstance(message, AIMessage)
    assert message.content == expected_echo(QUESTION)
    assert message.response_metadata == {
        "model_name": "gemini-1.5-pro",
        "model_provider": "gprochat",
        "finish_reason": "stop",
    }
    assert message.id is not None
    assert message.id.startswith("lc_run-")


def test_stream_yields_several_chunks(llm: ChatGPROChat) -> None:
    chunks = list(llm.stream(QUESTION))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert "".join(str(c.content) for c in chunks) == expected_echo(QUESTION)
    assert chunks[-1].response_metadata["finish_reason"] == "stop"
    assert chunks[-1].chunk_position == "last"
    assert len({c.id for c in chunks}) == 1


async def test_ainvoke_and_astream(llm: ChatGPROChat) -> None:
    message = await llm.ainvoke(QUESTION)
    assert message.content == expected_echo(QUESTION)
    chunks = [c async for c in llm.astream(QUESTION)]
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.content == expected_echo(QUESTION)
    assert merged.response_metadata["finish_reason"] == "stop"


async def test_sync_async_parity(llm: ChatGPROChat) -> None:
    conversation = [
        SystemMessage("Be brief."),
        HumanMessage("first"),
        AIMessage("reply"),
        HumanMessage("second ✓"),
    ]
    sync_text = llm.invoke(conversation).content
    async_text = (await llm.ainvoke(conversation)).content
    sync_stream = "".join(str(c.content) for c in llm.stream(conversation))
    async_stream = "".join([str(c.content) async for c in llm.astream(conversation)])
    expected = expected_echo(conversation)
    assert [sync_text, async_text, sync_stream, async_stream] == [expected] * 4


def test_batch_and_abatch(llm: ChatGPROChat) -> None:
    questions = [f"question {i} ✓" for i in range(5)]
    answers = llm.batch(questions)
    assert [a.content for a in answers] == [expected_echo(q) for q in questions]
    async_answers = asyncio.run(llm.abatch(questions))
    assert [a.content for a in async_answers] == [expected_echo(q) for q in questions]


def test_lcel_chain(llm: ChatGPROChat) -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You translate to {language}."), ("human", "{text}")]
    )
    chain = prompt | llm | StrOutputParser()
    result = chain.invoke({"language": "French", "text": "I love programming"})
    assert result == expected_echo(
        [SystemMessage("You translate to French."), HumanMessage("I love programming")]
    )
    streamed = "".join(chain.stream({"language": "French", "text": "I love programming"}))
    assert streamed == result


class _Tokens(BaseCallbackHandler):
    def __init__(self, gate: GateBackend) -> None:
        self.tokens: list[str] = []
        self.gate = gate

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)
        self.gate.release.set()


def test_streaming_callbacks_see_every_token() -> None:
    backend = GateBackend()
    handler = _Tokens(backend)
    with (
        GPROChatServer(backend=backend) as srv,
        ChatGPROChat(base_url=srv.url, streaming=True, callbacks=[handler]) as llm,
    ):
        message = llm.invoke(QUESTION)
    assert message.content == "first second"
    # LangChain itself reports the closing empty chunk too.
    assert handler.tokens == ["first ", "second", ""]


def test_stop_sequence_cuts_answer_and_closes_connection() -> None:
    backend = _EndlessBackend(first="alpha STOP beta")
    with GPROChatServer(backend=backend) as srv, ChatGPROChat(base_url=srv.url) as llm:
        chunks = list(llm.stream("go", stop=["STOP"]))
        assert "".join(str(c.content) for c in chunks) == "alpha "
        assert chunks[-1].response_metadata["finish_reason"] == "stop"
        wait_until(lambda: srv.stats.client_disconnects == 1, "the server to see the close")


def test_stop_sequence_in_invoke(llm: ChatGPROChat) -> None:
    assert llm.invoke("q", stop=["turn"]).content == "Echo · "


def test_stop_sequence_split_across_chunks(llm: ChatGPROChat) -> None:
    # Echo chunks hold at most 8 characters: "«split-" spans two of them.
    question = "abcdefgh split-marker tail"
    answer = llm.invoke(question, stop=["split-marker"]).content
    assert answer == "Echo · turn 1 · «abcdefgh "


def test_bound_stop_sequences(echo_server: GPROChatServer) -> None:
    with ChatGPROChat(base_url=echo_server.url, stop=["turn"]) as llm:
        assert llm.invoke("q").content == "Echo · "
        assert llm.invoke("q", stop=["·"]).content == "Echo "


def test_model_label_override(llm: ChatGPROChat) -> None:
    message = llm.invoke("q", model="gemini-2.0-flash")
    assert message.response_metadata["model_name"] == "gemini-2.0-flash"


def _recording_server(**settings: Any) -> tuple[GPROChatServer, ScriptedBackend]:
    backend = ScriptedBackend(["ok"] * 10)
    return GPROChatServer(backend=backend, **settings), backend


def test_native_history_reaches_server_as_turns() -> None:
    srv, backend = _recording_server()
    conversation = [
        SystemMessage("S"),
        HumanMessage("a"),
        HumanMessage("b"),
        AIMessage("c"),
        HumanMessage("d"),
    ]
    with srv, ChatGPROChat(base_url=srv.url) as llm:
        assert llm.invoke(conversation).content == "ok"
    assert [(t.role, turn_text(t)) for t in backend.received[0]] == [
        ("user", "[System instructions]\nS\n[End of system instructions]\n\na\n\nb"),
        ("model", "c"),
        ("user", "d"),
    ]


def test_prompt_history_mode_sends_one_flattened_turn() -> None:
    srv, backend = _recording_server()
    with srv, ChatGPROChat(base_url=srv.url, history_mode="prompt") as llm:
        llm.invoke([SystemMessage("S"), HumanMessage("a"), AIMessage("c"), HumanMessage("d")])
    assert backend.received[0] == [
        Turn.model_validate(
            {
                "role": "user",
                "parts": [{"text": "System: S\nUser: a\nAssistant: c\nUser: d\nAssistant:"}],
            }
        )
    ]


def test_max_history_messages() -> None:
    srv, backend = _recording_server()
    with srv, ChatGPROChat(base_url=srv.url, max_history_messages=1) as llm:
        llm.invoke([HumanMessage("a"), AIMessage("b"), HumanMessage("c")])
    assert [turn_text(t) for t in backend.received[0]] == ["c"]


def test_password_accepted() -> None:
    with (
        GPROChatServer(passwords=("one", "two")) as srv,
        ChatGPROChat(base_url=srv.url, password="two") as llm,
    ):
        assert llm.invoke("hi").content == expected_echo("hi")


def test_wrong_password_is_reported_as_such() -> None:
    with (
        GPROChatServer(passwords=("right",)) as srv,
        ChatGPROChat(base_url=srv.url, password="wrong-pw-value") as llm,
    ):
        with pytest.raises(AuthenticationError) as info:
            llm.invoke("hi")
        assert srv.stats.requests == 1  # 401 is never retried
    error = info.value
    assert (error.status_code, error.reason, error.server_message) == (
        401,
        "password",
        "Invalid password.",
    )
    assert "wrong-pw-value" not in str(error)
    assert "GPROCHAT_PASSWORD" in str(error)


def test_missing_password_is_reported() -> None:
    with (
        GPROChatServer(passwords=("right",)) as srv,
        ChatGPROChat(base_url=srv.url) as llm,
        pytest.raises(AuthenticationError, match="Invalid password") as info,
    ):
        llm.invoke("hi")
    assert info.value.reason == "password"


def test_wrong_secret_key_is_reported_as_signature() -> None:
    with (
        GPROChatServer(secret_key="server-key") as srv,
        ChatGPROChat(base_url=srv.url, secret_key="client-key") as llm,
        pytest.raises(AuthenticationError) as info,
    ):
        llm.invoke("hi")
    assert (info.value.reason, info.value.server_message) == ("signature", "Invalid signature.")
    assert "client-key" not in str(info.value)
    assert "server-key" not in str(info.value)


def test_deployment_without_secret_key() -> None:
    with GPROChatServer(secret_key="") as srv, ChatGPROChat(base_url=srv.url, secret_key="") as llm:
        assert llm.invoke("hi").content == expected_echo("hi")


async def test_multibyte_characters_split_at_every_byte_offset() -> None:
    answer = "aé€😀ж🌍z"
    data = answer.encode()

    async def handler(request: web.Request) -> web.StreamResponse:
        cut = int(request.headers["X-Cut"])
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        await response.write(data[:cut])
        await asyncio.sleep(0.01)
        await response.write(data[cut:])
        await response.write_eof()
        return response

    async with serve_generate(handler) as base_url:
        for cut in range(len(data) + 1):
            async with ChatGPROChat(base_url=base_url, default_headers={"X-Cut": str(cut)}) as llm:
                chunks = [str(c.content) async for c in llm.astream("x")]
                whole = (await llm.ainvoke("x")).content
            assert "".join(chunks) == answer, cut
            assert whole == answer, cut
            assert all("\ufffd" not in c for c in chunks)


class _EndlessBackend:
    """Streams ``first``, then a dot every 10 ms (at most 30 s) until the client leaves.

    A write to a socket the client has just closed can still succeed (it only fills the
    kernel buffer), so a server notices a disconnect at one of the following writes;
    writing on makes that certain without any timing assumption.
    """

    def __init__(self, first: str = "first ") -> None:
        self.first = first

    async def stream(self, turns: list[Turn]) -> AsyncIterator[str]:
        yield self.first
        for _ in range(3000):
            await asyncio.sleep(0.01)
            yield "."


def test_sync_stream_yields_before_the_answer_ends() -> None:
    backend = GateBackend()
    with GPROChatServer(backend=backend) as srv, ChatGPROChat(base_url=srv.url) as llm:
        stream = llm.stream("go")
        first = next(stream)
        assert first.content == "first "
        assert not backend.finished.is_set()
        backend.release.set()
        rest = "".join(str(c.content) for c in stream)
    assert rest == "second"


async def test_async_stream_yields_before_the_answer_ends() -> None:
    backend = GateBackend()
    async with GPROChatServer(backend=backend) as srv, ChatGPROChat(base_url=srv.url) as llm:
        stream = llm.astream("go")
        first = await stream.__anext__()
        assert first.content == "first "
        assert not backend.finished.is_set()
        backend.release.set()
        rest = "".join([str(c.content) async for c in stream])
    assert rest == "second"


def test_breaking_out_of_sync_stream_closes_the_response() -> None:
    backend = _EndlessBackend()
    with GPROChatServer(backend=backend) as srv, ChatGPROChat(base_url=srv.url) as llm:
        for chunk in llm.stream("go"):
            assert chunk.content == "first "
            break
        wait_until(lambda: srv.stats.client_disconnects == 1, "the server to see the disconnect")
        wait_until(lambda: srv.stats.active_streams == 0, "the stream to end on the server")
        # The pool still works: the next call gets a fresh answer on a good connection.
        again = llm.stream("again")
        assert next(again).content == "first "
        again.close()


def test_one_connection_serves_sequential_sync_calls(echo_server: GPROChatServer) -> None:
    with ChatGPROChat(base_url=echo_server.url) as llm:
        for i in range(5):
            llm.invoke(f"n{i}")
        session = next(iter(llm.client.transport.sessions))
        connector = session.connector
        assert connector is not None
        assert sum(len(v) for v in connector._conns.values()) == 1  # type: ignore[attr-defined]


async def test_one_session_per_loop(echo_server: GPROChatServer) -> None:
    async with ChatGPROChat(base_url=echo_server.url) as llm:
        await llm.ainvoke("a")
        first = await llm.client.transport.session()
        await asyncio.gather(*(llm.ainvoke(f"q{i}") for i in range(10)))
        assert await llm.client.transport.session() is first
        assert isinstance(first, aiohttp.ClientSession)


def test_cache_answers_repeated_calls_without_a_request() -> None:
    from langchain_core.caches import InMemoryCache

    srv, backend = _recording_server()
    with srv, ChatGPROChat(base_url=srv.url, cache=InMemoryCache()) as llm:
        first = llm.invoke("cached?")
        second = llm.invoke("cached?")
        assert srv.stats.requests == 1
    assert backend.remaining == 9
    assert first.content == second.content == "ok"


def test_rate_limiter_is_consulted_for_every_call(echo_server: GPROChatServer) -> None:
    from langchain_core.rate_limiters import InMemoryRateLimiter

    class CountingLimiter(InMemoryRateLimiter):
        calls = 0

        def acquire(self, *, blocking: bool = True) -> bool:
            CountingLimiter.calls += 1
            return super().acquire(blocking=blocking)

    limiter = CountingLimiter(requests_per_second=1000, check_every_n_seconds=0.001)
    with ChatGPROChat(base_url=echo_server.url, rate_limiter=limiter) as llm:
        answers = [llm.invoke(f"r{i}").content for i in range(3)]
    assert answers == [expected_echo(f"r{i}") for i in range(3)]
    assert CountingLimiter.calls == 3


def test_tracing_metadata(echo_server: GPROChatServer) -> None:
    from langchain_core.tracers.base import BaseTracer
    from langchain_core.tracers.schemas import Run

    class Collect(BaseTracer):
        def __init__(self) -> None:
            super().__init__()
            self.runs: list[Run] = []

        def _persist_run(self, run: Run) -> None:
            self.runs.append(run)

    tracer = Collect()
    with ChatGPROChat(
        base_url=echo_server.url, stop=["never"], password="tracing-password-value"
    ) as llm:
        llm.invoke("traced", config={"callbacks": [tracer]})
    (run,) = tracer.runs
    assert run.run_type == "llm"
    metadata = (run.extra or {})["metadata"]
    assert {
        k: metadata[k] for k in ("ls_provider", "ls_model_name", "ls_model_type", "ls_stop")
    } == {
        "ls_provider": "gprochat",
        "ls_model_name": "gemini-1.5-pro",
        "ls_model_type": "chat",
        "ls_stop": ["never"],
    }
    assert run.outputs is not None
    assert run.outputs["generations"][0][0]["text"] == expected_echo("traced")
    for secret in ("tracing-password-value", "2BC120D4-BB36-1B60-26DE-DB630472A3D8"):
        assert secret not in f"{run.serialized}{run.extra}{run.inputs}"


@pytest.mark.parametrize(
    ("how", "shares_resources"),
    [
        ("copy", True),
        ("model_copy", True),
        ("deepcopy", False),
        ("model_copy_deep", False),
        ("pickle", False),
    ],
)
def test_copies_and_pickles_keep_settings_and_work(
    echo_server: GPROChatServer, how: str, shares_resources: bool
) -> None:
    import copy
    import pickle

    makers = {
        "copy": copy.copy,
        "model_copy": lambda m: m.model_copy(),
        "deepcopy": copy.deepcopy,
        "model_copy_deep": lambda m: m.model_copy(deep=True),
        "pickle": lambda m: pickle.loads(pickle.dumps(m)),
    }
    with ChatGPROChat(base_url=echo_server.url, password="copied-pw", max_retries=4) as original:
        original.invoke("warm up")
        duplicate = makers[how](original)
        assert (duplicate._client is original._client) is shares_resources
        assert duplicate.password is not None
        assert duplicate.password.get_secret_value() == "copied-pw"
        assert duplicate.max_retries == 4
        assert duplicate.invoke("copy ✓").content == expected_echo("copy ✓")
        if not shares_resources:
            duplicate.close()


async def test_sync_calls_from_inside_a_running_loop(echo_server: GPROChatServer) -> None:
    # As in a notebook cell: this thread runs an event loop, so it cannot drive the
    # private one; a helper thread does, and the answers are the same.
    with ChatGPROChat(base_url=echo_server.url) as llm:
        assert llm.invoke("nb ✓").content == expected_echo("nb ✓")
        assert "".join(str(c.content) for c in llm.stream("nb")) == expected_echo("nb")
        assert [m.content for m in llm.batch(["a", "b"])] == [
            expected_echo("a"),
            expected_echo("b"),
        ]
