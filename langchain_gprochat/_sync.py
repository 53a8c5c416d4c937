"""Run the async transport from sync code on one private event loop.

aiohttp is async-only; rather than keeping a second HTTP stack, every sync call runs its
coroutine on one private event loop that owns its own session (so one connection pool
serves all sync calls). The loop has no thread of its own: the calling thread drives it
(``run_until_complete``) for as long as its own call needs, which costs no hand-off
between threads. When several threads make sync calls at once, one of them drives the
loop and the others wait; whoever's call is still pending takes over when the driver's
own call is done. A thread that already runs an event loop (a notebook cell, sync code
called from a coroutine) cannot drive a second one, so its calls are driven from a
small pool of helper threads, started once per loop.

A sync stream advances its async generator one item per request of the caller, and
nothing runs ahead of it: while the caller holds a chunk, no read of the stream is
pending, so no timeout counts that time. Closing the sync generator closes the async
one, which closes the HTTP response.

The loop polls with ``selectors.PollSelector`` where it exists: its registrations live
in this process only, so a forked child can drop the loop it inherited without touching
the parent's (an epoll instance is shared across ``fork``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import selectors
import threading
from collections.abc import AsyncGenerator, Coroutine, Generator
from typing import Any, Generic, TypeVar

__all__ = ["PrivateLoop"]

T = TypeVar("T")

_HELPERS = 8
"""Helper threads at most, for calls from threads that run a loop of their own."""


class _Steps(Generic[T]):
    """Advances an async generator one item at a time, from whichever task asks."""

    def __init__(self, agen: AsyncGenerator[T, None]) -> None:
        self._agen = agen
        self._task: asyncio.Task[Any] | None = None

    async def next(self) -> tuple[bool, T | None]:
        """``(True, item)``, or ``(False, None)`` at the end."""
        self._task = asyncio.current_task()
        try:
            return True, await self._agen.__anext__()
        except StopAsyncIteration:
            return False, None
        finally:
            self._task = None

    async def close(self) -> None:
        """Close the generator, after a step that is still pending (interrupted) ends."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._agen.aclose()


def _new_loop() -> asyncio.AbstractEventLoop:
    if hasattr(selectors, "PollSelector"):
        return asyncio.SelectorEventLoop(selectors.PollSelector())
    return asyncio.new_event_loop()  # pragma: no cover - Windows


class PrivateLoop:
    """A private event loop, created on first use and driven by the threads that use it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turn = threading.Condition()
        self._driving = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._helpers: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop, created if needed."""
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                self._loop = _new_loop()
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

    def iterate(self, agen: AsyncGenerator[T, None]) -> Generator[T, None, None]:
        """Iterate an async generator from sync code, yielding items as they arrive.

        Each item is produced when the caller asks for it, never ahead. Closing the
        iterator (breaking out of a ``for`` loop) closes the generator on the loop; if
        the loop was closed meanwhile, its shutdown already did.
        """
        loop = self.loop
        steps = _Steps(agen)
        finished = False
        try:
            while True:
                more, item = self._run_on(loop, steps.next())
                if not more:
                    finished = True
                    return
                yield item  # type: ignore[misc]  # ``more`` means an item
        finally:
            if not finished and not loop.is_closed():
                self._run_on(loop, steps.close())

    def stop(self) -> None:
        """Cancel what still runs on the loop (closing its sessions), then close it."""
        with self._lock:
            loop, self._loop = self._loop, None
        helpers, self._helpers = self._helpers, None
        if loop is not None and not loop.is_closed():
            if _thread_runs_a_loop():
                with concurrent.futures.ThreadPoolExecutor(1, "gprochat-sync") as helper:
                    helper.submit(self._close, loop).result()
            else:
                self._close(loop)
        if helpers is not None:
            helpers.shutdown(wait=False)

    def abandon(self) -> None:
        """Drop the loop without closing what runs on it (a forked child's inheritance).

        A poll-based loop that is not running is closed: that touches this process's
        copies of its file descriptors only. Otherwise it is left alone.
        """
        loop, self._loop, self._helpers = self._loop, None, None
        self._lock = threading.Lock()
        self._turn = threading.Condition()
        self._driving = False
        selector = getattr(loop, "_selector", None)
        poll = isinstance(selector, selectors.PollSelector)
        if loop is not None and poll and not loop.is_running():
            loop.close()

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
            return self._helper_pool().submit(self._run_on, loop, coro).result()
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        future.add_done_callback(self._wake)
        try:
            self._drive(loop, future)
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()
            raise

    def _helper_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._helpers is None:
                self._helpers = concurrent.futures.ThreadPoolExecutor(_HELPERS, "gprochat-sync")
            return self._helpers

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
