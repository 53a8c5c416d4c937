"""The sync bridge: a private event loop driven by the threads that use it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from langchain_gprochat._sync import PrivateLoop


@pytest.fixture
def runner() -> Iterator[PrivateLoop]:
    private = PrivateLoop()
    yield private
    private.stop()


def test_the_calling_thread_drives_the_loop(runner: PrivateLoop) -> None:
    async def where() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert runner.run(where()) == threading.current_thread().name
    assert runner.started


def test_a_thread_that_runs_a_loop_is_served_by_a_helper(runner: PrivateLoop) -> None:
    async def where() -> tuple[str, asyncio.AbstractEventLoop]:
        return threading.current_thread().name, asyncio.get_running_loop()

    async def caller() -> tuple[str, asyncio.AbstractEventLoop]:
        return runner.run(where())  # sync code called from a coroutine

    name, loop = asyncio.run(caller())
    assert name.startswith("gprochat-sync")
    assert loop is runner.loop


def test_concurrent_callers_share_one_loop(runner: PrivateLoop) -> None:
    gate = threading.Barrier(8)
    loops: list[asyncio.AbstractEventLoop] = []

    async def slow(i: int) -> int:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0.01 * (i % 3))
        return i * i

    def call(i: int) -> int:
        gate.wait()
        return runner.run(slow(i))

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(call, range(8))) == [i * i for i in range(8)]
    assert {id(loop) for loop in loops} == {id(runner.loop)}


def test_iterate_yields_everything_in_order(runner: PrivateLoop) -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(1000):
            yield i
            if i % 100 == 0:
                await asyncio.sleep(0)

    assert list(runner.iterate(numbers())) == list(range(1000))


def test_iterate_raises_the_generator_error_after_its_items(runner: PrivateLoop) -> None:
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


def test_nothing_runs_ahead_of_a_sync_consumer(runner: PrivateLoop) -> None:
    # While the caller holds a chunk, the generator is not advanced: no read (and so no
    # timeout) is pending for a stream whose caller is busy.
    produced = 0
    total = 20

    async def fast() -> AsyncIterator[str]:
        nonlocal produced
        for n in range(total):
            produced += 1
            yield f"item {n}"
            await asyncio.sleep(0)

    stream = runner.iterate(fast())
    assert next(stream) == "item 0"
    # Give the producer every chance to run ahead, then check it did not.
    for _ in range(50):
        runner.run(asyncio.sleep(0.001))
    assert produced == 1
    assert list(stream) == [f"item {n}" for n in range(1, total)]
    assert produced == total


def test_sync_stream_steps_run_in_tasks_of_their_own(runner: PrivateLoop) -> None:
    tasks: list[asyncio.Task[object] | None] = []

    async def record() -> AsyncIterator[int]:
        for n in range(3):
            tasks.append(asyncio.current_task())
            yield n

    assert list(runner.iterate(record())) == [0, 1, 2]
    assert len({id(task) for task in tasks}) == 3
    assert None not in tasks


def test_closing_the_sync_iterator_closes_the_async_generator(runner: PrivateLoop) -> None:
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


def test_stop_closes_the_loop_and_a_new_call_restarts_it(runner: PrivateLoop) -> None:
    async def answer() -> int:
        return 42

    assert runner.run(answer()) == 42
    first_loop = runner.loop
    runner.stop()
    assert first_loop.is_closed()
    assert not runner.started
    assert runner.run(answer()) == 42
    assert runner.loop is not first_loop
