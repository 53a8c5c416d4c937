"""``--backend gemini``: Gemini's REST API called directly, as the upstream app calls it.

The request is the upstream's, field for field (its ``@fuyun/generative-ai`` chat
session): ``POST {API_BASE_URL}/v1/models/{model}:streamGenerateContent?alt=sse`` with
the key in ``x-goog-api-key`` and the body ``{"safetySettings": [...], "generationConfig":
{"maxOutputTokens": 8000}, "contents": [...]}``, the history and the last message with
their roles (``user``, ``model``) and each turn's parts joined into one text. The answer's
Server-Sent Events are read as they arrive (:mod:`~langchain_gprochat.server._gemini_sse`).

Why not ``ChatGoogleGenerativeAI`` (``--backend gemini-langchain``): langchain-google-genai
and google-genai cost about 4 ms of CPU per streamed answer, more than the upstream app's
whole request, so a server in front of them serves a fraction of the upstream's
throughput. This client needs nothing beyond aiohttp.

One ``aiohttp.ClientSession`` per event loop is made on first use (so each gunicorn
worker has its own) and closed by :meth:`GeminiDirectBackend.aclose`, which the server
calls when its application shuts down.
"""

from __future__ import annotations

import asyncio
import json
import os
import weakref
from collections.abc import AsyncIterator, Mapping
from copy import copy as shallow_copy
from typing import Any

import aiohttp
from yarl import URL

from langchain_gprochat.protocol import Turn, turn_text
from langchain_gprochat.server._gemini_common import (
    GEMINI_API_VERSION,
    GEMINI_DEFAULT_BASE_URL,
    GEMINI_MAX_OUTPUT_TOKENS,
    SAFETY_CATEGORIES,
    GeminiConfig,
)
from langchain_gprochat.server._gemini_sse import GeminiError, SSEParser, error_message, event_text
from langchain_gprochat.server.env import GEMINI_API_KEY_ENV
from langchain_gprochat.server.generation import MODEL_FIELDS

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "GeminiDirectBackend",
    "GeminiError",
    "gemini_direct_backend",
]

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds to connect to the Gemini API."""
DEFAULT_READ_TIMEOUT = 120.0
"""Seconds to wait for the answer's headers, and then between two reads of its body."""

_SPEC = "gemini"
_GOOGLE_API_KEY_ENV = "GOOGLE_API_KEY"
_SAFETY_SETTINGS = tuple({"category": c, "threshold": "BLOCK_NONE"} for c in SAFETY_CATEGORIES)
_MAX_ERROR_BODY = 64 * 1024
_ERROR_BODY_TIMEOUT = 10.0


async def _read_bounded(content: aiohttp.StreamReader) -> bytes:
    body = b""
    while len(body) < _MAX_ERROR_BODY:
        chunk = await content.read(_MAX_ERROR_BODY - len(body))
        if not chunk:
            break
        body += chunk
    return body


class _Sessions:
    """One ``aiohttp.ClientSession`` per event loop, made on first use."""

    def __init__(self, timeout: aiohttp.ClientTimeout) -> None:
        self._timeout = timeout
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession]
        self._by_loop = weakref.WeakKeyDictionary()

    def get(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._by_loop.get(loop)
        if session is None or session.closed:
            # No pool cap of its own: the server's --max-connections bounds the streams.
            connector = aiohttp.TCPConnector(limit=0)
            session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
            self._by_loop[loop] = session
        return session

    async def aclose(self) -> None:
        session = self._by_loop.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()


def _checked_base_url(base_url: str) -> URL:
    try:
        url = URL(base_url)
    except (TypeError, ValueError):
        url = URL()
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"invalid backend {_SPEC!r}: API_BASE_URL must be an http:// or https:// URL "
            "with a host, e.g. https://generativelanguage.googleapis.com"
        )
    return url


class GeminiDirectBackend:
    """Streams Gemini's answer from its REST API, with the upstream app's request.

    Args:
        model: the Gemini model name.
        api_key: the API key (sent in ``x-goog-api-key``; never in a repr or a message).
        base_url: the API endpoint (default Google's), without a trailing ``/``.
        connect_timeout: seconds to connect.
        read_timeout: seconds to wait for the answer, and then between two reads.

    Raises:
        ValueError: ``base_url`` is not an http(s) URL with a host, or the key is empty.
    """

    def __init__(
        self,
        model: str,
        api_key: str,
        base_url: str = GEMINI_DEFAULT_BASE_URL,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> None:
        if not api_key:
            raise ValueError(f"invalid backend {_SPEC!r}: the API key is empty")
        base = _checked_base_url(base_url)
        self.model = model
        self._shown_base = str(base.with_user(None))  # no credentials in the repr
        path = f"{base_url}/{GEMINI_API_VERSION}/models/{model}:streamGenerateContent?alt=sse"
        self._url = URL(path)
        self._headers = {"Content-Type": "application/json", "x-goog-api-key": api_key}
        self._key = api_key
        self._generation: dict[str, float | int] = {"maxOutputTokens": GEMINI_MAX_OUTPUT_TOKENS}
        timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        self._sessions = _Sessions(timeout)

    def __repr__(self) -> str:
        return f"GeminiDirectBackend(model={self.model!r}, base_url={self._shown_base!r})"

    @property
    def generation_config(self) -> dict[str, float | int]:
        """The ``generationConfig`` this backend sends (a copy)."""
        return dict(self._generation)

    def with_generation(
        self, settings: Mapping[str, float | int]
    ) -> tuple[GeminiDirectBackend, list[str]]:
        """The backend with the request's ``generationConfig`` settings sent to Gemini.

        Every setting the server validates (``temperature``, ``maxOutputTokens``,
        ``topP``, ``topK``) is one of Gemini's own, so all are applied; the copy shares
        this backend's sessions.

        Returns:
            The backend for one request and the names of the settings applied.
        """
        applied = [name for name in settings if name in MODEL_FIELDS]
        if not applied:
            return self, []
        copy = shallow_copy(self)
        copy._generation = {**self._generation, **{name: settings[name] for name in applied}}
        return copy, applied

    def request_body(self, turns: list[Turn]) -> bytes:
        """The JSON body sent for ``turns``, as the upstream's ``JSON.stringify`` writes it."""
        body: dict[str, Any] = {
            "safetySettings": _SAFETY_SETTINGS,
            "generationConfig": self._generation,
            "contents": [
                {"role": turn.role, "parts": [{"text": turn_text(turn)}]} for turn in turns
            ],
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    async def stream(self, turns: list[Turn]) -> AsyncIterator[str]:
        """Stream Gemini's answer to ``turns``; events without text are skipped.

        Raises:
            GeminiError: Gemini answered an error status (the message is Gemini's), an
                ``error`` event, a blocked prompt or an unreadable stream.
            aiohttp.ClientError: the connection failed or was cut.
            TimeoutError: Gemini did not answer, or stalled, past the timeouts.
        """
        session = self._sessions.get()
        data = self.request_body(turns)
        async with session.post(self._url, data=data, headers=self._headers) as response:
            if not 200 <= response.status < 300:
                raise await self._refusal(response)
            parser = SSEParser()
            async for chunk in response.content.iter_any():
                for event in parser.feed(chunk):
                    text = event_text(event)
                    if text:
                        yield text
            for event in parser.close():
                text = event_text(event)
                if text:
                    yield text

    async def aclose(self) -> None:
        """Close the running event loop's session (the server calls it at shutdown)."""
        await self._sessions.aclose()

    async def _refusal(self, response: aiohttp.ClientResponse) -> GeminiError:
        try:
            body = await asyncio.wait_for(_read_bounded(response.content), _ERROR_BODY_TIMEOUT)
        except (aiohttp.ClientError, asyncio.TimeoutError):
            body = b""  # the status alone then
        try:
            message = error_message(json.loads(body))
        except ValueError:
            message = None
        if message is None:
            reason = f" {response.reason}" if response.reason else ""
            message = f"Gemini answered HTTP {response.status}{reason}"
        return GeminiError(message.replace(self._key, "***"), response.status)


def gemini_direct_backend(
    environ: Mapping[str, str] | None = None, model: str | None = None
) -> GeminiDirectBackend:
    """The direct Gemini backend configured from the upstream's variables.

    Args:
        environ: the environment to read (default ``os.environ``): ``GEMINI_API_KEY``
            (else ``GOOGLE_API_KEY``), ``GEMINI_MODEL_NAME``, ``API_BASE_URL``.
        model: the model, instead of ``GEMINI_MODEL_NAME`` (``--backend gemini/MODEL``).

    Raises:
        ValueError: no API key, or ``API_BASE_URL`` is not an http(s) URL; the message
            says what to set and never holds the key.
    """
    environ = os.environ if environ is None else environ
    config = GeminiConfig.from_env(environ, model)
    api_key = config.api_key or environ.get(_GOOGLE_API_KEY_ENV)
    if not api_key:
        raise ValueError(
            f"invalid backend {_SPEC!r}: no API key: set {GEMINI_API_KEY_ENV} "
            f"(or {_GOOGLE_API_KEY_ENV})"
        )
    return GeminiDirectBackend(config.model, api_key, config.base_url or GEMINI_DEFAULT_BASE_URL)
