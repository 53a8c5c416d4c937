"""The layers hold: the wire format and the transport load no LangChain machinery."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = (
    "langchain_core.messages",
    "langchain_core.language_models",
    "langchain_core.runnables",
)


@pytest.mark.parametrize("module", ["langchain_gprochat.protocol", "langchain_gprochat._transport"])
def test_wire_format_and_transport_load_no_langchain_messages_or_runnables(module: str) -> None:
    # langchain_core.exceptions (the error classes) is allowed; messages, language
    # models and runnables are not: those layers know nothing of LangChain.
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert [m for m in loaded if m.startswith(FORBIDDEN)] == []
    assert "aiohttp.web" not in loaded


def test_the_server_loads_no_client_module() -> None:
    # The server shares only the wire format with the client (and, through the package's
    # __init__, the exception classes): never the conversion, transport or chat model.
    code = (
        "import sys, json, pkgutil, importlib, langchain_gprochat.server as s\n"
        "for m in pkgutil.iter_modules(s.__path__):\n"
        "    importlib.import_module('langchain_gprochat.server.' + m.name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    ours = [
        m
        for m in json.loads(out.stdout)
        if m.startswith("langchain_gprochat") and not m.startswith("langchain_gprochat.server")
    ]
    assert ours == [
        "langchain_gprochat",
        "langchain_gprochat._error_text",
        "langchain_gprochat.errors",
        "langchain_gprochat.protocol",
    ]
