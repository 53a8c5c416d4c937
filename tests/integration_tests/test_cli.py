"""The ``gprochat`` command as a person runs it: subprocesses, pipes and a terminal.

Exact output, exit codes, streaming while the answer is still under way, Ctrl-C (SIGINT
through a pseudo-terminal, or to the process) stopping an answer, and errors as one line
without a traceback.
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from importlib import metadata

import pytest

from langchain_gprochat.protocol import Turn
from langchain_gprochat.server import GPROChatServer, echo_reply

from ._deployments import Counting, deployment_server, page_files

KEY = "CLI-K3Y-0123456789"
PW = "cli-pass"
COMMAND = [
    sys.executable,
    "-c",
    "import sys; from langchain_gprochat._cli import main; sys.exit(main())",
]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPROCHAT_")}
    env.update(extra)
    return env


def run(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], input=stdin, capture_output=True, text=True, env=_env(**env), timeout=60
    )


class StallFirst:
    """Streams ``first `` and then waits (until released or cancelled) on its first
    request; answers later ones like the echo backend."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()

    async def stream(self, turns: list[Turn]) -> AsyncIterator[str]:
        self.calls += 1
        if self.calls > 1:
            yield echo_reply(turns)
            return
        yield "first "
        for _ in range(3000):
            if self.release.is_set():
                break
            await asyncio.sleep(0.01)
        yield "rest"


@pytest.fixture(scope="module")
def seen() -> Counting:
    return Counting()


@pytest.fixture(scope="module")
def deployment(seen: Counting) -> Iterator[GPROChatServer]:
    """A deployment with a password, its page in the upstream's form."""
    with deployment_server(
        page_files(KEY, '"4"'), secret_key=KEY, passwords=(PW,), seen=seen
    ) as srv:
        yield srv


@pytest.fixture
def stalling() -> Iterator[tuple[GPROChatServer, StallFirst]]:
    backend = StallFirst()
    with deployment_server(page_files(KEY), backend=backend, secret_key=KEY) as srv:
        yield srv, backend
        backend.release.set()


def test_the_console_script_is_declared() -> None:
    scripts = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
    assert scripts["gprochat"] == "langchain_gprochat._cli:main"


def test_probe_prints_what_discovery_found_with_the_key_masked(
    deployment: GPROChatServer,
) -> None:
    result = run("probe", deployment.url)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"base_url:             {deployment.url}\n"
        "app:                  My Chat (Astro v2.7.0)\n"
        f"secret_key:           **** ({len(KEY)} characters; --show-key prints it)\n"
        "max_history_messages: 4\n"
        "history_limit:        from the page\n"
        "password_required:    yes\n"
        "signing_script:       /_x/Gen.1.js\n"
    )
    assert KEY not in result.stdout


def test_probe_show_key_and_check(deployment: GPROChatServer) -> None:
    before = deployment.stats.statuses[200]
    result = run("probe", deployment.url, "--show-key", "--check", GPROCHAT_PASSWORD=PW)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[2] == f"secret_key:           {KEY}"
    assert result.stdout.splitlines()[-2:] == [
        "signing_script:       /_x/Gen.1.js",
        "check:                a signed request was answered",
    ]
    assert "password_accepted:    yes" in result.stdout.splitlines()
    assert deployment.stats.statuses[200] == before + 1


def test_probe_goes_through_gprochat_proxy(deployment: GPROChatServer, seen: Counting) -> None:
    # The deployment's server plays the proxy: nothing listens at the target itself.
    before = seen.paths["/"]
    result = run("probe", "http://127.0.0.1:9", GPROCHAT_PROXY=deployment.url)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[0] == "base_url:             http://127.0.0.1:9"
    assert seen.paths["/"] == before + 1


def test_probe_check_with_a_wrong_password_fails_in_one_line(deployment: GPROChatServer) -> None:
    result = run("probe", deployment.url, "--check", "--password", "wrong-one")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-2] == "password_accepted:    no"
    assert result.stderr == (
        f"gprochat: error: could not discover the GeminiProChat deployment at "
        f"{deployment.url}/: /api/auth refused the password that was given. Found: its "
        "signing key and settings. Missing: a password the deployment accepts. Set "
        "`password` (or GPROCHAT_PASSWORD, or `gprochat ... --password`) to the site "
        "password.\n"
    )
    assert "wrong-one" not in result.stderr


def test_ask_streams_the_answer(deployment: GPROChatServer) -> None:
    result = run("ask", deployment.url, "Hello", "--password", PW)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "Echo · turn 1 · «Hello» ✓\n",
        "",
    )
    system = run("ask", deployment.url, "Hi", "--system", "Be brief.", GPROCHAT_PASSWORD=PW)
    assert system.stdout == (
        "Echo · turn 1 · «[System instructions]\nBe brief.\n[End of system instructions]\n\nHi» ✓\n"
    )
    piped = run("ask", deployment.url, "-", stdin="from stdin\nline two\n", GPROCHAT_PASSWORD=PW)
    assert (piped.returncode, piped.stdout) == (0, "Echo · turn 1 · «from stdin\nline two\n» ✓\n")


def test_ask_with_a_secret_key_skips_discovery(deployment: GPROChatServer, seen: Counting) -> None:
    before = seen.total
    flag = run("ask", deployment.url, "k", "--secret-key", KEY, "--password", PW)
    env = run("ask", deployment.url, "e", GPROCHAT_SECRET_KEY=KEY, GPROCHAT_PASSWORD=PW)
    assert (flag.returncode, flag.stdout) == (0, "Echo · turn 1 · «k» ✓\n")
    assert (env.returncode, env.stdout) == (0, "Echo · turn 1 · «e» ✓\n")
    assert seen.total == before  # neither fetched the page nor a script
    wrong = run("ask", deployment.url, "x", "--secret-key", "not-the-key", "--password", PW)
    assert (wrong.returncode, wrong.stdout) == (1, "\n")
    assert wrong.stderr == (
        f"gprochat: error: 401 from {deployment.url}/api/generate: Invalid signature. (the "
        "request signature was refused: set `secret_key` (or GPROCHAT_SECRET_KEY) to the "
        "deployment's PUBLIC_SECRET_KEY)\n"
    )


def test_ask_prints_while_the_answer_is_still_under_way_and_sigint_stops_it(
    stalling: tuple[GPROChatServer, StallFirst],
) -> None:
    srv, _backend = stalling
    process = subprocess.Popen(
        [*COMMAND, "ask", srv.url, "slow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert process.stdout is not None
    assert process.stdout.read(6) == b"first "  # the rest is not even sent yet
    assert process.poll() is None
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out, err) == (130, b"\n", b"gprochat: interrupted\n")


def test_chat_with_piped_stdin_keeps_the_history(deployment: GPROChatServer) -> None:
    args = ("chat", deployment.url, "--max-history-messages", "10")
    result = run(*args, stdin="one\n\ntwo\nthree", GPROCHAT_PASSWORD=PW)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "Echo · turn 1 · «one» ✓\nEcho · turn 2 · «two» ✓\nEcho · turn 3 · «three» ✓\n"
    )


def test_chat_limits_the_history_as_the_deployment_does(deployment: GPROChatServer) -> None:
    questions = "".join(f"q{i}\n" for i in range(1, 5))
    result = run("chat", deployment.url, stdin=questions, GPROCHAT_PASSWORD=PW)
    # the page's limit is 4 messages: from the third question on, two user turns are sent
    assert result.stdout.splitlines() == [
        "Echo · turn 1 · «q1» ✓",
        "Echo · turn 2 · «q2» ✓",
        "Echo · turn 2 · «q3» ✓",
        "Echo · turn 2 · «q4» ✓",
    ]


def test_chat_reports_a_failed_answer_goes_on_and_exits_1(deployment: GPROChatServer) -> None:
    args = ("chat", deployment.url, "--secret-key", "not-the-key", "--password", PW)
    result = run(*args, stdin="one\ntwo\n")
    line = (
        f"gprochat: error: 401 from {deployment.url}/api/generate: Invalid signature. (the "
        "request signature was refused: set `secret_key` (or GPROCHAT_SECRET_KEY) to the "
        "deployment's PUBLIC_SECRET_KEY)\n"
    )
    assert (result.returncode, result.stdout, result.stderr) == (1, "", line * 2)


class Terminal:
    """A process on a pseudo-terminal: type into it, read what it shows."""

    def __init__(self, args: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.execve(args[0], args, _env())
        self.shown = b""

    def read_until(self, text: str, limit: float = 30.0) -> str:
        wanted = text.encode()
        deadline = time.monotonic() + limit
        while wanted not in self.shown:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; shown: {self.shown!r}")
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.shown += os.read(self.fd, 4096)
                except OSError:
                    break
        head, _, rest = self.shown.partition(wanted)
        self.shown = rest
        return (head + wanted).decode()

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def test_chat_on_a_terminal_ctrl_c_stops_the_answer_and_ctrl_d_leaves(
    stalling: tuple[GPROChatServer, StallFirst],
) -> None:
    srv, backend = stalling
    term = Terminal([*COMMAND, "chat", srv.url])
    assert term.read_until("> ") == "> "
    term.type("\x03")  # Ctrl-C at the prompt: a fresh prompt, nothing else
    assert term.read_until("> ") == "^C\r\n> "
    term.type("tell me\n")
    assert term.read_until("first ") == "tell me\r\nfirst "
    term.type("\x03")  # Ctrl-C during the answer: it stops, the conversation goes on
    assert term.read_until("> ") == "^C\r\n[answer stopped]\r\n> "
    term.type("again\n")
    # the stopped answer's text stayed in the history: this is the second user turn
    assert term.read_until("> ") == "again\r\nEcho · turn 2 · «again» ✓\r\n> "
    term.type("\x04")  # Ctrl-D leaves
    assert term.wait() == 0
    assert backend.calls == 2


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["ask", "http://127.0.0.1:9", "q", "--secret-key", "k", "--proxy", "ftp://p"],
            "gprochat: error: invalid setting `proxy`: proxy must be an http://, https://, "
            "socks4:// or socks5:// URL\n",
        ),
        (
            ["ask", "notaurl", "q", "--secret-key", "k"],
            "gprochat: error: invalid setting `base_url`: base_url must start with http:// "
            "or https://, got 'notaurl'\n",
        ),
    ],
)
def test_bad_settings_are_one_line_naming_the_setting(args: list[str], line: str) -> None:
    result = run(*args)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", line)


def test_unreachable_and_not_geminiprochat_are_one_line_errors() -> None:
    with GPROChatServer(page=False) as srv:  # no page at all: GET / is a 404
        url = srv.url
        missing = run("probe", url)
    assert missing.returncode == 1
    assert missing.stderr.startswith(
        f"gprochat: error: could not discover the GeminiProChat deployment at {url}/: "
        "GET answered 404."
    )
    assert missing.stderr.count("\n") == 1
    refused = run("ask", "http://127.0.0.1:9", "q", "--connect-timeout", "2")
    assert refused.returncode == 1
    assert refused.stderr.startswith("gprochat: error: could not fetch http://127.0.0.1:9/: ")
    assert refused.stderr.count("\n") == 1
    for result in (missing, refused):
        assert "Traceback" not in result.stderr


def test_usage_errors_exit_2_and_serve_is_the_server_command() -> None:
    usage = run("ask")
    assert usage.returncode == 2
    assert usage.stderr.splitlines()[-1] == (
        "gprochat ask: error: the following arguments are required: URL, QUESTION"
    )
    empty = run("ask", "http://127.0.0.1:9", "-", "--secret-key", "k", stdin=" \n")
    assert (empty.returncode, empty.stderr) == (
        1,
        "gprochat: error: the question is empty: give it as an argument, or - and stdin\n",
    )
    serve = run("serve", "--help")
    assert serve.returncode == 0
    assert serve.stdout.startswith("usage: gprochat-server")
