"""A minimal, fast gprochat-like HTTPS server for the benchmarks.

It answers ``POST /b/{size}/{chunks}/{pause_ms}/api/generate`` with a fixed ASCII answer
of ``size`` bytes sent as ``chunks`` separate writes (chunked transfer encoding, like the
upstream), optionally pausing ``pause_ms`` milliseconds half way. It checks no signature:
only the client's cost is being measured. ``GET /stats`` returns the ``time.monotonic()``
at which the last answer finished and how many writes it took (``CLOCK_MONOTONIC`` is
shared by all processes of the machine, so the client can compare it with its own clock).

Run it as a separate process (``python bench/fast_server.py --cert server.pem``): it
prints ``PORT <n>`` once it listens on 127.0.0.1 and serves until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import ssl
import time
from functools import lru_cache

from aiohttp import web

HOST = "127.0.0.1"
_UNIT = "The quick brown fox jumps over the lazy dog. "
_STATS = web.AppKey("stats", dict)


def answer_text(size: int) -> str:
    """The ASCII answer of exactly ``size`` characters (and bytes)."""
    return (_UNIT * (size // len(_UNIT) + 1))[:size]


@lru_cache(maxsize=64)
def answer_parts(size: int, chunks: int) -> tuple[bytes, ...]:
    """The answer split into ``chunks`` parts of (almost) equal size."""
    data = answer_text(size).encode()
    bounds = [i * size // chunks for i in range(chunks + 1)]
    return tuple(data[a:b] for a, b in itertools.pairwise(bounds))


async def generate(request: web.Request) -> web.StreamResponse:
    await request.read()
    info = request.match_info
    parts = answer_parts(int(info.get("size", 1024)), int(info.get("chunks", 1)))
    pause = int(info.get("pause", 0)) / 1000
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await response.prepare(request)
    half = len(parts) // 2
    for index, part in enumerate(parts):
        if pause and index == half:
            await asyncio.sleep(pause)
        if request.transport is None or request.transport.is_closing():
            return response  # the client went away
        await response.write(part)
    await response.write_eof()
    request.app[_STATS].update(finished=time.monotonic(), writes=len(parts))
    return response


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[_STATS])


def create_app() -> web.Application:
    app = web.Application()
    app[_STATS] = {"finished": 0.0, "writes": 0}
    app.router.add_post("/api/generate", generate)
    app.router.add_post("/b/{size:\\d+}/{chunks:\\d+}/{pause:\\d+}/api/generate", generate)
    app.router.add_get("/stats", stats)
    return app


async def serve(cert: str, port: int) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert)
    runner = web.AppRunner(create_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, ssl_context=context, backlog=2048)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True, help="PEM file: server key and chain")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.cert, args.port))


if __name__ == "__main__":
    main()
