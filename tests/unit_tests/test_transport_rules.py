"""Pure rules of the transport: redirects, credentials in URLs, Retry-After, shown text."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from unittest import mock

import aiohttp
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps, load

from langchain_gprochat import ChatGPROChat
from langchain_gprochat._decode import read as _read
from langchain_gprochat._transport import parse_retry_after
from langchain_gprochat._urls import has_userinfo, redact_url, redirect_target
from langchain_gprochat.errors import ERROR_BODY_MAX, SHOWN_MESSAGE_MAX, shown_text
from langchain_gprochat.protocol import parse_error_body

URL = "http://example.test/api/generate"
HTTPS = "https://example.test/api/generate"


@pytest.mark.parametrize(
    ("status", "url", "location", "expected"),
    [
        (308, URL, "/v2/api/generate", ("http://example.test/v2/api/generate", "")),
        (301, URL, "https://example.test/api/generate", (HTTPS, "")),
        (307, URL, "https://EXAMPLE.test:8443/x", ("https://EXAMPLE.test:8443/x", "")),
        (302, HTTPS, "/login", ("https://example.test/login", "")),
        (307, "http://u:p@example.test/api/generate", "/v2", ("http://u:p@example.test/v2", "")),
        (307, URL, "http://elsewhere.test/api/generate", (None, "it leads to another host")),
        (307, URL, "//elsewhere.test/api/generate", (None, "it leads to another host")),
        (308, HTTPS, "http://example.test/api/generate", (None, "it downgrades https to http")),
        (307, URL, "http://example.test:8080/api/generate", (None, "it leads to another port")),
        (307, URL, "ftp://example.test/x", (None, "it leads to a ftp: URL")),
        (307, URL, "javascript:alert(1)", (None, "it leads to a javascript: URL")),
        (
            303,
            URL,
            "/result",
            (None, "a 303 points at a page to fetch with GET, not at the endpoint"),
        ),
        (302, URL, "", (None, "the 302 answer has no Location header")),
        (302, URL, None, (None, "the 302 answer has no Location header")),
        (302, URL, "http://[::1", (None, "its Location is not a valid URL")),
    ],
)
def test_redirect_target_follows_only_the_same_host(
    status: int, url: str, location: str | None, expected: tuple[str | None, str]
) -> None:
    assert redirect_target(status, url, location) == expected


@pytest.mark.parametrize(
    ("url", "shown", "has"),
    [
        ("https://user:pw@host.test/x", "https://***@host.test/x", True),
        ("https://token@host.test", "https://***@host.test", True),
        ("http://a:b@c@host.test:81/p?q=1", "http://***@host.test:81/p?q=1", True),
        ("https://host.test/a@b", "https://host.test/a@b", False),
        ("https://host.test", "https://host.test", False),
    ],
)
def test_redact_url_hides_user_info(url: str, shown: str, has: bool) -> None:
    assert (redact_url(url), has_userinfo(url)) == (shown, has)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("   ", None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("Thu, 99 Foo 2025", None),
        ("1e400", None),
    ],
)
def test_parse_retry_after_falls_back_on_anything_malformed(
    value: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(value) == seconds


def test_shown_text_is_bounded_and_says_what_was_cut() -> None:
    assert shown_text("") == "(empty body)"
    assert shown_text("short") == "short"
    long = "x" * (SHOWN_MESSAGE_MAX + 7)
    assert (
        shown_text(long)
        == "x" * SHOWN_MESSAGE_MAX + " [cut: 7 more characters in `server_message`]"
    )
    assert shown_text("head", body_truncated=True) == (
        f"head [cut: the body was longer than {ERROR_BODY_MAX} bytes; only those were read]"
    )


def test_deeply_nested_error_body_falls_back_to_the_raw_text() -> None:
    body = b"[" * 100_000
    assert parse_error_body(body) == ("[" * 100_000, None)
    nested = b'{"error":' * 5000 + b"1" + b"}" * 5000
    assert parse_error_body(nested) == (nested.decode(), None)


# -- credentials in base_url and proxy -------------------------------------------------

PROXY = "http://proxyuser:PROXY-SECRET-7@proxy.test:3128"
BASE = "https://user:URL-SECRET-8@chat.test"


def _model() -> ChatGPROChat:
    return ChatGPROChat(base_url=BASE, proxy=PROXY, password="PW-SECRET-6")


def test_credentials_in_urls_never_appear_in_repr_or_dumps() -> None:
    llm = _model()
    texts = {
        "repr": repr(llm),
        "str": str(llm),
        "dumps": dumps(llm),
        "dumpd": json.dumps(dumpd(llm)),
        "model_dump": repr(llm.model_dump()),
        "model_dump_json": llm.model_dump_json(),
        "identifying": repr(llm._identifying_params),
        "invocation": repr(llm._get_invocation_params()),
        "transport settings": repr(llm.client.settings),
    }
    for where, text in texts.items():
        for secret in ("PROXY-SECRET-7", "URL-SECRET-8", "PW-SECRET-6", "proxyuser"):
            assert secret not in text, where
    assert llm.model_dump()["base_url"] == "https://***@chat.test"
    assert llm.model_dump()["proxy"] == "http://***@proxy.test:3128"
    kwargs = dumpd(llm)["kwargs"]
    assert kwargs["proxy"] == {"lc": 1, "type": "secret", "id": ["GPROCHAT_PROXY"]}
    assert kwargs["base_url"] == {"lc": 1, "type": "secret", "id": ["GPROCHAT_BASE_URL"]}


def test_urls_without_credentials_serialize_as_they_are() -> None:
    llm = ChatGPROChat(base_url="https://chat.test", proxy="http://proxy.test:3128")
    kwargs = dumpd(llm)["kwargs"]
    assert (kwargs["base_url"], kwargs["proxy"]) == ("https://chat.test", "http://proxy.test:3128")
    assert llm.model_dump()["proxy"] == "http://proxy.test:3128"


def test_serialized_model_with_url_credentials_loads_from_the_secrets_map() -> None:
    loaded = load(
        dumpd(_model()),
        secrets_map={
            "GPROCHAT_BASE_URL": BASE,
            "GPROCHAT_PROXY": PROXY,
            "GPROCHAT_SECRET_KEY": "k",
            "GPROCHAT_PASSWORD": "PW-SECRET-6",
        },
        valid_namespaces=["langchain_gprochat"],
        allowed_objects=[ChatGPROChat],
    )
    assert isinstance(loaded, ChatGPROChat)
    assert (loaded.base_url, loaded.proxy) == (BASE, PROXY)


class _Capture(BaseCallbackHandler):
    def __init__(self) -> None:
        self.serialized: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        self.serialized.append(serialized)


def test_callbacks_never_see_url_credentials() -> None:
    # The run fails before any I/O (an empty conversation); callbacks still start.
    capture = _Capture()
    with pytest.raises(ValueError, match="no user or AI message"):
        _model().invoke([], config={"callbacks": [capture]})
    (serialized,) = capture.serialized
    text = json.dumps(serialized)
    for secret in ("PROXY-SECRET-7", "URL-SECRET-8", "PW-SECRET-6"):
        assert secret not in text


async def test_bytes_buffered_before_a_broken_connection_are_read_first() -> None:
    # aiohttp raises at the next read once the payload broke, even with bytes still
    # buffered (the caller was busy and had not read them): they come with the error.
    protocol = mock.Mock(_reading_paused=False)
    content = aiohttp.StreamReader(protocol, 2**16, loop=asyncio.get_running_loop())
    content.feed_data("Echo · t".encode())
    assert await _read(content, None) == ("Echo · t".encode(), None)
    content.feed_data(b"urn")
    broke = aiohttp.ClientPayloadError("Response payload is not completed")
    content.set_exception(broke)
    assert await _read(content, None) == (b"urn", broke)
    with pytest.raises(aiohttp.ClientPayloadError):
        await _read(content, None)


async def test_buffered_bytes_past_the_deadline_still_time_out() -> None:
    # Reading bytes already buffered arms no timer; a deadline already past must hold.
    loop = asyncio.get_running_loop()
    content = aiohttp.StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=loop)
    content.feed_data(b"more")
    with pytest.raises(asyncio.TimeoutError):
        await _read(content, loop.time() - 1)
    assert await _read(content, loop.time() + 60) == (b"more", None)
