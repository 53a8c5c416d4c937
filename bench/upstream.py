"""gprochat-server ``--backend gemini`` beside the upstream GeminiProChat app, on loopback.

``--backend gemini`` (the direct REST client) and ``--backend gemini-langchain``
(``ChatGoogleGenerativeAI``) run side by side by default, each with every ``--workers``
count. All servers stand in front of the same stand-in for the Gemini REST API
(bench/gemini_standin.py, its own process) and get the same signed requests, at a few
concurrencies, in interleaved rounds; every answer must be the stand-in's, byte for
byte, and the stand-in must have streamed exactly one answer per request. Figures:
requests per second (median of the rounds), latency to the whole answer (p50, p95 over
all rounds) and the server's CPU time per request (its processes, from /proc).

    python bench/upstream.py UPSTREAM --node /usr/bin/node --out /tmp/upstream.md

UPSTREAM is a build of the upstream app with its Node adapter (a folder holding
``dist/server/entry.mjs``, its dependencies installed beside it), whose server takes
``GEMINI_API_KEY``, ``API_BASE_URL`` and ``GEMINI_MODEL_NAME`` from its environment when
it starts; ``--secret-key`` is the ``PUBLIC_SECRET_KEY`` it was built with. Nothing of
the upstream app is kept in this repository.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import aiohttp

from langchain_gprochat.protocol import DEFAULT_SECRET_KEY, Part, RequestEncoder, Turn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gemini_standin import ANSWER  # noqa: E402

HOST = "127.0.0.1"
MODEL = "bench-model"
API_KEY = "bench-api-key"
UPSTREAM = "upstream app (Node)"


@dataclass
class Server:
    """A server under test: its name, base URL and process."""

    name: str
    url: str
    process: subprocess.Popen[str]
    trials: list[Trial] = field(default_factory=list)


@dataclass(frozen=True)
class Trial:
    """One round of ``requests`` at one concurrency against one server."""

    concurrency: int
    wall: float
    latencies: tuple[float, ...]
    cpu: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {HOST}:{port} within 60 s")


def _first_line_url(process: subprocess.Popen[str], what: str) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"listening on (http://\S+)", line)
    if match is None:
        raise SystemExit(f"{what} did not start: {line!r}")
    return match.group(1)


@contextlib.contextmanager
def _process(
    argv: list[str], env: dict[str, str], **popen: object
) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(argv, env=env, text=True, **popen)  # type: ignore[call-overload]
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _gemini_env(standin: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPROCHAT_", "GOOGLE_"))}
    env.update(GEMINI_API_KEY=API_KEY, API_BASE_URL=standin, GEMINI_MODEL_NAME=MODEL)
    return env


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its descendants (Linux /proc), 0 elsewhere."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total / ticks


async def _standin_answers(session: aiohttp.ClientSession, standin: str) -> int:
    async with session.get(f"{standin}/stats") as response:
        return int((await response.json())["answers"])


def _encoders(count: int, secret_key: str) -> list[RequestEncoder]:
    return [
        RequestEncoder(
            [Turn(role="user", parts=[Part(text=f"Question {i}: what is new? · Grüße 🌍")])],
            password=None,
            secret_key=secret_key,
        )
        for i in range(count)
    ]


async def _load(
    url: str, encoders: list[RequestEncoder], concurrency: int
) -> tuple[float, list[float]]:
    """Send every request, ``concurrency`` at a time, on kept-alive connections."""
    latencies: list[float] = []
    pending = iter(encoders)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for encoder in pending:
                started = time.perf_counter()
                data = encoder.encode(time.time_ns() // 1_000_000)
                async with session.post(f"{url}/api/generate", data=data) as response:
                    text = await response.text()
                if response.status != 200 or text != ANSWER:
                    raise SystemExit(f"{url}: wrong answer {response.status}: {text[:200]!r}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


async def _trial(
    server: Server, standin: str, encoders: list[RequestEncoder], concurrency: int
) -> Trial:
    async with aiohttp.ClientSession() as session:
        before = await _standin_answers(session, standin)
        cpu = _cpu_seconds(server.process.pid)
        wall, latencies = await _load(server.url, encoders, concurrency)
        cpu = _cpu_seconds(server.process.pid) - cpu
        streamed = await _standin_answers(session, standin) - before
    if streamed != len(encoders):
        raise SystemExit(f"{server.name}: {len(encoders)} requests, {streamed} stand-in answers")
    return Trial(concurrency, wall, tuple(latencies), cpu)


async def _measure(servers: list[Server], standin: str, args: argparse.Namespace) -> None:
    encoders = _encoders(args.requests, args.secret_key)
    for server in servers:  # warm-up: imports, connection pools, JIT
        await _trial(server, standin, encoders[:50], 10)
    for concurrency in args.concurrency:
        for round_ in range(args.rounds):
            shift = round_ % len(servers)
            for server in servers[shift:] + servers[:shift]:
                server.trials.append(await _trial(server, standin, encoders, concurrency))
            print(f"concurrency {concurrency}: round {round_ + 1}/{args.rounds} done", flush=True)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _row(
    server: Server, concurrency: int, requests: int, baseline: float | None
) -> tuple[str, float]:
    trials = [t for t in server.trials if t.concurrency == concurrency]
    rate = statistics.median(requests / t.wall for t in trials)
    latencies = [x for t in trials for x in t.latencies]
    cpu_ms = statistics.median(t.cpu for t in trials) / requests * 1000
    ratio = "" if baseline is None else f"{rate / baseline:.2f}"
    verdict = "" if baseline is None else ("PASS" if rate >= baseline else "FAIL")
    target = "" if baseline is None else "≥ 1.00"
    cells = [
        str(concurrency), server.name, f"{rate:.0f}",
        f"{_percentile(latencies, 0.5) * 1000:.1f}", f"{_percentile(latencies, 0.95) * 1000:.1f}",
        f"{cpu_ms:.2f}", ratio, target, verdict,
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |", rate


def _versions(node: str) -> str:
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    names = ("aiohttp", "langchain-core", "langchain-google-genai", "google-genai", "gunicorn")
    found = []
    for name in names:
        with contextlib.suppress(Exception):
            found.append(f"{name} {version(name)}")
    return f"node {node_version.strip()}, Python {platform.python_version()}, " + ", ".join(found)


def report(servers: list[Server], args: argparse.Namespace, command: str) -> str:
    """The Markdown report of a run."""
    header = "| concurrency | server | requests/s | p50 ms | p95 ms | server CPU ms / request "
    header += "| throughput vs upstream | target | result |"
    lines = [
        "# gprochat-server `--backend gemini` (and `gemini-langchain`) beside the upstream app",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}; {_versions(args.node)}.",
        "",
        f"{args.requests} signed requests per round, {args.rounds} interleaved rounds per "
        "concurrency; requests/s is the median of the rounds, latencies are over all rounds.",
        "",
        header,
        "|---|---|---|---|---|---|---|---|---|",
    ]
    upstream = next(s for s in servers if s.name == UPSTREAM)
    for concurrency in args.concurrency:
        row, baseline = _row(upstream, concurrency, args.requests, None)
        lines.append(row)
        lines += [
            _row(s, concurrency, args.requests, baseline)[0] for s in servers if s is not upstream
        ]
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("upstream", type=Path, help="folder of an upstream build (holding dist/server/entry.mjs)")
    add("--node", default="node", help="the node binary (default: node)")
    add("--requests", type=int, default=400, help="requests per round (default: 400)")
    add("--concurrency", type=int, nargs="+", default=[1, 20, 100], help="(default: 1 20 100)")
    add("--rounds", type=int, default=5, help="rounds per concurrency (default: 5)")
    add("--workers", type=int, nargs="+", default=[1, 2], help="gprochat-server variants")
    add(
        "--backend",
        nargs="+",
        default=["gemini", "gemini-langchain"],
        help="gprochat-server's --backend values to run (default: gemini gemini-langchain)",
    )
    add("--secret-key", default=DEFAULT_SECRET_KEY, help="the build's PUBLIC_SECRET_KEY")
    add("--out", type=Path, help="write the Markdown report here too")
    return parser


def _gprochat_server(
    stack: contextlib.ExitStack,
    env: dict[str, str],
    args: argparse.Namespace,
    backend: str,
    workers: int,
) -> Server:
    argv = [sys.executable, "-m", "langchain_gprochat.server", "--port", "0"]
    argv += ["--backend", backend, "--secret-key", args.secret_key]
    argv += ["--log-level", "warning", "--workers", str(workers)]
    process = stack.enter_context(_process(argv, env, stdout=subprocess.PIPE))
    url = _first_line_url(process, "gprochat-server")
    name = f"gprochat-server --backend {backend}"
    name += f" --workers {workers}" if workers > 1 else ""
    return Server(name, url, process)


def main() -> None:
    args = _parser().parse_args()
    entry = args.upstream / "dist" / "server" / "entry.mjs"
    if not entry.is_file():
        raise SystemExit(f"no upstream build at {args.upstream}: {entry} is missing")
    command = "python bench/upstream.py " + " ".join(sys.argv[1:])
    with contextlib.ExitStack() as stack:
        standin_process = stack.enter_context(
            _process(
                [sys.executable, str(HERE / "gemini_standin.py")],
                dict(os.environ),
                stdout=subprocess.PIPE,
            )
        )
        standin = _first_line_url(standin_process, "the Gemini stand-in")
        env = _gemini_env(standin)
        port = _free_port()
        upstream_env = {**env, "HOST": HOST, "PORT": str(port), "NODE_ENV": "production"}
        node = stack.enter_context(
            _process(
                [args.node, str(entry)], upstream_env, cwd=args.upstream, stdout=subprocess.DEVNULL
            )
        )
        _wait_for_port(port, node, "the upstream app")
        servers = [Server(UPSTREAM, f"http://{HOST}:{port}", node)]
        for backend in args.backend:
            for workers in args.workers:
                servers.append(_gprochat_server(stack, env, args, backend, workers))
        asyncio.run(_measure(servers, standin, args))
    text = report(servers, args, command)
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
