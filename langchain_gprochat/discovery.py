"""Configure a client from a GeminiProChat deployment's own page.

A deployment's ``PUBLIC_SECRET_KEY`` is public by design: its page ships it inside the
JavaScript that signs requests in the browser. :func:`discover` reads it the way a
browser would, without running anything: it fetches the page, follows the scripts the
page loads (Astro islands' ``component-url`` and ``renderer-url``, module scripts,
module preloads, and the static imports of those chunks; same origin only, a few at
most, each size-capped), and finds in them the signing template literal
``${t}:${m}:KEY`` and ``PUBLIC_MAX_HISTORY_MESSAGES``. It then asks ``POST /api/auth``
with an empty password whether the site has one.

Example:
    .. code-block:: python

        from langchain_gprochat import ChatGPROChat, discover

        deployment = discover("https://chat.example.org")
        llm = ChatGPROChat.from_deployment("https://chat.example.org", password="...")
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, SecretStr, field_serializer

from langchain_gprochat._fetch import Fetcher, RedirectRefused, without_userinfo
from langchain_gprochat._scripts import Findings, script_path, walk_scripts
from langchain_gprochat._sessions import TransportSettings
from langchain_gprochat._sync import PrivateLoop
from langchain_gprochat._urls import redact_url
from langchain_gprochat.errors import DiscoveryError
from langchain_gprochat.protocol import AUTH_PATH

__all__ = [
    "DEFAULT_MAX_HISTORY_MESSAGES",
    "Deployment",
    "DiscoveryLimits",
    "adiscover",
    "discover",
    "discover_with",
]

DEFAULT_MAX_HISTORY_MESSAGES = 99
"""The upstream web client's history limit when ``PUBLIC_MAX_HISTORY_MESSAGES`` is unset."""

_PAGE_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_AUTH_MAX = 4096
_PROXY_ENV = "GPROCHAT_PROXY"


@dataclass(frozen=True)
class DiscoveryLimits:
    """How much :func:`discover` reads at most.

    Attributes:
        max_page_bytes: the page itself (decompressed); a larger one is refused.
        max_scripts: scripts fetched at most (the upstream's signing code is in the
            first one, its island's ``component-url``).
        max_script_bytes: one script (decompressed); a larger one is skipped unread.
            The upstream's signing chunk is about 1.2 MB.
        max_total_bytes: all scripts together; the walk stops there.
    """

    max_page_bytes: int = 1 << 20
    max_scripts: int = 8
    max_script_bytes: int = 8 << 20
    max_total_bytes: int = 24 << 20


class Deployment(BaseModel):
    """What :func:`discover` found: everything a client needs to talk to a deployment.

    Immutable. ``secret_key`` is a ``SecretStr``, and URLs are shown with their
    credentials replaced by ``***``, so ``repr()`` and serialization leak neither.

    Attributes:
        base_url: the deployment's origin, where ``/api/generate`` is (the web client
            posts to that absolute path whatever the page's path).
        page_url: the page that was read (after redirects).
        secret_key: the ``PUBLIC_SECRET_KEY`` the page signs with (``""``: none).
        max_history_messages: the most messages the web client sends, ``None`` for no
            limit (a ``PUBLIC_MAX_HISTORY_MESSAGES`` that is 0 or not a number).
        history_limit_found: whether the scripts showed the limit; if not,
            ``max_history_messages`` is the upstream default, 99.
        password_required: whether ``/api/auth`` refused an empty password; ``None``
            when it did not answer as the upstream does.
        password_accepted: whether it accepted the password given to ``discover``
            (``None``: none given, or no upstream answer).
        app_name: ``<meta name="application-name">``, else the page's ``<title>``.
        app_version: ``<meta name="version">`` (or ``application-version``); the
            upstream page shows none.
        generator: ``<meta name="generator">``: ``Astro v2.7.0`` upstream.
        signing_script: the script that holds the signing code (without credentials).
        scripts: the scripts that were read, in order (likewise).
    """

    model_config = ConfigDict(frozen=True)

    base_url: str
    page_url: str
    secret_key: SecretStr
    max_history_messages: int | None
    history_limit_found: bool
    password_required: bool | None
    password_accepted: bool | None = None
    app_name: str | None = None
    app_version: str | None = None
    generator: str | None = None
    signing_script: str
    scripts: tuple[str, ...] = ()

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name in ("base_url", "page_url") else value

    @field_serializer("base_url", "page_url")
    def _serialize_url(self, value: str) -> str:
        return redact_url(value)

    @property
    def headers(self) -> dict[str, str]:
        """``origin`` and ``referer`` as the web client's requests carry them."""
        page = without_userinfo(self.page_url)
        return {"origin": without_userinfo(self.base_url), "referer": page}

    def chat_model_kwargs(self) -> dict[str, Any]:
        """The ``ChatGPROChat`` arguments this deployment needs."""
        return {
            "base_url": self.base_url,
            "secret_key": self.secret_key,
            "max_history_messages": self.max_history_messages,
            "default_headers": self.headers,
        }


def transport_settings(
    base_url: str,
    *,
    timeout: float | None = 60.0,
    connect_timeout: float | None = 10.0,
    first_byte_timeout: float | None = 30.0,
    chunk_timeout: float | None = 30.0,
    proxy: str | None = None,
    verify: bool | str = True,
    ssl_context: ssl.SSLContext | None = None,
    headers: Mapping[str, str] | None = None,
) -> TransportSettings:
    """The transport settings :func:`discover` uses for these arguments.

    ``proxy`` defaults to ``GPROCHAT_PROXY``, as for ``ChatGPROChat``; ``""`` is none.
    """
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    proxy = (os.environ.get(_PROXY_ENV) if proxy is None else proxy) or None
    return TransportSettings(
        base_url=base_url,
        connect_timeout=connect_timeout,
        first_byte_timeout=first_byte_timeout,
        chunk_timeout=chunk_timeout,
        total_timeout=timeout,
        max_retries=0,
        proxy=proxy,
        verify=verify,
        ssl_context=ssl_context,
        headers=dict(headers or {}),
    )


async def adiscover(
    base_url: str,
    *,
    password: str | SecretStr | None = None,
    limits: DiscoveryLimits | None = None,
    **settings: Any,
) -> Deployment:
    """Read a GeminiProChat deployment's settings from its page (async).

    Args:
        base_url: the deployment's address (its page).
        password: a site password to check with ``/api/auth`` (``password_accepted``).
        limits: how much to read at most.
        **settings: ``timeout`` (the whole discovery, default 60 s),
            ``connect_timeout``, ``first_byte_timeout``, ``chunk_timeout``, ``proxy``
            (default ``GPROCHAT_PROXY``), ``verify``, ``ssl_context`` and ``headers``, as
            ``ChatGPROChat`` takes them.

    Raises:
        DiscoveryError: the page is not a GeminiProChat page, or its signing code
            cannot be found (the message says what was found and what was missing).
        APITimeoutError: the page or a script took longer than the timeouts.
        APIConnectionError: the deployment could not be reached.
    """
    return await discover_with(transport_settings(base_url, **settings), password, limits)


def discover(
    base_url: str,
    *,
    password: str | SecretStr | None = None,
    limits: DiscoveryLimits | None = None,
    **settings: Any,
) -> Deployment:
    """Read a GeminiProChat deployment's settings from its page (see :func:`adiscover`)."""
    loop = PrivateLoop()
    try:
        return loop.run(adiscover(base_url, password=password, limits=limits, **settings))
    finally:
        loop.stop()


async def discover_with(
    settings: TransportSettings,
    password: str | SecretStr | None = None,
    limits: DiscoveryLimits | None = None,
) -> Deployment:
    """:func:`adiscover` with ready-made transport settings (``base_url`` is the page)."""
    limits = limits or DiscoveryLimits()
    secret = password.get_secret_value() if isinstance(password, SecretStr) else password
    async with Fetcher(settings) as fetcher:
        page_url, html = await _read_page(fetcher, _with_path(settings.base_url), limits)
        findings = await walk_scripts(fetcher, page_url, html, limits)
        key, signing_script = _choose_key(findings, redact_url(page_url))
        origin = _origin_url(page_url)
        empty_accepted = await _auth(fetcher, origin, "")
        accepted = None if secret is None else await _auth(fetcher, origin, secret)
    limit, found = _choose_history(findings, signing_script)
    page = findings.page
    return Deployment(
        base_url=origin,
        page_url=page_url,
        secret_key=SecretStr(key),
        max_history_messages=limit,
        history_limit_found=found,
        password_required=None if empty_accepted is None else not empty_accepted,
        password_accepted=accepted,
        app_name=page.application_name or page.title,
        app_version=page.version,
        generator=page.generator,
        signing_script=without_userinfo(signing_script),
        scripts=tuple(without_userinfo(url) for url in findings.read),
    )


def _with_path(url: str) -> str:
    """``url`` with the path ``/`` where it has none (as a browser asks for it)."""
    parts = urlsplit(url)
    return url if parts.path else urlunsplit(parts._replace(path="/"))


def _origin_url(url: str) -> str:
    """``scheme://[userinfo@]host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


async def _read_page(fetcher: Fetcher, url: str, limits: DiscoveryLimits) -> tuple[str, str]:
    """The page's final URL and its text, or the :class:`DiscoveryError` that says why not."""
    shown = redact_url(url)
    try:
        response = await fetcher.get(
            url, limit=limits.max_page_bytes, headers={"Accept": _PAGE_ACCEPT}
        )
    except RedirectRefused as exc:
        raise DiscoveryError(
            "redirect",
            f"GET answered {exc.status}, a redirect to {exc.location} that was not followed "
            f"({exc.why}); nothing was fetched there. If that is the deployment, pass it as "
            "base_url",
            url=shown,
            missing=("the page",),
            location=exc.location,
        ) from None
    if response.status != 200:
        raise DiscoveryError(
            "page_status", f"GET answered {response.status}", url=shown, missing=("the page",)
        )
    if response.truncated:
        raise DiscoveryError(
            "page_too_large",
            f"the page is larger than {limits.max_page_bytes} bytes "
            "(DiscoveryLimits.max_page_bytes)",
            url=shown,
        )
    if not _looks_like_html(response.content_type, response.body):
        raise DiscoveryError(
            "not_html",
            f"the answer is {response.content_type or 'of no content type'}, not an HTML page",
            url=shown,
            found=(f"{len(response.body)} bytes of {response.content_type or 'data'}",),
            missing=("an HTML page",),
        )
    return response.url, response.body.decode("utf-8", "replace")


def _looks_like_html(content_type: str, body: bytes) -> bool:
    if content_type in _HTML_TYPES:
        return True
    head = body[:512].lstrip().lower()
    return content_type in ("", "application/octet-stream", "text/plain") and head.startswith(
        (b"<!doctype html", b"<html")
    )


def _choose_key(findings: Findings, shown_url: str) -> tuple[str, str]:
    """The key and the script it is in, or the :class:`DiscoveryError` that says why not."""
    readable = [(url, k) for url, k in findings.keys if k.key is not None]
    if not findings.keys:
        if not findings.page.scripts and not findings.page.inline:
            raise DiscoveryError(
                "no_scripts",
                "the page loads no scripts",
                url=shown_url,
                found=tuple(findings.notes),
                missing=("a <script> or an Astro island with the signing code",),
            )
        raise DiscoveryError(
            "no_signing_code",
            "no script it loads holds the signing code of a GeminiProChat page",
            url=shown_url,
            found=tuple(findings.notes),
            missing=("the signing template literal `${t}:${m}:KEY` in a script",),
        )
    if not readable:
        url = findings.keys[0][0]
        raise DiscoveryError(
            "key_not_literal",
            "the signing code computes its key when the page runs",
            url=shown_url,
            found=(f"the signing template literal in {script_path(url)}", *findings.notes),
            missing=("the key as text",),
        )
    keys = {k.key for _, k in readable}
    if len(keys) > 1:
        near = [(u, k) for u, k in readable if k.near_signing_names]
        if len({k.key for _, k in near}) != 1:
            raise DiscoveryError(
                "ambiguous_key",
                f"the scripts hold {len(keys)} different signing keys",
                url=shown_url,
                found=tuple(script_path(u) for u, _ in readable),
                missing=("one signing key",),
            )
        readable = near
    url, chosen = readable[0]
    return chosen.key or "", url


def _choose_history(findings: Findings, signing_script: str) -> tuple[int | None, bool]:
    """The history limit (the signing script's first) and whether the scripts showed one."""
    ordered = sorted(findings.histories, key=lambda item: item[0] != signing_script)
    if not ordered:
        return DEFAULT_MAX_HISTORY_MESSAGES, False
    return ordered[0][1].value, True


async def _auth(fetcher: Fetcher, origin: str, password: str) -> bool | None:
    """Whether ``/api/auth`` accepts ``password`` (``None``: no upstream answer)."""
    try:
        response = await fetcher.post_json(origin + AUTH_PATH, {"pass": password}, limit=_AUTH_MAX)
    except RedirectRefused:
        return None
    answer = response.json() if response.status == 200 and not response.truncated else None
    if not isinstance(answer, dict) or answer.get("code") not in (0, -1):
        return None
    return bool(answer["code"] == 0)
