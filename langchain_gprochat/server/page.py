"""The chat page at ``GET /``: the upstream web app's page, served by gprochat-server.

The page is static files shipped in the package (``static/``: HTML, CSS, the page's
ES modules and the vendored ``marked`` and ``DOMPurify``) plus one script the server
writes at startup from its settings, :data:`SETTINGS_SCRIPT_PATH`. Like the upstream's
built bundle, that script holds the deployment's ``PUBLIC_SECRET_KEY`` inlined in the
signing template literal, ``${t}:${m}:KEY``, and ``PUBLIC_MAX_HISTORY_MESSAGES`` as
``parseInt("99")``; the key is public by design (see PROTOCOL.md).

Every file is read into memory when the routes are added and looked up by its exact
name: no directory listing, no path ever reaches the file system. Page answers carry a
restrictive :data:`PAGE_CSP` (the page has no inline script or style) and
``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING

from aiohttp import web

from langchain_gprochat.protocol import SYSTEM_TEMPLATE
from langchain_gprochat.server.settings import ServerSettings
from langchain_gprochat.server.state import STATE_KEY

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

__all__ = [
    "PAGE_CSP",
    "SETTINGS_SCRIPT_PATH",
    "STATIC_PREFIX",
    "add_page_routes",
    "settings_script",
    "template_literal_text",
]

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The Content-Security-Policy of every page answer."""

SETTINGS_SCRIPT_PATH = "/settings.js"
"""The module script generated from the settings: the signing key and the history limit."""

STATIC_PREFIX = "/static/"
"""Where the page's static files are served."""

_INDEX = "index.html"
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
_JS_CONTENT_TYPE = _CONTENT_TYPES[".js"]
_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",  # revalidate: a restart may change the key
}


@dataclass(frozen=True)
class _File:
    body: bytes
    content_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, content_type: str) -> _File:
        return cls(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def template_literal_text(text: str) -> str:
    r"""``text`` escaped to stand for itself inside a JavaScript template literal.

    The upstream's bundle (esbuild) inlines its key the same way: backslash, backtick
    and ``${`` escaped (``\\``, ``\```, ``\${``), ``</script`` written ``<\/script``, and
    quotes, tabs, line feeds and non-ASCII characters left as they are. Beyond that, a
    carriage return is written ``\r`` (a template literal reads a raw one as a line
    feed), other control characters ``\xHH`` and lone surrogates ``\uHHHH`` (UTF-8
    cannot hold them; the browser's ``TextEncoder`` then signs U+FFFD, as the server
    does).
    """
    return _TEMPLATE_SPECIAL.sub(_template_escape, text)


_TEMPLATE_SPECIAL = re.compile(
    r"[\\`]|\$\{|</(?=script)|\r|[\x00-\x08\x0b-\x1f\x7f]|[\ud800-\udfff]", re.IGNORECASE
)


def _template_escape(match: re.Match[str]) -> str:
    found = match.group()
    if found in ("\\", "`", "${"):
        return "\\" + found
    if found == "</":
        return "<\\/"
    if found == "\r":
        return "\\r"
    code = ord(found)
    return f"\\x{code:02X}" if code < 0x80 else f"\\u{code:04X}"


def settings_script(settings: ServerSettings) -> str:
    """The ES module the page imports from :data:`SETTINGS_SCRIPT_PATH`.

    It exports ``maxHistoryMessages`` (written ``parseInt("99")``, as in the upstream's
    bundle), ``systemTemplate`` (how a system role is folded into the first user turn,
    as ChatGPROChat folds a system message) and ``generateSignature(t, m)``, which
    hashes the template literal ``${t}:${m}:KEY`` with the key inlined (see
    :func:`template_literal_text`), as the upstream's bundle does.
    """
    key = template_literal_text(settings.secret_key)
    template = json.dumps(SYSTEM_TEMPLATE, ensure_ascii=True)
    return (
        "// Written by gprochat-server from its settings when it started.\n"
        "// The key is the deployment's PUBLIC_SECRET_KEY: public by design, as upstream.\n"
        'import { sha256Hex } from "/static/sha256.js";\n'
        "\n"
        f'export const maxHistoryMessages = parseInt("{settings.max_history_messages}");\n'
        f"export const systemTemplate = {template};\n"
        "\n"
        "export function generateSignature(t, m) {\n"
        f"  return sha256Hex(`${{t}}:${{m}}:{key}`);\n"
        "}\n"
    )


def _content_type(name: str) -> str:
    suffix = name[name.rfind(".") :] if "." in name else ""
    try:
        return _CONTENT_TYPES[suffix]
    except KeyError:
        known = ", ".join(sorted(_CONTENT_TYPES))
        raise ValueError(
            f"the chat page's file {name!r} has no known content type; ship only {known} files"
        ) from None


def _walk(folder: Traversable, prefix: str = "") -> dict[str, _File]:
    found: dict[str, _File] = {}
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            found.update(_walk(entry, name + "/"))
        elif not entry.name.startswith("."):
            found[name] = _File.of(entry.read_bytes(), _content_type(name))
    return found


def _static_files() -> dict[str, _File]:
    """The page's files by name relative to ``static/`` (``"vendor/purify.min.js"``)."""
    return _walk(files("langchain_gprochat.server").joinpath("static"))


def _answer(request: web.Request, file: _File) -> web.Response:
    headers = {**_HEADERS, "ETag": file.etag}
    if file.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=file.body, headers={**headers, "Content-Type": file.content_type})


def add_page_routes(app: web.Application) -> None:
    """Add ``GET /``, ``GET /settings.js`` and ``GET /static/{name}`` to ``app``.

    The settings script is written from ``app[STATE_KEY].settings``, which must be set.

    Raises:
        ValueError: a file of the page has a name with no known content type.
    """
    static = _static_files()
    script = settings_script(app[STATE_KEY].settings).encode("utf-8")
    generated = _File.of(script, _JS_CONTENT_TYPE)
    index = static[_INDEX]

    async def page(request: web.Request) -> web.Response:
        return _answer(request, index)

    async def settings(request: web.Request) -> web.Response:
        return _answer(request, generated)

    async def static_file(request: web.Request) -> web.Response:
        file = static.get(request.match_info["name"])
        if file is None:
            raise web.HTTPNotFound()
        return _answer(request, file)

    app.router.add_get("/", page)
    app.router.add_get(SETTINGS_SCRIPT_PATH, settings)
    app.router.add_get(STATIC_PREFIX + "{name:.+}", static_file)
