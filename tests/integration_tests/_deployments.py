"""Serving a deployment's page for discovery tests: static files plus the real API.

:func:`serve_deployment` serves the given files (the page at ``/``, its scripts) from
``gprochat-server``'s own application, so that ``/api/auth`` and ``/api/generate``
check the password and the signature exactly as the server does.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from langchain_gprochat.server import Backend, GPROChatServer, ServerSettings

JS = "text/javascript; charset=utf-8"
HTML = "text/html; charset=utf-8"


def signing_chunk(key: str, history: str | None = '"12"') -> str:
    """A chunk in the upstream bundle's form, names of our own; ``key`` inlined as is."""
    history_code = "" if history is None else f"g=parseInt({history});q=l.slice(-g);"
    return (
        'import{r as a}from"./web.1.js";async function h(s){return s}'
        f"const sign=async p=>{{const{{t:x,m:y}}=p,k=`${{x}}:${{y}}:{key}`;return await h(k)}};"
        f"{history_code}export{{sign as default}};"
    )


def island_page(component: str = "/_x/Gen.1.js", title: str = "My Chat") -> str:
    """A page in the upstream's shape: an Astro island and a hoisted module script."""
    return (
        "<!DOCTYPE html><html><head>"
        '<meta charset="UTF-8"><meta name="generator" content="Astro v2.7.0">'
        f"<title>{title}</title>"
        '<script type="module" src="/_x/hoisted.1.js"></script></head><body><main>'
        f'<astro-island uid="1" component-url="{component}" component-export="default" '
        'renderer-url="/_x/client.1.js" props="{}" ssr="" client="load"></astro-island>'
        "</main></body></html>"
    )


class Counting:
    """Counts the requests of each path it serves."""

    def __init__(self) -> None:
        self.paths: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.paths.values())


def add_files(app: web.Application, files: Mapping[str, tuple[bytes, str]], seen: Counting) -> None:
    """Serve ``files`` (path → body and content type) with GET, counting requests."""

    async def serve(request: web.Request) -> web.StreamResponse:
        seen.paths[request.path] += 1
        entry = files.get(request.path)
        if entry is None:
            raise web.HTTPNotFound()
        body, content_type = entry
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_get("/{tail:.*}", serve)


def deployment_server(
    files: Mapping[str, tuple[bytes, str]],
    *,
    backend: Backend | None = None,
    ssl_context: ssl.SSLContext | None = None,
    seen: Counting | None = None,
    **settings: Any,
) -> GPROChatServer:
    """``gprochat-server`` (its page off) that also serves ``files``, not started yet."""
    base = dataclasses.replace(ServerSettings(), page=False, **settings)
    srv = GPROChatServer(base, backend, ssl_context=ssl_context)
    add_files(srv.app, files, seen if seen is not None else Counting())
    return srv


@asynccontextmanager
async def serve_deployment(
    files: Mapping[str, tuple[bytes, str]],
    *,
    backend: Backend | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[GPROChatServer, Counting]]:
    """``gprochat-server`` (its page off) serving ``files`` too; yields it and the counts."""
    seen = Counting()
    async with deployment_server(files, backend=backend, seen=seen, **settings) as srv:
        yield srv, seen


def page_files(
    key: str, history: str | None = '"12"', page: str | None = None
) -> dict[str, tuple[bytes, str]]:
    """The files of a deployment whose signing chunk inlines ``key``."""
    return {
        "/": ((page or island_page()).encode(), HTML),
        "/_x/Gen.1.js": (signing_chunk(key, history).encode(), JS),
        "/_x/web.1.js": (b"export const r=1;", JS),
        "/_x/hoisted.1.js": (b"console.log(1)", JS),
        "/_x/client.1.js": (b'import"./web.1.js";', JS),
    }
