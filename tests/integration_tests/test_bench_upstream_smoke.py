"""Smoke test of bench/upstream.py's pieces that run without an upstream build.

The Gemini stand-in must speak what both sides parse: google-genai (behind
``ChatGoogleGenerativeAI`` and ``--backend gemini``) and the upstream's
``@fuyun/generative-ai``, whose reader takes one event per ``/^data: (.*)\\r\\n\\r\\n/``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest
from aiohttp import web

BENCH = Path(__file__).resolve().parents[2] / "bench"
_UPSTREAM_EVENT = re.compile(r"^data: (.*)(?:\n\n|\r\r|\r\n\r\n)")  # the upstream's reader


def _standin_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_gemini_standin", BENCH / "gemini_standin.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def standin() -> AsyncIterator[tuple[str, ModuleType]]:
    module = _standin_module()
    runner = web.AppRunner(module.create_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", module
    finally:
        await runner.cleanup()


async def test_standin_events_read_as_the_upstream_reads_them(
    standin: tuple[str, ModuleType],
) -> None:
    url, module = standin
    async with aiohttp.ClientSession() as session:
        target = f"{url}/v1/models/m:streamGenerateContent?alt=sse"
        async with session.post(target, json={"contents": []}) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/event-stream"
            text = await response.text()
        async with session.get(f"{url}/stats") as response:
            assert await response.json() == {"answers": 1}
    texts = []
    while text:
        match = _UPSTREAM_EVENT.match(text)
        assert match, text
        candidate = json.loads(match.group(1))["candidates"][0]
        texts.append(candidate["content"]["parts"][0]["text"])
        text = text[match.end() :]
    assert texts == list(module.ANSWER_CHUNKS)
    assert candidate["finishReason"] == "STOP"


async def test_standin_streams_through_chat_google_generative_ai(
    standin: tuple[str, ModuleType],
) -> None:
    genai = pytest.importorskip("langchain_google_genai")
    url, module = standin
    model = genai.ChatGoogleGenerativeAI(
        model="bench-model", api_key="k", base_url=url, api_version="v1", max_retries=1
    )
    chunks = [chunk.content async for chunk in model.astream("Hi")]
    assert "".join(str(c) for c in chunks) == module.ANSWER


def test_upstream_bench_refuses_a_missing_build(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "upstream.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    missing = tmp_path / "dist" / "server" / "entry.mjs"
    assert result.stderr == f"no upstream build at {tmp_path}: {missing} is missing\n"
