"""``--workers`` and the gunicorn app factory, without sockets (the processes: integration)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from aiohttp import web

from langchain_gprochat.server.__main__ import build_parser, main
from langchain_gprochat.server.connection import GuardedAppRunner
from langchain_gprochat.server.runner import GPROChatServer
from langchain_gprochat.server.state import STATE_KEY
from langchain_gprochat.server.workers import (
    ARGV_ENV,
    WORKER_HEADER,
    WorkerSettingsError,
    app_factory,
    run_workers,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ARGV_ENV, "GPROCHAT_SECRET_KEY", "GPROCHAT_SERVER_PASSWORDS"):
        monkeypatch.delenv(name, raising=False)
    for name in ("PUBLIC_SECRET_KEY", "SITE_PASSWORD", "PUBLIC_MAX_HISTORY_MESSAGES"):
        monkeypatch.delenv(name, raising=False)


def test_workers_option_defaults_to_one_and_takes_a_positive_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    assert parser.parse_args([]).workers == 1
    assert parser.parse_args(["--workers", "4"]).workers == 4
    for bad in ("0", "-2", "two"):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(["--workers", bad])
        assert exc.value.code == 2
        assert "argument --workers" in capsys.readouterr().err


def _server() -> GPROChatServer:
    return GPROChatServer()


def test_windows_gets_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    assert run_workers(_server(), ["--workers", "2"], workers=2, log_level="info") == 2
    err = capsys.readouterr().err
    assert err == (
        "gprochat-server: --workers needs gunicorn, which runs on POSIX systems only "
        "(Linux, macOS, BSD); on Windows run one process per port behind a load balancer, "
        "or use WSL\n"
    )


def test_missing_gunicorn_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> object:
        return None if name == "gunicorn" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert main(["--workers", "2", "--port", "0"]) == 2
    assert capsys.readouterr().err == (
        "gprochat-server: --workers needs gunicorn: pip install 'langchain-gprochat[workers]'\n"
    )
    assert ARGV_ENV not in os.environ


def test_bad_settings_are_reported_before_gunicorn_is_looked_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    assert main(["--workers", "2", "--max-body", "0"]) == 2
    assert capsys.readouterr().err == ("gprochat-server: max_body must be at least 1 byte, got 0\n")


async def _runner(*argv: str) -> GuardedAppRunner:
    runner = await app_factory(*argv)()
    assert isinstance(runner, GuardedAppRunner)
    return runner


async def test_factory_serves_the_servers_own_runner_with_its_limits() -> None:
    runner = await _runner(
        "--secret-key", "k", "--header-timeout", "2.5", "--max-connections", "7"
    )  # fmt: skip
    assert runner.guard.header_timeout == 2.5
    assert runner.guard.max_connections == 7
    settings = runner.app[STATE_KEY].settings
    assert (settings.secret_key, settings.max_connections) == ("k", 7)


async def test_factory_reads_the_argv_variable_and_literal_args_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ARGV_ENV, json.dumps(["--secret-key", "from-env", "--workers", "3"]))
    assert (await _runner()).app[STATE_KEY].settings.secret_key == "from-env"
    assert (await _runner("--secret-key", "literal")).app[STATE_KEY].settings.secret_key == (
        "literal"
    )


async def test_factory_without_arguments_reads_the_gprochat_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GPROCHAT_SECRET_KEY", "gp-key")
    monkeypatch.setenv("GPROCHAT_SERVER_PASSWORDS", "a,b")
    settings = (await _runner()).app[STATE_KEY].settings
    assert (settings.secret_key, settings.passwords) == ("gp-key", ("a", "b"))


async def test_worker_answers_carry_its_pid() -> None:
    runner = await _runner()
    await runner.setup()  # freezes the app; binds nothing
    try:
        response = web.Response(text="x")
        await runner.app.on_response_prepare.send(_request(), response)
    finally:
        await runner.cleanup()
    assert response.headers[WORKER_HEADER] == str(os.getpid())


def _request() -> web.Request:
    from aiohttp.test_utils import make_mocked_request

    return make_mocked_request("POST", "/api/auth")


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("--password hunter2", "it is not JSON (Expecting value)."),
        ('{"--password": "hunter2"}', "it is JSON of another shape."),
        ('["--password", 7]', "it is JSON of another shape."),
    ],
)
def test_a_bad_argv_variable_is_refused_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch, raw: str, detail: str
) -> None:
    monkeypatch.setenv(ARGV_ENV, raw)
    with pytest.raises(WorkerSettingsError) as exc:
        app_factory()
    assert str(exc.value) == (
        f'{ARGV_ENV} must be a JSON list of strings, like \'["--backend", "echo"]\'; {detail}'
    )
    assert "hunter2" not in str(exc.value)


def test_bad_worker_arguments_raise_a_typed_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(WorkerSettingsError, match="invalid gprochat-server arguments"):
        app_factory("--port", "many")
    assert "argument --port: invalid int value: 'many'" in capsys.readouterr().err
    with pytest.raises(WorkerSettingsError, match="max_body must be at least 1 byte, got 0"):
        app_factory("--max-body", "0")
    with pytest.raises(WorkerSettingsError, match="invalid backend 'no_such_module_x:m'"):
        app_factory("--backend", "no_such_module_x:m", "--password", "hunter2")


def test_the_factory_module_does_not_import_gunicorn() -> None:
    """Only the master needs gunicorn; importing the factory (as docs tools do) does not."""
    code = (
        "import sys, langchain_gprochat.server.workers; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'gunicorn' "
        "or m.endswith('_arbiter')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"
