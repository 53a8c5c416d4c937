"""The state the server's handlers share, stored in the application."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from langchain_gprochat.server.backends import Backend
from langchain_gprochat.server.body import BodyBudget
from langchain_gprochat.server.faults import FaultLedger
from langchain_gprochat.server.routing import BackendRoutes
from langchain_gprochat.server.settings import ServerSettings, ServerStats

__all__ = ["STATE_KEY", "ServerState"]


@dataclass
class ServerState:
    """Everything the handlers share, stored in the app under :data:`STATE_KEY`.

    Attributes:
        settings: the server's settings.
        backend: what produces the answers (the default one, with ``routes``).
        stats: counters of generate traffic.
        ledger: how often each fault with ``times`` was applied.
        closing: set when the application shuts down, so that streams cut by the
            shutdown are not counted as client disconnects.
        budget: the request-body bytes held at once (``settings.max_body_memory``).
        routes: all the backends by name when a request's ``model`` picks one (their
            default is ``backend``); ``None`` for a single backend that ignores ``model``.
    """

    settings: ServerSettings
    backend: Backend
    stats: ServerStats = field(default_factory=ServerStats)
    ledger: FaultLedger = field(default_factory=FaultLedger)
    closing: bool = False
    budget: BodyBudget = field(init=False, repr=False)
    routes: BackendRoutes | None = None

    def __post_init__(self) -> None:
        self.budget = BodyBudget(self.settings.max_body_memory, self.stats)

    @property
    def all_routes(self) -> BackendRoutes:
        """The backends by name: ``routes``, or ``backend`` alone under its default name."""
        return self.routes if self.routes is not None else BackendRoutes.single(self.backend)

    def pick_backend(self, body: Mapping[str, Any]) -> Backend:
        """The backend that answers a request ``body`` (see ``BackendRoutes.pick``).

        Raises:
            Rejected: 400 when ``model`` names no backend (only with ``routes``).
        """
        return self.backend if self.routes is None else self.routes.pick(body)


STATE_KEY = web.AppKey("gprochat_state", ServerState)
