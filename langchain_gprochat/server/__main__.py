"""The ``gprochat-server`` command (also ``python -m langchain_gprochat.server``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from langchain_gprochat.protocol import DEFAULT_SECRET_KEY
from langchain_gprochat.server.backends import Backend, load_backend
from langchain_gprochat.server.runner import GPROChatServer
from langchain_gprochat.server.settings import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_BODY_MEMORY,
    DEFAULT_MAX_CONNECTIONS,
    ServerSettings,
)

__all__ = ["DEFAULT_PORT", "build_parser", "main", "settings_from_args"]

DEFAULT_PORT = 3000
"""The port of the upstream's Docker image."""

_SECRET_ENV = "GPROCHAT_SECRET_KEY"
_PASSWORDS_ENV = "GPROCHAT_SERVER_PASSWORDS"


def _limit(value: str) -> float | None:
    """Seconds for a timeout option; ``0`` means no limit."""
    seconds = float(value)
    return None if seconds == 0 else seconds


def _add_limits(add: Callable[..., object]) -> None:
    add(
        "--header-timeout",
        type=_limit,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="SECONDS",
        help="time for a request's headers to arrive, from the connection's opening or "
        "the request's first byte; 0 for no limit (default: %(default)s)",
    )
    add(
        "--body-timeout",
        type=_limit,
        default=DEFAULT_BODY_TIMEOUT,
        metavar="SECONDS",
        help="time for a request's body to arrive, once its headers are in; 0 for no "
        "limit (default: %(default)s)",
    )
    add(
        "--keepalive-timeout",
        type=float,
        default=DEFAULT_KEEPALIVE_TIMEOUT,
        metavar="SECONDS",
        help="time an idle connection stays open between requests (default: %(default)s)",
    )
    add(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="most connections open at once; more get 503 at once (default: %(default)s, "
        "lowered to the open-file limit minus 64)",
    )
    add(
        "--max-body-memory",
        type=int,
        default=DEFAULT_MAX_BODY_MEMORY,
        metavar="BYTES",
        help="most request-body bytes held at once across all requests; more get 503 "
        "(default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``gprochat-server``."""
    parser = argparse.ArgumentParser(
        prog="gprochat-server",
        description="Serve the gprochat (GeminiProChat) protocol locally.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port to bind, 0 for a free one (default: %(default)s)",
    )
    add(
        "--secret-key",
        default=None,
        help=f"PUBLIC_SECRET_KEY that requests are signed with; '' for none (default: "
        f"${_SECRET_ENV}, else gprochat.com's key)",
    )
    add(
        "--password",
        action="append",
        default=None,
        metavar="PASSWORD",
        help=f"accepted site password; repeatable, and comma-separated lists are split "
        f"(default: ${_PASSWORDS_ENV}, comma-separated; none: no password required)",
    )
    add(
        "--backend",
        default="echo",
        help="'echo' or 'module:attribute' naming a chat model, a backend or a factory "
        "(default: %(default)s)",
    )
    add(
        "--max-body",
        type=int,
        default=DEFAULT_MAX_BODY,
        help="largest request body in bytes (default: %(default)s)",
    )
    add(
        "--max-clock-skew",
        type=float,
        default=None,
        metavar="SECONDS",
        help="refuse requests whose time is further off than this (default: no check)",
    )
    add(
        "--chunk-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="sleep between answer chunks (default: %(default)s)",
    )
    add("--enable-faults", action="store_true", help="honour the X-GPROChat-Fault request header")
    _add_limits(add)
    add(
        "--shutdown-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="time running answers get to finish on exit (default: %(default)s)",
    )
    add(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="logging level (default: %(default)s)",
    )
    return parser


def _passwords(args: argparse.Namespace) -> tuple[str, ...]:
    given: Sequence[str] = args.password or [os.environ.get(_PASSWORDS_ENV, "")]
    return tuple(p for value in given for p in value.split(",") if p)


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """Build the settings from parsed arguments and the environment."""
    secret = args.secret_key
    if secret is None:
        secret = os.environ.get(_SECRET_ENV, DEFAULT_SECRET_KEY)
    return ServerSettings(
        host=args.host,
        port=args.port,
        secret_key=secret,
        passwords=_passwords(args),
        max_body=args.max_body,
        max_clock_skew=args.max_clock_skew,
        enable_faults=args.enable_faults,
        chunk_delay=args.chunk_delay,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        keepalive_timeout=args.keepalive_timeout,
        max_connections=args.max_connections,
        max_body_memory=args.max_body_memory,
    )


async def _serve(server: GPROChatServer) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, other thread
            pass
    try:
        async with server:
            print(f"gprochat-server listening on {server.url}", flush=True)
            await stop.wait()
            logging.getLogger("langchain_gprochat.server").info("shutting down")
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _put_cwd_on_path() -> None:
    """Let ``--backend`` name a module of the current folder, as ``python -m`` does.

    A console script's ``sys.path`` starts with the script's own folder, not the current
    one; uvicorn and gunicorn add the current folder too.
    """
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGINT or SIGTERM.

    Returns:
        0 after a clean shutdown, 1 if the address cannot be bound, 2 for bad settings
        or a backend that cannot be loaded.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    _put_cwd_on_path()
    try:
        settings = settings_from_args(args)
        backend: Backend = load_backend(args.backend)
    except ValueError as exc:
        print(f"gprochat-server: {exc}", file=sys.stderr)
        return 2
    server = GPROChatServer(settings, backend, shutdown_timeout=args.shutdown_timeout)
    try:
        asyncio.run(_serve(server))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(
            f"gprochat-server: cannot listen on {settings.host}:{settings.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
