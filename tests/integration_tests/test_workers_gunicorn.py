"""gunicorn pointed at ``langchain_gprochat.server.workers:app_factory``, as real processes.

Nothing about time is asserted; timeouts are upper limits only.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_gprochat.server import echo_reply

if sys.platform == "win32":
    pytest.skip("gunicorn runs on POSIX only", allow_module_level=True)
pytest.importorskip("gunicorn")

from ._workers_support import (
    ARGV_ENV,
    CONTROL_SOCKET,
    body,
    direct_gunicorn,
    fresh_connections,
    post,
    server_env,
    turns_of,
    until_both_answered,
)

# ------------------------------------------------------------ gunicorn, pointed directly

FACTORY = "langchain_gprochat.server.workers:app_factory"


@pytest.mark.parametrize(
    ("target", "env", "key"),
    [
        (f"{FACTORY}()", {"GPROCHAT_SECRET_KEY": "key-from-env"}, "key-from-env"),
        (f'{FACTORY}("--secret-key", "key-in-target")', {}, "key-in-target"),
        (f"{FACTORY}()", {ARGV_ENV: json.dumps(["--secret-key", "key-in-argv"])}, "key-in-argv"),
    ],
    ids=["GPROCHAT_env", "literal-args", "argv-env"],
)
async def test_gunicorn_pointed_at_the_factory_answers(
    tmp_path: Path, target: str, env: dict[str, str], key: str
) -> None:
    with direct_gunicorn(target, tmp_path=tmp_path, **env) as running:
        await until_both_answered(running)
        async with fresh_connections() as session:
            good = await post(session, running.url, body("Привет, мир 🌍", secret_key=key))
            bad = await post(session, running.url, body("Привет, мир 🌍"))
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=60) == 0
    assert good[:2] == (200, echo_reply(turns_of("Привет, мир 🌍")))
    assert bad[:2] == (401, '{"error":{"message":"Invalid signature."}}')
    assert {good[2], bad[2]} <= running.booted()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {ARGV_ENV: "--password hunter2"},
            f"{ARGV_ENV} must be a JSON list of strings, like "
            '\'["--backend", "echo"]\'; it is not JSON (Expecting value).',
        ),
        (
            {ARGV_ENV: '{"--password": "hunter2"}'},
            f"{ARGV_ENV} must be a JSON list of strings, like "
            '\'["--backend", "echo"]\'; it is JSON of another shape.',
        ),
        (
            {ARGV_ENV: '["--backend", "no_such_module_here:model", "--password", "hunter2"]'},
            "invalid backend 'no_such_module_here:model'",
        ),
    ],
    ids=["not-json", "not-a-list", "bad-backend"],
)
def test_gunicorn_with_bad_worker_arguments_fails_to_boot_clearly(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    argv = [sys.executable, "-m", "gunicorn", f"{FACTORY}()", "-k", "aiohttp.GunicornWebWorker"]
    result = subprocess.run(
        [*argv, "-w", "1", "-b", "127.0.0.1:0", *CONTROL_SOCKET],
        cwd=tmp_path,
        env=server_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3  # gunicorn's WORKER_BOOT_ERROR: it halts, no respawn loop
    assert message in result.stderr
    assert "hunter2" not in result.stderr
