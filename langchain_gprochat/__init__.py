"""LangChain integration for gprochat-compatible (GeminiProChat) chat endpoints.

``import langchain_gprochat`` loads the chat model and its errors only: the local server
lives in :mod:`langchain_gprochat.server`, imported on demand.
"""

from __future__ import annotations

from importlib import metadata

from langchain_gprochat.chat_models import ChatGPROChat
from langchain_gprochat.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    GPROChatError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)

try:
    __version__ = metadata.version("langchain-gprochat")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ChatGPROChat",
    "GPROChatError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "StreamInterruptedError",
    "__version__",
]
