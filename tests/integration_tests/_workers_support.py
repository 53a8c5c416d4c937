"""Helpers of the tests of ``--workers`` and of gunicorn pointed at the app factory.

Which worker answered is told by the ``X-GPROChat-Worker`` header (the worker's pid),
checked against the pids gunicorn reports booting. Requests that must spread over the
workers each open their own connection: a kept-alive connection stays with the worker
that accepted it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import gunicorn

from langchain_gprochat.protocol import DEFAULT_SECRET_KEY, Part, RequestEncoder, Turn
from langchain_gprochat.server.env import ENV_VARIABLES
from langchain_gprochat.server.workers import ARGV_ENV, WORKER_HEADER

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER = [sys.executable, "-m", "langchain_gprochat.server"]
_SERVER_ENV = (*(variable.name for variable in ENV_VARIABLES), ARGV_ENV)
BOOTED = re.compile(r"Booting worker with pid: (\d+)")
CONTROL_SOCKET = ["--no-control-socket"] if gunicorn.version_info >= (25,) else []


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SERVER_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@dataclass
class Running:
    """A server process: its base URL and its standard error, kept in a file."""

    process: subprocess.Popen[str]
    url: str
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def booted(self) -> set[int]:
        return {int(pid) for pid in BOOTED.findall(self.text())}

    def wait_log(self, pattern: re.Pattern[str], count: int, limit: float = 60.0) -> list[str]:
        deadline = time.monotonic() + limit
        while len(found := pattern.findall(self.text())) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{pattern.pattern!r} x{count} never logged:\n{self.text()}")
            time.sleep(0.02)
        return found


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextlib.contextmanager
def workers(*args: str, tmp_path: Path, count: int = 2, **env: str) -> Iterator[Running]:
    """``gprochat-server --port 0 --workers COUNT *args``, started in ``tmp_path``."""
    argv = [*SERVER, "--port", "0"]
    log = tmp_path / f"server-{time.monotonic_ns()}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*argv, "--workers", str(count), *args],
            cwd=tmp_path,
            env=server_env(**env),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"gprochat-server listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, (line, log.read_text())
        yield Running(process, match.group(1), log)
    finally:
        _stop(process)


@contextlib.contextmanager
def direct_gunicorn(target: str, *, tmp_path: Path, **env: str) -> Iterator[Running]:
    """``gunicorn TARGET -k aiohttp.GunicornWebWorker -w 2 -b 127.0.0.1:0``."""
    log = tmp_path / f"gunicorn-{time.monotonic_ns()}.log"
    argv = [sys.executable, "-m", "gunicorn", target, "-k", "aiohttp.GunicornWebWorker"]
    argv += ["-w", "2", "-b", "127.0.0.1:0", *CONTROL_SOCKET]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            argv,
            cwd=tmp_path,
            env=server_env(**env),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        running = Running(process, "", log)
        (url,) = running.wait_log(re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)"), 1)
        running.url = url
        yield running
    finally:
        _stop(process)


def turns_of(text: str) -> list[Turn]:
    return [Turn(role="user", parts=[Part(text=text)])]


def body(text: str, *, secret_key: str = DEFAULT_SECRET_KEY, password: str | None = None) -> bytes:
    encoder = RequestEncoder(turns_of(text), password=password, secret_key=secret_key)
    return encoder.encode(time.time_ns() // 1_000_000)


def question(i: int) -> str:
    return f"Вопрос №{i} · 質問 {i * 7919 % 10007} · {'🌍' * (i % 5)} {'x' * (i % 97)}"


def fresh_connections(limit: int = 100) -> aiohttp.ClientSession:
    """A session opening a new connection per request, so that any worker may take it."""
    connector = aiohttp.TCPConnector(force_close=True, limit=limit)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))


async def post(
    session: aiohttp.ClientSession, url: str, data: bytes, path: str = "/api/generate"
) -> tuple[int, str, int]:
    async with session.post(url + path, data=data) as response:
        return response.status, await response.text(), int(response.headers[WORKER_HEADER])


async def until_both_answered(
    running: Running, password: str | None = None, limit: float = 60.0
) -> set[int]:
    """Ask ``/api/auth`` on new connections until two workers have answered (bounded)."""
    auth = json.dumps({"pass": password}).encode()
    seen: set[int] = set()
    deadline = time.monotonic() + limit
    async with fresh_connections() as session:
        while len(seen) < 2:
            assert time.monotonic() < deadline, f"one worker only: {seen}\n{running.text()}"
            replies = await asyncio.gather(
                *(post(session, running.url, auth, "/api/auth") for _ in range(10))
            )
            assert {(status, text) for status, text, _ in replies} == {(200, '{"code":0}')}
            seen |= {pid for _, _, pid in replies}
    assert seen == running.booted()
    return seen
