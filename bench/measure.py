"""Measurements 1 to 4: sequential, streaming, concurrency, sync."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field

import aiohttp
import clients
from clients import MESSAGES
from fast_server import answer_text
from harness import (
    LoopRunner,
    Sample,
    gather_sample,
    interleave,
    on_loop,
    per_call_async,
    per_call_sync,
    stream_sample,
)
from loopback import HERE, Endpoint
from report import Row, ms, ratio_row, us, verdict

SEQ_SIZE = 1024
STREAM_SIZE, STREAM_CHUNKS = 200_000, 4000
CONC_SIZE, CONC_CHUNKS = 4096, 8
DEMO_SIZE, DEMO_CHUNKS, DEMO_PAUSE_MS = 2000, 10, 300


@dataclass(frozen=True)
class Plan:
    """How much work each measurement does, per ``--size``."""

    reps: int
    seq_batch: int
    seed_batch: int
    concurrency: int
    conc_reps: int
    mem_reps: int
    demo_reps: int
    import_reps: int
    profile_requests: int
    profile_streams: int


PLANS = {
    "tiny": Plan(3, 10, 4, 100, 1, 1, 1, 1, 30, 2),
    "full": Plan(25, 60, 20, 500, 9, 3, 5, 15, 1500, 20),
}


@dataclass
class Context:
    """What every measurement shares."""

    runner: LoopRunner
    endpoint: Endpoint
    session: aiohttp.ClientSession
    plan: Plan


@dataclass
class Section:
    """The outcome of one measurement."""

    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    ratios: dict[str, tuple[float, float]] = field(default_factory=dict)
    series: dict[str, float] = field(default_factory=dict)


def sequential(ctx: Context) -> Section:
    """1: sequential 1 KB requests."""
    ep, runner, n = ctx.endpoint, ctx.runner, ctx.plan.seq_batch
    llm, floor, fake = (
        clients.gprochat(ep, SEQ_SIZE),
        clients.floor_model(SEQ_SIZE),
        clients.fake_list_model(SEQ_SIZE),
    )
    assert runner.run(llm.ainvoke(MESSAGES)).content == answer_text(SEQ_SIZE)
    url, body, context = ep.generate_url(SEQ_SIZE), clients.request_body(), ep.client_context()
    m = interleave(
        {
            "gprochat": per_call_async(runner, lambda: llm.ainvoke(MESSAGES), n),
            "raw": per_call_async(runner, lambda: clients.raw_read(ctx.session, url, body), n),
            "seed": per_call_async(
                runner, lambda: clients.seed_style(context, url), ctx.plan.seed_batch
            ),
            "fake": per_call_async(runner, lambda: fake.ainvoke(MESSAGES), n),
            "floor": per_call_async(runner, lambda: floor.ainvoke(MESSAGES), n),
        },
        ctx.plan.reps,
    )
    t = {name: sample["per_call"] for name, sample in m.items()}
    r_fake = t["gprochat"] / (t["raw"] + t["fake"])
    r_floor = t["gprochat"] / (t["raw"] + t["floor"])
    r_seed = t["gprochat"] / t["seed"]
    rows = [Row(f"seq.{name}", us(value) + " / request") for name, value in t.items()]
    rows += [
        ratio_row("seq.ratio_fake", r_fake, 1.15),
        ratio_row("seq.ratio_floor", r_floor, 1.15),
        ratio_row("seq.ratio_seed", r_seed, 0.5),
    ]
    notes = [
        f"- 1: {n} requests per trial ({ctx.plan.seed_batch} for seed-style), "
        f"{ctx.plan.reps} interleaved rounds. FakeListChatModel's `ainvoke` runs its sync "
        "`_generate` in a thread pool; NoIOChatModel (bench/floor_model.py) is native async, "
        "so the second ratio is the stricter one.",
    ]
    ratios = {
        "1 vs raw+fake": (r_fake, 1.15),
        "1 vs raw+floor": (r_floor, 1.15),
        "1 vs seed-style": (r_seed, 0.5),
    }
    return Section(rows, notes, ratios, series=t)


def _stream_value(sample: Sample) -> str:
    return (
        f"first {ms(sample['ttfc'])}, total {ms(sample['total'])}, "
        f"{sample['chunks']:.0f} chunks received"
    )


def streaming(ctx: Context) -> Section:
    """2: a 200 KB answer in 4,000 writes."""
    openers = clients.stream_openers(ctx.endpoint, ctx.session, STREAM_SIZE, STREAM_CHUNKS)
    floor = clients.floor_model(STREAM_SIZE, STREAM_CHUNKS)
    openers["floor"] = lambda: floor.astream(MESSAGES)
    trials = {
        name: on_loop(ctx.runner, lambda opener=opener: stream_sample(opener))
        for name, opener in openers.items()
    }
    m = interleave(trials, ctx.plan.reps)
    writes = ctx.runner.run(clients.server_stats(ctx.session, ctx.endpoint))["writes"]
    total = m["gprochat"]["total"] / (m["raw"]["total"] + m["floor"]["total"])
    ttfc = m["gprochat"]["ttfc"] / (m["raw"]["ttfc"] + m["floor"]["ttfc"])
    rows = [Row(f"stream.{name}", _stream_value(sample)) for name, sample in m.items()]
    rows += [
        Row("stream.writes", f"{writes:.0f}", f"{STREAM_CHUNKS}", verdict(writes == STREAM_CHUNKS)),
        ratio_row("stream.ratio_total", total, 1.15),
        ratio_row("stream.ratio_ttfc", ttfc, 1.15),
    ]
    notes = [
        "- 2: the server makes 4,000 `write()` calls of 50 bytes; TLS records and TCP "
        "segments get coalesced on the way, so the client sees fewer, larger reads "
        '("chunks received" counts non-empty chunks per variant; ChatGPROChat reads up to '
        "64 KiB at a time and yields one chunk per read). The floor yields exactly 4,000 "
        f"chunks. {ctx.plan.reps} interleaved rounds.",
    ]
    return Section(rows, notes, {"2 total": (total, 1.15), "2 first chunk": (ttfc, 1.15)})


def _memory(ctx: Context, variant: str) -> dict[str, float]:
    command = [
        sys.executable,
        str(HERE / "memory_child.py"),
        "--variant",
        variant,
        "--port",
        str(ctx.endpoint.port),
        "--ca",
        ctx.endpoint.ca_path,
        "--n",
        str(ctx.plan.concurrency),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out)
    return result


def _memory_rows(ctx: Context) -> list[Row]:
    found: dict[str, list[dict[str, float]]] = {"gprochat": [], "raw": []}
    for _ in range(ctx.plan.mem_reps):
        for variant, samples in found.items():
            samples.append(_memory(ctx, variant))
    rows = []
    for variant, samples in found.items():
        rss = sorted(s["rss_delta_mb"] for s in samples)[len(samples) // 2]
        peak = sorted(s["tracemalloc_peak_mb"] for s in samples)[len(samples) // 2]
        value = f"RSS +{rss:.1f} MB (cold run), tracemalloc peak {peak:.1f} MB (warm run)"
        rows.append(Row(f"conc.mem_{variant}", value))
    return rows


def concurrency(ctx: Context) -> Section:
    """3: many concurrent astreams on one loop."""
    n = ctx.plan.concurrency
    openers = clients.stream_openers(ctx.endpoint, ctx.session, CONC_SIZE, CONC_CHUNKS)
    floor = clients.floor_model(CONC_SIZE, CONC_CHUNKS)
    openers["floor"] = lambda: floor.astream(MESSAGES)
    trials = {
        name: on_loop(
            ctx.runner, lambda opener=opener: gather_sample(lambda: stream_sample(opener), n)
        )
        for name, opener in openers.items()
    }
    m = interleave(trials, ctx.plan.conc_reps)
    ratio = m["gprochat"]["wall"] / m["raw"]["wall"]
    ratio_floor = m["gprochat"]["wall"] / (m["raw"]["wall"] + m["floor"]["wall"])
    no_errors = not any(sample["errors"] for sample in m.values())
    rows = [
        Row(f"conc.{name}", f"{n} streams: wall {ms(s['wall'])}, {s['errors']:.0f} errors")
        for name, s in m.items()
    ]
    rows += [
        ratio_row("conc.ratio", ratio, 1.3, no_errors),
        Row("conc.ratio_floor", f"{ratio_floor:.3f}", "(information)"),
    ]
    rows += _memory_rows(ctx)
    notes = [
        f"- 3: {n} concurrent `astream`s of a {CONC_SIZE}-byte answer in {CONC_CHUNKS} writes, "
        f"`asyncio.gather` on one loop, {ctx.plan.conc_reps} interleaved rounds; errors are the "
        "worst round. Memory: one fresh child process per variant and round "
        "(bench/memory_child.py): growth of peak RSS (`VmHWM`, reset via /proc/self/clear_refs) "
        "over the first (cold) round, "
        "then the tracemalloc peak of a second (warm) round.",
    ]
    return Section(rows, notes, {"3 wall": (ratio, 1.3)})


def _demo_trial(ctx: Context) -> Sample:
    llm = clients.gprochat(ctx.endpoint, DEMO_SIZE, DEMO_CHUNKS, DEMO_PAUSE_MS)
    start, first = time.monotonic(), 0.0
    for chunk in llm.stream(MESSAGES):
        if not first and chunk.content:
            first = time.monotonic()
    llm.close()
    finished = ctx.runner.run(clients.server_stats(ctx.session, ctx.endpoint))["finished"]
    return {"first": first - start, "finished": finished - start}


def sync(ctx: Context) -> Section:
    """4: invoke vs ainvoke, and sync stream() yielding before the server finished."""
    llm, n = clients.gprochat(ctx.endpoint, SEQ_SIZE), ctx.plan.seq_batch
    m = interleave(
        {
            "invoke": per_call_sync(lambda: llm.invoke(MESSAGES), n),
            "ainvoke": per_call_async(ctx.runner, lambda: llm.ainvoke(MESSAGES), n),
        },
        ctx.plan.reps,
    )
    llm.close()
    ratio = m["invoke"]["per_call"] / m["ainvoke"]["per_call"]
    demo = interleave({"demo": lambda: _demo_trial(ctx)}, ctx.plan.demo_reps, warmup=0)["demo"]
    rows = [
        Row("sync.invoke", us(m["invoke"]["per_call"]) + " / request"),
        Row("sync.ainvoke", us(m["ainvoke"]["per_call"]) + " / request"),
        ratio_row("sync.ratio", ratio, 1.2),
        Row(
            "sync.stream",
            f"first chunk at {ms(demo['first'])}, server finished at {ms(demo['finished'])}",
            "first < finished",
            verdict(demo["first"] < demo["finished"]),
        ),
    ]
    notes = [
        f"- 4: the server pauses {DEMO_PAUSE_MS} ms half way through a {DEMO_SIZE}-byte "
        f"answer of {DEMO_CHUNKS} writes; both times are from the start of `stream()` "
        "(`time.monotonic`, CLOCK_MONOTONIC, shared by client and server process), medians "
        f"of {ctx.plan.demo_reps} fresh models.",
    ]
    return Section(rows, notes, {"4 invoke/ainvoke": (ratio, 1.2)})
