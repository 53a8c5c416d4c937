"""The gunicorn master of ``gprochat-server --workers N`` (POSIX only; needs gunicorn)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

__all__ = ["WORKER_CLASS", "run"]

WORKER_CLASS = "aiohttp.worker.GunicornWebWorker"
_EXIT_MARGIN = 3.0
"""Seconds a worker gets past the shutdown timeout before gunicorn kills it: its
once-a-second check of the stop flag, the clean-up of cancelled answers, the exit."""
_HEARTBEAT_TIMEOUT = 30
"""gunicorn's default: a worker silent for this long is restarted."""


class _Master(BaseApplication):  # type: ignore[misc]  # gunicorn has no type hints
    """A gunicorn application configured from a dict, loading the app in each worker."""

    def __init__(self, options: dict[str, Any], load: Callable[[], object]) -> None:
        self._options = options
        self._load = load
        super().__init__()

    def load_config(self) -> None:
        """Apply the options this gunicorn knows (older ones lack some)."""
        known = self.cfg.settings
        for key, value in self._options.items():
            if key in known:
                self.cfg.set(key, value)

    def load(self) -> object:
        """Build the application; gunicorn calls this in every worker, after the fork."""
        return self._load()


def run(
    fd: int,
    *,
    workers: int,
    shutdown_timeout: float,
    log_level: str,
    load: Callable[[], object],
    ready: Callable[[], None],
) -> int:
    """Run gunicorn's master on the bound socket ``fd`` (it takes the descriptor over).

    Args:
        fd: a bound TCP socket's file descriptor; gunicorn listens on it.
        workers: how many worker processes to fork.
        shutdown_timeout: seconds each worker lets running answers finish on exit.
        log_level: the level of gunicorn's own log lines.
        load: builds the application in a worker.
        ready: called in the master once it listens, before the workers start.

    Returns:
        gunicorn's exit status: 0 after a clean shutdown.
    """
    graceful = math.ceil(shutdown_timeout + _EXIT_MARGIN)
    options: dict[str, Any] = {
        "bind": [f"fd://{fd}"],
        "workers": workers,
        "worker_class": WORKER_CLASS,
        "graceful_timeout": graceful,
        "timeout": max(_HEARTBEAT_TIMEOUT, graceful),
        "loglevel": log_level.lower(),
        "proc_name": "gprochat-server",
        "when_ready": lambda arbiter: ready(),
        "control_socket_disable": True,  # gunicorn >= 25: no gunicornc socket in $HOME
    }
    try:
        _Master(options, load).run()
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
