"""A local gprochat-compatible server, for offline development and tests.

It speaks the protocol of the GeminiProChat web app (see PROTOCOL.md) on
``POST /api/generate`` and ``POST /api/auth``, answers with a pluggable backend
(an echo by default, or any LangChain chat model) and can inject faults on request.

``import langchain_gprochat`` does not import this package (nor ``aiohttp.web``).

Example:
    .. code-block:: python

        from langchain_gprochat.server import GPROChatServer

        with GPROChatServer() as srv:
            print(srv.url)
"""

from __future__ import annotations

from langchain_gprochat.server.app import ERROR_CONTENT_TYPE, create_app
from langchain_gprochat.server.backends import (
    ECHO_CHUNK_CHARS,
    Backend,
    ChatModelBackend,
    EchoBackend,
    ScriptedBackend,
    ScriptExhaustedError,
    echo_chunks,
    echo_reply,
    load_backend,
)
from langchain_gprochat.server.faults import (
    DEFAULT_FAULT_BODY,
    FAULT_HEADER,
    Fault,
    FaultError,
    filler_text,
    parse_fault,
)
from langchain_gprochat.server.gemini import GeminiConfig, gemini_backend
from langchain_gprochat.server.gemini_direct import (
    GeminiDirectBackend,
    GeminiError,
    gemini_direct_backend,
)
from langchain_gprochat.server.routing import BackendRoutes, load_backends
from langchain_gprochat.server.runner import GPROChatServer
from langchain_gprochat.server.settings import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_BODY_MEMORY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HISTORY_MESSAGES,
    ServerSettings,
    ServerStats,
)
from langchain_gprochat.server.state import STATE_KEY, ServerState

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_FAULT_BODY",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_BODY_MEMORY",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_HISTORY_MESSAGES",
    "ECHO_CHUNK_CHARS",
    "ERROR_CONTENT_TYPE",
    "FAULT_HEADER",
    "STATE_KEY",
    "Backend",
    "BackendRoutes",
    "ChatModelBackend",
    "EchoBackend",
    "Fault",
    "FaultError",
    "GPROChatServer",
    "GeminiConfig",
    "GeminiDirectBackend",
    "GeminiError",
    "ScriptExhaustedError",
    "ScriptedBackend",
    "ServerSettings",
    "ServerState",
    "ServerStats",
    "create_app",
    "echo_chunks",
    "echo_reply",
    "filler_text",
    "gemini_backend",
    "gemini_direct_backend",
    "load_backend",
    "load_backends",
    "parse_fault",
]
