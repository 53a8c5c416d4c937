"""The documentation site builds with ``mkdocs build --strict``.

The build runs in a subprocess (the unit tests' socket ban covers this process only).
mkdocs-material and mkdocstrings come with the ``test`` extra, so a missing one is a
failure, not a skip. Under ``--strict`` any warning fails the build: a broken link or
anchor, a page missing from the nav, a docstring that mkdocstrings cannot parse, a
snippet (``bench/README.md``) that is not there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page in ("connecting", "server", "reliability", "tools", "performance", "api"):
        assert (site / page / "index.html").is_file(), page
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for anchor in (
        "langchain_gprochat.ChatGPROChat",
        "langchain_gprochat.errors.StreamInterruptedError",
        "langchain_gprochat.server.GPROChatServer",
    ):
        assert f'id="{anchor}"' in api, anchor
    assert (site / "results.png").is_file()
