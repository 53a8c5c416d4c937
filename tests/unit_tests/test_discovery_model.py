"""The discovery's pure parts: ``Deployment``, ``DiscoveryError``, the CLI's lines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import SecretStr

from langchain_gprochat import ChatGPROChat, Deployment, DiscoveryError
from langchain_gprochat._cli import error_line, probe_rows, show_key


def deployment(**overrides: object) -> Deployment:
    fields: dict[str, object] = {
        "base_url": "https://u:pw@chat.example",
        "page_url": "https://u:pw@chat.example/",
        "secret_key": SecretStr("K-123"),
        "max_history_messages": 12,
        "history_limit_found": True,
        "password_required": False,
        "app_name": "Gemini Pro Chat",
        "generator": "Astro v2.7.0",
        "signing_script": "https://chat.example/_astro/Generator.1.js",
        "scripts": ("https://chat.example/_astro/Generator.1.js",),
    }
    fields.update(overrides)
    return Deployment(**fields)  # type: ignore[arg-type]


def test_deployment_hides_its_secrets_and_gives_the_models_arguments() -> None:
    d = deployment()
    for text in (repr(d), d.model_dump_json(), json.dumps(d.model_dump(mode="json"))):
        assert "K-123" not in text
        assert ":pw@" not in text
    assert d.model_dump(mode="json")["base_url"] == "https://***@chat.example"
    assert d.headers == {"origin": "https://chat.example", "referer": "https://chat.example/"}
    kwargs = d.chat_model_kwargs()
    assert kwargs == {
        "base_url": "https://u:pw@chat.example",
        "secret_key": d.secret_key,
        "max_history_messages": 12,
        "default_headers": {"origin": "https://chat.example", "referer": "https://chat.example/"},
    }
    llm = ChatGPROChat(**kwargs)
    assert llm.secret_key.get_secret_value() == "K-123"


def test_discovery_error_lists_findings_and_says_how_to_set_the_key() -> None:
    found = tuple(f"/s{i}.js: 404" for i in range(10))
    exc = DiscoveryError("no_signing_code", "nothing", url="http://h/", found=found)
    assert str(exc) == (
        "could not discover the GeminiProChat deployment at http://h/: nothing. Found: "
        + "; ".join(found[:8])
        + "; 2 more. To connect anyway, give the deployment's PUBLIC_SECRET_KEY by hand: "
        "ChatGPROChat(base_url=..., secret_key=...) (or GPROCHAT_SECRET_KEY, or "
        "`gprochat ... --secret-key`); an empty string if it set none."
    )
    assert (exc.reason, exc.found, exc.missing, exc.is_retryable) == (
        "no_signing_code",
        found,
        (),
        False,
    )


@pytest.mark.parametrize(
    ("key", "full", "shown"),
    [
        ("", False, "(none: the deployment signs with an empty key)"),
        ("abc", False, "**** (3 characters; --show-key prints it)"),
        ("abc", True, "abc"),
        ("a\tb", True, '"a\\tb"'),
    ],
)
def test_show_key(key: str, full: bool, shown: str) -> None:
    assert show_key(key, full) == shown


def test_probe_rows_for_an_unknown_password_rule_and_no_history_limit() -> None:
    d = deployment(password_required=None, max_history_messages=None, app_name=None)
    assert probe_rows(d, full_key=False, with_password=True) == [
        ("base_url", "https://***@chat.example"),
        ("app", "unknown (Astro v2.7.0)"),
        ("secret_key", "**** (5 characters; --show-key prints it)"),
        ("max_history_messages", "no limit"),
        ("history_limit", "from the page"),
        ("password_required", "unknown"),
        ("password_accepted", "unknown"),
        ("signing_script", "/_astro/Generator.1.js"),
    ]


def test_error_line_names_the_setting_of_a_validation_error() -> None:
    with pytest.raises(ValueError, match="greater than 0") as caught:
        ChatGPROChat(base_url="https://h", timeout=-1)
    assert error_line(caught.value) == "invalid setting `timeout`: Input should be greater than 0"
    assert error_line(RuntimeError("a\n  b")) == "a b"


def test_discovery_loads_no_langchain_machinery_and_no_server() -> None:
    code = "import sys, json, langchain_gprochat.discovery; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    forbidden = ("langchain_core.messages", "langchain_core.language_models", "aiohttp.web")
    assert [m for m in loaded if m.startswith(forbidden)] == []
    assert "langchain_gprochat.chat_models" not in loaded
