"""``--backend gemini-langchain``: ``ChatGoogleGenerativeAI`` configured as the upstream's Gemini.

It is configured from the upstream app's variables and sends what the upstream sends
(:mod:`~langchain_gprochat.server._gemini_common`), through ``langchain-google-genai``
(the ``gemini`` extra). ``--backend gemini`` sends the same request with a direct REST
client instead (:mod:`~langchain_gprochat.server.gemini_direct`), at a fraction of the
CPU cost per answer; this one is there for what the LangChain model adds (callbacks,
tracing, the model's own options).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from langchain_gprochat.server._gemini_common import (
    GEMINI_API_VERSION,
    GEMINI_DEFAULT_MODEL,
    GEMINI_MAX_OUTPUT_TOKENS,
    SAFETY_CATEGORIES,
    GeminiConfig,
)
from langchain_gprochat.server.backends import ChatModelBackend
from langchain_gprochat.server.env import GEMINI_API_KEY_ENV

__all__ = [
    "GEMINI_API_VERSION",
    "GEMINI_DEFAULT_MODEL",
    "GEMINI_MAX_OUTPUT_TOKENS",
    "GeminiConfig",
    "gemini_backend",
    "gemini_model",
]

_INSTALL_HINT = "pip install 'langchain-gprochat[gemini]'"
_SPEC = "gemini-langchain"


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
            f"invalid backend '{_SPEC}': it needs langchain-google-genai ({_INSTALL_HINT}): {exc}"
        ) from None
    options: dict[str, Any] = {"api_version": GEMINI_API_VERSION}
    if config.api_key is not None:
        options["api_key"] = config.api_key
    if config.base_url is not None:
        options["base_url"] = config.base_url
    safety = {HarmCategory[name]: HarmBlockThreshold.BLOCK_NONE for name in SAFETY_CATEGORIES}
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
        raise ValueError(f"invalid backend '{_SPEC}': {_reason(exc, config)}") from None


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
