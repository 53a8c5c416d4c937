"""The server's limits against slow, greedy and malformed clients, over raw sockets.

Header, body and keep-alive timeouts; the connection cap and the open-file limit; the
memory held by bodies in flight; ``Expect: 100-continue``; one shutdown deadline; no
secret in the log; ``--backend`` failures. Limits are small (0.5 s) and every duration
check is "closed within the limit plus a generous margin", which only a hang can trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from langchain_gprochat.protocol import DEFAULT_SECRET_KEY, sign
from langchain_gprochat.server import GPROChatServer, ServerSettings
from langchain_gprochat.server.__main__ import build_parser, settings_from_args

from ._support import Start, assert_no_tracebacks_logged, async_wait_until, expected_echo

REPO_ROOT = Path(__file__).resolve().parents[2]
MARGIN = 10.0
"""Seconds past a limit before "not closed" counts as a hang."""
LIMIT = 0.5


# ---------------------------------------------------------------- helpers and fixtures


@pytest.fixture(autouse=True)
def _no_tracebacks_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No limit may log a traceback or aiohttp's "Error handling request" with one."""
    yield
    assert_no_tracebacks_logged(caplog, from_level=logging.NOTSET, handler_errors=True)


def body_for(text: str = "Hello") -> bytes:
    stamp = time.time_ns() // 1_000_000
    data = {
        "messages": [{"role": "user", "parts": [{"text": text}]}],
        "time": stamp,
        "pass": None,
        "sign": sign(stamp, text, DEFAULT_SECRET_KEY),
    }
    return json.dumps(data, ensure_ascii=False).encode()


def request_bytes(path: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


AUTH = request_bytes("/api/auth", b'{"pass":null}')
"""A small request answered with a Content-Length body: ``{"code":0}``."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Read one answer with a Content-Length body off a raw connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def until_closed(reader: asyncio.StreamReader, limit: float) -> tuple[bytes, float]:
    """Read until the server closes; fail if it is still open ``limit + MARGIN`` later."""
    started = time.monotonic()
    received = bytearray()

    async def read_all() -> None:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            while data := await reader.read(65536):
                received.extend(data)

    try:
        await asyncio.wait_for(read_all(), limit + MARGIN)
    except asyncio.TimeoutError:
        raise AssertionError(
            f"still open {limit + MARGIN}s later; got {bytes(received)!r}"
        ) from None
    return bytes(received), time.monotonic() - started


@contextlib.asynccontextmanager
async def raw(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float = 0.1) -> None:
    """Send ``data`` one byte at a time until it is sent or the server hangs up."""
    with contextlib.suppress(OSError):
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(every)


def error_json(data: bytes) -> str:
    return str(json.loads(data.partition(b"\r\n\r\n")[2])["error"]["message"])


# ---------------------------------------------------------------- timeouts


async def test_idle_new_connection_is_closed_after_the_header_timeout(start: Start) -> None:
    srv = await start(header_timeout=LIMIT)
    async with raw(srv.port) as (reader, _):
        data, elapsed = await until_closed(reader, LIMIT)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert error_json(data).startswith("Request header timeout")
    assert elapsed < LIMIT + MARGIN
    assert srv.stats.header_timeouts == 1


async def test_idle_keepalive_connection_is_closed_after_the_keepalive_timeout(
    start: Start,
) -> None:
    srv = await start(keepalive_timeout=LIMIT, header_timeout=60)
    async with raw(srv.port) as (reader, writer):
        writer.write(AUTH)
        status, _, body = await read_response(reader)
        assert (status, body) == (200, b'{"code":0}')
        data, _ = await until_closed(reader, LIMIT)
    assert data == b""  # closed quietly: an idle close is not an error
    assert srv.stats.header_timeouts == 0


async def test_trickled_headers_are_cut_at_the_header_timeout(start: Start) -> None:
    srv = await start(header_timeout=LIMIT)
    async with raw(srv.port) as (reader, writer):
        sender = asyncio.create_task(trickle(writer, request_bytes("/api/generate", body_for())))
        data, _ = await until_closed(reader, LIMIT)
        sender.cancel()
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert b"Connection: close" in data
    assert srv.stats.header_timeouts == 1
    assert srv.stats.requests == 0


async def test_trickled_headers_of_a_later_request_are_cut_too(start: Start) -> None:
    srv = await start(header_timeout=LIMIT, keepalive_timeout=60)
    async with raw(srv.port) as (reader, writer):
        writer.write(AUTH)
        status, _, _ = await read_response(reader)
        assert status == 200
        sender = asyncio.create_task(trickle(writer, AUTH))
        data, _ = await until_closed(reader, LIMIT)
        sender.cancel()
    assert data.startswith(b"HTTP/1.1 408 "), data


async def test_headers_that_arrive_within_the_limit_are_served(start: Start) -> None:
    srv = await start(header_timeout=5.0)
    request = request_bytes("/api/auth", b'{"pass":null}', "Connection: close")
    head, _, rest = request.partition(b"\r\n")
    async with raw(srv.port) as (reader, writer):
        for piece in (head[:5], head[5:], b"\r\n" + rest):  # three pieces, 0.1 s apart
            writer.write(piece)
            await asyncio.sleep(0.1)
        status, _, body = await read_response(reader)
    assert (status, body) == (200, b'{"code":0}')


async def test_trickled_body_is_cut_at_the_body_timeout(start: Start) -> None:
    srv = await start(body_timeout=LIMIT)
    body = body_for()
    head = request_bytes("/api/generate", body)[: -len(body)]
    async with raw(srv.port) as (reader, writer):
        writer.write(head)
        sender = asyncio.create_task(trickle(writer, body))
        data, _ = await until_closed(reader, LIMIT)
        sender.cancel()
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert b"Connection: close" in data
    assert error_json(data) == "Request body timeout: it did not arrive within 0.5 s."
    assert srv.stats.statuses[408] == 1
    assert srv.stats.body_bytes == 0


async def test_unterminated_chunked_upload_is_cut_at_the_body_timeout(start: Start) -> None:
    srv = await start(body_timeout=LIMIT)
    head = b"POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    async with raw(srv.port) as (reader, writer):
        writer.write(head + b'5\r\n{"mes\r\n')  # and never the last chunk
        data, _ = await until_closed(reader, LIMIT)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert srv.stats.statuses[408] == 1


# ---------------------------------------------------------------- connections


async def test_connections_over_the_cap_are_refused_at_once_and_served_ones_keep_working(
    start: Start,
) -> None:
    srv = await start(max_connections=4, header_timeout=60, keepalive_timeout=60)
    async with AsyncExitStack() as stack:
        reader, writer = await stack.enter_async_context(raw(srv.port))
        writer.write(AUTH)
        assert (await read_response(reader))[0] == 200
        for _ in range(3):  # three more, idle: the cap is reached
            await stack.enter_async_context(raw(srv.port))
        await async_wait_until(lambda: srv.stats.connections == 4, "4 open connections")
        async with raw(srv.port) as (extra, _):
            data, _ = await until_closed(extra, 0)
        assert data.startswith(b"HTTP/1.1 503 "), data
        assert b"Retry-After: 1" in data
        assert error_json(data) == "Server busy: too many open connections; retry later."
        # the connection that was already served goes on being served
        writer.write(request_bytes("/api/generate", body_for("still here")))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert srv.stats.connections_refused == 1
    await async_wait_until(lambda: srv.stats.connections == 0, "all connections closed")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{srv.url}/api/generate", data=body_for("again")) as response,
    ):
        assert await response.read() == expected_echo("again").encode()
    assert srv.stats.peak_connections == 4


def _limited_fds(soft: int) -> Callable[[], None]:
    def apply() -> None:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def _cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.pop("GPROCHAT_SECRET_KEY", None)
    env.pop("GPROCHAT_SERVER_PASSWORDS", None)
    return env


@contextlib.contextmanager
def command(*args: str, **popen: Any) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Run ``python -m langchain_gprochat.server --port 0 *args``; yields it and its port."""
    argv = [sys.executable, "-m", "langchain_gprochat.server", "--port", "0", *args]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_cli_env(), **popen
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"gprochat-server listening on http://127\.0\.0\.1:(\d+)\n", line)
        assert match, (line, process.stderr.read() if process.stderr else "")
        yield process, int(match.group(1))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


async def test_file_descriptors_are_never_exhausted_by_stalled_headers() -> None:
    """Under ``ulimit -n 256``, 300 stalled headers leave the server answering at once."""
    with command(preexec_fn=_limited_fds(256)) as (process, port):
        async with AsyncExitStack() as stack:
            reader, writer = await stack.enter_async_context(raw(port))
            writer.write(AUTH)
            assert (await read_response(reader))[0] == 200
            for _ in range(300):
                _, slow = await stack.enter_async_context(raw(port))
                slow.write(b"POST /api/generate HTTP/1.1\r\nHost: x\r\n")
            await asyncio.sleep(0.5)  # let the server take in what it will
            async with raw(port) as (late, _):  # a new client is answered, not left hanging
                data, _ = await until_closed(late, 0)
            assert data.startswith(b"HTTP/1.1 503 "), data
            writer.write(AUTH)  # the connection served before goes on being served
            status, _, body = await read_response(reader)
            assert (status, body) == (200, b'{"code":0}')
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "max_connections lowered from 1000 to 192" in stderr
    assert "Traceback" not in stderr
    assert " ERROR " not in stderr, stderr


# ---------------------------------------------------------------- memory of bodies in flight


async def test_memory_held_by_bodies_in_flight_is_bounded(start: Start) -> None:
    mib = 1024 * 1024
    budget = 2 * mib + mib // 2
    srv = await start(max_body=mib, max_body_memory=budget, body_timeout=60)
    stalled = 6
    head = b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % mib
    async with AsyncExitStack() as stack:
        connections = []
        for _ in range(stalled):  # each sends all of a 1 MiB body but its last byte
            reader, writer = await stack.enter_async_context(raw(srv.port))
            writer.write(head + b" " * (mib - 1))
            connections.append((reader, writer))
        await async_wait_until(
            lambda: srv.stats.statuses[503] + srv.stats.body_bytes // (mib - 1) == stalled,
            "every stalled body held whole or refused",
        )
        held = srv.stats.body_bytes // (mib - 1)
        assert srv.stats.peak_body_bytes <= budget
        assert held <= 2
        # a small request still fits beside the bodies held
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{srv.url}/api/generate", data=body_for("fits")) as response,
        ):
            assert await response.read() == expected_echo("fits").encode()
        statuses = []
        for reader, writer in connections:
            with contextlib.suppress(OSError):
                writer.write(b" ")  # the last byte: a held body is then read, and is no JSON
            status, headers, body = await read_response(reader)
            statuses.append(status)
            if status == 503:
                assert headers["retry-after"] == "1"
                assert headers["connection"] == "close"
                assert json.loads(body)["error"]["message"].startswith("Server busy:")
        assert sorted(statuses) == [400] * held + [503] * (stalled - held)
    await async_wait_until(lambda: srv.stats.body_bytes == 0, "all body bytes released")


# ---------------------------------------------------------------- Expect and 413


async def test_expect_continue_with_an_oversized_body_is_refused_before_continuing(
    start: Start,
) -> None:
    srv = await start()
    async with raw(srv.port) as (reader, writer):
        writer.write(
            b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        data, _ = await until_closed(reader, 0)
    assert data.startswith(b"HTTP/1.1 413 "), data  # and no "100 Continue" before it
    assert b"100 Continue" not in data
    assert b"Connection: close" in data
    assert srv.stats.statuses == {413: 1}


async def test_expect_continue_over_the_memory_budget_is_refused_before_continuing(
    start: Start,
) -> None:
    srv = await start(max_body=1000, max_body_memory=1000)
    async with raw(srv.port) as (_, holding):
        holding.write(b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        holding.write(b" " * 600)
        await async_wait_until(lambda: srv.stats.body_bytes == 600, "600 bytes held")
        async with raw(srv.port) as (reader, writer):
            writer.write(
                b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            data, _ = await until_closed(reader, 0)
    assert data.startswith(b"HTTP/1.1 503 "), data
    assert b"100 Continue" not in data


async def test_expect_continue_within_the_limits_gets_continue_then_the_answer(
    start: Start,
) -> None:
    srv = await start()
    body = body_for("continued")
    head = request_bytes("/api/generate", body, "Expect: 100-continue")[: -len(body)]
    async with raw(srv.port) as (reader, writer):
        writer.write(head)
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
    async with aiohttp.ClientSession() as session:
        url = f"{srv.url}/api/generate"
        async with session.post(url, data=body_for("again"), expect100=True) as response:
            assert await response.read() == expected_echo("again").encode()


async def test_unknown_expectation_gets_417(start: Start) -> None:
    srv = await start()
    async with raw(srv.port) as (reader, writer):
        writer.write(request_bytes("/api/generate", b"{}", "Expect: something-else"))
        data, _ = await until_closed(reader, 0)
    assert data.startswith(b"HTTP/1.1 417 "), data


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_413_closes_the_connection(start: Start, chunked: bool) -> None:
    srv = await start(max_body=100)
    async with raw(srv.port) as (reader, writer):
        if chunked:
            writer.write(b"POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked")
            writer.write(b"\r\n\r\n" + b"c8\r\n" + b" " * 200 + b"\r\n")
        else:
            writer.write(b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n")
        data, _ = await until_closed(reader, 0)
    assert data.startswith(b"HTTP/1.1 413 "), data
    assert b"Connection: close" in data


# ---------------------------------------------------------------- shutdown


class EndlessBackend:
    async def stream(self, turns: Any) -> AsyncIterator[str]:
        while True:
            yield "tick "
            await asyncio.sleep(0.01)


async def test_shutdown_takes_one_timeout_not_two() -> None:
    timeout = 3.0
    srv = GPROChatServer(backend=EndlessBackend(), shutdown_timeout=timeout)
    await srv.start()
    async with aiohttp.ClientSession() as session:
        response = await session.post(f"{srv.url}/api/generate", data=body_for())
        assert (await response.content.readany()).startswith(b"tick")
        started = time.monotonic()
        await srv.stop()
        elapsed = time.monotonic() - started
        response.close()
    assert elapsed >= timeout - 0.1  # the running answer had its time
    assert elapsed < timeout + 2.5  # aiohttp alone takes twice the timeout


# ---------------------------------------------------------------- secrets and the log

SECRETS = ("QS-SECRET-1", "QS-SECRET-2", "HDR-SECRET-3", "HDR-SECRET-4", "HDR-SECRET-5")
_HOST = "Host: 127.0.0.1"
_COOKIE = "Cookie: session=HDR-SECRET-3"
_AUTH = "Authorization: Bearer HDR-SECRET-4"
_TARGET = "/api/generate?pass=QS-SECRET-1"


def secret_bearing_requests() -> list[bytes]:
    """Malformed requests (and one good one) carrying secrets in query and headers."""
    good = body_for()
    both = f"{_HOST}\r\n{_COOKIE}\r\n{_AUTH}"
    texts = [
        f"POST {_TARGET} HTTP/7.1\r\n{both}\r\n\r\n",  # bad version
        f"P@ST {_TARGET} HTTP/1.1\r\n{both}\r\n\r\n",  # bad method, first request
        f"POST {_TARGET}\x7f HTTP/1.1\r\n{both}\r\n\r\n",  # bad character in the target
        f"POST {_TARGET} HTTP/1.1\r\n{both}\r\nX-Big: {'x' * 9000}\r\n\r\n",  # header too long
        f"POST {_TARGET} HTTP/1.1\r\n{_HOST}\r\nCookie: s=HDR-SECRET-3{'y' * 9000}\r\n\r\n",
        f"POST {_TARGET} HTTP/1.1\r\n{_HOST}\r\nAuthorization Bearer HDR-SECRET-5\r\n\r\n",
        f"POST {_TARGET} HTTP/1.1\r\n{both}\r\nTransfer-Encoding: chunked\r\n\r\n"
        "zz HDR-SECRET-5\r\n\r\n",  # broken chunked encoding
        f"POST {_TARGET}{'z' * 9000} HTTP/1.1\r\n{both}\r\n\r\n",  # request line too long
    ]
    requests = [text.encode("latin-1") for text in texts]
    requests.append(
        request_bytes("/api/generate?pass=QS-SECRET-2", good, _COOKIE, _AUTH, "Connection: close")
    )
    requests.append(request_bytes("/nowhere?pass=QS-SECRET-2", b"", _COOKIE, "Connection: close"))
    return requests


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def send_each(port: int, requests: list[bytes]) -> list[bytes]:
    answers = []
    for request in requests:
        async with raw(port) as (reader, writer):
            writer.write(request)
            answers.append((await until_closed(reader, 0))[0])
    return answers


async def boom(request: web.Request) -> web.Response:
    """A handler bug whose exception message carries what the request did."""
    raise RuntimeError(
        f"failed on {request.query_string} {request.headers.get('Cookie')} "
        f"{request.headers.get('Authorization')}"
    )


async def test_no_secret_of_a_request_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    srv = GPROChatServer()
    srv.app.router.add_get("/boom", boom)
    async with srv:
        answers = await send_each(srv.port, secret_bearing_requests())
        answers += await send_each(
            srv.port,
            [
                f"GET /boom?pass=QS-SECRET-1 HTTP/1.1\r\n{_HOST}\r\n{_COOKIE}\r\n{_AUTH}\r\n"
                "Connection: close\r\n\r\n".encode()
            ],
        )
    assert [status_of(a) for a in answers] == [400] * 8 + [200, 404, 500]
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        for secret in SECRETS:
            assert secret not in text, (record.name, record.levelname, text[:300])
    for secret in SECRETS:
        assert secret not in caplog.text
    assert "client error: 400 BadStatusLine" in caplog.text
    assert "RuntimeError (message withheld) at " in caplog.text
    assert "POST /api/generate 200 " in caplog.text


def test_no_secret_of_a_request_reaches_the_log_of_the_command() -> None:
    with command("--log-level", "debug") as (process, port):
        answers = asyncio.run(send_each(port, secret_bearing_requests()))
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert [status_of(a) for a in answers] == [400] * 8 + [200, 404]
    assert process.returncode == 0
    for secret in SECRETS:
        assert secret not in stderr, secret
        assert secret not in stdout, secret
    assert "Traceback" not in stderr
    assert "client error: 400 " in stderr
    assert "POST /api/generate 200 " in stderr


# ---------------------------------------------------------------- --backend failures

BACKEND_MODULES = {
    "broken_syntax.py": "def oops(:\n",
    "raises_on_import.py": "raise RuntimeError('boom on import')\n",
    "my_models.py": (
        "class Backend:\n"
        "    async def stream(self, turns):\n"
        "        yield 'from the current folder'\n"
        "chat_model = Backend()\n"
        "def failing_factory():\n"
        "    raise RuntimeError('factory boom')\n"
    ),
}
BAD_BACKENDS = [
    (".foo:bar", "relative module names are not supported"),
    ("broken_syntax:x", "importing 'broken_syntax' failed: SyntaxError: invalid syntax"),
    ("raises_on_import:x", "importing 'raises_on_import' failed: RuntimeError: boom on import"),
    ("my_models:failing_factory", "calling it failed: RuntimeError: factory boom"),
    ("sys:exit", "calling it failed: SystemExit"),
    ("no_such_module_xyz:thing", "cannot import 'no_such_module_xyz'"),
]


def _console_script() -> str | None:
    script = Path(sysconfig.get_path("scripts")) / "gprochat-server"
    return str(script) if script.exists() else shutil.which("gprochat-server")


LAUNCHERS = {
    "python-m": [sys.executable, "-m", "langchain_gprochat.server"],
    "console-script": [_console_script() or "gprochat-server"],
}


@pytest.fixture
def backend_folder(tmp_path: Path) -> Path:
    for name, source in BACKEND_MODULES.items():
        (tmp_path / name).write_text(source)
    return tmp_path


def _launcher(name: str) -> list[str]:
    if name == "console-script" and _console_script() is None:
        pytest.skip("the gprochat-server console script is not installed")
    return LAUNCHERS[name]


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_backend_failures_exit_2_with_one_clear_line(launcher: str, backend_folder: Path) -> None:
    argv = _launcher(launcher)
    processes = [
        subprocess.Popen(
            [*argv, "--port", "0", "--backend", spec],
            cwd=backend_folder,
            env=_cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for spec, _ in BAD_BACKENDS
    ]
    for process, (spec, reason) in zip(processes, BAD_BACKENDS, strict=True):
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 2, (spec, stderr)
        assert "Traceback" not in stderr, (spec, stderr)
        lines = stderr.splitlines()
        assert len(lines) == 1, (spec, stderr)
        assert lines[0].startswith(f"gprochat-server: invalid backend {spec!r}: "), lines[0]
        assert reason in lines[0], (spec, lines[0])
        assert stdout == ""


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_backend_module_in_the_current_folder_loads(launcher: str, backend_folder: Path) -> None:
    argv = _launcher(launcher)
    process = subprocess.Popen(
        [*argv, "--port", "0", "--backend", "my_models:chat_model"],
        cwd=backend_folder,
        env=_cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"gprochat-server listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, (line, process.communicate(timeout=30))

        async def ask() -> bytes:
            async with aiohttp.ClientSession() as session:
                url = f"{match.group(1)}/api/generate"
                async with session.post(url, data=body_for()) as response:
                    return await response.read()

        assert asyncio.run(ask()) == b"from the current folder"
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0


# ---------------------------------------------------------------- the settings


def test_limit_settings_are_checked() -> None:
    for bad in (
        {"header_timeout": 0},
        {"body_timeout": -1.0},
        {"keepalive_timeout": None},
        {"keepalive_timeout": float("inf")},
        {"max_connections": 0},
        {"max_body": 2048, "max_body_memory": 1024},
    ):
        with pytest.raises(ValueError, match=next(iter(bad)).removesuffix("_memory")):
            ServerSettings(**bad)
    unlimited = ServerSettings(header_timeout=None, body_timeout=None)
    assert (unlimited.header_timeout, unlimited.body_timeout) == (None, None)


def test_limit_options_of_the_command() -> None:
    defaults = settings_from_args(build_parser().parse_args([]))
    assert (
        defaults.header_timeout,
        defaults.body_timeout,
        defaults.keepalive_timeout,
        defaults.max_connections,
        defaults.max_body_memory,
    ) == (10.0, 60.0, 75.0, 1000, 64 * 1024 * 1024)
    given = settings_from_args(
        build_parser().parse_args(
            [
                "--header-timeout",
                "0",
                "--body-timeout",
                "2.5",
                "--keepalive-timeout",
                "3",
                "--max-connections",
                "7",
                "--max-body-memory",
                "2097152",
            ]
        )
    )
    assert (
        given.header_timeout,
        given.body_timeout,
        given.keepalive_timeout,
        given.max_connections,
        given.max_body_memory,
    ) == (None, 2.5, 3.0, 7, 2097152)
