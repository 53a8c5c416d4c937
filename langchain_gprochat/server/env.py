"""Settings read from the environment: the server's own variables and the upstream app's.

``gprochat-server`` reads the environment variables of the upstream GeminiProChat app
where it has the same setting, so that a deployment switches by changing its command,
not its configuration. For each setting the first of these that is given wins: the
command-line flag, the server's own ``GPROCHAT_`` variable, the upstream's variable,
the server's default. :data:`ENV_VARIABLES` lists every variable with the setting it
feeds (the docs' table is checked against it).

The upstream's values are read with the upstream's semantics (its ``src/pages/api``
and ``src/utils`` modules): an empty ``SITE_PASSWORD`` means no password, an empty
``PUBLIC_SECRET_KEY`` means signatures without a key, an empty
``PUBLIC_MAX_HISTORY_MESSAGES`` or ``GEMINI_MODEL_NAME`` means the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "ENV_VARIABLES",
    "EnvVariable",
    "max_history_from_env",
    "passwords_from_env",
    "secret_key_from_env",
    "site_passwords",
]

SECRET_KEY_ENV = "GPROCHAT_SECRET_KEY"
PASSWORDS_ENV = "GPROCHAT_SERVER_PASSWORDS"
UPSTREAM_SECRET_KEY_ENV = "PUBLIC_SECRET_KEY"
UPSTREAM_PASSWORDS_ENV = "SITE_PASSWORD"
UPSTREAM_MAX_HISTORY_ENV = "PUBLIC_MAX_HISTORY_MESSAGES"
GEMINI_API_KEY_ENV = "GEMINI_API_KEY"
GEMINI_MODEL_ENV = "GEMINI_MODEL_NAME"
GEMINI_BASE_URL_ENV = "API_BASE_URL"


@dataclass(frozen=True)
class EnvVariable:
    """One environment variable the server reads.

    Attributes:
        name: the variable's name.
        setting: the flag or backend setting it gives a value to.
        upstream: whether it is the upstream app's variable (else the server's own).
    """

    name: str
    setting: str
    upstream: bool


ENV_VARIABLES: tuple[EnvVariable, ...] = (
    EnvVariable(SECRET_KEY_ENV, "--secret-key", upstream=False),
    EnvVariable(UPSTREAM_SECRET_KEY_ENV, "--secret-key", upstream=True),
    EnvVariable(PASSWORDS_ENV, "--password", upstream=False),
    EnvVariable(UPSTREAM_PASSWORDS_ENV, "--password", upstream=True),
    EnvVariable(UPSTREAM_MAX_HISTORY_ENV, "--max-history-messages", upstream=True),
    EnvVariable(GEMINI_API_KEY_ENV, "--backend gemini[-langchain]", upstream=True),
    EnvVariable(GEMINI_MODEL_ENV, "--backend gemini[-langchain]", upstream=True),
    EnvVariable(GEMINI_BASE_URL_ENV, "--backend gemini[-langchain]", upstream=True),
)
"""Every environment variable ``gprochat-server`` reads, own ones before the upstream's."""


def secret_key_from_env(environ: Mapping[str, str]) -> str | None:
    """The secret key from ``GPROCHAT_SECRET_KEY``, else ``PUBLIC_SECRET_KEY``.

    A variable that is set decides, even when empty (``""``: requests are signed
    without a key, as the upstream does for an empty ``PUBLIC_SECRET_KEY``).

    Returns:
        The key, or ``None`` when neither variable is set.
    """
    for name in (SECRET_KEY_ENV, UPSTREAM_SECRET_KEY_ENV):
        if name in environ:
            return environ[name]
    return None


def split_passwords(value: str) -> tuple[str, ...]:
    """The passwords of a comma-separated list, empty entries left out."""
    return tuple(password for password in value.split(",") if password)


def site_passwords(value: str) -> tuple[str, ...]:
    """The passwords the upstream accepts for ``SITE_PASSWORD=value``.

    The upstream accepts each comma-separated entry and also the whole value as one
    password (``sitePassword === pass || passList.includes(pass)``). It also accepts an
    empty password when the list has an empty entry (``"a,"``); that opening is not
    copied: empty entries are left out.
    """
    entries = split_passwords(value)
    if "," in value and value not in entries:
        entries += (value,)
    return entries


def passwords_from_env(environ: Mapping[str, str]) -> tuple[str, ...] | None:
    """The passwords from ``GPROCHAT_SERVER_PASSWORDS``, else ``SITE_PASSWORD``.

    ``GPROCHAT_SERVER_PASSWORDS`` decides whenever it is set (empty: no password);
    ``SITE_PASSWORD`` is read as :func:`site_passwords` does.

    Returns:
        The passwords (possibly none), or ``None`` when neither variable is set.
    """
    if PASSWORDS_ENV in environ:
        return split_passwords(environ[PASSWORDS_ENV])
    if UPSTREAM_PASSWORDS_ENV in environ:
        return site_passwords(environ[UPSTREAM_PASSWORDS_ENV])
    return None


def max_history_from_env(environ: Mapping[str, str]) -> int | None:
    """The chat page's history limit from ``PUBLIC_MAX_HISTORY_MESSAGES``.

    Returns:
        The limit, or ``None`` when the variable is unset or empty (the upstream's
        default, 99, then applies).

    Raises:
        ValueError: the value is not a whole number of at least 1 (the upstream's
            ``parseInt`` would read ``"12abc"`` as 12 and ``"0"`` or ``"abc"`` as no
            limit at all; the server refuses them instead).
    """
    raw = environ.get(UPSTREAM_MAX_HISTORY_ENV, "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
        raise ValueError(
            f"{UPSTREAM_MAX_HISTORY_ENV} must be a whole number of at least 1, got {raw!r}"
        )
    return int(raw)
