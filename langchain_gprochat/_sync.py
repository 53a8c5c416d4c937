"""Run the async transport from sync code: a private event loop in a daemon thread.

aiohttp is async-only; rather than keeping a second HTTP stack, sync calls submit
coroutines to one background loop that owns its own session. A sync stream pulls
batches of items from an async generator running on that loop, so the caller receives
each chunk as soon as it arrives (one cross-thread hop per batch, not per byte), and
closing the sync generator cancels the async one, which closes the HTTP response.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["LoopThread"]

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


class LoopThread:
    """A private event loop running in a daemon thread, started on first use."""

    def __init__(self, name: str = "gprochat-sync-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop, starting its thread if needed."""
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=_serve, args=(loop, ready), name=self._name, daemon=True
                )
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    @property
    def started(self) -> bool:
        """Whether the thread is running."""
        return self._loop is not None and not self._loop.is_closed()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result.

        If the calling thread is interrupted (KeyboardInterrupt), the coroutine is
        cancelled on the loop before the interruption propagates.
        """
        return _run_on(self.loop, coro)

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Iterate an async generator from sync code, yielding items as they arrive.

        Closing the iterator (breaking out of a ``for`` loop) cancels the generator on
        the loop; if the loop was stopped meanwhile, its shutdown already did.
        """
        loop = self.loop
        pump = _Pump(agen)
        done = False
        try:
            while not done:
                items, done, error = _run_on(loop, pump.take())
                yield from items
                if done and error is not None:
                    raise error
        finally:
            if not done and not loop.is_closed():
                _run_on(loop, pump.cancel())

    def stop(self, final: Coroutine[Any, Any, None] | None = None) -> None:
        """Run ``final`` (for example closing sessions), then stop and join the thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None or loop.is_closed():
            if final is not None:
                final.close()
            return
        if final is not None and thread.is_alive():
            asyncio.run_coroutine_threadsafe(final, loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()


def _run_on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result()
    except BaseException:
        if not future.done():
            future.cancel()
        raise


def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
