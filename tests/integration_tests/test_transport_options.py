"""TLS, proxies and resource hygiene of ChatGPROChat, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from langchain_gprochat import APIConnectionError, ChatGPROChat
from langchain_gprochat.server import GPROChatServer

from ._support import expected_echo

QUESTION = "über TLS 🔒"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(ca: trustme.CA) -> Iterator[GPROChatServer]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    with GPROChatServer(ssl_context=server_ctx) as srv:
        yield srv


def test_https_with_ssl_context(ca: trustme.CA, tls_server: GPROChatServer) -> None:
    assert tls_server.url.startswith("https://127.0.0.1:")
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with ChatGPROChat(base_url=tls_server.url, ssl_context=client_ctx) as llm:
        assert llm.invoke(QUESTION).content == expected_echo(QUESTION)


def test_https_with_ca_bundle_path(
    ca: trustme.CA, tls_server: GPROChatServer, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with ChatGPROChat(base_url=tls_server.url, verify=str(bundle)) as llm:
        assert "".join(str(c.content) for c in llm.stream(QUESTION)) == expected_echo(QUESTION)


def test_https_untrusted_certificate_is_a_clear_error(tls_server: GPROChatServer) -> None:
    with (
        ChatGPROChat(base_url=tls_server.url, max_retries=0) as llm,
        pytest.raises(APIConnectionError) as info,
    ):
        llm.invoke(QUESTION)
    message = str(info.value)
    assert message.startswith(f"TLS certificate verification failed for {tls_server.url}")
    assert "Pass `verify` (a CA bundle path) or `ssl_context` to trust the server" in message


def test_https_without_verification(tls_server: GPROChatServer) -> None:
    with ChatGPROChat(base_url=tls_server.url, verify=False) as llm:
        assert llm.invoke(QUESTION).content == expected_echo(QUESTION)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(500):
        if process.poll() is not None:
            raise AssertionError(f"the proxy exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise AssertionError("the proxy did not start listening")


@pytest.fixture
def http_proxy(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = _free_port()
    log = tmp_path / "proxy.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "--hostname",
                "127.0.0.1",
                "--port",
                str(port),
                "--num-workers",
                "1",
                "--num-acceptors",
                "1",
                "--log-level",
                "INFO",
                "--plugins",
                "proxy.http.proxy.HttpProxyPlugin",
            ],
            stdout=sink,
            stderr=sink,
        )
        try:
            _wait_for_port(port, process)
            yield f"http://127.0.0.1:{port}", log
        finally:
            process.terminate()
            process.wait(timeout=30)


def _proxy_log_has(log: Path, needle: str) -> bool:
    for _ in range(500):
        if needle in log.read_text(errors="replace"):
            return True
        time.sleep(0.02)
    return False


def test_http_proxy(http_proxy: tuple[str, Path]) -> None:
    proxy_url, log = http_proxy
    with GPROChatServer() as srv:
        with ChatGPROChat(base_url=srv.url, proxy=proxy_url) as llm:
            assert llm.invoke(QUESTION).content == expected_echo(QUESTION)
        assert srv.stats.requests == 1
        # proxy.py writes its access line when the (kept-alive) connection closes.
        assert _proxy_log_has(log, f"POST 127.0.0.1:{srv.port}/api/generate - 200 OK")


def test_https_through_http_proxy(
    http_proxy: tuple[str, Path], ca: trustme.CA, tls_server: GPROChatServer
) -> None:
    proxy_url, log = http_proxy
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with ChatGPROChat(base_url=tls_server.url, proxy=proxy_url, ssl_context=client_ctx) as llm:
        assert llm.invoke(QUESTION).content == expected_echo(QUESTION)
    assert _proxy_log_has(log, f"CONNECT 127.0.0.1:{tls_server.port}")


class _Socks5Server:
    """A minimal SOCKS5 server (no authentication, CONNECT only) that counts tunnels."""

    def __init__(self) -> None:
        self.tunnels: list[tuple[str, int]] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> _Socks5Server:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"socks5://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _version, methods = await reader.readexactly(2)
            await reader.readexactly(methods)
            writer.write(b"\x05\x00")
            _, _cmd, _, atyp = await reader.readexactly(4)
            if atyp == 1:
                host = socket.inet_ntoa(await reader.readexactly(4))
            else:
                length = (await reader.readexactly(1))[0]
                host = (await reader.readexactly(length)).decode()
            (port,) = struct.unpack("!H", await reader.readexactly(2))
            up_reader, up_writer = await asyncio.open_connection(host, port)
            self.tunnels.append((host, port))
            writer.write(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + b"\x00\x00")
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def test_socks5_proxy() -> None:
    async with (
        _Socks5Server() as socks,
        GPROChatServer() as srv,
        ChatGPROChat(base_url=srv.url, proxy=socks.url) as llm,
    ):
        assert (await llm.ainvoke(QUESTION)).content == expected_echo(QUESTION)
        assert socks.tunnels == [("127.0.0.1", srv.port)]


SCENARIOS = {
    "asyncio.run per call": """
        for i in range(3):
            print(asyncio.run(llm.ainvoke(f"q{i}")).content)
    """,
    "one long-lived loop": """
        async def main():
            for i in range(3):
                print((await llm.ainvoke(f"q{i}")).content)
                async for _ in llm.astream("s"):
                    pass
        asyncio.run(main())
    """,
    "sync only": """
        for i in range(3):
            print(llm.invoke(f"q{i}").content)
        for chunk in llm.stream("s"):
            break
    """,
    "loop never closed": """
        loop = asyncio.new_event_loop()
        for i in range(3):
            print(loop.run_until_complete(llm.ainvoke(f"q{i}")).content)
    """,
    "own loop closed after aclose": """
        loop = asyncio.new_event_loop()
        print(loop.run_until_complete(llm.ainvoke("q")).content)
        loop.run_until_complete(llm.aclose())
        loop.close()
    """,
    "sync and async mixed, model dropped": """
        print(llm.invoke("a").content)
        print(asyncio.run(llm.ainvoke("b")).content)
        del llm
        gc.collect()
        print("dropped")
    """,
    "explicit close": """
        async def main():
            async with ChatGPROChat(base_url=srv.url) as other:
                await other.ainvoke("x")
        asyncio.run(main())
        with ChatGPROChat(base_url=srv.url) as other:
            other.invoke("y")
        print("closed")
    """,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_no_unclosed_resource_warnings(name: str) -> None:
    body = textwrap.indent(textwrap.dedent(SCENARIOS[name]), "    ")
    script = (
        "import asyncio, gc, warnings\n"
        "warnings.simplefilter('always')\n"
        "from langchain_gprochat import ChatGPROChat\n"
        "from langchain_gprochat.server import GPROChatServer\n"
        "with GPROChatServer() as srv:\n"
        "    llm = ChatGPROChat(base_url=srv.url)\n"
        f"{body}\n"
    )
    # The scenario "loop never closed" leaves its own event loop open on purpose; the
    # only warning allowed is asyncio's own about that loop, never one about ours.
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    stderr = "\n".join(
        line
        for line in result.stderr.splitlines()
        if "ResourceWarning: unclosed event loop <_UnixSelectorEventLoop" not in line
    )
    for marker in (
        "Unclosed",
        "unclosed",
        "Task was destroyed",
        "ResourceWarning",
        "Traceback",
        "Exception ignored",
    ):
        assert marker not in stderr, result.stderr
    assert "Echo · turn 1" in result.stdout or "closed" in result.stdout
