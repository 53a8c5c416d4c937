"""The sync bridge: a private loop thread iterating async generators."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from langchain_gprochat._sync import _HIGH_WATER, LoopThread


@pytest.fixture
def runner() -> Iterator[LoopThread]:
    loop_thread = LoopThread(name="test-loop")
    yield loop_thread
    loop_thread.stop()


def test_run_returns_the_result_from_the_loop_thread(runner: LoopThread) -> None:
    async def where() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert runner.run(where()) == "test-loop"
    assert runner.started


def test_iterate_yields_everything_in_order(runner: LoopThread) -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(1000):
            yield i
            if i % 100 == 0:
                await asyncio.sleep(0)

    assert list(runner.iterate(numbers())) == list(range(1000))


def test_iterate_raises_the_generator_error_after_its_items(runner: LoopThread) -> None:
    async def failing() -> AsyncIterator[str]:
        yield "a"
        raise KeyError("boom")

    seen: list[str] = []

    def consume() -> None:
        for item in runner.iterate(failing()):
            seen.append(item)

    with pytest.raises(KeyError, match="boom"):
        consume()
    assert seen == ["a"]


def test_a_fast_producer_pauses_for_a_slow_consumer(runner: LoopThread) -> None:
    produced = 0
    item = "x" * 1024
    total = 4 * _HIGH_WATER // len(item)

    async def fast() -> AsyncIterator[str]:
        nonlocal produced
        for _ in range(total):
            produced += 1
            yield item
            await asyncio.sleep(0)

    stream = runner.iterate(fast())
    assert next(stream) == item
    # Give the producer every chance to run ahead, then check it stopped at the mark.
    for _ in range(50):
        runner.run(asyncio.sleep(0.001))
    ahead = produced
    assert ahead <= _HIGH_WATER // len(item) + 2
    assert sum(1 for _ in stream) == total - 1


def test_closing_the_sync_iterator_closes_the_async_generator(runner: LoopThread) -> None:
    closed = threading.Event()
    gate = asyncio.Event()

    async def endless() -> AsyncIterator[str]:
        try:
            yield "first"
            await gate.wait()  # never set: only cancellation ends this
            yield "never"
        finally:
            closed.set()

    stream = runner.iterate(endless())
    assert next(stream) == "first"
    stream.close()  # what breaking out of a for loop does
    assert closed.is_set()


def test_stop_closes_the_loop_and_a_new_call_restarts_it(runner: LoopThread) -> None:
    async def answer() -> int:
        return 42

    assert runner.run(answer()) == 42
    first_loop = runner.loop
    runner.stop()
    assert first_loop.is_closed()
    assert not runner.started
    assert runner.run(answer()) == 42
    assert runner.loop is not first_loop
