"""``ChatGPROChat.from_deployment``: discover a deployment, then build a model for it."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import SecretStr

from langchain_gprochat._sessions import TransportSettings
from langchain_gprochat._sync import PrivateLoop
from langchain_gprochat._urls import redact_url
from langchain_gprochat.discovery import Deployment, DiscoveryLimits, discover_with
from langchain_gprochat.errors import DiscoveryError

if TYPE_CHECKING:
    from langchain_gprochat.chat_models import ChatGPROChat

__all__ = [
    "DISCOVERY_TIMEOUT",
    "afrom_deployment",
    "check_password",
    "discovery_settings",
    "from_deployment",
]

M = TypeVar("M", bound="ChatGPROChat")

DISCOVERY_TIMEOUT = 60.0
"""Seconds the whole discovery may take by default (page, scripts, password check)."""

_DISCOVERED = ("base_url", "secret_key", "max_history_messages")


def check_password(deployment: Deployment, password: SecretStr | None) -> None:
    """Raise when the deployment needs a password that was not given, or refused it.

    Raises:
        DiscoveryError: ``reason`` ``"password_required"`` or ``"password_refused"``.
    """
    url = redact_url(deployment.page_url)
    if password is None and deployment.password_required:
        raise DiscoveryError(
            "password_required",
            "the deployment requires a site password (/api/auth refused an empty one) "
            "and none was given",
            url=url,
            found=("its signing key and settings",),
            missing=("a password",),
        )
    if password is not None and deployment.password_accepted is False:
        raise DiscoveryError(
            "password_refused",
            "/api/auth refused the password that was given",
            url=url,
            found=("its signing key and settings",),
            missing=("a password the deployment accepts",),
        )


def discovery_settings(
    cls: type[M],
    base_url: str,
    password: str | SecretStr | None,
    kwargs: dict[str, Any],
    discovery_timeout: float | None = DISCOVERY_TIMEOUT,
) -> tuple[M, TransportSettings]:
    """A provisional model of ``kwargs`` (env vars applied) and the discovery's settings.

    The settings are the model's own (proxy, TLS, headers, connect, first-byte and
    chunk timeouts), with ``discovery_timeout`` for the whole discovery.
    """
    own = {name: value for name, value in kwargs.items() if name not in _DISCOVERED}
    if password is not None:
        own["password"] = password
    provisional = cls(base_url=base_url, **own)
    settings = dataclasses.replace(provisional._settings(), total_timeout=discovery_timeout)
    return provisional, settings


async def afrom_deployment(
    cls: type[M],
    base_url: str,
    password: str | SecretStr | None,
    kwargs: dict[str, Any],
) -> M:
    """Discover the deployment at ``base_url`` and build ``cls`` for it.

    The discovery runs with the model's own connect, first-byte and chunk timeouts,
    proxy, TLS settings and headers (``kwargs`` and the env vars, as ``cls`` reads
    them), under ``discovery_timeout``. What was discovered (``base_url``,
    ``secret_key``, ``max_history_messages``, ``origin``/``referer`` headers) is the
    default; ``kwargs`` given explicitly win, and given ``default_headers`` are added.
    ``kwargs`` may also hold ``discovery_timeout`` (seconds, default
    :data:`DISCOVERY_TIMEOUT`) and ``discovery_limits`` (a :class:`DiscoveryLimits`).

    Raises:
        DiscoveryError: see :func:`~langchain_gprochat.discovery.adiscover`, and the
            reasons of :func:`check_password`.
    """
    kwargs = dict(kwargs)
    discovery_timeout = kwargs.pop("discovery_timeout", DISCOVERY_TIMEOUT)
    limits: DiscoveryLimits | None = kwargs.pop("discovery_limits", None)
    provisional, settings = discovery_settings(cls, base_url, password, kwargs, discovery_timeout)
    deployment = await discover_with(settings, provisional.password, limits)
    check_password(deployment, provisional.password)
    fields = deployment.chat_model_kwargs()
    given_headers = kwargs.get("default_headers") or {}
    fields["default_headers"] = {**fields["default_headers"], **given_headers}
    fields.update({k: v for k, v in kwargs.items() if k != "default_headers"})
    return cls(password=provisional.password, **fields)


def from_deployment(
    cls: type[M],
    base_url: str,
    password: str | SecretStr | None,
    kwargs: dict[str, Any],
) -> M:
    """:func:`afrom_deployment` from sync code."""
    loop = PrivateLoop()
    try:
        return loop.run(afrom_deployment(cls, base_url, password, kwargs))
    finally:
        loop.stop()
