"""The state the server's handlers share, stored in the application."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from langchain_gprochat.server.backends import Backend
from langchain_gprochat.server.body import BodyBudget
from langchain_gprochat.server.faults import FaultLedger
from langchain_gprochat.server.settings import ServerSettings, ServerStats

__all__ = ["STATE_KEY", "ServerState"]


@dataclass
class ServerState:
    """Everything the handlers share, stored in the app under :data:`STATE_KEY`.

    Attributes:
        settings: the server's settings.
        backend: what produces the answers.
        stats: counters of generate traffic.
        ledger: how often each fault with ``times`` was applied.
        closing: set when the application shuts down, so that streams cut by the
            shutdown are not counted as client disconnects.
        budget: the request-body bytes held at once (``settings.max_body_memory``).
    """

    settings: ServerSettings
    backend: Backend
    stats: ServerStats = field(default_factory=ServerStats)
    ledger: FaultLedger = field(default_factory=FaultLedger)
    closing: bool = False
    budget: BodyBudget = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.budget = BodyBudget(self.settings.max_body_memory, self.stats)


STATE_KEY = web.AppKey("gprochat_state", ServerState)
