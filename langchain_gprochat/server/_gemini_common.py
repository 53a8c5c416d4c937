"""What both Gemini backends share: the upstream app's configuration and request constants.

The upstream GeminiProChat app reads ``GEMINI_API_KEY``, ``GEMINI_MODEL_NAME`` (default
``gemini-2.5-flash``) and ``API_BASE_URL`` (trimmed, one trailing ``/`` dropped), calls
``{API_BASE_URL}/v1/models/{model}:streamGenerateContent?alt=sse`` with the key in the
``x-goog-api-key`` header, sends ``maxOutputTokens: 8000`` and every safety category at
``BLOCK_NONE``, and does not retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from langchain_gprochat.server.env import (
    GEMINI_API_KEY_ENV,
    GEMINI_BASE_URL_ENV,
    GEMINI_MODEL_ENV,
)

__all__ = [
    "GEMINI_API_VERSION",
    "GEMINI_DEFAULT_BASE_URL",
    "GEMINI_DEFAULT_MODEL",
    "GEMINI_MAX_OUTPUT_TOKENS",
    "SAFETY_CATEGORIES",
    "GeminiConfig",
]

GEMINI_DEFAULT_MODEL = "gemini-2.5-flash"
"""The upstream's model when ``GEMINI_MODEL_NAME`` is unset or empty."""
GEMINI_MAX_OUTPUT_TOKENS = 8000
"""The upstream's ``maxOutputTokens``."""
GEMINI_API_VERSION = "v1"
"""The API version in the upstream's request path."""
GEMINI_DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
"""Google's endpoint, used when ``API_BASE_URL`` is unset or empty."""
SAFETY_CATEGORIES = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
"""The safety categories the upstream sends, in its order, each at ``BLOCK_NONE``."""


@dataclass(frozen=True)
class GeminiConfig:
    """What a Gemini backend is built from; ``api_key`` never appears in ``repr()``.

    Attributes:
        model: the Gemini model name.
        api_key: the Gemini API key; ``None`` when ``GEMINI_API_KEY`` is unset or empty
            (each backend then tries ``GOOGLE_API_KEY``).
        base_url: the API endpoint; ``None`` for Google's.
    """

    model: str = GEMINI_DEFAULT_MODEL
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], model: str | None = None) -> GeminiConfig:
        """Read the upstream's variables; ``model``, when given, replaces its model."""
        base_url = environ.get(GEMINI_BASE_URL_ENV, "").strip().removesuffix("/")
        return cls(
            model=model or environ.get(GEMINI_MODEL_ENV) or GEMINI_DEFAULT_MODEL,
            api_key=environ.get(GEMINI_API_KEY_ENV) or None,
            base_url=base_url or None,
        )
