"""One call of the gpt4free-style :class:`~langchain_gprochat.g4f.GPROChat`, prepared; pure.

A call's keyword arguments, the defaults of a ``GPROChat.configure()`` class and the
environment become :class:`Options` (transport settings, signing, stop sequences,
generation settings), and its g4f-style messages (``{"role": ..., "content": ...}``)
become the request's turns (:mod:`langchain_gprochat._g4f_messages`): one user turn
holding the flattened prompt (``history_mode="prompt"``, the default: the original
provider's request) or real ``user``/``model`` turns (``"native"``). No I/O: everything
here raises before a request is made.
"""

from __future__ import annotations

import math
import os
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from langchain_gprochat._g4f_messages import native_turns, prompt_turns
from langchain_gprochat._request import confirmation
from langchain_gprochat._sessions import TransportSettings
from langchain_gprochat._urls import redact_url
from langchain_gprochat.protocol import (
    DEFAULT_BASE_URL,
    DEFAULT_SECRET_KEY,
    GENERATE_PATH,
    GENERATION_SETTINGS,
    RequestEncoder,
)

__all__ = [
    "DEFAULT_MODEL",
    "OFFLINE_HOSTS",
    "OPTIONS",
    "Hidden",
    "Options",
    "Prepared",
    "base_url_of",
    "believed_working",
    "hide",
    "prepare",
    "resolve",
    "secret_key_of",
]

DEFAULT_MODEL = "gemini-1.5-pro"
"""The original provider's ``default_model`` (a label: the deployment picks its model)."""

OFFLINE_HOSTS = frozenset({"gprochat.com", "www.gprochat.com"})
"""Hosts known to be offline: ``GPROChat.working`` is false for them."""

HistoryMode = Literal["prompt", "native"]

_ENV = {
    "base_url": "GPROCHAT_BASE_URL",
    "secret_key": "GPROCHAT_SECRET_KEY",
    "password": "GPROCHAT_PASSWORD",
    "api_key": "GPROCHAT_API_KEY",
    "proxy": "GPROCHAT_PROXY",
}
_TRANSPORT = TransportSettings(base_url=DEFAULT_BASE_URL)
_TIMEOUTS = ("timeout", "connect_timeout", "first_byte_timeout", "chunk_timeout")
OPTIONS = frozenset(
    {
        *_ENV,
        *_TIMEOUTS,
        *GENERATION_SETTINGS,
        "history_mode",
        "max_retries",
        "verify",
        "ssl_context",
        "headers",
        "stop",
    }
)
"""The keyword arguments this facade understands (per call, or in ``configure``)."""

_NONE_IS_UNSET = frozenset({"base_url", "secret_key", "proxy", "api_key", "history_mode"})
"""Options where ``None`` means "not given" (the rest take ``None`` as a value)."""

_HIDDEN = frozenset({*_ENV, "headers"})
"""Options kept as :class:`Hidden` by ``configure`` (they may hold credentials)."""


class Hidden:
    """A configured value that a repr never shows (secret keys, passwords, URLs)."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "Hidden('**********')"


def hide(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with every value that may hold a credential wrapped in :class:`Hidden`."""
    return {k: Hidden(v) if k in _HIDDEN and v is not None else v for k, v in options.items()}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Hidden) else value


@dataclass(frozen=True)
class Options:
    """One call's options, resolved and checked."""

    settings: TransportSettings = field(repr=False)  # its repr shows base_url as given
    secret_key: str = field(repr=False)
    password: str | None = field(repr=False)
    history_mode: HistoryMode = "prompt"
    stop: tuple[str, ...] = ()
    generation: Mapping[str, float | int] = field(default_factory=dict)
    """LangChain's names (``temperature``, ``max_tokens``, ...) of the settings given."""


@dataclass(frozen=True)
class Prepared:
    """A call ready to send: its options and the encoder of its signed bodies."""

    options: Options
    encoder: RequestEncoder
    on_response: Callable[[Mapping[str, str]], None] | None

    def body(self) -> bytes:
        """The body signed now (called once per attempt, so a retry is signed afresh)."""
        return self.encoder.encode(time.time_ns() // 1_000_000)


# -- options ----------------------------------------------------------------------


def _env(name: str) -> str | None:
    return os.environ.get(_ENV[name])


def base_url_of(configured: Mapping[str, Any]) -> str:
    """The base URL a call would use without its own: ``configure``'s, env, default."""
    value = _plain(configured.get("base_url"))
    if value is None:
        value = _env("base_url")
    return DEFAULT_BASE_URL if value is None else str(value)


def secret_key_of(configured: Mapping[str, Any]) -> str:
    """The key a call would sign with without its own: ``configure``'s, env, default."""
    value = _plain(configured.get("secret_key"))
    if value is None:
        value = _env("secret_key")
    return DEFAULT_SECRET_KEY if value is None else str(value)


def believed_working(configured: Mapping[str, Any]) -> bool:
    """Whether the endpoint that calls would use is believed usable (never probed).

    False for gprochat.com (offline) and for a base URL that is not ``http(s)://``;
    true for any other deployment that was configured.
    """
    base_url = base_url_of(configured)
    if not base_url.startswith(("http://", "https://")):
        return False
    try:
        host = urlsplit(base_url).hostname or ""
    except ValueError:
        return False
    return bool(host) and host.lower() not in OFFLINE_HOSTS


def _check_base_url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        shown = redact_url(value) if isinstance(value, str) else value
        raise ValueError(f"base_url must start with http:// or https://, got {shown!r}")
    return value.rstrip("/")


def _check_proxy(value: Any) -> str | None:
    schemes = ("http://", "https://", "socks4://", "socks5://", "socks5h://")
    if value is not None and not isinstance(value, str):
        raise ValueError("proxy must be a URL string or None")
    if value and not value.startswith(schemes):
        raise ValueError("proxy must be an http://, https://, socks4:// or socks5:// URL")
    return value or None


def _check_seconds(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds above 0, or None; got {value!r}")
    return float(value)


def _check_text(name: str, value: Any, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    return value


def _seconds(options: Mapping[str, Any], name: str) -> float | None:
    """A transport timeout: the option, else the transport's default."""
    return _check_seconds(name, options.get(name, getattr(_TRANSPORT, name)))


def _history_mode(value: Any) -> HistoryMode:
    if value == "prompt":
        return "prompt"
    if value == "native":
        return "native"
    raise ValueError(f"history_mode must be 'prompt' or 'native', got {value!r}")


def _check_stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list | tuple) or not all(isinstance(s, str) for s in stops):
        raise ValueError(f"stop must be a string or a list of strings, got {value!r}")
    return tuple(s for s in stops if s)


_GENERATION_BOUNDS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, math.inf),
    "max_tokens": (int, 1, math.inf),
    "top_p": (float, 0.0, 1.0),
    "top_k": (int, 1, math.inf),
}


def _check_generation(values: Mapping[str, Any]) -> dict[str, float | int]:
    checked: dict[str, float | int] = {}
    for name, (kind, low, high) in _GENERATION_BOUNDS.items():
        value = values.get(name)
        if value is None:
            continue
        allowed = (int,) if kind is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, allowed) or not low <= value <= high:
            what = "an integer" if kind is int else "a number"
            raise ValueError(f"{name} must be {what} from {low:g} to {high:g}, got {value!r}")
        checked[name] = value
    return checked


def _api_key(value: Any) -> str | None:
    """g4f may pass one key per provider: ``{"GPROChat": "..."}``."""
    if isinstance(value, Mapping):
        value = value.get("GPROChat")
    return _check_text("api_key", value, optional=True) or None


def _headers(base_url: str, api_key: str | None, extra: Any) -> dict[str, str]:
    """The original's headers (its browser user agent aside), then the caller's.

    ``origin`` and ``referer`` name the deployment's page, as the web app's own
    requests do, without the credentials a URL may carry.
    """
    parts = urlsplit(base_url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    headers = {
        "accept": "*/*",
        "origin": f"{parts.scheme}://{netloc}",
        "referer": urlunsplit(parts._replace(netloc=netloc)) + "/",
        "content-type": "text/plain;charset=UTF-8",
    }
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if extra is not None:
        if not isinstance(extra, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
        ):
            raise ValueError("headers must be a dict of strings to strings")
        headers.update(extra)
    return headers


def _merged(call: Mapping[str, Any], configured: Mapping[str, Any]) -> dict[str, Any]:
    merged = {name: _plain(value) for name, value in configured.items()}
    for name, value in call.items():
        if name in OPTIONS and not (value is None and name in _NONE_IS_UNSET):
            merged[name] = value
    for name in _ENV:  # ``password=None`` given means no password, whatever env says
        if merged.get(name) is None and (name in _NONE_IS_UNSET or name not in merged):
            merged[name] = _env(name)
    return merged


def resolve(call: Mapping[str, Any], configured: Mapping[str, Any]) -> Options:
    """The options of one call: its own, else ``configure``'s, else env, else defaults.

    Args:
        call: the call's keyword arguments; names this facade does not know are
            ignored, as gpt4free providers ignore them.
        configured: the defaults of the class (from ``configure``).

    Raises:
        ValueError: naming the option that is wrong and what it takes.
    """
    o = _merged(call, configured)
    mode = _history_mode(o.get("history_mode") or "prompt")
    base_url = _check_base_url(o.get("base_url") or DEFAULT_BASE_URL)
    retries = o.get("max_retries", _TRANSPORT.max_retries)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"max_retries must be an integer of at least 0, got {retries!r}")
    verify = o.get("verify", True)
    if not isinstance(verify, bool | str):
        raise ValueError(f"verify must be True, False or a CA bundle path, got {verify!r}")
    context = o.get("ssl_context")
    if context is not None and not isinstance(context, ssl.SSLContext):
        raise ValueError("ssl_context must be an ssl.SSLContext or None")
    settings = TransportSettings(
        base_url=base_url,
        total_timeout=_check_seconds("timeout", o.get("timeout", _TRANSPORT.total_timeout)),
        max_retries=retries,
        proxy=_check_proxy(o.get("proxy")),
        verify=verify,
        ssl_context=context,
        headers=_headers(base_url, _api_key(o.get("api_key")), o.get("headers")),
        connect_timeout=_seconds(o, "connect_timeout"),
        first_byte_timeout=_seconds(o, "first_byte_timeout"),
        chunk_timeout=_seconds(o, "chunk_timeout"),
    )
    secret = o.get("secret_key")
    return Options(
        settings=settings,
        secret_key=DEFAULT_SECRET_KEY if secret is None else str(_check_text("secret_key", secret)),
        password=_check_text("password", o.get("password"), optional=True),
        history_mode=mode,
        stop=_check_stop(o.get("stop")),
        generation=_check_generation(o),
    )


def prepare(
    messages: Sequence[Mapping[str, Any]], call: Mapping[str, Any], configured: Mapping[str, Any]
) -> Prepared:
    """Check a call and build its request; raises ``ValueError`` before any I/O."""
    for name in ("media", "images"):
        if call.get(name):
            raise ValueError(
                f"`{name}` was given, but the gprochat endpoint takes text only; describe "
                "the image in text, or use a provider that takes images"
            )
    options = resolve(call, configured)
    convert = prompt_turns if options.history_mode == "prompt" else native_turns
    turns = convert(messages)
    wire = {GENERATION_SETTINGS[name]: value for name, value in options.generation.items()}
    encoder = RequestEncoder(
        turns,
        password=options.password,
        secret_key=options.secret_key,
        generation_config=wire or None,
    )
    shown = redact_url(options.settings.base_url) + GENERATE_PATH
    check = confirmation(shown, list(options.generation), set())
    return Prepared(options, encoder, check)
