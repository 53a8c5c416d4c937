"""The client variants being compared, all talking to the same fast server."""

from __future__ import annotations

import hashlib
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from fast_server import answer_parts
from floor_model import NoIOChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage, HumanMessage
from loopback import Endpoint

from langchain_gprochat import ChatGPROChat
from langchain_gprochat._convert import messages_to_turns
from langchain_gprochat.protocol import DEFAULT_SECRET_KEY, RequestEncoder

PROMPT = "Tell me something about foxes."
MESSAGES: list[BaseMessage] = [HumanMessage(PROMPT)]
CONNECTION_LIMIT = 100
"""ChatGPROChat's default ``max_connections``; raw aiohttp gets the same limit."""


def gprochat(endpoint: Endpoint, size: int, chunks: int = 1, pause_ms: int = 0) -> ChatGPROChat:
    """ChatGPROChat on the fast server, trusting the test CA, without retries."""
    return ChatGPROChat(
        base_url=endpoint.base_url(size, chunks, pause_ms),
        ssl_context=endpoint.client_context(),
        max_retries=0,
    )


def floor_model(size: int, chunks: int = 1) -> NoIOChatModel:
    """The no-I/O LangChain model answering the same text in the same chunks."""
    return NoIOChatModel(parts=[part.decode() for part in answer_parts(size, chunks)])


def fake_list_model(size: int) -> FakeListChatModel:
    """LangChain's own fake model answering the same text."""
    return FakeListChatModel(responses=["".join(floor_model(size).parts)])


def request_body() -> bytes:
    """The exact body ChatGPROChat sends for ``MESSAGES`` (signed once)."""
    encoder = RequestEncoder(
        messages_to_turns(MESSAGES), password=None, secret_key=DEFAULT_SECRET_KEY
    )
    return encoder.encode(time.time_ns() // 1_000_000)


def raw_session(endpoint: Endpoint) -> aiohttp.ClientSession:
    """A reused aiohttp session with ChatGPROChat's connection limit (call on the loop)."""
    connector = aiohttp.TCPConnector(limit=CONNECTION_LIMIT, ssl=endpoint.client_context())
    return aiohttp.ClientSession(connector=connector)


async def raw_read(session: aiohttp.ClientSession, url: str, body: bytes) -> bytes:
    """Raw aiohttp: post and read the whole body."""
    async with session.post(url, data=body) as response:
        response.raise_for_status()
        return await response.read()


async def raw_stream(session: aiohttp.ClientSession, url: str, body: bytes) -> AsyncIterator[bytes]:
    """Raw aiohttp: post and yield the body as it arrives (``iter_any``)."""
    async with session.post(url, data=body) as response:
        response.raise_for_status()
        async for data in response.content.iter_any():
            yield data


def _seed_sign(timestamp: int, message: str) -> str:
    return hashlib.sha256(f"{timestamp}:{message}:{DEFAULT_SECRET_KEY}".encode()).hexdigest()


async def seed_style(context: ssl.SSLContext, url: str) -> str:
    """The gpt4free GPROChat provider: a new ClientSession per request, chunks decoded."""
    timestamp = int(time.time() * 1000)
    data = {
        "messages": [{"role": "user", "parts": [{"text": PROMPT}]}],
        "time": timestamp,
        "pass": None,
        "sign": _seed_sign(timestamp, PROMPT),
    }
    connector = aiohttp.TCPConnector(ssl=context)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(url, json=data) as response,
    ):
        response.raise_for_status()
        return "".join([chunk.decode() async for chunk in response.content.iter_any()])


StreamOpener = Callable[[], AsyncIterator[Any]]


def stream_openers(
    endpoint: Endpoint, session: aiohttp.ClientSession, size: int, chunks: int
) -> dict[str, StreamOpener]:
    """``astream`` of ChatGPROChat and raw aiohttp streaming of the same answer."""
    llm = gprochat(endpoint, size, chunks)
    url, body = endpoint.generate_url(size, chunks), request_body()
    return {
        "gprochat": lambda: llm.astream(MESSAGES),
        "raw": lambda: raw_stream(session, url, body),
    }


async def server_stats(session: aiohttp.ClientSession, endpoint: Endpoint) -> dict[str, float]:
    """The fast server's record of its last answer (finish time, number of writes)."""
    async with session.get(endpoint.stats_url) as response:
        stats: dict[str, float] = await response.json()
        return stats
