"""A loopback stand-in for the Gemini REST API, for benchmarks: a fixed streamed answer.

``POST /{version}/models/{model}:streamGenerateContent?alt=sse`` answers
:data:`ANSWER` as server-sent events, ``data: {json}`` followed by ``\\r\\n\\r\\n``, one
``GenerateContentResponse`` per chunk on one line, the last with ``finishReason`` and
``usageMetadata``: what Google's endpoint sends, and what both the upstream app's
``@fuyun/generative-ai`` (``/^data: (.*)\\r\\n\\r\\n/``) and ``google-genai`` parse.
``GET /stats`` tells how many answers it gave. Run it as its own process::

    python bench/gemini_standin.py --port 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

from aiohttp import web

ANSWER_CHUNKS = (
    "Sure! Here is a short answer, ",
    "streamed in **five** chunks:\n\n",
    "1. Gemini's SSE format, `data: {json}`\n",
    "2. non-ASCII text: Grüße, 你好, 🌍\n",
    "3. and a final chunk with finishReason STOP.",
)
ANSWER = "".join(ANSWER_CHUNKS)
"""The answer to every request."""
STATS_KEY = web.AppKey("stats", dict)


def _event(text: str, model: str, last: bool) -> bytes:
    candidate: dict[str, object] = {
        "content": {"parts": [{"text": text}], "role": "model"},
        "index": 0,
    }
    data: dict[str, object] = {"candidates": [candidate], "modelVersion": model}
    if last:
        candidate["finishReason"] = "STOP"
        data["usageMetadata"] = {
            "promptTokenCount": 12,
            "candidatesTokenCount": 48,
            "totalTokenCount": 60,
        }
    line = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {line}\r\n\r\n".encode()


def _events(model: str) -> list[bytes]:
    last = len(ANSWER_CHUNKS) - 1
    return [_event(text, model, i == last) for i, text in enumerate(ANSWER_CHUNKS)]


async def stream_generate(request: web.Request) -> web.StreamResponse:
    """Answer ``{model}:streamGenerateContent`` with :data:`ANSWER`, chunk by chunk."""
    model, _, method = request.match_info["target"].partition(":")
    await request.read()
    if method != "streamGenerateContent" or request.query.get("alt") != "sse":
        error = {
            "error": {"code": 404, "message": f"not served here: {method}", "status": "NOT_FOUND"}
        }
        return web.json_response(error, status=404)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for event in _events(model):
        await response.write(event)
    await response.write_eof()
    request.app[STATS_KEY]["answers"] += 1
    return response


async def stats(request: web.Request) -> web.Response:
    """``{"answers": N}``: the streamed answers given so far."""
    return web.json_response(request.app[STATS_KEY])


def create_app() -> web.Application:
    """The stand-in's application."""
    app = web.Application()
    app[STATS_KEY] = {"answers": 0}
    app.router.add_post("/{version}/models/{target}", stream_generate)
    app.router.add_get("/stats", stats)
    return app


async def serve(port: int) -> None:
    """Serve on 127.0.0.1 until cancelled; print the base URL once listening."""
    runner = web.AppRunner(create_app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        print(f"gemini stand-in listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="A loopback stand-in for the Gemini REST API.")
    parser.add_argument("--port", type=int, default=0, help="0 for a free one (default)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
