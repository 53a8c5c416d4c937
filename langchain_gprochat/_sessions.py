"""HTTP sessions: one ``aiohttp.ClientSession`` (one connection pool) per event loop.

Each session is owned by a small *keeper* task on its loop: when the loop shuts down
(``asyncio.run``, pytest-asyncio) the keeper is cancelled and closes the session, so no
"Unclosed client session" warning appears whatever the usage.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import aiohttp

from langchain_gprochat._urls import redact_url
from langchain_gprochat.errors import APIConnectionError
from langchain_gprochat.protocol import GENERATE_PATH

__all__ = [
    "Sessions",
    "TransportSettings",
    "certificate_error",
]


@dataclass(frozen=True)
class TransportSettings:
    """Everything the transport needs; built by the chat model from its fields.

    Two transports with equal settings behave the same; the chat model compares them to
    know when its settings changed.
    """

    base_url: str
    connect_timeout: float | None = 10.0
    first_byte_timeout: float | None = 120.0
    chunk_timeout: float | None = 60.0
    total_timeout: float | None = 600.0
    max_retries: int = 2
    retry_base_delay: float = 0.5
    retry_max_delay: float = 8.0
    retry_after_max: float = 60.0
    proxy: str | None = field(default=None, repr=False)
    verify: bool | str = True
    ssl_context: ssl.SSLContext | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    max_connections: int = 100

    def __repr__(self) -> str:
        """The settings without secrets: credentials in ``base_url`` hidden, no proxy or headers."""
        shown = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if self.__dataclass_fields__[name].repr
        }
        shown["base_url"] = redact_url(self.base_url)
        return f"TransportSettings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @property
    def http_proxy(self) -> str | None:
        """The proxy each request names (a SOCKS proxy is the connector's, not a request's)."""
        return None if self.proxy is None or self.proxy.startswith("socks") else self.proxy

    @property
    def url(self) -> str:
        """The full URL of the generate endpoint."""
        return self.base_url.rstrip("/") + GENERATE_PATH

    def ssl_option(self) -> ssl.SSLContext | bool:
        """What aiohttp takes as ``ssl``: the context, a CA bundle's, or a bool."""
        if self.ssl_context is not None:
            return self.ssl_context
        if isinstance(self.verify, str):
            return ssl.create_default_context(cafile=self.verify)
        return bool(self.verify)


def certificate_error(exc: aiohttp.ClientConnectorCertificateError, url: str) -> APIConnectionError:
    """A failed TLS verification, with the settings that make the server trusted."""
    return APIConnectionError(
        f"TLS certificate verification failed for {url}: {exc.certificate_error}. "
        "Pass `verify` (a CA bundle path) or `ssl_context` to trust the server",
        url=url,
        retryable=False,
    )


class Sessions:
    """The sessions of one transport, one per event loop that used it."""

    def __init__(self, settings: TransportSettings) -> None:
        self.settings = settings
        self._by_loop: dict[
            asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, asyncio.Task[None]]
        ] = {}

    def __iter__(self) -> Iterator[aiohttp.ClientSession]:
        """The sessions open now, one per loop."""
        return iter([session for session, _ in self._by_loop.values()])

    def _new_session(self) -> aiohttp.ClientSession:
        s = self.settings
        connector: aiohttp.BaseConnector
        if s.proxy and s.proxy.startswith("socks"):
            try:
                from aiohttp_socks import ProxyConnector
            except ImportError as exc:  # pragma: no cover - depends on the extra
                raise ImportError(
                    "a SOCKS proxy needs the optional extra: pip install "
                    "'langchain-gprochat[socks]'"
                ) from exc
            connector = ProxyConnector.from_url(
                s.proxy, limit=s.max_connections, ssl=s.ssl_option()
            )
        else:
            connector = aiohttp.TCPConnector(limit=s.max_connections, ssl=s.ssl_option())
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=s.connect_timeout, sock_read=None)
        return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=dict(s.headers))

    async def get(self) -> aiohttp.ClientSession:
        """The session of the running loop, created on first use."""
        loop = asyncio.get_running_loop()
        entry = self._by_loop.get(loop)
        if entry is not None and not entry[0].closed and not entry[1].done():
            return entry[0]
        self._prune()
        session = self._new_session()
        keeper = loop.create_task(_keep(session), name="gprochat-session-keeper")
        # The keeper waits for the loop's shutdown by design; never warn about it.
        keeper._log_destroy_pending = False  # type: ignore[attr-defined]
        self._by_loop[loop] = (session, keeper)
        return session

    def _prune(self) -> None:
        """Forget the sessions of loops that have shut down (their keepers closed them)."""
        for loop, (_, keeper) in list(self._by_loop.items()):
            if keeper.done() or loop.is_closed():
                del self._by_loop[loop]

    async def aclose(self) -> None:
        """Close the session of the running loop, and ask other loops to close theirs."""
        current = asyncio.get_running_loop()
        for loop, (session, keeper) in list(self._by_loop.items()):
            if loop is current:
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
                await session.close()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(keeper.cancel)
        self._by_loop.clear()

    def close_other_loops(self) -> None:
        """Close sessions from outside any loop (sync ``close()`` and finalizers)."""
        for loop, (session, keeper) in list(self._by_loop.items()):
            if loop.is_closed():
                continue
            if loop.is_running():
                loop.call_soon_threadsafe(keeper.cancel)
            else:
                keeper.cancel()
                loop.run_until_complete(asyncio.gather(keeper, return_exceptions=True))
                if not session.closed:
                    loop.run_until_complete(session.close())
        self._by_loop.clear()

    def abandon(self) -> None:
        """Forget every session without closing it or its connections.

        For a forked child: the sessions and their sockets belong to the parent, and
        closing them here would disturb its connections (a TLS ``close_notify`` on a
        socket both processes share). Idle pooled connections are dropped from the pool
        first, so that no finalizer closes them later.
        """
        for session, _keeper in self._by_loop.values():
            pool = getattr(session.connector, "_conns", None)  # aiohttp has no public way
            if pool is not None:
                pool.clear()
            session.detach()
        self._by_loop.clear()


async def _keep(session: aiohttp.ClientSession) -> None:
    """Wait for the loop to shut down (this task is cancelled), then close ``session``.

    A loop closed without cancelling its tasks never runs this; call
    ``ChatGPROChat.aclose()`` before closing a loop you manage yourself.
    """
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:
        await session.close()
        raise
