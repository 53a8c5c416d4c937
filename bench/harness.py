"""A tiny harness: time callables, interleave variants, report medians."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

Sample = dict[str, float]
"""What one trial of one variant measured, e.g. ``{"per_call": 0.0012}``."""

Trial = Callable[[], Sample]


class LoopRunner:
    """What the bench needs of ``asyncio.Runner`` (Python 3.11+), on Python 3.10 too."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    def __enter__(self) -> LoopRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pending = [task for task in asyncio.all_tasks(self._loop) if not task.done()]
        for task in pending:
            task.cancel()
        self.run(_settle(pending))
        self.run(self._loop.shutdown_asyncgens())
        self._loop.close()


async def _settle(tasks: list[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


def interleave(trials: Mapping[str, Trial], reps: int, warmup: int = 1) -> dict[str, Sample]:
    """Run every variant ``reps`` times, rotating their order each round; summarize.

    Every key is summarized by its median, except ``errors``, by its maximum.

    Rotating the order means no variant always runs first (cold caches) or last, and
    slow drifts of the machine hit all variants alike.
    """
    names = list(trials)
    for name in names:
        for _ in range(warmup):
            trials[name]()
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            samples[name].append(trials[name]())
    return {name: summarize(found) for name, found in samples.items()}


def summarize(samples: list[Sample]) -> Sample:
    """The median of every key over the samples (the maximum for ``errors``)."""
    return {
        key: (max if key == "errors" else statistics.median)(s[key] for s in samples)
        for key in samples[0]
    }


def per_call_sync(call: Callable[[], object], n: int) -> Trial:
    """A trial timing ``n`` sequential sync calls; reports seconds per call."""

    def trial() -> Sample:
        start = time.perf_counter()
        for _ in range(n):
            call()
        return {"per_call": (time.perf_counter() - start) / n}

    return trial


def per_call_async(runner: LoopRunner, call: Callable[[], Awaitable[object]], n: int) -> Trial:
    """A trial timing ``n`` sequential awaits of ``call()`` on the runner's loop."""

    async def batch() -> None:
        for _ in range(n):
            await call()

    def trial() -> Sample:
        start = time.perf_counter()
        runner.run(batch())
        return {"per_call": (time.perf_counter() - start) / n}

    return trial


def on_loop(runner: LoopRunner, measure: Callable[[], Awaitable[Sample]]) -> Trial:
    """A trial running the coroutine ``measure()`` on the runner's loop."""
    return lambda: runner.run(measure())


def _has_text(item: Any) -> bool:
    return bool(getattr(item, "content", item))


async def stream_sample(open_stream: Callable[[], AsyncIterator[Any]]) -> Sample:
    """Consume a stream: time to first non-empty item, total time, non-empty items."""
    start = time.perf_counter()
    first = 0.0
    count = 0
    async for item in open_stream():
        if _has_text(item):
            count += 1
            if count == 1:
                first = time.perf_counter()
    end = time.perf_counter()
    return {"ttfc": first - start, "total": end - start, "chunks": float(count)}


async def gather_sample(measure: Callable[[], Awaitable[object]], n: int) -> Sample:
    """Run ``n`` copies of ``measure()`` concurrently: wall time and errors."""
    start = time.perf_counter()
    results = await asyncio.gather(*(measure() for _ in range(n)), return_exceptions=True)
    wall = time.perf_counter() - start
    errors = sum(isinstance(r, BaseException) for r in results)
    return {"wall": wall, "errors": float(errors)}
