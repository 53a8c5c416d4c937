"""Run the async transport from sync code on one private event loop.

aiohttp is async-only; rather than keeping a second HTTP stack, every sync call runs its
coroutine on one private event loop that owns its own session (so one connection pool
serves all sync calls). The loop has no thread of its own: the calling thread drives it
(``run_until_complete``) for as long as its own call needs, which costs no hand-off
between threads. When several threads make sync calls at once, one of them drives the
loop and the others wait; whoever's call is still pending takes over when the driver's
own call is done. A thread that already runs an event loop (a notebook cell, sync code
called from a coroutine) cannot drive a second one, so its call is driven from a helper
thread instead.

A sync stream pulls batches of items from an async generator running on that loop, so
the caller receives each chunk as soon as it arrives, and closing the sync generator
cancels the async one, which closes the HTTP response.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["PrivateLoop"]

T = TypeVar("T")

_HIGH_WATER = 1 << 20
"""Characters (items, for non-text items) buffered ahead of a slow sync consumer before
the producer pauses."""


class _Pump(Generic[T]):
    """Moves items from an async generator into batches the sync side takes."""

    def __init__(self, agen: AsyncIterator[T]) -> None:
        self._agen = agen
        self._buffer: list[T] = []
        self._buffered = 0
        self._ready = asyncio.Event()
        self._drained = asyncio.Event()
        self._done = False
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        try:
            async for item in self._agen:
                self._buffer.append(item)
                self._buffered += len(item) if isinstance(item, str) else 1
                self._ready.set()
                if self._buffered >= _HIGH_WATER:
                    self._drained.clear()
                    await self._drained.wait()
        except BaseException as exc:  # handed over to the sync side
            self._error = exc
        finally:
            self._done = True
            self._ready.set()

    async def take(self) -> tuple[list[T], bool, BaseException | None]:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        await self._ready.wait()
        items, self._buffer, self._buffered = self._buffer, [], 0
        if not self._done:
            self._ready.clear()
        self._drained.set()
        return items, self._done, self._error

    async def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        aclose = getattr(self._agen, "aclose", None)
        if aclose is not None:
            await aclose()


class PrivateLoop:
    """A private event loop, created on first use and driven by the threads that use it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turn = threading.Condition()
        self._driving = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop, created if needed."""
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
            return self._loop

    @property
    def started(self) -> bool:
        """Whether the loop exists and is not closed."""
        return self._loop is not None and not self._loop.is_closed()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result.

        If the calling thread is interrupted (KeyboardInterrupt), the coroutine is
        cancelled before the interruption propagates.
        """
        return self._run_on(self.loop, coro)

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Iterate an async generator from sync code, yielding items as they arrive.

        Closing the iterator (breaking out of a ``for`` loop) cancels the generator on
        the loop; if the loop was closed meanwhile, its shutdown already did.
        """
        loop = self.loop
        pump = _Pump(agen)
        done = False
        try:
            while not done:
                items, done, error = self._run_on(loop, pump.take())
                yield from items
                if done and error is not None:
                    raise error
        finally:
            if not done and not loop.is_closed():
                self._run_on(loop, pump.cancel())

    def stop(self) -> None:
        """Cancel what still runs on the loop (closing its sessions), then close it."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return
        if _thread_runs_a_loop():
            with concurrent.futures.ThreadPoolExecutor(1, "gprochat-sync") as helper:
                helper.submit(self._close, loop).result()
        else:
            self._close(loop)

    def _close(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._turn:
            while self._driving:
                self._turn.wait()
            self._driving = True
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            loop.run_until_complete(_cancel(pending))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            with self._turn:
                self._driving = False
                self._turn.notify_all()

    def _run_on(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
        if _thread_runs_a_loop():
            with concurrent.futures.ThreadPoolExecutor(1, "gprochat-sync") as helper:
                return helper.submit(self._run_on, loop, coro).result()
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        future.add_done_callback(self._wake)
        try:
            self._drive(loop, future)
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()
            raise

    def _drive(self, loop: asyncio.AbstractEventLoop, future: concurrent.futures.Future[T]) -> None:
        """Drive ``loop`` until ``future`` is done, or wait while another thread does."""
        while True:
            with self._turn:
                while self._driving and not future.done():
                    self._turn.wait()
                if future.done():
                    return
                self._driving = True
            try:
                loop.run_until_complete(_settled(future))
            finally:
                with self._turn:
                    self._driving = False
                    self._turn.notify_all()

    def _wake(self, _future: concurrent.futures.Future[Any]) -> None:
        with self._turn:
            self._turn.notify_all()


async def _settled(future: concurrent.futures.Future[Any]) -> None:
    """Wait for ``future`` without raising what it raises (its caller reads that)."""
    wrapped = asyncio.wrap_future(future)
    await asyncio.wait([wrapped])
    if not wrapped.cancelled():
        wrapped.exception()  # retrieved here: the caller re-raises it from ``future``


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` (the sessions' keepers close their sessions) and let them end."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _thread_runs_a_loop() -> bool:
    """Whether this thread is running an event loop (then it cannot drive another)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
