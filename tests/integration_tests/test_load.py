"""Load: 1,000 requests at concurrency 100 against the local server, zero errors.

The requests mix ``invoke``, ``stream``, ``ainvoke`` and ``astream`` (sync ones on worker
threads, all sharing one model), and every answer must be byte-identical to the echo
backend's. The figures are printed (run with ``-s`` to see them); nothing about time is
asserted.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from langchain_gprochat import ChatGPROChat
from langchain_gprochat.server import GPROChatServer

from ._support import expected_echo

REQUESTS = 1000
CONCURRENCY = 100
Kind = Literal["invoke", "stream", "ainvoke", "astream"]
KINDS: tuple[Kind, ...] = ("invoke", "stream", "ainvoke", "astream")


def question(i: int) -> str:
    """A distinct non-ASCII question per request, of varying length."""
    return f"Вопрос №{i} · 質問 {i * 7919 % 10007} · {'🌍' * (i % 5)} ünïcödé {'x' * (i % 97)}"


def _sync_answer(llm: ChatGPROChat, kind: Kind, text: str) -> str:
    if kind == "invoke":
        return str(llm.invoke(text).content)
    return "".join(str(chunk.content) for chunk in llm.stream(text))


async def _async_answer(llm: ChatGPROChat, kind: Kind, text: str) -> str:
    if kind == "ainvoke":
        return str((await llm.ainvoke(text)).content)
    return "".join([str(chunk.content) async for chunk in llm.astream(text)])


async def test_thousand_mixed_requests_at_concurrency_100() -> None:
    questions = [question(i) for i in range(REQUESTS)]
    assert len(set(questions)) == REQUESTS
    kinds = [KINDS[i % len(KINDS)] for i in range(REQUESTS)]
    limit = asyncio.Semaphore(CONCURRENCY)
    in_flight = peak_in_flight = 0
    loop = asyncio.get_running_loop()

    with GPROChatServer() as srv, ThreadPoolExecutor(CONCURRENCY) as pool:
        llm = ChatGPROChat(base_url=srv.url, max_connections=CONCURRENCY)
        try:

            async def one(i: int) -> str:
                nonlocal in_flight, peak_in_flight
                async with limit:
                    in_flight += 1
                    peak_in_flight = max(peak_in_flight, in_flight)
                    try:
                        if kinds[i] in ("invoke", "stream"):
                            return await loop.run_in_executor(
                                pool, _sync_answer, llm, kinds[i], questions[i]
                            )
                        return await _async_answer(llm, kinds[i], questions[i])
                    finally:
                        in_flight -= 1

            started = time.perf_counter()
            results = await asyncio.gather(
                *(one(i) for i in range(REQUESTS)), return_exceptions=True
            )
            elapsed = time.perf_counter() - started
        finally:
            await llm.aclose()
        stats = srv.stats

    errors = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert errors == []
    wrong = [i for i, r in enumerate(results) if r != expected_echo(questions[i])]
    assert wrong == []
    assert peak_in_flight == CONCURRENCY
    assert stats.requests == REQUESTS
    assert dict(stats.statuses) == {200: REQUESTS}
    assert (stats.client_disconnects, stats.active_streams) == (0, 0)
    assert stats.bytes_out == sum(len(expected_echo(q).encode()) for q in questions)
    print(
        f"\nload: {REQUESTS} requests, concurrency {CONCURRENCY}, "
        f"{elapsed:.2f}s, {REQUESTS / elapsed:.0f} req/s, {stats.bytes_out} bytes"
    )
