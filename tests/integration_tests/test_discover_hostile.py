"""``discover`` against pages that are not what they seem, all on 127.0.0.1.

Each gets the documented typed error within the timeouts and fetches nothing from
another origin: an empty page, a missing script, a huge or endless page, redirects to
another origin, scripts that never end, pages that are not GeminiProChat at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiohttp import web

from langchain_gprochat import (
    APITimeoutError,
    DiscoveryError,
    DiscoveryLimits,
    adiscover,
    discover,
)

from ._deployments import (
    Counting,
    deployment_server,
    island_page,
    page_files,
    serve_deployment,
    signing_chunk,
)
from ._support import serve_routes

FAST = {"timeout": 5.0, "first_byte_timeout": 0.5, "chunk_timeout": 0.5}
SET_KEY = (
    "To connect anyway, give the deployment's PUBLIC_SECRET_KEY by hand: "
    "ChatGPROChat(base_url=..., secret_key=...) (or GPROCHAT_SECRET_KEY, or "
    "`gprochat ... --secret-key`); an empty string if it set none."
)


def counted(seen: Counting, handler: Callable[[web.Request], object]) -> Callable[..., object]:
    async def wrapped(request: web.Request) -> object:
        seen.paths[request.path] += 1
        return await handler(request)  # type: ignore[misc]

    return wrapped


def html(text: str) -> Callable[[web.Request], object]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="text/html")

    return handler


def js(text: str) -> Callable[[web.Request], object]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="text/javascript")

    return handler


async def test_an_empty_page_has_no_scripts() -> None:
    async with serve_routes({"/": html("")}) as url:
        with pytest.raises(DiscoveryError) as caught:
            await adiscover(url, **FAST)
    exc = caught.value
    assert exc.reason == "no_scripts"
    assert str(exc) == (
        f"could not discover the GeminiProChat deployment at {url}/: the page loads no "
        "scripts. Found: an HTML page (untitled) loading 0 scripts and 0 inline ones. "
        "Missing: a <script> or an Astro island with the signing code. " + SET_KEY
    )
    assert exc.is_retryable is False


async def test_a_missing_script_is_noted_and_nothing_else_is_invented() -> None:
    seen = Counting()

    async def missing(request: web.Request) -> web.Response:
        seen.paths[request.path] += 1
        raise web.HTTPNotFound()

    routes = {
        "/": html(island_page(component="/_x/gone.js")),
        "/_x/gone.js": missing,
        "/_x/{name}": counted(seen, js("console.log('other')")),
    }
    async with serve_routes(routes) as url:
        with pytest.raises(DiscoveryError) as caught:
            await adiscover(url, **FAST)
    exc = caught.value
    assert exc.reason == "no_signing_code"
    assert exc.found == (
        "an HTML page (My Chat, Astro v2.7.0) loading 3 scripts and 0 inline ones",
        "/_x/gone.js: 404",
        "/_x/hoisted.1.js: 20 characters, no signing code",
        "/_x/client.1.js: 20 characters, no signing code",
    )
    assert exc.missing == ("the signing template literal `${t}:${m}:KEY` in a script",)
    assert dict(seen.paths) == {"/_x/gone.js": 1, "/_x/hoisted.1.js": 1, "/_x/client.1.js": 1}


async def test_a_huge_page_is_refused_after_the_cap() -> None:
    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        await response.prepare(request)
        chunk = b"<p>" + b"x" * 65533
        while True:  # ends when the client goes away (handler cancellation)
            await response.write(chunk)
            sent += len(chunk)

    limits = DiscoveryLimits(max_page_bytes=200_000)
    async with serve_routes({"/": endless}) as url:
        with pytest.raises(DiscoveryError) as caught:
            await adiscover(url, limits=limits, **FAST)
    assert caught.value.reason == "page_too_large"
    assert caught.value.args[0].startswith(
        f"could not discover the GeminiProChat deployment at {url}/: the page is larger "
        "than 200000 bytes (DiscoveryLimits.max_page_bytes)."
    )


async def test_a_redirect_to_another_origin_fetches_nothing_there() -> None:
    async with serve_deployment(page_files("k"), secret_key="k") as (elsewhere, files):
        targets = [f"{elsewhere.url}/", f"http://localhost:{elsewhere.port}/"]
        errors = []
        for target in targets:

            async def away(request: web.Request, target: str = target) -> web.Response:
                raise web.HTTPFound(target)

            async with serve_routes({"/": away}) as url:
                with pytest.raises(DiscoveryError) as caught:
                    await adiscover(url, **FAST)
                errors.append((url, caught.value))
        assert files.total == 0
        assert elsewhere.stats.requests == 0
    url, exc = errors[0]
    assert (exc.reason, exc.location) == ("redirect", targets[0])
    assert str(exc) == (
        f"could not discover the GeminiProChat deployment at {url}/: GET answered 302, a "
        f"redirect to {targets[0]} that was not followed (it leads to another port); "
        "nothing was fetched there. If that is the deployment, pass it as base_url. "
        "Missing: the page. " + SET_KEY
    )
    assert (errors[1][1].reason, errors[1][1].location) == ("redirect", targets[1])
    assert "(it leads to another host)" in str(errors[1][1])


async def test_scripts_on_another_origin_are_never_fetched() -> None:
    other = Counting()
    async with serve_routes({"/{tail:.*}": counted(other, js(signing_chunk("stolen")))}) as far:
        page = (
            f'<script type="module" src="{far}/_x/a.js"></script>'
            '<script type="module" src="/_x/local.js"></script>'
        )

        async def bounce(request: web.Request) -> web.Response:
            raise web.HTTPFound(f"{far}/_x/b.js")

        local = f'import"{far}/_x/c.js";'
        routes = {"/": html(page), "/_x/local.js": js(local), "/_x/b.js": bounce}
        page_b = '<script type="module" src="/_x/b.js"></script>'
        async with (
            serve_routes(routes) as url,
            serve_routes({"/": html(page_b), "/_x/b.js": bounce}) as url_b,
        ):
            with pytest.raises(DiscoveryError) as caught:
                await adiscover(url, **FAST)
            with pytest.raises(DiscoveryError) as caught_b:
                await adiscover(url_b, **FAST)
    assert caught.value.reason == "no_signing_code"
    assert caught.value.found[1:] == (
        f"{far}/_x/a.js: another origin, not fetched",
        f"/_x/local.js: {len(local)} characters, no signing code",
        f"{far}/_x/c.js: another origin, not fetched",
    )
    assert caught_b.value.found[1:] == (
        "/_x/b.js: a redirect that was not followed (it leads to another port)",
    )
    assert other.total == 0


async def test_a_script_that_stalls_times_out_between_chunks() -> None:
    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/javascript"})
        await response.prepare(request)
        await response.write(b"const a=1;")
        await asyncio.sleep(3600)
        return response

    routes = {"/": html('<script type="module" src="/s.js"></script>'), "/s.js": stall}
    async with serve_routes(routes) as url:
        with pytest.raises(APITimeoutError) as caught:
            await adiscover(url, **FAST)
    assert (caught.value.kind, caught.value.timeout, caught.value.url) == (
        "between_chunks",
        0.5,
        f"{url}/s.js",
    )


async def test_a_script_that_trickles_forever_hits_the_total_timeout() -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/javascript"})
        await response.prepare(request)
        while True:
            await response.write(b" ")
            await asyncio.sleep(0.05)

    routes = {"/": html('<script type="module" src="/s.js"></script>'), "/s.js": trickle}
    async with serve_routes(routes) as url:
        with pytest.raises(APITimeoutError) as caught:
            await adiscover(url, timeout=1.0, chunk_timeout=0.5, first_byte_timeout=0.5)
    assert (caught.value.kind, caught.value.timeout) == ("total", 1.0)


async def test_a_page_that_never_answers_times_out_at_the_first_byte() -> None:
    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response()

    async with serve_routes({"/": silent}) as url:
        with pytest.raises(APITimeoutError) as caught:
            await adiscover(url, **FAST)
    assert (caught.value.kind, caught.value.url) == ("first_byte", f"{url}/")


async def test_an_ordinary_web_app_is_not_taken_for_geminiprochat() -> None:
    page = (
        "<html><head><title>Shop</title>"
        '<script type="module" src="/app.js"></script></head><body>shop</body></html>'
    )
    code = "const t=`${a}:${b}`;fetch('/api/cart');export default t"
    async with serve_routes({"/": html(page), "/app.js": js(code)}) as url:
        with pytest.raises(DiscoveryError) as caught:
            await adiscover(url, **FAST)
    assert caught.value.reason == "no_signing_code"
    assert caught.value.found == (
        "an HTML page (Shop) loading 1 scripts and 0 inline ones",
        f"/app.js: {len(code)} characters, no signing code",
    )


async def test_json_a_status_and_an_html_fallback_for_scripts() -> None:
    async def api(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def broken(request: web.Request) -> web.Response:
        raise web.HTTPServiceUnavailable()

    spa = '<script type="module" src="/_x/a.js"></script>'
    async with (
        serve_routes({"/": api}) as json_url,
        serve_routes({"/": broken}) as down_url,
        serve_routes({"/{tail:.*}": html(spa)}) as spa_url,
    ):
        errors = []
        for url in (json_url, down_url, spa_url):
            with pytest.raises(DiscoveryError) as caught:
                await adiscover(url, **FAST)
            errors.append(caught.value)
    assert [e.reason for e in errors] == ["not_html", "page_status", "no_signing_code"]
    assert errors[0].found == ("12 bytes of application/json",)
    assert str(errors[1]).startswith(
        f"could not discover the GeminiProChat deployment at {down_url}/: GET answered 503."
    )
    assert errors[2].found[1:] == ("/_x/a.js: an HTML page, not a script",)


async def test_the_script_count_and_size_limits_hold() -> None:
    seen = Counting()
    page = "".join(f'<script type="module" src="/m{i}.js"></script>' for i in range(20))
    big = "x" * 5000
    routes = {
        "/": html(page + '<script src="/big.js"></script>'),
        "/m{n}.js": counted(seen, js("1")),
    }
    async with serve_routes(routes) as url:
        with pytest.raises(DiscoveryError) as caught:
            await adiscover(url, **FAST)
    assert seen.total == 8
    assert caught.value.found[-1] == "more scripts than max_scripts (8) allows"

    routes = {"/": html('<script src="/big.js"></script>'), "/big.js": js(big)}
    async with serve_routes(routes) as url:
        with pytest.raises(DiscoveryError) as caught:
            await adiscover(url, limits=DiscoveryLimits(max_script_bytes=1000), **FAST)
    assert caught.value.found[1:] == ("/big.js: larger than max_script_bytes (1000), not read",)


async def test_a_key_computed_at_run_time_and_two_keys_are_refused() -> None:
    computed = "const n=atob(K),s=`${x}:${y}:${n}`"
    page = '<script type="module" src="/a.js"></script><script type="module" src="/b.js"></script>'
    two = {
        "/": html(page),
        "/a.js": js(signing_chunk("key-A1", history=None)),
        "/b.js": js(signing_chunk("key-B2")),
    }
    one = {"/": html(page), "/a.js": js(computed), "/b.js": js("")}
    async with serve_routes(one) as url1, serve_routes(two) as url2:
        with pytest.raises(DiscoveryError) as first:
            await adiscover(url1, **FAST)
        with pytest.raises(DiscoveryError) as second:
            await adiscover(url2, **FAST)
    assert (first.value.reason, first.value.missing) == ("key_not_literal", ("the key as text",))
    assert first.value.found[0] == "the signing template literal in /a.js"
    assert second.value.reason == "ambiguous_key"
    assert second.value.found == ("/a.js", "/b.js")
    assert "key-A1" not in str(second.value)
    assert "key-B2" not in str(second.value)


async def test_a_redirect_loop_and_a_same_origin_redirect() -> None:
    async def loop_(request: web.Request) -> web.Response:
        raise web.HTTPFound("/again")

    async with serve_routes({"/{tail:.*}": loop_}) as url:
        with pytest.raises(DiscoveryError) as caught:
            await adiscover(url, **FAST)
    assert caught.value.reason == "redirect"
    assert "that was not followed (more than 5 redirects)" in str(caught.value)

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/chat/")

    routes = {
        "/": moved,
        "/chat/": html(island_page()),
        "/_x/Gen.1.js": js(signing_chunk("moved-key")),
    }
    async with serve_routes(routes) as url:
        deployment = await adiscover(url, **FAST)
    assert (deployment.page_url, deployment.base_url) == (f"{url}/chat/", url)
    assert deployment.secret_key.get_secret_value() == "moved-key"
    assert deployment.password_required is None  # no /api/auth there


async def test_an_auth_endpoint_that_is_not_upstream_leaves_the_password_unknown() -> None:
    async def odd(request: web.Request) -> web.Response:
        return web.Response(text="<html>login</html>", content_type="text/html")

    routes = {
        "/": html(island_page()),
        "/_x/Gen.1.js": js(signing_chunk("k")),
        "/api/auth": odd,
    }
    async with serve_routes(routes) as url:
        deployment = await adiscover(url, password="pw", **FAST)
    assert (deployment.password_required, deployment.password_accepted) == (None, None)


def test_sync_discover_from_plain_code_and_from_a_running_loop() -> None:
    async def in_a_loop(url: str) -> str:
        return discover(url, **FAST).secret_key.get_secret_value()  # driven by a helper

    with deployment_server(page_files("sync-key"), secret_key="sync-key") as srv:
        plain = discover(srv.url, **FAST).secret_key.get_secret_value()
        looped = asyncio.run(in_a_loop(srv.url))
    assert (plain, looped) == ("sync-key", "sync-key")


async def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="base_url must start with http:// or https://"):
        await adiscover("ftp://example.org")
