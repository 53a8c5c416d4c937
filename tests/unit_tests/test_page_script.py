"""The chat page's generated settings script and its routes, without a socket."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from langchain_gprochat.protocol import SYSTEM_TEMPLATE
from langchain_gprochat.server import ServerSettings, create_app
from langchain_gprochat.server.__main__ import build_parser, settings_from_args
from langchain_gprochat.server.page import (
    PAGE_CSP,
    settings_script,
    template_literal_text,
)

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "langchain_gprochat" / "server" / "static"

if sys.version_info >= (3, 11):
    import tomllib
else:
    tomllib = pytest.importorskip("tomli")


def test_the_settings_script_inlines_key_and_limit_as_the_upstream_bundle() -> None:
    script = settings_script(ServerSettings(secret_key="my-key", max_history_messages=12))
    assert script == (
        "// Written by gprochat-server from its settings when it started.\n"
        "// The key is the deployment's PUBLIC_SECRET_KEY: public by design, as upstream.\n"
        'import { sha256Hex } from "/static/sha256.js";\n'
        "\n"
        'export const maxHistoryMessages = parseInt("12");\n'
        'export const systemTemplate = "[System instructions]\\n{system}\\n'
        '[End of system instructions]\\n\\n{content}";\n'
        "\n"
        "export function generateSignature(t, m) {\n"
        "  return sha256Hex(`${t}:${m}:my-key`);\n"
        "}\n"
    )


def test_the_system_template_is_the_one_chatgprochat_folds_with() -> None:
    script = settings_script(ServerSettings())
    found = re.search(r"^export const systemTemplate = (.*);$", script, re.M)
    assert found is not None
    assert json.loads(found.group(1)) == SYSTEM_TEMPLATE


@pytest.mark.parametrize(
    ("key", "written"),
    [
        ("2BC120D4-BB36-1B60-26DE-DB630472A3D8", "2BC120D4-BB36-1B60-26DE-DB630472A3D8"),
        ("", ""),
        # the form the upstream's own build gives this key (an Astro build of its main)
        ("Ke\"y'\\s`${z}é🌍</script>\tend", "Ke\"y'\\\\s\\`\\${z}é🌍<\\/script>\tend"),
        ("$ {not} $x {y} $", "$ {not} $x {y} $"),
        ("a\r\nb", "a\\r\nb"),
        ("\x00\x1b\x7f", "\\x00\\x1B\\x7F"),
        ("lone \ud800 and pair \ud83c\udf0d", "lone \\uD800 and pair \\uD83C\\uDF0D"),
        ("</SCRIPT></style>", "<\\/SCRIPT></style>"),
        ("\\${", "\\\\\\${"),
        ("``", "\\`\\`"),
    ],
)
def test_template_literal_text(key: str, written: str) -> None:
    assert template_literal_text(key) == written
    script = settings_script(ServerSettings(secret_key=key))
    assert f"  return sha256Hex(`${{t}}:${{m}}:{written}`);\n" in script


def test_the_key_can_be_read_back_from_the_script() -> None:
    # What a deployment-discovery tool does: find the literal, undo the escapes.
    key = "Ke\"y'\\s`${z}é🌍</script>\tend\r"
    script = settings_script(ServerSettings(secret_key=key))
    match = re.search(r"`\$\{\w+\}:\$\{\w+\}:((?:[^`\\]|\\.)*)`", script, re.S)
    assert match is not None
    escapes = {"r": "\r", "\\": "\\", "`": "`", "$": "$", "/": "/"}
    assert re.sub(r"\\(.)", lambda m: escapes[m.group(1)], match.group(1)) == key
    limit = re.search(r'maxHistoryMessages = parseInt\("(\d+)"\)', script)
    assert limit is not None
    assert limit.group(1) == "99"


def _paths(app_page: bool) -> list[str]:
    app = create_app(ServerSettings(page=app_page))
    return sorted(resource.canonical for resource in app.router.resources() if resource.canonical)


def test_the_page_routes_and_no_page() -> None:
    with_page, without = _paths(True), _paths(False)
    assert sorted(set(with_page) - set(without)) == ["/", "/settings.js", "/static/{name}"]
    assert set(without) <= set(with_page)
    assert [path for path in without if not path.startswith("/api/")] in ([], ["/healthz"])


def test_no_page_option() -> None:
    parser = build_parser()
    assert settings_from_args(parser.parse_args([])).page is True
    assert settings_from_args(parser.parse_args(["--no-page"])).page is False


def test_the_csp_is_restrictive() -> None:
    assert PAGE_CSP == (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def test_every_static_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["langchain_gprochat.server"]
    shipped = {
        p for pattern in patterns for p in (ROOT / "langchain_gprochat/server").glob(pattern)
    }
    on_disk = {p for p in STATIC.rglob("*") if p.is_file()}
    assert on_disk - shipped == set()
    names = sorted(str(p.relative_to(STATIC)) for p in on_disk)
    assert names == [
        "app.js",
        "conversation.js",
        "favicon.svg",
        "index.html",
        "markdown.js",
        "sha256.js",
        "style.css",
        "vendor/VERSIONS.txt",
        "vendor/dompurify.LICENSE-MPL.txt",
        "vendor/dompurify.LICENSE.txt",
        "vendor/marked.LICENSE.txt",
        "vendor/marked.umd.js",
        "vendor/purify.min.js",
    ]
