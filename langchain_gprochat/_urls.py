"""Pure URL rules: hiding credentials, and which redirects the client follows."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit, urlunsplit

__all__ = ["MAX_REDIRECTS", "REDIRECT_STATUSES", "has_userinfo", "redact_url", "redirect_target"]

MAX_REDIRECTS = 5
"""Redirects followed for one request at most."""

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
"""Statuses that carry a ``Location`` to go to."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def has_userinfo(url: str | None) -> bool:
    """Whether ``url`` carries credentials (``scheme://user:password@host``)."""
    return bool(url) and "@" in urlsplit(str(url)).netloc


def redact_url(url: str) -> str:
    """``url`` with its user info (user name and password) replaced by ``***``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _port(scheme: str, port: int | None) -> int | None:
    return port if port is not None else _DEFAULT_PORTS.get(scheme)


def redirect_target(status: int, url: str, location: str | None) -> tuple[str | None, str]:
    """Where to re-send a request that got ``status`` with ``location``, or why not.

    A redirect is followed when it stays on the same host and keeps the scheme and port,
    or upgrades ``http`` to ``https`` (as hosting platforms do); a 303 ("see other", a
    page to GET) never is. Following re-sends the same POST body.

    Returns:
        ``(target, "")`` to follow, or ``(None, why)`` to refuse.
    """
    if not location:
        return None, f"the {status} answer has no Location header"
    if status == 303:
        return None, "a 303 points at a page to fetch with GET, not at the endpoint"
    try:
        target = urljoin(url, location.strip())
        old, new = urlsplit(url), urlsplit(target)
        old_port, new_port = _port(old.scheme, old.port), _port(new.scheme, new.port)
    except ValueError:
        return None, "its Location is not a valid URL"
    if new.scheme not in _DEFAULT_PORTS:
        return None, f"it leads to a {new.scheme or 'relative'}: URL"
    if (new.hostname or "") != (old.hostname or ""):
        return None, "it leads to another host"
    if old.scheme == "https" and new.scheme == "http":
        return None, "it downgrades https to http"
    if new.scheme == old.scheme and new_port != old_port:
        return None, "it leads to another port"
    if "@" in old.netloc and "@" not in new.netloc:
        target = urlunsplit(new._replace(netloc=f"{old.netloc.rsplit('@', 1)[0]}@{new.netloc}"))
    return target, ""
