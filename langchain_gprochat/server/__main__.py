"""The ``gprochat-server`` command (also ``python -m langchain_gprochat.server``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

from langchain_gprochat.protocol import DEFAULT_SECRET_KEY
from langchain_gprochat.server.env import (
    max_history_from_env,
    passwords_from_env,
    secret_key_from_env,
    split_passwords,
)
from langchain_gprochat.server.routing import load_backends
from langchain_gprochat.server.runner import GPROChatServer
from langchain_gprochat.server.settings import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_BODY_MEMORY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HISTORY_MESSAGES,
    ServerSettings,
)

__all__ = ["DEFAULT_PORT", "build_parser", "main", "server_from_args", "settings_from_args"]

DEFAULT_PORT = 3000
"""The port of the upstream's Docker image."""

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The format of the server's log lines (on standard error)."""

_SECRET_ENV = "GPROCHAT_SECRET_KEY"
_PASSWORDS_ENV = "GPROCHAT_SERVER_PASSWORDS"
_LOG_LEVELS = ("debug", "info", "warning", "error")


def _package_version() -> str:
    try:
        return version("langchain-gprochat")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _history_limit(value: str) -> int:
    """A message count for ``--max-history-messages``: a whole number, at least 1."""
    count = int(value)
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {count}")
    return count


def _workers(value: str) -> int:
    """A count of worker processes: a whole number, at least 1."""
    count = int(value)
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {count}")
    return count


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
        f"${_SECRET_ENV}, else $PUBLIC_SECRET_KEY, else gprochat.com's key)",
    )
    add(
        "--password",
        action="append",
        default=None,
        metavar="PASSWORD",
        help=f"accepted site password; repeatable, and comma-separated lists are split "
        f"(default: ${_PASSWORDS_ENV}, else $SITE_PASSWORD, comma-separated; none: no "
        f"password required)",
    )
    add(
        "--backend",
        action="append",
        default=None,
        metavar="[NAME=]SPEC",
        help="'echo', 'gemini' (Gemini's REST API, from $GEMINI_API_KEY, $GEMINI_MODEL_NAME, "
        "$API_BASE_URL), 'gemini/MODEL', 'gemini-langchain[/MODEL]' (the same through "
        "ChatGoogleGenerativeAI, the gemini extra) or 'module:attribute' naming a chat "
        "model, a backend or a factory; "
        "repeat as NAME=SPEC for several, picked by a request's 'model', the first by "
        "default (default: echo)",
    )
    add(
        "--max-history-messages",
        type=_history_limit,
        default=None,
        metavar="N",
        help=f"most messages the chat page sends (default: $PUBLIC_MAX_HISTORY_MESSAGES, "
        f"else {DEFAULT_MAX_HISTORY_MESSAGES})",
    )
    add(
        "--no-page",
        dest="page",
        action="store_false",
        help="do not serve the chat page at / (the API only)",
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
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="server processes; more than 1 runs them under gunicorn (POSIX only: "
        "pip install 'langchain-gprochat[workers]') (default: %(default)s)",
    )
    add(
        "--log-level",
        default="info",
        type=str.lower,
        choices=_LOG_LEVELS,
        help="logging level, any case (default: %(default)s)",
    )
    add("--version", action="version", version=f"%(prog)s {_package_version()}")
    return parser


def _passwords(args: argparse.Namespace) -> tuple[str, ...]:
    if args.password:
        return tuple(p for value in args.password for p in split_passwords(value))
    return passwords_from_env(os.environ) or ()


def _max_history(args: argparse.Namespace) -> int:
    if args.max_history_messages is not None:
        return int(args.max_history_messages)
    return max_history_from_env(os.environ) or DEFAULT_MAX_HISTORY_MESSAGES


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """Build the settings from parsed arguments and the environment.

    Each setting comes from its flag, else the server's ``GPROCHAT_`` variable, else
    the upstream app's variable (see :mod:`~langchain_gprochat.server.env`), else its
    default.

    Raises:
        ValueError: a setting is invalid (``PUBLIC_MAX_HISTORY_MESSAGES`` included).
    """
    secret = args.secret_key
    if secret is None:
        secret = secret_key_from_env(os.environ)
    if secret is None:
        secret = DEFAULT_SECRET_KEY
    return ServerSettings(
        host=args.host,
        port=args.port,
        secret_key=secret,
        passwords=_passwords(args),
        max_history_messages=_max_history(args),
        page=args.page,
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


def server_from_args(args: argparse.Namespace) -> GPROChatServer:
    """The server that ``args`` and the environment describe, not yet started.

    Every worker of ``--workers N`` builds its own from the same arguments (see
    :mod:`~langchain_gprochat.server.workers`).

    Raises:
        ValueError: bad settings, or a backend that cannot be loaded.
    """
    settings = settings_from_args(args)
    backends = load_backends(args.backend or ["echo"])
    return GPROChatServer(settings, backends, shutdown_timeout=args.shutdown_timeout)


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
        format=LOG_FORMAT,
        stream=sys.stderr,
    )
    _put_cwd_on_path()
    try:
        server = server_from_args(args)
    except ValueError as exc:
        print(f"gprochat-server: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1:
        from langchain_gprochat.server.workers import run_workers

        given = sys.argv[1:] if argv is None else argv
        return run_workers(server, given, workers=args.workers, log_level=args.log_level)
    settings = server.settings
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
