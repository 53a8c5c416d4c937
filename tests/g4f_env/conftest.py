"""Tests of GPROChat inside gpt4free's client; they need g4f (see ``.ci/g4f.sh``).

The main test run does not collect this directory (``norecursedirs`` in pyproject.toml).
Run without g4f, it fails at once: the import below is not guarded on purpose.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import g4f
import g4f.debug
import pytest

from langchain_gprochat.server import GPROChatServer

g4f.debug.version_check = False  # g4f would ask PyPI for its latest version


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BASE_URL", "SECRET_KEY", "PASSWORD", "PROXY", "API_KEY"):
        monkeypatch.delenv(f"GPROCHAT_{name}", raising=False)
    monkeypatch.delenv("G4F_PROXY", raising=False)


@pytest.fixture(scope="module")
def echo_server() -> Iterator[GPROChatServer]:
    with GPROChatServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def original() -> ModuleType:
    """The original provider's module, loaded from g4f's own file.

    g4f 6.7.1 cannot import ``g4f.Provider.not_working`` (a module it names is missing
    from the wheel), so the file is loaded on its own, under its own name.
    """
    path = Path(g4f.__file__).parent / "Provider" / "not_working" / "GPROChat.py"
    spec = importlib.util.spec_from_file_location("g4f.Provider.not_working.GPROChat", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
