"""The gpt4free-style ``GPROChat`` class, without gpt4free (see :mod:`langchain_gprochat.g4f`).

The class keeps the original provider's surface (class attributes and classmethods,
never instantiated) and sends through this package's transport. Since it has no
instances, its network resources belong to the class: a small :class:`ClientPool` per
class, one :class:`~langchain_gprochat._client.Client` (a transport with one session per
event loop, and the private loop of the sync calls) per set of transport settings.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import aclosing
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar, cast

from langchain_gprochat._client import Client
from langchain_gprochat._g4f_request import (
    DEFAULT_MODEL,
    OPTIONS,
    Prepared,
    base_url_of,
    believed_working,
    hide,
    prepare,
    resolve,
    secret_key_of,
)
from langchain_gprochat._sessions import TransportSettings
from langchain_gprochat._streaming import StopFilter
from langchain_gprochat._urls import redact_url
from langchain_gprochat.protocol import GENERATE_PATH, sign

__all__ = ["POOL_SIZE", "ClientPool", "Endpoint", "GPROChat"]

POOL_SIZE = 8
"""Clients a provider class keeps at most (one per distinct transport settings)."""

Messages = Sequence[Mapping[str, Any]]
"""g4f's messages: ``[{"role": "system" | "user" | "assistant", "content": str}]``."""

T = TypeVar("T", bound="GPROChat")


class ClientPool:
    """The clients of one provider class, the most recently used first to stay.

    A client dropped from the pool is not closed at once, since a stream may still use
    it: it closes when the last stream holding it ends (its finalizer).
    """

    def __init__(self, size: int = POOL_SIZE) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._clients: list[Client] = []

    def get(self, settings: TransportSettings) -> Client:
        """The client for ``settings`` in this process, made on first use."""
        with self._lock:
            for client in list(self._clients):
                if client.foreign:  # inherited through fork: the parent's connections
                    client.abandon()
                    self._clients.remove(client)
                elif client.settings == settings:
                    self._clients.remove(client)
                    self._clients.append(client)
                    return client
            fresh = Client(settings, id(self))
            self._clients.append(fresh)
            del self._clients[: -self._size]
            return fresh

    def __len__(self) -> int:
        return len(self._clients)

    def _take_all(self) -> list[Client]:
        with self._lock:
            clients, self._clients = self._clients, []
        return clients

    def close(self) -> None:
        """Close every client's sessions and sync loop."""
        for client in self._take_all():
            client.close()

    async def aclose(self) -> None:
        """Close every client, awaiting the sessions of the running loop."""
        for client in self._take_all():
            await client.transport.aclose()
            client.close()


class Endpoint(type):
    """Metaclass of ``GPROChat``: endpoint attributes read live, a pool per class.

    ``url``, ``api_endpoint`` and ``working`` follow the endpoint that calls would use
    (``configure``'s, else ``GPROCHAT_BASE_URL``, else gprochat.com) when they are read.
    """

    _options: Mapping[str, Any]
    _pool: ClientPool

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> None:
        super().__init__(name, bases, namespace)
        cls._pool = ClientPool()

    @property
    def url(cls) -> str:
        """The deployment's page, credentials hidden (the original: gprochat.com)."""
        return redact_url(base_url_of(cls._options).rstrip("/"))

    @property
    def api_endpoint(cls) -> str:
        """The generate endpoint, credentials hidden."""
        return cls.url + GENERATE_PATH

    @property
    def working(cls) -> bool:
        """Whether the endpoint is believed usable; it is never probed.

        False for gprochat.com (offline), as the original says; true once a deployment
        is configured (``configure(base_url=...)`` or ``GPROCHAT_BASE_URL``). Assigning
        a value (``GPROChat.working = True``) overrides it for that class.
        """
        override = cls.__dict__.get("_working_override")
        return believed_working(cls._options) if override is None else bool(override)

    @working.setter
    def working(cls, value: bool) -> None:
        type.__setattr__(cls, "_working_override", bool(value))


class GPROChat(metaclass=Endpoint):
    """gpt4free's ``GPROChat`` provider on this package's transport.

    The original's surface, with its values for gprochat.com: ``url``,
    ``api_endpoint``, ``working``, ``supports_stream``, ``supports_message_history``,
    ``default_model``, ``models``, ``generate_signature``, ``get_model`` and
    ``create_async_generator``; ``create_completion`` is the sync twin. Where gpt4free
    is installed, ``langchain_gprochat.g4f.GPROChat`` is a subclass of its provider base
    classes built from this one (see :mod:`langchain_gprochat.g4f`).

    Each call takes keyword arguments beyond the original's: ``base_url``,
    ``secret_key``, ``password``, ``api_key``, ``history_mode`` (``"prompt"``, the
    original's flattened prompt, or ``"native"`` turns), ``timeout``,
    ``connect_timeout``, ``first_byte_timeout``, ``chunk_timeout``, ``max_retries``,
    ``proxy``, ``verify``, ``ssl_context``, ``headers``, ``stop``, ``temperature``,
    ``max_tokens``, ``top_p``, ``top_k``. Others (what g4f's client passes along:
    ``stream``, ``response_format``, ...) are ignored, as g4f providers ignore them,
    except ``media``/``images``, which raise ``ValueError`` (the endpoint takes text
    only). :meth:`configure` makes a class with other defaults.
    """

    supports_stream: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    default_model: ClassVar[str] = DEFAULT_MODEL
    models: ClassVar[list[str]] = [DEFAULT_MODEL]
    _options: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    _model_error: ClassVar[type[Exception]] = ValueError
    """Raised by :meth:`get_model` for another model (g4f's ``ModelNotFoundError`` in
    the g4f subclass, as in the original)."""

    @classmethod
    def generate_signature(
        cls, timestamp: int, message: str, *, secret_key: str | None = None
    ) -> str:
        """The request signature: SHA-256 hex of ``f"{timestamp}:{message}:{key}"``.

        ``key`` is ``secret_key``, else the class's configured key, else
        ``GPROCHAT_SECRET_KEY``, else gprochat.com's: with none configured this is
        exactly what the original returns. Lone surrogates (which the original cannot
        encode) are signed as U+FFFD, as the endpoint reads them.
        """
        if secret_key is None:
            secret_key = secret_key_of(cls._options)
        text = message if isinstance(message, str) else format(message)
        return sign(timestamp, text, secret_key)

    @classmethod
    def get_model(cls, model: str, **kwargs: Any) -> str:
        """``model``, or ``default_model`` when it is empty.

        Raises:
            ValueError: (g4f's ``ModelNotFoundError`` where g4f is installed) for a
                model not in ``models``.
        """
        if not model:
            return cls.default_model
        if model in cls.models:
            return model
        raise cls._model_error(
            f"Model not found: {model!r}. GPROChat serves {cls.models}: the deployment "
            f"runs the model it was set up with and the name is not sent; pass "
            f"model='' or {cls.default_model!r}"
        )

    @classmethod
    def configure(cls: type[T], **options: Any) -> type[T]:
        """A subclass with other defaults, e.g. ``GPROChat.configure(base_url=...)``.

        It takes the per-call keyword arguments (see the class docstring); a call's own
        arguments still win, and environment variables fill what neither gives. The
        subclass keeps its own connections, and its ``working`` is true for a configured
        deployment other than gprochat.com.

        Raises:
            TypeError: for a name this class does not take.
            ValueError: for a value it does not take (checked now, not at the call).
        """
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise TypeError(
                f"GPROChat.configure got unknown options {unknown}; it takes "
                f"{', '.join(sorted(OPTIONS))}"
            )
        merged = {**cls._options, **hide(options)}
        resolve({}, merged)  # raises for a wrong value
        namespace = {
            "_options": MappingProxyType(merged),
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
        }
        meta = cast("type[Endpoint]", type(cls))
        return cast("type[T]", meta(cls.__name__, (cls,), namespace))

    @classmethod
    def _prepare(
        cls, model: str, messages: Messages, proxy: str | None, kwargs: Mapping[str, Any]
    ) -> tuple[Prepared, Client]:
        cls.get_model(model)
        call = dict(kwargs)
        if proxy is not None:
            call["proxy"] = proxy
        prepared = prepare(messages, call, cls._options)
        return prepared, cls._pool.get(prepared.options.settings)

    @classmethod
    async def create_async_generator(
        cls, model: str, messages: Messages, proxy: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[str, None]:
        """Stream the answer to ``messages``: ``str`` chunks as they arrive.

        Args:
            model: ``""`` or ``default_model`` (see :meth:`get_model`).
            messages: g4f-style messages.
            proxy: an ``http://``, ``https://`` or ``socks5://`` proxy (else
                ``GPROCHAT_PROXY``).
            **kwargs: the options of the class docstring; others are ignored.

        Raises:
            ValueError: for bad input, before any request.
            langchain_gprochat.GPROChatError: a subclass for each failure
                (``AuthenticationError`` with the server's message, timeouts, ...).
        """
        prepared, client = cls._prepare(model, messages, proxy, kwargs)
        async with aclosing(_texts(prepared, client)) as texts:
            async for text in texts:
                yield text

    @classmethod
    def create_completion(
        cls, model: str, messages: Messages, stream: bool = False, **kwargs: Any
    ) -> Iterator[str]:
        """The sync twin of :meth:`create_async_generator`, chunks as they arrive.

        Runs on one private event loop per settings, so that sync calls share a
        connection pool; bad input raises here, before the first chunk is asked for.
        """
        prepared, client = cls._prepare(model, messages, kwargs.pop("proxy", None), kwargs)
        return client.sync_loop.iterate(_texts(prepared, client))

    @classmethod
    def close(cls) -> None:
        """Close this class's connections (they reopen on the next call)."""
        cls._pool.close()

    @classmethod
    async def aclose(cls) -> None:
        """Close this class's connections, awaiting those of the running loop."""
        await cls._pool.aclose()


async def _texts(prepared: Prepared, client: Client) -> AsyncGenerator[str, None]:
    """The answer's text through the stop sequences; the response closes at a stop."""
    stop = StopFilter(prepared.options.stop)
    stream = client.transport.stream(prepared.body, on_response=prepared.on_response)
    try:
        async for text in stream:
            text = stop.feed(text)
            if text:
                yield text
            if stop.stopped:
                break
    finally:
        await stream.aclose()
    rest = stop.flush()
    if rest:
        yield rest
