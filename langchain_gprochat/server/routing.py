"""Named backends: a request's ``model`` field picks the backend that answers it.

``gprochat-server --backend fast=echo --backend smart=my_models:chat`` serves two
backends; a request with ``"model": "smart"`` is answered by the second, one without
``model`` by the first (the default), and an unknown name gets 400 naming the choices.
A server with one unnamed backend (``--backend SPEC``, or ``create_app(backend=...)``)
ignores ``model``, as the upstream app does. ``GET /api/models`` lists the names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from langchain_gprochat.protocol import MODEL_FIELD
from langchain_gprochat.server.backends import Backend, load_backend
from langchain_gprochat.server.validation import Rejected

__all__ = [
    "DEFAULT_ROUTE",
    "MODELS_PATH",
    "MODEL_FIELD",
    "BackendRoutes",
    "load_backends",
    "parse_backend_option",
]

MODELS_PATH = "/api/models"
"""The path that lists the backends' names."""
DEFAULT_ROUTE = "default"
"""The name ``GET /api/models`` shows for a single unnamed backend."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}")
_SHOWN_CHARS = 100


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def check_name(name: str) -> str:
    """``name`` if it is a valid backend name, else ``ValueError`` saying what is allowed."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid backend name {name!r}: use 1 to 128 letters, digits and . _ : / @ + -, "
            "starting with a letter or digit, e.g. 'fast=echo'"
        )
    return name


class BackendRoutes(Mapping[str, Backend]):
    """The server's backends by name, in order; the first is the default.

    Args:
        backends: name to backend, at least one; names as :func:`check_name` takes.
        named: whether requests choose by ``model``; ``False`` (one unnamed backend)
            ignores the field, as the upstream does.

    Raises:
        ValueError: no backend, an invalid name, or several backends unnamed.
    """

    def __init__(self, backends: Mapping[str, Backend], *, named: bool = True) -> None:
        if not backends:
            raise ValueError("at least one backend is needed")
        if not named and len(backends) != 1:
            raise ValueError("only a single backend can be unnamed")
        self._backends = {check_name(name): backend for name, backend in backends.items()}
        self.named = named

    @classmethod
    def single(cls, backend: Backend) -> BackendRoutes:
        """One unnamed backend: ``model`` is ignored."""
        return cls({DEFAULT_ROUTE: backend}, named=False)

    @classmethod
    def of(cls, backend: Backend | Mapping[str, Backend]) -> BackendRoutes:
        """Routes from a backend (unnamed) or a mapping of names to backends."""
        if isinstance(backend, BackendRoutes):
            return backend
        if isinstance(backend, Mapping):
            return cls(backend)
        return cls.single(backend)

    def __getitem__(self, name: str) -> Backend:
        return self._backends[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._backends)

    def __len__(self) -> int:
        return len(self._backends)

    def __repr__(self) -> str:
        return f"BackendRoutes({self._backends!r}, named={self.named!r})"

    @property
    def default(self) -> Backend:
        """The first backend: it answers requests without ``model``."""
        return next(iter(self._backends.values()))

    def pick(self, body: Mapping[str, Any]) -> Backend:
        """The backend a request body names in ``model`` (the default if it names none).

        Raises:
            Rejected: 400 when ``model`` is not a string or null, or names no backend.
        """
        if not self.named:
            return self.default
        name = body.get(MODEL_FIELD)
        if name is None:
            return self.default
        if not isinstance(name, str):
            raise Rejected(400, f"Invalid request body: {MODEL_FIELD} must be a string or null.")
        backend = self._backends.get(name)
        if backend is None:
            shown = name if len(name) <= _SHOWN_CHARS else name[:_SHOWN_CHARS] + "…"
            raise Rejected(400, f"Unknown model '{shown}': this server has {_quoted(list(self))}.")
        return backend

    def listing(self) -> dict[str, Any]:
        """The body of ``GET /api/models``, in OpenAI's list shape, the default first."""
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "owned_by": "gprochat-server"} for name in self
            ],
        }


def parse_backend_option(value: str) -> tuple[str | None, str]:
    """Split a ``--backend`` value into ``(name, spec)``; ``name`` is ``None`` without ``=``.

    Raises:
        ValueError: the name or the spec is empty, or the name is invalid.
    """
    name, sep, spec = value.partition("=")
    if not sep:
        return None, value
    if not spec.strip():
        raise ValueError(f"invalid --backend {value!r}: give NAME=SPEC, e.g. 'fast=echo'")
    return check_name(name.strip()), spec


def load_backends(values: Sequence[str]) -> BackendRoutes:
    """Build the routes from ``--backend`` values (``SPEC`` or ``NAME=SPEC``, in order).

    A single ``SPEC`` gives one unnamed backend; several values must all be named,
    each name once. Every spec is loaded with
    :func:`~langchain_gprochat.server.backends.load_backend`.

    Raises:
        ValueError: a malformed value, a missing or repeated name, or a backend that
            cannot be loaded; one line naming the value and the reason.
    """
    if not values:
        raise ValueError("at least one --backend is needed")
    parsed = [parse_backend_option(value) for value in values]
    if len(parsed) == 1 and parsed[0][0] is None:
        return BackendRoutes.single(load_backend(parsed[0][1]))
    backends: dict[str, Backend] = {}
    for (name, spec), value in zip(parsed, values, strict=True):
        if name is None:
            raise ValueError(
                f"invalid --backend {value!r}: with several backends, name each one "
                f"as NAME=SPEC, e.g. 'fast={value}'"
            )
        if name in backends:
            raise ValueError(f"invalid --backend {value!r}: the name {name!r} is given twice")
        backends[name] = load_backend(spec)
    return BackendRoutes(backends)
