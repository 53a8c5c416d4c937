"""``--backend gemini``: ``ChatGoogleGenerativeAI`` configured as the upstream app's Gemini.

The upstream GeminiProChat app reads ``GEMINI_API_KEY``, ``GEMINI_MODEL_NAME`` (default
``gemini-2.5-flash``) and ``API_BASE_URL`` (trimmed, one trailing ``/`` dropped), calls
``{API_BASE_URL}/v1/models/{model}:streamGenerateContent?alt=sse`` with the key in the
``x-goog-api-key`` header, sends ``maxOutputTokens: 8000`` and every safety category at
``BLOCK_NONE``, and does not retry. This backend does the same through
``langchain-google-genai`` (the ``gemini`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from langchain_gprochat.server.backends import ChatModelBackend
from langchain_gprochat.server.env import (
    GEMINI_API_KEY_ENV,
    GEMINI_BASE_URL_ENV,
    GEMINI_MODEL_ENV,
)

__all__ = [
    "GEMINI_API_VERSION",
    "GEMINI_DEFAULT_MODEL",
    "GEMINI_MAX_OUTPUT_TOKENS",
    "GeminiConfig",
    "gemini_backend",
    "gemini_model",
]

GEMINI_DEFAULT_MODEL = "gemini-2.5-flash"
"""The upstream's model when ``GEMINI_MODEL_NAME`` is unset or empty."""
GEMINI_MAX_OUTPUT_TOKENS = 8000
"""The upstream's ``maxOutputTokens``."""
GEMINI_API_VERSION = "v1"
"""The API version in the upstream's request path."""

_SAFETY_CATEGORIES = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
_INSTALL_HINT = "pip install 'langchain-gprochat[gemini]'"


@dataclass(frozen=True)
class GeminiConfig:
    """What the Gemini backend is built from; ``api_key`` never appears in ``repr()``.

    Attributes:
        model: the Gemini model name.
        api_key: the Gemini API key; ``None`` leaves it to ``langchain-google-genai``
            (which reads ``GOOGLE_API_KEY``).
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


def gemini_model(config: GeminiConfig) -> Any:
    """A ``ChatGoogleGenerativeAI`` as the upstream configures Gemini.

    Raises:
        ValueError: ``langchain-google-genai`` is not installed, or it refused the
            configuration (no API key, a malformed endpoint); the message says how to
            fix it and never holds the key.
    """
    try:
        from langchain_google_genai import (
            ChatGoogleGenerativeAI,
            HarmBlockThreshold,
            HarmCategory,
        )
    except ImportError as exc:
        raise ValueError(
            f"invalid backend 'gemini': it needs langchain-google-genai ({_INSTALL_HINT}): {exc}"
        ) from None
    options: dict[str, Any] = {"api_version": GEMINI_API_VERSION}
    if config.api_key is not None:
        options["api_key"] = config.api_key
    if config.base_url is not None:
        options["base_url"] = config.base_url
    safety = {HarmCategory[name]: HarmBlockThreshold.BLOCK_NONE for name in _SAFETY_CATEGORIES}
    try:
        return ChatGoogleGenerativeAI(
            model=config.model,
            temperature=None,  # not sent: Gemini's own default, as upstream
            max_output_tokens=GEMINI_MAX_OUTPUT_TOKENS,
            safety_settings=safety,
            max_retries=1,  # one attempt, as upstream; the client retries
            **options,
        )
    except ValueError as exc:
        raise ValueError(f"invalid backend 'gemini': {_reason(exc, config)}") from None


def _reason(exc: ValueError, config: GeminiConfig) -> str:
    """The refusal in one line: the messages only (a pydantic error's input holds the key)."""
    if isinstance(exc, ValidationError):
        messages = [error["msg"] for error in exc.errors(include_url=False, include_input=False)]
        reason = "; ".join(message.removeprefix("Value error, ") for message in messages)
    else:
        reason = str(exc)
    reason = " ".join(reason.split())
    if config.api_key is None and "API key" in reason:
        return f"no API key: set {GEMINI_API_KEY_ENV} (or GOOGLE_API_KEY)"
    return reason.replace(config.api_key, "***") if config.api_key else reason


def gemini_backend(
    environ: Mapping[str, str] | None = None, model: str | None = None
) -> ChatModelBackend:
    """The Gemini backend configured from the upstream's variables.

    Args:
        environ: the environment to read (default ``os.environ``).
        model: the model, instead of ``GEMINI_MODEL_NAME`` (``--backend gemini/MODEL``).

    Raises:
        ValueError: see :func:`gemini_model`.
    """
    config = GeminiConfig.from_env(os.environ if environ is None else environ, model)
    return ChatModelBackend(gemini_model(config))
