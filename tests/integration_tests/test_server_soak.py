"""Soak: 300 slow clients side by side with 200 legitimate ones, against ``gprochat-server``.

100 connections trickle their headers, 100 trickle their bodies (after sending 900 KiB
of them at once, 90 MB in all, past the 64 MiB budget of bodies in flight), and 100
sit idle after one request. While they are open, 200 signed requests (concurrency 50,
no retries) must each get exactly the echo backend's answer; then every slow
connection must have been closed by the server within its limit plus a generous
margin. The figures (time, the server's peak RSS) are printed; run with ``-s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_gprochat import ChatGPROChat

from ._support import expected_echo
from .test_load import question
from .test_server_limits import AUTH, _cli_env, read_response, trickle

LIMIT = 5.0
"""The header, body and keep-alive timeouts of the server under test, in seconds."""
MARGIN = 10.0
SLOW_EACH = 100
LEGIT = 200
CONCURRENCY = 50
PRESENT = 900 * 1024
"""Body bytes each body-trickler sends at once, before trickling the rest."""


def _status_kib(pid: int, field: str) -> int | None:
    path = Path(f"/proc/{pid}/status")
    if not path.exists():
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", path.read_text(), re.M)
    return int(match.group(1)) if match else None


def _open_sockets(pid: int) -> int | None:
    folder = Path(f"/proc/{pid}/fd")
    try:
        return sum(1 for fd in folder.iterdir() if "socket:" in str(fd.readlink()))
    except OSError:
        return None


@contextlib.contextmanager
def enough_files(needed: int) -> Iterator[None]:
    """Raise this process's soft open-file limit to ``needed`` if it is lower."""
    try:
        import resource
    except ImportError:  # not POSIX: nothing to raise
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"the soak needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Slow:
    """One slow client: it records when its slow phase began and how it was closed."""

    def __init__(self, port: int, kind: str, ready: asyncio.Event, count: list[int]) -> None:
        self.port, self.kind = port, kind
        self.ready, self.count = ready, count
        self.began = 0.0
        self.closed_after: float | None = None
        self.answer = b""

    def _in_slow_phase(self) -> None:
        self.began = time.monotonic()
        self.count[0] += 1
        if self.count[0] == 3 * SLOW_EACH:
            self.ready.set()

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        sender: asyncio.Task[None] | None = None
        try:
            if self.kind == "headers":
                self._in_slow_phase()  # the header timeout counts from the connection
                sender = asyncio.create_task(trickle(writer, b"POST /api/generate " * 100, 0.5))
            elif self.kind == "body":
                writer.write(b"POST /api/generate HTTP/1.1\r\nHost: x\r\n")
                writer.write(b"Content-Length: %d\r\n\r\n" % (1024 * 1024))
                writer.write(b" " * PRESENT)
                await writer.drain()
                self._in_slow_phase()
                sender = asyncio.create_task(trickle(writer, b" " * 1000, 0.5))
            else:
                writer.write(AUTH)
                assert (await read_response(reader))[0] == 200
                self._in_slow_phase()
            data = bytearray()
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                while chunk := await asyncio.wait_for(reader.read(65536), LIMIT + MARGIN):
                    data.extend(chunk)
            self.closed_after = time.monotonic() - self.began
            self.answer = bytes(data)
        finally:
            if sender is not None:
                sender.cancel()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _legit(url: str) -> tuple[list[str], float]:
    limit = asyncio.Semaphore(CONCURRENCY)
    llm = ChatGPROChat(base_url=url, max_connections=CONCURRENCY, max_retries=0)

    async def one(i: int) -> str:
        async with limit:
            return str((await llm.ainvoke(question(i))).content)

    started = time.perf_counter()
    try:
        answers = await asyncio.gather(*(one(i) for i in range(LEGIT)))
    finally:
        await llm.aclose()
    return answers, time.perf_counter() - started


async def _soak(process: subprocess.Popen[str], port: int) -> None:
    rss_before = _status_kib(process.pid, "VmRSS")
    ready, count = asyncio.Event(), [0]
    slow = [
        Slow(port, kind, ready, count)
        for kind in ("headers", "body", "idle")
        for _ in range(SLOW_EACH)
    ]
    tasks = [asyncio.create_task(client.run()) for client in slow]
    await asyncio.wait_for(ready.wait(), LIMIT + MARGIN)
    sockets_at_start = _open_sockets(process.pid)
    answers, elapsed = await _legit(f"http://127.0.0.1:{port}")
    open_at_end = sum(1 for client in slow if client.closed_after is None)
    await asyncio.gather(*tasks)
    peak_rss = _status_kib(process.pid, "VmHWM")

    wrong = [i for i, answer in enumerate(answers) if answer != expected_echo(question(i))]
    assert wrong == []
    for client in slow:
        assert client.closed_after is not None
        assert client.closed_after < LIMIT + MARGIN, (client.kind, client.closed_after)
        status = client.answer[:12]
        if client.kind == "headers":
            assert status == b"HTTP/1.1 408", client.answer[:200]
        elif client.kind == "body":
            assert status in (b"HTTP/1.1 408", b"HTTP/1.1 503"), client.answer[:200]
        else:
            assert client.answer == b""
    refused = sum(1 for client in slow if client.answer.startswith(b"HTTP/1.1 503"))
    latest = max(client.closed_after or 0.0 for client in slow)
    print(
        f"\nsoak: {3 * SLOW_EACH} slow connections ({sockets_at_start} server sockets open "
        f"when the legitimate requests began, {open_at_end} slow ones still open when "
        f"they ended); {LEGIT} requests at concurrency {CONCURRENCY} in {elapsed:.2f}s, "
        f"all exact; slow ones closed at most {latest:.2f}s into their slow phase "
        f"(limit {LIMIT}s), {refused} bodies refused 503 over the memory budget; "
        f"server RSS {rss_before} kB before, peak {peak_rss} kB"
    )


def test_slow_clients_beside_legitimate_ones() -> None:
    argv = [sys.executable, "-m", "langchain_gprochat.server", "--port", "0"]
    limits = ["--header-timeout", str(LIMIT), "--body-timeout", str(LIMIT)]
    limits += ["--keepalive-timeout", str(LIMIT), "--log-level", "warning"]
    with enough_files(3 * SLOW_EACH + 2 * CONCURRENCY + 200):
        process = subprocess.Popen(
            [*argv, *limits],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_cli_env(),
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.fullmatch(r"gprochat-server listening on http://127\.0\.0\.1:(\d+)\n", line)
            assert match, line
            asyncio.run(_soak(process, int(match.group(1))))
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert " ERROR " not in stderr, stderr
