"""``gprochat-server --workers N`` as real processes on 127.0.0.1.

Nothing about time is asserted; timeouts are upper limits only.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from langchain_gprochat.server import echo_reply

if sys.platform == "win32":
    pytest.skip("gunicorn runs on POSIX only", allow_module_level=True)
pytest.importorskip("gunicorn")

from ._workers_support import (
    SERVER,
    WORKER_HEADER,
    body,
    fresh_connections,
    post,
    question,
    server_env,
    turns_of,
    until_both_answered,
    workers,
)

_STOPPING = re.compile(r"worker (\d+) stopping: (\d+) answers streaming get up to 120 s")


# ------------------------------------------------------------------------------ load


async def test_thousand_requests_at_concurrency_100_through_two_workers(tmp_path: Path) -> None:
    requests, concurrency = 1000, 100
    questions = [question(i) for i in range(requests)]
    assert len(set(questions)) == requests
    with workers(tmp_path=tmp_path) as running:
        pids = await until_both_answered(running)
        limit = asyncio.Semaphore(concurrency)
        in_flight = peak = 0
        async with fresh_connections(concurrency) as session:

            async def one(text: str) -> tuple[int, str, int]:
                nonlocal in_flight, peak
                async with limit:
                    in_flight += 1
                    peak = max(peak, in_flight)
                    try:
                        return await post(session, running.url, body(text))
                    finally:
                        in_flight -= 1

            results = await asyncio.gather(*(one(q) for q in questions), return_exceptions=True)
        log = running.text()
    errors = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert errors == []
    answers = [r for r in results if not isinstance(r, BaseException)]
    assert [status for status, _, _ in answers] == [200] * requests
    assert [text for _, text, _ in answers] == [echo_reply(turns_of(q)) for q in questions]
    assert peak == concurrency
    by_worker = {pid: sum(1 for *_, p in answers if p == pid) for pid in pids}
    assert set(by_worker) == pids
    assert sum(by_worker.values()) == requests
    assert all(n > 0 for n in by_worker.values()), by_worker
    assert "Traceback" not in log, log
    assert "ERROR" not in log, log
    print(f"\nanswers per worker: {by_worker}")


# ------------------------------------------------------------------ graceful shutdown

GATE_BACKEND = '''
import asyncio
import os


class Gate:
    """Streams a first chunk, then waits (at most 60 s) for the file $GATE_FILE."""

    async def stream(self, turns):
        text = "".join(part.text for part in turns[-1].parts)
        yield f"begun:{text}:"
        for _ in range(6000):
            if os.path.exists(os.environ["GATE_FILE"]):
                break
            await asyncio.sleep(0.01)
        yield "released" if os.path.exists(os.environ["GATE_FILE"]) else "timed out"


backend = Gate()
'''


async def test_sigterm_lets_fifty_open_streams_finish(tmp_path: Path) -> None:
    """SIGTERM while 50 answers are half sent: the workers stop listening, report the 50,
    finish every answer exactly once the backend goes on, and the master exits 0."""
    (tmp_path / "gate.py").write_text(GATE_BACKEND)
    gate = tmp_path / "released"
    args = ("--backend", "gate:backend", "--shutdown-timeout", "120")
    with workers(*args, tmp_path=tmp_path, GATE_FILE=str(gate)) as running:
        await until_both_answered(running)
        texts = [f"stream {i} · ünï" for i in range(50)]
        async with fresh_connections() as session, contextlib.AsyncExitStack() as stack:

            async def begin(text: str) -> tuple[aiohttp.ClientResponse, int]:
                response = await stack.enter_async_context(
                    session.post(running.url + "/api/generate", data=body(text))
                )
                assert response.status == 200
                first = f"begun:{text}:".encode()
                assert await response.content.readexactly(len(first)) == first
                return response, int(response.headers[WORKER_HEADER])

            opened = await asyncio.gather(*(begin(text) for text in texts))
            running.process.send_signal(signal.SIGTERM)
            stopping = running.wait_log(_STOPPING, 2)
            assert {int(pid) for pid, _ in stopping} == running.booted()
            assert sum(int(streams) for _, streams in stopping) == 50
            assert {pid for _, pid in opened} <= running.booted()
            with pytest.raises(aiohttp.ClientConnectorError):  # no longer listening
                await post(session, running.url, body("too late"))
            gate.touch()
            rests = await asyncio.gather(*(response.read() for response, _ in opened))
        assert [rest.decode() for rest in rests] == ["released"] * 50
        assert running.process.wait(timeout=120) == 0
        log = running.text()
    assert "Traceback" not in log, log
    assert "Shutting down: Master" in log


async def test_sigint_stops_every_worker_and_exits_0(tmp_path: Path) -> None:
    with workers(tmp_path=tmp_path) as running:
        pids = await until_both_answered(running)
        running.process.send_signal(signal.SIGINT)
        assert running.process.wait(timeout=60) == 0
        stopping = re.findall(r"worker (\d+) stopping: 0 answers streaming", running.text())
    assert {int(pid) for pid in stopping} == pids


# ---------------------------------------------------------------- settings per worker


async def test_secret_key_and_password_reach_every_worker(tmp_path: Path) -> None:
    args = ("--secret-key", "my-own-secret", "--password", "pw-right-7,pw-other-9")
    with workers(*args, tmp_path=tmp_path) as running:
        pids = await until_both_answered(running, "pw-right-7")
        kinds = {
            "wrong password": (
                body("q", secret_key="my-own-secret", password="pw-wrong-3"),
                401,
                '{"error":{"message":"Invalid password."}}',
            ),
            "default key": (
                body("q", password="pw-right-7"),
                401,
                '{"error":{"message":"Invalid signature."}}',
            ),
            "right": (
                body("q", secret_key="my-own-secret", password="pw-other-9"),
                200,
                echo_reply(turns_of("q")),
            ),
        }
        answered: dict[str, set[int]] = {kind: set() for kind in kinds}
        async with fresh_connections() as session:
            for _ in range(100):  # bounded: until each kind was answered by both workers
                if all(seen == pids for seen in answered.values()):
                    break
                for kind, (data, status, text) in kinds.items():
                    replies = await asyncio.gather(
                        *(post(session, running.url, data) for _ in range(4))
                    )
                    assert {(s, t) for s, t, _ in replies} == {(status, text)}, kind
                    answered[kind] |= {pid for *_, pid in replies}
        log = running.text()
    assert answered == {kind: pids for kind in kinds}
    assert not {"my-own-secret", "pw-right-7", "pw-other-9", "pw-wrong-3"} & set(log.split())
    assert all(secret not in log for secret in ("my-own-secret", "pw-right", "pw-other"))


async def test_header_timeout_applies_in_the_workers(tmp_path: Path) -> None:
    """The workers serve through the server's own runner: a stalled request gets 408."""
    with workers("--header-timeout", "0.5", tmp_path=tmp_path) as running:
        await until_both_answered(running)
        host, port = running.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(b"POST /api/generate HTTP/1.1\r\nHost: x\r\n")
            data = await asyncio.wait_for(reader.read(), timeout=30)
        finally:
            writer.close()
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
    assert data.endswith(
        b'{"error":{"message":"Request header timeout: the headers did not arrive within 0.5 s."}}'
    )


def test_bad_settings_exit_2_before_any_worker_starts(tmp_path: Path) -> None:
    result = subprocess.run(
        [*SERVER, "--workers", "2", "--backend", "no_such_module_here:model"],
        cwd=tmp_path,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("gprochat-server: invalid backend 'no_such_module_here:model': ")


def test_busy_address_exits_1_at_once(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*SERVER, "--workers", "2", "--port", str(port)],
            cwd=tmp_path,
            env=server_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"gprochat-server: cannot listen on 127.0.0.1:{port}: ")
    assert "Address already in use" in line
