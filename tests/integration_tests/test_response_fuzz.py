"""Fuzzing the response side: whatever a server sends, a call raises only typed errors.

A raw TCP server on 127.0.0.1 answers every request with bytes that hypothesis chooses:
any status line, any headers (content type, encoding, length, Retry-After, Location),
any body, compressed or not, chunked or not, cut anywhere. Each call through ``invoke``
and ``stream`` either returns text or raises a :class:`GPROChatError` (also a
langchain-core ``ModelError``): never a builtin exception, never a hang.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.exceptions import ModelError

from langchain_gprochat import ChatGPROChat, GPROChatError


@dataclass
class RawServer:
    """Answers each connection with ``reply`` (set by the test), then closes it."""

    port: int = 0
    reply: bytes = b""


def _serve(server: RawServer, ready: threading.Event, stop: threading.Event) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(server.reply)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        listener = await asyncio.start_server(handle, "127.0.0.1", 0)
        server.port = listener.sockets[0].getsockname()[1]
        ready.set()
        await asyncio.to_thread(stop.wait)
        listener.close()
        await listener.wait_closed()

    asyncio.run(main())


@pytest.fixture(scope="module")
def raw() -> Iterator[RawServer]:
    server = RawServer()
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=_serve, args=(server, ready, stop), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield server
    stop.set()
    thread.join(10)


TEXTS = st.sampled_from(
    [
        b"",
        b"hello",
        "Привет 🌍".encode(),
        b"<html><title>x</title></html>",
        b"\xff\xfe\x00",
        b'{"error":{"message":"m","code":"c"}}',
        b"[" * 3000,
        b"Internal server error",
    ]
)
CONTENT_TYPES = st.sampled_from(
    [
        None,
        "text/plain; charset=utf-8",
        "text/html",
        "application/json",
        "text/html; x",
        "\x00bad",
        "",
    ]
)
ENCODINGS = st.sampled_from([None, "gzip", "deflate", "br", "zstd", "bogus", "gzip, gzip"])


def _encode(body: bytes, encoding: str | None, valid: bool) -> bytes:
    if not valid or encoding not in ("gzip", "deflate"):
        return body
    return gzip.compress(body) if encoding == "gzip" else zlib.compress(body)


@st.composite
def replies(draw: st.DrawFn) -> bytes:
    status = draw(st.integers(100, 599) | st.sampled_from([200, 200, 200, 301, 307, 503]))
    reason = draw(st.sampled_from([b"OK", b"", b"X" * 300]))
    body = draw(TEXTS | st.binary(max_size=600))
    encoding = draw(ENCODINGS)
    body = _encode(body, encoding, draw(st.booleans()))
    headers: list[tuple[str, str]] = []
    if (ctype := draw(CONTENT_TYPES)) is not None:
        headers.append(("Content-Type", ctype))
    if encoding is not None:
        headers.append(("Content-Encoding", encoding))
    framing = draw(st.sampled_from(["length", "wrong-length", "chunked", "bad-chunked", "eof"]))
    if framing == "length":
        headers.append(("Content-Length", str(len(body))))
    elif framing == "wrong-length":
        headers.append(("Content-Length", str(len(body) + draw(st.integers(-5, 50)))))
    elif framing in ("chunked", "bad-chunked"):
        headers.append(("Transfer-Encoding", "chunked"))
        size = f"{len(body):x}" if framing == "chunked" else draw(st.sampled_from(["zz", "-1", ""]))
        body = size.encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"
    for name in draw(st.lists(st.sampled_from(["Retry-After", "Location", "X-Junk"]), max_size=2)):
        headers.append(
            (
                name,
                draw(
                    st.sampled_from(
                        ["soon", "", "1", "/api/generate", "http://elsewhere.test/", "\x7f"]
                    )
                ),
            )
        )
    head = f"HTTP/1.1 {status} ".encode() + reason + b"\r\n"
    head += b"".join(f"{k}: {v}\r\n".encode("latin-1", "replace") for k, v in headers)
    cut = draw(st.none() | st.integers(0, len(head) + len(body) + 4))
    data = head + b"Connection: close\r\n\r\n" + body
    return data if cut is None else data[:cut]


def _check(outcome: object) -> None:
    if isinstance(outcome, BaseException):
        assert isinstance(outcome, GPROChatError), repr(outcome)
        assert isinstance(outcome, ModelError)
        assert str(outcome)
    else:
        assert isinstance(outcome, str)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(reply=replies(), streaming=st.booleans())
def test_whatever_the_server_sends_only_typed_errors_escape(
    raw: RawServer, reply: bytes, streaming: bool
) -> None:
    raw.reply = reply
    llm = ChatGPROChat(
        base_url=f"http://127.0.0.1:{raw.port}",
        max_retries=0,
        first_byte_timeout=2,
        chunk_timeout=2,
        timeout=5,
    )
    outcome: object
    with llm:
        try:
            if streaming:
                outcome = "".join(str(chunk.content) for chunk in llm.stream("fuzz"))
            else:
                outcome = str(llm.invoke("fuzz").content)
        except Exception as exc:  # what is checked: no builtin exception escapes
            outcome = exc
    _check(outcome)
