"""The settings of ``ChatGPROChat``: its fields, their checks, and what they report.

:class:`GPROChatFields` is the base class of :class:`~langchain_gprochat.ChatGPROChat`:
every field (with its env var and default), the validators, the LangChain metadata
(secrets, identifying and tracing parameters), and the transport settings built from
the fields. The behaviour lives in :mod:`langchain_gprochat.chat_models`.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

from langchain_gprochat._client import Client, CopyableLock
from langchain_gprochat._transport import TransportSettings
from langchain_gprochat._urls import has_userinfo, redact_url
from langchain_gprochat.protocol import DEFAULT_BASE_URL, DEFAULT_SECRET_KEY, GENERATION_SETTINGS

__all__ = ["UNSUPPORTED", "GPROChatFields", "unsupported"]

UNSUPPORTED = {
    "n": "the endpoint returns one answer per request; call it again (or use `batch`)",
    "seed": "the endpoint has no seed setting",
    "frequency_penalty": "the gprochat protocol has no penalty settings",
    "presence_penalty": "the gprochat protocol has no penalty settings",
    "logprobs": "the endpoint streams plain text, without token probabilities",
    "top_logprobs": "the endpoint streams plain text, without token probabilities",
    "logit_bias": "the gprochat protocol has no logit bias setting",
}
"""Parameters of other chat models that this endpoint cannot honour, and why."""


def unsupported(name: str) -> str:
    """The message refusing the parameter ``name`` (construction and per call)."""
    return f"ChatGPROChat does not take `{name}`: {UNSUPPORTED[name]}."


_TRANSPORT = TransportSettings(base_url=DEFAULT_BASE_URL)
"""The transport's defaults, which the fields of the same meaning take."""

_SAME_AS_TRANSPORT = tuple(
    name
    for name in TransportSettings.__dataclass_fields__
    if name not in ("total_timeout", "headers")
)
"""Fields passed to the transport as they are (``timeout`` and the headers are not)."""


class GPROChatFields(BaseChatModel):
    """The fields of ``ChatGPROChat`` and what derives from them (see its docstring)."""

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, extra="forbid")

    model: str = Field(default="gemini-1.5-pro", alias="model_name")
    """A label for metadata and tracing; the deployment decides the real model.

    A per-call ``model=`` (``llm.invoke(..., model="x")``) is also sent in the request
    body as ``model``: the upstream ignores it, and ``gprochat-server`` with named
    backends answers with the backend of that name.
    """

    base_url: str = Field(
        default_factory=from_env("GPROCHAT_BASE_URL", default=DEFAULT_BASE_URL),
        validate_default=True,
    )
    """Root URL of the deployment (env ``GPROCHAT_BASE_URL``)."""

    secret_key: SecretStr = Field(
        default_factory=secret_from_env("GPROCHAT_SECRET_KEY", default=DEFAULT_SECRET_KEY)
    )
    """The deployment's ``PUBLIC_SECRET_KEY`` (env ``GPROCHAT_SECRET_KEY``)."""

    password: SecretStr | None = Field(
        default_factory=secret_from_env("GPROCHAT_PASSWORD", default=None)
    )
    """The site password, or ``None`` (env ``GPROCHAT_PASSWORD``)."""

    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("GPROCHAT_API_KEY", default=None)
    )
    """Sent as ``Authorization: Bearer <api_key>``, for a deployment behind an
    authenticating gateway (env ``GPROCHAT_API_KEY``). The upstream app has no API key
    and ignores the header."""

    temperature: float | None = Field(default=None, ge=0)
    """Sampling temperature, sent as ``generationConfig.temperature``."""

    max_tokens: int | None = Field(default=None, ge=1, alias="max_output_tokens")
    """Longest answer in tokens, sent as ``generationConfig.maxOutputTokens``."""

    top_p: float | None = Field(default=None, ge=0, le=1)
    """Nucleus sampling, sent as ``generationConfig.topP``."""

    top_k: int | None = Field(default=None, ge=1)
    """Top-k sampling, sent as ``generationConfig.topK``."""

    history_mode: Literal["native", "prompt"] = "native"
    """``native``: role/parts turns; ``prompt``: one flattened user message."""

    max_history_messages: int | None = Field(default=None, ge=1)
    """Send only this many of the latest turns (``None``: all of them)."""

    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Stop sequences applied to every call unless the call gives its own."""

    streaming: bool = False
    """Stream internally in ``invoke`` (so callbacks see tokens)."""

    timeout: float | None = Field(default=_TRANSPORT.total_timeout, alias="request_timeout", gt=0)
    """Seconds for the whole request, ``None`` for no limit."""

    connect_timeout: float | None = Field(default=_TRANSPORT.connect_timeout, gt=0)
    """Seconds to establish the TCP (and TLS) connection."""

    first_byte_timeout: float | None = Field(default=_TRANSPORT.first_byte_timeout, gt=0)
    """Seconds from sending the request to the first byte of the answer."""

    chunk_timeout: float | None = Field(default=_TRANSPORT.chunk_timeout, gt=0)
    """Largest gap in seconds between two chunks of the answer."""

    max_retries: int = Field(default=_TRANSPORT.max_retries, ge=0)
    """How many times a failed request is retried (never after text arrived)."""

    retry_base_delay: float = Field(default=_TRANSPORT.retry_base_delay, ge=0)
    """First backoff delay in seconds; doubles each retry, with jitter."""

    retry_max_delay: float = Field(default=_TRANSPORT.retry_max_delay, ge=0)
    """Largest backoff delay in seconds."""

    retry_after_max: float = Field(default=_TRANSPORT.retry_after_max, ge=0)
    """Cap in seconds on a server's ``Retry-After``."""

    proxy: str | None = Field(
        default_factory=from_env("GPROCHAT_PROXY", default=None),
        repr=False,
        validate_default=True,
    )
    """Proxy URL: http, https or (``socks`` extra) socks4/socks5 (env ``GPROCHAT_PROXY``)."""

    verify: bool | str = True
    """Verify TLS certificates: ``True``, ``False``, or a CA bundle path."""

    ssl_context: ssl.SSLContext | None = Field(default=None, exclude=True)
    """A TLS context to use instead of ``verify``."""

    default_headers: dict[str, str] | None = None
    """Extra headers sent with every request (for example ``origin``/``referer``)."""

    max_connections: int = Field(default=_TRANSPORT.max_connections, ge=1)
    """Size of the connection pool of each session."""

    _client: Client | None = PrivateAttr(default=None)
    _client_lock: CopyableLock = PrivateAttr(default_factory=CopyableLock)
    _unconfirmed: set[str] = PrivateAttr(default_factory=set)
    """Settings already warned about as not confirmed by the endpoint (once each)."""

    # -- validation -----------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _reject_unsupported(cls, values: Any) -> Any:
        if isinstance(values, dict):
            for name in UNSUPPORTED:
                if name in values:
                    raise ValueError(unsupported(name))
        return values

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @field_validator("proxy")
    @classmethod
    def _check_proxy(cls, value: str | None) -> str | None:
        schemes = ("http://", "https://", "socks4://", "socks5://", "socks5h://")
        if value and not value.startswith(schemes):
            raise ValueError("proxy must be an http://, https://, socks4:// or socks5:// URL")
        return value or None

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, value: list[str] | None) -> list[str] | None:
        return value or None

    # -- LangChain metadata ---------------------------------------------------------

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """ChatGPROChat can be serialized with ``dumpd``; secrets are left out."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """``["langchain_gprochat", "chat_models"]``."""
        return ["langchain_gprochat", "chat_models"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Secret fields and the env vars they load from.

        ``base_url`` and ``proxy`` count as secrets when they carry credentials
        (``https://user:password@host``); ``load`` then takes them from ``secrets_map``.
        """
        secrets = {
            "secret_key": "GPROCHAT_SECRET_KEY",
            "password": "GPROCHAT_PASSWORD",
            "api_key": "GPROCHAT_API_KEY",
        }
        if has_userinfo(self.base_url):
            secrets["base_url"] = "GPROCHAT_BASE_URL"
        if has_userinfo(self.proxy):
            secrets["proxy"] = "GPROCHAT_PROXY"
        return secrets

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "base_url" else value

    @field_serializer("base_url", "proxy")
    def _serialize_url(self, value: str | None) -> str | None:
        """URLs as ``model_dump`` gives them: credentials replaced by ``***``."""
        return None if value is None else redact_url(value)

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base_url": redact_url(self.base_url),
            "history_mode": self.history_mode,
            **self._generation(),
        }

    def _generation(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The standard generation settings that are set, call overrides applied."""
        values = {name: getattr(self, name) for name in GENERATION_SETTINGS}
        values.update(overrides or {})
        return {name: value for name, value in values.items() if value is not None}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="gprochat",
            ls_model_name=kwargs.get("model") or self.model,
            ls_model_type="chat",
        )
        generation = self._generation(
            {name: kwargs[name] for name in GENERATION_SETTINGS if name in kwargs}
        )
        if "temperature" in generation:
            params["ls_temperature"] = generation["temperature"]
        if "max_tokens" in generation:
            params["ls_max_tokens"] = generation["max_tokens"]
        if ls_stop := stop or self.stop:
            params["ls_stop"] = ls_stop
        return params

    # -- resources ------------------------------------------------------------------

    def _settings(self) -> TransportSettings:
        return TransportSettings(
            **{name: getattr(self, name) for name in _SAME_AS_TRANSPORT},
            total_timeout=self.timeout,
            headers=self._headers(),
        )

    def _headers(self) -> dict[str, str]:
        headers = dict(self.default_headers or {})
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        return headers
