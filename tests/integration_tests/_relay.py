"""A TCP relay on 127.0.0.1 that hands the server's bytes to the client one at a time.

Put in front of ``gprochat-server``, it splits the answer inside every multi-byte UTF-8
character, as a network may: each byte is written on its own and drained, with a pause
after it, so that the client reads the bytes of one character in separate reads. The
requests pass through unchanged. It runs on a thread of its own, so that sync code
(``asyncio.run`` in a snippet) can use it.
"""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import urlsplit

PAUSE = 0.001
"""Seconds after each byte the relay writes to the client."""


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, bytewise: bool, count: list[int]
) -> None:
    try:
        while data := await reader.read(65536):
            pieces = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                count[0] += 1
                if bytewise:
                    await asyncio.sleep(PAUSE)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


class ByteRelay:
    """Relays connections to ``target`` (a base URL); ``url`` is the relay's base URL.

    With ``split=False`` it passes the answers through as they come, and only counts.

    Attributes:
        connections: connections accepted so far.
        writes_to_client: how many writes the relay made to clients (one per byte).
    """

    def __init__(self, target: str, *, split: bool = True) -> None:
        self.split = split
        self.connections = 0
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._count = [0]
        self.url = ""

    @property
    def writes_to_client(self) -> int:
        return self._count[0]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        ignored = [0]
        await asyncio.gather(
            _pipe(reader, up_writer, False, ignored),
            _pipe(up_reader, writer, self.split, self._count),
        )

    def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = self._loop.create_task(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._track, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> ByteRelay:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
