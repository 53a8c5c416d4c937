"""``discover`` and ``from_deployment`` against real builds of the upstream GeminiProChat.

The builds are not part of this repository (nothing of the upstream's code or its build
output is kept here). ``GPROCHAT_UPSTREAM_BUILDS`` names a folder with one subfolder per
build, each holding what a browser loads from a running build and what it was built
with::

    <build>/index.html    the page, as the built server rendered it on 127.0.0.1
    <build>/_astro/*.js   the script chunks the build emitted
    <build>/LICENSE       the app's license
    <build>/build.json    {"commit": ..., "secret_key": ..., "passwords": [...],
                           "max_history_messages": N, "title": ..., "generator": ...}

Each build is served from 127.0.0.1 together with ``gprochat-server``'s API configured
with that build's key and passwords, so the signed multi-turn request that
``from_deployment`` sends is verified as the server verifies every request.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_gprochat import ChatGPROChat, DiscoveryError, adiscover

from ._deployments import HTML, JS, serve_deployment

BUILDS_ENV = "GPROCHAT_UPSTREAM_BUILDS"
FAST = {"timeout": 20.0, "first_byte_timeout": 10.0, "chunk_timeout": 10.0}

if not os.environ.get(BUILDS_ENV):
    pytest.skip(
        f"set {BUILDS_ENV} to a folder of built GeminiProChat pages to run these",
        allow_module_level=True,
    )

BUILDS = sorted(p for p in Path(os.environ[BUILDS_ENV]).iterdir() if (p / "build.json").is_file())


def _meta(build: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((build / "build.json").read_text(encoding="utf-8"))
    return meta


def _files(build: Path) -> dict[str, tuple[bytes, str]]:
    files = {"/": ((build / "index.html").read_bytes(), HTML)}
    for chunk in sorted((build / "_astro").glob("*.js")):
        files[f"/_astro/{chunk.name}"] = (chunk.read_bytes(), JS)
    return files


def test_there_are_builds_and_each_ships_the_apps_license() -> None:
    assert BUILDS, f"{BUILDS_ENV} names a folder without builds"
    for build in BUILDS:
        first = (build / "LICENSE").read_text(encoding="utf-8").splitlines()[0]
        # MIT since 2023-12-16; the releases of its first two days were GPL-3.0
        assert first in ("MIT License", "GNU GENERAL PUBLIC LICENSE"), build


@pytest.mark.parametrize("build", BUILDS, ids=[b.name for b in BUILDS])
async def test_discover_reads_the_builds_settings(build: Path) -> None:
    meta = _meta(build)
    passwords = tuple(meta["passwords"])
    password = passwords[-1] if passwords else None
    async with serve_deployment(
        _files(build), secret_key=meta["secret_key"], passwords=passwords
    ) as (srv, seen):
        url = srv.url
        deployment = await adiscover(url, password=password, **FAST)
    assert deployment.secret_key.get_secret_value() == meta["secret_key"]
    assert deployment.max_history_messages == meta["max_history_messages"]
    assert deployment.history_limit_found is True
    assert deployment.password_required is bool(passwords)
    assert deployment.password_accepted is (None if password is None else True)
    assert (deployment.app_name, deployment.generator) == (meta["title"], meta["generator"])
    assert (deployment.base_url, deployment.page_url) == (url, f"{url}/")
    # the island's component chunk holds the signing code: one script is enough
    assert deployment.scripts == (deployment.signing_script,)
    assert deployment.signing_script.startswith(f"{url}/_astro/Generator.")
    assert seen.total == 2  # the page and that chunk


@pytest.mark.parametrize("build", BUILDS, ids=[b.name for b in BUILDS])
async def test_from_deployment_answers_a_signed_multi_turn_request(build: Path) -> None:
    meta = _meta(build)
    passwords = tuple(meta["passwords"])
    history = [HumanMessage("Hi"), AIMessage("Hello! How can I help?"), HumanMessage("Tell më")]
    async with serve_deployment(
        _files(build), secret_key=meta["secret_key"], passwords=passwords
    ) as (srv, _):
        kwargs = {"discovery_timeout": 20.0, "max_retries": 0}
        if passwords:
            with pytest.raises(DiscoveryError) as refused:
                await ChatGPROChat.afrom_deployment(srv.url, password="not-it", **kwargs)
            assert refused.value.reason == "password_refused"
        password = passwords[0] if passwords else None
        llm = await ChatGPROChat.afrom_deployment(srv.url, password=password, **kwargs)
        async with llm:
            answer = await llm.ainvoke(history)
        statuses = dict(srv.stats.statuses)
    assert answer.content == "Echo · turn 2 · «Tell më» ✓"
    assert statuses == {200: 1}
    assert llm.max_history_messages == meta["max_history_messages"]
