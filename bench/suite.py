"""The benchmark suite behind ``bench/run.py``: measure, then write the report and plot."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import clients
import profiling
from clients import MESSAGES
from harness import LoopRunner
from imports import imports
from loopback import Endpoint, fast_server
from measure import (
    PLANS,
    SEQ_SIZE,
    STREAM_CHUNKS,
    STREAM_SIZE,
    Context,
    Section,
    concurrency,
    sequential,
    streaming,
    sync,
)
from report import plot, write_readme


def _profile(ctx: Context, directory: Path, command: str) -> list[str]:
    plan = ctx.plan
    seq = clients.gprochat(ctx.endpoint, SEQ_SIZE)
    stream = clients.gprochat(ctx.endpoint, STREAM_SIZE, STREAM_CHUNKS)

    async def requests() -> None:
        for _ in range(plan.profile_requests):
            await seq.ainvoke(MESSAGES)

    async def streams() -> None:
        for _ in range(plan.profile_streams):
            async for _chunk in stream.astream(MESSAGES):
                pass

    ctx.runner.run(requests())  # warm up both sessions
    ctx.runner.run(stream.ainvoke(MESSAGES))
    seq_root = profiling.profile(ctx.runner, requests, directory / "profile-sequential.txt")
    stream_root = profiling.profile(ctx.runner, streams, directory / "profile-streaming.txt")
    return [
        f"`{command}` runs pyinstrument {profiling.INTERVAL * 1000:g} ms sampling, "
        '`async_mode="disabled"`, on the client only (the server is another process): '
        f"{plan.profile_requests} sequential `ainvoke` (1 KB) and {plan.profile_streams} "
        "`astream` (200 KB / 4,000 writes). Self time is grouped by the package of the "
        "frame it is spent in. The full trees are in profile-sequential.txt and "
        "profile-streaming.txt next to this file.",
        "",
        *profiling.summary(seq_root, "1 · sequential ainvoke", plan.profile_requests),
        *profiling.summary(stream_root, "2 · astream 200 KB", plan.profile_streams),
    ]


def _timed(name: str, step: Callable[[], Section]) -> Section:
    start = time.perf_counter()
    section = step()
    print(f"{name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return section


def _measure(ctx: Context, directory: Path, command: str) -> tuple[list[Section], list[str]]:
    sections = [
        _timed("1 sequential", lambda: sequential(ctx)),
        _timed("2 streaming", lambda: streaming(ctx)),
        _timed("3 concurrency", lambda: concurrency(ctx)),
        _timed("4 sync", lambda: sync(ctx)),
        _timed("5 imports", lambda: imports(ctx.plan.import_reps)),
    ]
    start = time.perf_counter()
    profile = _profile(ctx, directory, command)
    print(f"profile: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return sections, profile


def run(size: str, out: Path, command: str) -> None:
    plan = PLANS[size]
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        fast_server(Path(tmp)) as endpoint,
        LoopRunner() as runner,
    ):
        session = runner.run(_make_session(endpoint))
        ctx = Context(runner=runner, endpoint=endpoint, session=session, plan=plan)
        try:
            sections, profile = _measure(ctx, out.parent, command)
        finally:
            runner.run(session.close())
    rows = [row for section in sections for row in section.rows]
    notes = [note for section in sections for note in section.notes]
    ratios = {k: v for section in sections for k, v in section.ratios.items()}
    plot(ratios, sections[0].series, out.parent / "results.png")
    write_readme(out, command, rows, notes, profile)


async def _make_session(endpoint: Endpoint) -> aiohttp.ClientSession:
    return clients.raw_session(endpoint)
