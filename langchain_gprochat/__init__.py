"""LangChain integration for gprochat-compatible (GeminiProChat) chat endpoints.

``import langchain_gprochat`` loads the exception classes only (with
``langchain_core.exceptions``, whose ``ModelError`` family they belong to). The chat
model (and with it the rest of langchain-core and aiohttp) loads on first access to
``langchain_gprochat.ChatGPROChat``; ``discover``, ``adiscover``, ``Deployment`` and
``DiscoveryLimits`` (:mod:`langchain_gprochat.discovery`) likewise on first access; the
local server lives in :mod:`langchain_gprochat.server`, imported on demand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_gprochat.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    DiscoveryError,
    GPROChatError,
    PayloadTooLargeError,
    RateLimitError,
    RedirectError,
    ServerError,
    StreamInterruptedError,
    UnexpectedResponseError,
)

if TYPE_CHECKING:
    from langchain_gprochat.chat_models import ChatGPROChat
    from langchain_gprochat.discovery import Deployment, DiscoveryLimits, adiscover, discover

_DISCOVERY = frozenset({"Deployment", "DiscoveryLimits", "adiscover", "discover"})
"""Names loaded from :mod:`langchain_gprochat.discovery` on first access."""


def __getattr__(name: str) -> Any:
    if name == "ChatGPROChat":
        from langchain_gprochat.chat_models import ChatGPROChat

        return ChatGPROChat
    if name in _DISCOVERY:
        from langchain_gprochat import discovery

        return getattr(discovery, name)
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version("langchain-gprochat")
        except metadata.PackageNotFoundError:  # pragma: no cover - a bare source tree
            return "0.0.0"
    raise AttributeError(f"module 'langchain_gprochat' has no attribute {name!r}")


__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ChatGPROChat",
    "Deployment",
    "DiscoveryError",
    "DiscoveryLimits",
    "GPROChatError",
    "PayloadTooLargeError",
    "RateLimitError",
    "RedirectError",
    "ServerError",
    "StreamInterruptedError",
    "UnexpectedResponseError",
    "__version__",
    "adiscover",
    "discover",
]
