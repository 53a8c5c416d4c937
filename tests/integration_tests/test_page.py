"""The chat page's files over real HTTP: types, security headers, no way out of static/."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict

from langchain_gprochat.server import GPROChatServer, ServerSettings
from langchain_gprochat.server.page import PAGE_CSP, settings_script

from ._support import Start

STATIC = Path(__file__).resolve().parents[2] / "langchain_gprochat" / "server" / "static"

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, CIMultiDict[str], bytes]:
    async with session.get(url) as response:
        return response.status, CIMultiDict(response.headers), await response.read()


async def test_every_file_is_served_with_its_type_and_the_security_headers(start: Start) -> None:
    srv = await start()
    files = sorted(p for p in STATIC.rglob("*") if p.is_file())
    async with aiohttp.ClientSession() as session:
        for path in files:
            name = path.relative_to(STATIC).as_posix()
            status, headers, body = await _get(session, f"{srv.url}/static/{name}")
            assert (status, body) == (200, path.read_bytes()), name
            assert headers["Content-Type"] == TYPES[path.suffix], name
            assert headers["Content-Security-Policy"] == PAGE_CSP
            assert headers["X-Content-Type-Options"] == "nosniff"
        status, headers, body = await _get(session, f"{srv.url}/")
        assert (status, body) == (200, (STATIC / "index.html").read_bytes())
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["Content-Security-Policy"] == PAGE_CSP
        assert headers["X-Content-Type-Options"] == "nosniff"
        status, headers, body = await _get(session, f"{srv.url}/settings.js")
        assert status == 200
        assert headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert body.decode() == settings_script(srv.settings)


async def test_revalidation_and_head(start: Start) -> None:
    srv = await start()
    async with aiohttp.ClientSession() as session:
        _, headers, _ = await _get(session, f"{srv.url}/static/app.js")
        etag = headers["ETag"]
        assert headers["Cache-Control"] == "no-cache"
        async with session.get(
            f"{srv.url}/static/app.js", headers={"If-None-Match": etag}
        ) as response:
            assert (response.status, await response.read()) == (304, b"")
        async with session.head(f"{srv.url}/") as response:
            assert response.status == 200
            assert response.headers["Content-Security-Policy"] == PAGE_CSP
        async with session.post(f"{srv.url}/", data=b"x") as response:
            assert response.status == 405


async def test_the_settings_script_follows_the_settings(start: Start) -> None:
    srv = await start(secret_key="k`${x}\\", max_history_messages=7)
    async with aiohttp.ClientSession() as session:
        _, _, body = await _get(session, f"{srv.url}/settings.js")
    text = body.decode()
    assert 'export const maxHistoryMessages = parseInt("7");\n' in text
    assert "  return sha256Hex(`${t}:${m}:k\\`\\${x}\\\\`);\n" in text


async def _raw(srv: GPROChatServer, target: str) -> tuple[int, bytes]:
    """Send ``GET target`` byte for byte (no client normalises the path)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    "target",
    [
        "/static/",
        "/static/vendor",
        "/static/vendor/",
        "/static/../page.py",
        "/static/../../server/page.py",
        "/static/%2e%2e/page.py",
        "/static/..%2fpage.py",
        "/static/vendor/../../app.py",
        "/static/vendor/..%2f..%2fapp.py",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/..\\page.py",
        "/static/app.js%00.html",
        "/static/./app.js/",
        "/static/APP.JS",
        "/static/.gitignore",
        "/index.html",
        "/page.py",
        "/favicon.ico",
    ],
)
async def test_no_listing_and_no_way_out(start: Start, target: str) -> None:
    srv = await start()
    status, body = await _raw(srv, target)
    assert status in (400, 404), (target, status)
    assert b"import" not in body
    assert b"root:" not in body


async def test_a_normalised_path_inside_static_is_still_only_static(start: Start) -> None:
    srv = await start()
    status, body = await _raw(srv, "/static/vendor/../app.js")
    # aiohttp may or may not resolve the dot segments; either way it is static/app.js or 404
    assert (status, body if status == 200 else b"") in (
        (200, (STATIC / "app.js").read_bytes()),
        (404, b""),
    )


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


async def test_the_page_has_no_inline_script_or_style_and_links_only_its_own_files(
    start: Start,
) -> None:
    srv = await start()
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(html)
    assert [tag for tag, _ in parser.tags if tag == "style"] == []
    assert [
        (t, a) for t, a in parser.tags if any(k.startswith("on") or k == "style" for k in a)
    ] == []
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert all(attrs.get("src") for attrs in scripts)
    assert re.findall(r"<script[^>]*>(?!</script>)", html) == []  # no script has a body
    linked = sorted(
        value
        for _, attrs in parser.tags
        for key, value in attrs.items()
        if key in ("src", "href") and value
    )
    assert linked == [
        "/settings.js",
        "/static/app.js",
        "/static/favicon.svg",
        "/static/favicon.svg",
        "/static/style.css",
        "/static/vendor/marked.umd.js",
        "/static/vendor/purify.min.js",
    ]
    async with aiohttp.ClientSession() as session:
        for url in linked:
            status, _, _ = await _get(session, srv.url + url)
            assert status == 200, url


async def test_no_page(start: Start) -> None:
    srv = await start(page=False)
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/settings.js", "/static/app.js", "/static/index.html"):
            status, _, _ = await _get(session, srv.url + path)
            assert status == 404, path


def test_the_page_is_on_by_default() -> None:
    assert ServerSettings().page is True
