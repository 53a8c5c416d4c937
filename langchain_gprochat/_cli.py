"""The ``gprochat`` command: probe a deployment, ask it a question, chat with it.

``gprochat probe URL``
    prints what :func:`~langchain_gprochat.discover` found (the key masked unless
    ``--show-key``); ``--check`` sends one signed request.
``gprochat ask URL QUESTION``
    streams the answer to stdout as it arrives (``-`` reads the question from stdin).
``gprochat chat URL``
    an interactive conversation with history: Ctrl-C stops the current answer,
    Ctrl-D leaves.
``gprochat serve ...``
    runs ``gprochat-server`` with the same arguments.

``ask`` and ``chat`` discover the deployment first unless a secret key is given
(``--secret-key`` or ``GPROCHAT_SECRET_KEY``). The other settings are ChatGPROChat's,
with its env vars (``GPROCHAT_PASSWORD``, ``GPROCHAT_PROXY``, ``GPROCHAT_API_KEY``).
Errors are printed as one line naming the setting to fix; the exit status is 0 on
success, 1 on a failure, 2 for bad arguments and 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from langchain_gprochat._deploy import DISCOVERY_TIMEOUT
from langchain_gprochat.errors import GPROChatError

if TYPE_CHECKING:
    from langchain_gprochat.chat_models import ChatGPROChat
    from langchain_gprochat.discovery import Deployment

__all__ = ["build_parser", "main"]

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130

_SECRET_ENV = "GPROCHAT_SECRET_KEY"
_TIMEOUTS = {
    "timeout": "seconds for a whole answer, 0 for no limit",
    "connect_timeout": "seconds to connect",
    "first_byte_timeout": "seconds until the answer starts",
    "chunk_timeout": "seconds between two pieces of the answer",
}
_MODEL_OPTIONS = ("password", "proxy", *_TIMEOUTS, "max_history_messages")
"""Options that are ChatGPROChat fields of the same name."""


def _seconds(value: str) -> float | None:
    """A timeout option: seconds, ``0`` for no limit."""
    seconds = float(value)
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {value}")
    return None if seconds == 0 else seconds


def _add_connection(p: argparse.ArgumentParser, *, key: bool) -> None:
    """URL and the connection options; those not given keep ChatGPROChat's defaults."""
    add = p.add_argument
    keep = argparse.SUPPRESS
    add("url", metavar="URL", help="the deployment's address, e.g. https://chat.example.org")
    add("--password", default=keep, help="the site password (default: $GPROCHAT_PASSWORD)")
    if key:
        add(
            "--secret-key",
            default=keep,
            help=f"the deployment's PUBLIC_SECRET_KEY; skips discovery (default: ${_SECRET_ENV})",
        )
    add("--proxy", default=keep, help="http(s):// or socks5:// proxy (default: $GPROCHAT_PROXY)")
    add("--ca-bundle", default=None, metavar="PATH", help="trust the CAs in this file")
    add("--insecure", action="store_true", help="do not verify TLS certificates")
    for name, what in _TIMEOUTS.items():
        add(f"--{name.replace('_', '-')}", type=_seconds, default=keep, metavar="S", help=what)
    add(
        "--discovery-timeout",
        type=_seconds,
        default=DISCOVERY_TIMEOUT,
        metavar="S",
        help="seconds for the whole discovery, 0 for no limit (default: %(default)s)",
    )


def _add_prompting(p: argparse.ArgumentParser) -> None:
    p.add_argument("--system", default=None, help="a system prompt")
    p.add_argument(
        "--max-history-messages",
        type=int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="send at most the N latest messages (default: the deployment's limit)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``gprochat``."""
    parser = argparse.ArgumentParser(
        prog="gprochat", description="Talk to a GeminiProChat deployment from a terminal."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    probe = commands.add_parser("probe", help="show what discovery finds at URL")
    _add_connection(probe, key=False)
    probe.add_argument("--show-key", action="store_true", help="print the secret key in full")
    probe.add_argument("--check", action="store_true", help="send one signed request")
    ask = commands.add_parser("ask", help="ask one question, stream the answer")
    _add_connection(ask, key=True)
    ask.add_argument("question", metavar="QUESTION", help="the question, or - to read stdin")
    _add_prompting(ask)
    chat = commands.add_parser("chat", help="an interactive conversation")
    _add_connection(chat, key=True)
    _add_prompting(chat)
    commands.add_parser("serve", help="run gprochat-server (its --help lists the options)")
    return parser


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """ChatGPROChat arguments from the options that were given (the rest: defaults, env)."""
    given = vars(args)
    kwargs: dict[str, Any] = {name: given[name] for name in _MODEL_OPTIONS if name in given}
    if args.insecure:
        kwargs["verify"] = False
    elif args.ca_bundle:
        kwargs["verify"] = args.ca_bundle
    return kwargs


async def build_model(args: argparse.Namespace) -> ChatGPROChat:
    """The chat model for ``args``: discovered, unless a secret key is given."""
    from langchain_gprochat.chat_models import ChatGPROChat

    kwargs = model_kwargs(args)
    key = vars(args).get("secret_key", os.environ.get(_SECRET_ENV))
    if key is not None:
        return ChatGPROChat(base_url=args.url, secret_key=key, **kwargs)
    kwargs["discovery_timeout"] = args.discovery_timeout
    return await ChatGPROChat.afrom_deployment(args.url, **kwargs)


def error_line(exc: BaseException) -> str:
    """One line saying what went wrong and which setting to fix."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        return f"invalid setting `{field}`: {message}"
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def print_error(exc: BaseException, stream: TextIO | None = None) -> None:
    """Print ``exc`` as ``gprochat: error: ...`` on one line."""
    print(f"gprochat: error: {error_line(exc)}", file=stream or sys.stderr, flush=True)


def show_key(key: str, full: bool) -> str:
    """The key as ``probe`` prints it: masked unless ``full``."""
    if not key:
        return "(none: the deployment signs with an empty key)"
    if not full:
        return f"**** ({len(key)} characters; --show-key prints it)"
    return key if key.isprintable() else json.dumps(key, ensure_ascii=False)


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


async def probe(args: argparse.Namespace, out: TextIO) -> int:
    """``gprochat probe``: print what discovery finds; ``--check`` signs one request."""
    from langchain_gprochat._deploy import discovery_settings
    from langchain_gprochat.chat_models import ChatGPROChat
    from langchain_gprochat.discovery import discover_with

    kwargs = model_kwargs(args)
    password = kwargs.pop("password", None)
    model, settings = discovery_settings(
        ChatGPROChat, args.url, password, kwargs, args.discovery_timeout
    )
    deployment = await discover_with(settings, model.password)
    password_given = model.password is not None
    for name, value in probe_rows(deployment, args.show_key, password_given):
        print(f"{name + ':':<22}{value}", file=out, flush=True)
    if args.check:
        await _check(args, deployment)
        print(f"{'check:':<22}a signed request was answered", file=out, flush=True)
    return 0


def probe_rows(
    deployment: Deployment, full_key: bool, with_password: bool
) -> list[tuple[str, str]]:
    """What ``probe`` prints, as ``(name, value)`` rows."""
    from langchain_gprochat._urls import redact_url

    app = " ".join(x for x in (deployment.app_name, deployment.app_version) if x) or "unknown"
    if deployment.generator:
        app = f"{app} ({deployment.generator})"
    limit = deployment.max_history_messages
    rows = [
        ("base_url", redact_url(deployment.base_url)),
        ("app", app),
        ("secret_key", show_key(deployment.secret_key.get_secret_value(), full_key)),
        ("max_history_messages", "no limit" if limit is None else str(limit)),
        ("history_limit", "from the page" if deployment.history_limit_found else "default"),
        ("password_required", _yes_no(deployment.password_required)),
    ]
    if with_password:
        rows.append(("password_accepted", _yes_no(deployment.password_accepted)))
    rows.append(("signing_script", urlsplit(deployment.signing_script).path))
    return rows


async def _check(args: argparse.Namespace, deployment: Deployment) -> None:
    """Send one signed request with what was discovered (stops at the first text)."""
    from langchain_gprochat._deploy import check_password
    from langchain_gprochat.chat_models import ChatGPROChat

    kwargs = {**deployment.chat_model_kwargs(), **model_kwargs(args), "max_retries": 0}
    model = ChatGPROChat(**kwargs)
    check_password(deployment, model.password)
    async with model:
        async for chunk in model.astream("Reply with the single word: OK"):
            if chunk.text:
                break


async def ask(args: argparse.Namespace, out: TextIO) -> int:
    """``gprochat ask``: stream one answer to ``out``."""
    question = sys.stdin.read() if args.question == "-" else args.question
    if not question.strip():
        raise ValueError("the question is empty: give it as an argument, or - and stdin")
    messages: list[tuple[str, str]] = []
    if args.system:
        messages.append(("system", args.system))
    messages.append(("human", question))
    model = await build_model(args)
    async with model:
        try:
            async for chunk in model.astream(messages):
                out.write(chunk.text)
                out.flush()
        finally:
            out.write("\n")
            out.flush()
    return 0


async def run_interruptible(work: Awaitable[int]) -> int:
    """Run ``work``; SIGINT cancels it, and the status is then 130."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        return await task
    except asyncio.CancelledError:
        if not interrupted:
            raise
        print("gprochat: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gprochat``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from langchain_gprochat.server.__main__ import main as serve

        return serve(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "chat":
            from langchain_gprochat._cli_chat import chat

            return asyncio.run(chat(args, sys.stdin, sys.stdout))
        command = probe if args.command == "probe" else ask
        return asyncio.run(run_interruptible(command(args, sys.stdout)))
    except KeyboardInterrupt:  # before the loop took over SIGINT
        print("gprochat: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except (GPROChatError, ValueError, OSError, ImportError) as exc:
        print_error(exc)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
