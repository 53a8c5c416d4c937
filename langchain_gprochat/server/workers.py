"""More than one server process: gunicorn with aiohttp's worker.

``gprochat-server --workers N`` binds the address, then runs a gunicorn master that
forks ``N`` workers (``aiohttp.GunicornWebWorker``) sharing the listening socket. Every
worker builds its own server from the same command-line arguments, which reach it
through the environment (:data:`ARGV_ENV`, a JSON list), so each applies the same
settings, backend, limits and logging as a single process would.

gunicorn can also be pointed at the application factory directly::

    gunicorn 'langchain_gprochat.server.workers:app_factory()' -k aiohttp.GunicornWebWorker -w 4

``app_factory()`` reads the arguments from :data:`ARGV_ENV` (none: the defaults and the
``GPROCHAT_*`` variables); ``app_factory("--backend", "my_models:chat")`` takes them
literally instead.

On SIGTERM (or SIGINT) the master closes the listening socket and each worker lets the
answers under way finish, up to ``--shutdown-timeout`` seconds, then exits. Answers in
this mode carry :data:`WORKER_HEADER`, the process id of the worker that answered.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from langchain_gprochat.server.__main__ import (
    LOG_FORMAT,
    build_parser,
    server_from_args,
)
from langchain_gprochat.server.runner import GPROChatServer
from langchain_gprochat.server.state import STATE_KEY

__all__ = ["ARGV_ENV", "WORKER_HEADER", "WorkerSettingsError", "app_factory", "run_workers"]

logger = logging.getLogger("langchain_gprochat.server")

ARGV_ENV = "GPROCHAT_SERVER_ARGV"
"""The environment variable holding the workers' command-line arguments (a JSON list)."""
WORKER_HEADER = "X-GPROChat-Worker"
"""The response header naming the process id of the worker that answered."""

RunnerFactory = Callable[[], Awaitable[web.AppRunner]]
"""What gunicorn's aiohttp worker calls to get the runner it serves."""


class WorkerSettingsError(ValueError):
    """A worker's arguments are not valid; the message says which and how to fix it."""


def _argv_from_env() -> list[str]:
    raw = os.environ.get(ARGV_ENV)
    if raw is None:
        return []
    hint = f'{ARGV_ENV} must be a JSON list of strings, like \'["--backend", "echo"]\''
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:  # the value is not quoted: it may hold a password
        raise WorkerSettingsError(f"{hint}; it is not JSON ({exc.msg}).") from None
    if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        raise WorkerSettingsError(f"{hint}; it is JSON of another shape.")
    return value


def _log_to_stderr(level: str) -> None:
    """Log as ``gprochat-server`` does, unless logging is already set up.

    The CLI's master set it up before forking; gunicorn may have a ``--log-config``.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr)


async def _stamp_worker(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[WORKER_HEADER] = str(os.getpid())


def _log_draining(server: GPROChatServer) -> Callable[[web.Application], Awaitable[None]]:
    async def draining(app: web.Application) -> None:
        logger.info(
            "worker %d stopping: %d answers streaming get up to %g s to finish",
            os.getpid(),
            app[STATE_KEY].stats.active_streams,
            server.shutdown_timeout,
        )

    return draining


def app_factory(*argv: str) -> RunnerFactory:
    """The application factory for gunicorn's ``aiohttp.GunicornWebWorker``.

    Args:
        *argv: ``gprochat-server`` arguments (``--host``, ``--port`` and ``--workers``
            are ignored: gunicorn binds and forks); none: those in :data:`ARGV_ENV`.

    Returns:
        The coroutine function the worker awaits: it returns a runner of the server
        with the settings' limits (header and body timeouts, connection cap, keep-alive,
        shutdown timeout) and its logging, the one a single process serves through.

    Raises:
        WorkerSettingsError: the arguments are not valid, or the backend cannot be
            loaded; gunicorn then reports that the worker failed to boot.
    """
    given = list(argv) if argv else _argv_from_env()
    try:
        args = build_parser().parse_args(given)
    except SystemExit:  # argparse has printed the usage and the error
        raise WorkerSettingsError("invalid gprochat-server arguments (see above)") from None
    _log_to_stderr(str(args.log_level))
    try:
        server = server_from_args(args)
    except ValueError as exc:
        raise WorkerSettingsError(str(exc)) from None
    server.app.on_response_prepare.append(_stamp_worker)
    server.app.on_shutdown.append(_log_draining(server))

    async def make_runner() -> web.AppRunner:
        return server.make_runner()

    return make_runner


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening: gunicorn does that)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _unavailable() -> str | None:
    if sys.platform == "win32":
        return (
            "--workers needs gunicorn, which runs on POSIX systems only (Linux, macOS, "
            "BSD); on Windows run one process per port behind a load balancer, or use WSL"
        )
    if importlib.util.find_spec("gunicorn") is None:
        return "--workers needs gunicorn: pip install 'langchain-gprochat[workers]'"
    return None


def run_workers(
    server: GPROChatServer, argv: Sequence[str], *, workers: int, log_level: str
) -> int:
    """Serve with ``workers`` processes under gunicorn until SIGTERM or SIGINT.

    Args:
        server: the server ``argv`` describes, already built (so that bad settings are
            reported before anything starts); it gives the address to bind and the
            shutdown timeout.
        argv: the command-line arguments, passed on to every worker.
        workers: how many worker processes.
        log_level: the level of gunicorn's own log lines.

    Returns:
        0 after a clean shutdown, 1 if the address cannot be bound, 2 if gunicorn is
        not available here, else gunicorn's exit status (3: a worker failed to boot).
    """
    problem = _unavailable()
    if problem is not None:
        print(f"gprochat-server: {problem}", file=sys.stderr)
        return 2
    settings = server.settings
    try:
        sock = _listen(settings.host, settings.port)
    except OSError as exc:
        print(
            f"gprochat-server: cannot listen on {settings.host}:{settings.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    url = _url(settings.host, sock)
    os.environ[ARGV_ENV] = json.dumps(list(argv))
    from langchain_gprochat.server import _arbiter

    def ready() -> None:
        print(f"gprochat-server listening on {url}", flush=True)
        logger.info("%d workers, shutdown timeout %g s", workers, server.shutdown_timeout)

    return _arbiter.run(
        sock.detach(),
        workers=workers,
        shutdown_timeout=server.shutdown_timeout,
        log_level=log_level,
        load=app_factory,
        ready=ready,
    )
