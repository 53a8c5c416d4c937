"""Backends: what produces the answer text behind the local server.

A backend is any object with ``stream(turns) -> AsyncIterator[str]``, an async
generator of text chunks. A backend that can honour a request's ``generationConfig``
also has ``with_generation(settings) -> (backend, applied_names)``; one that holds
clients has ``async aclose()``, which the server awaits when its application shuts
down. Three ship here: :class:`EchoBackend` (the default, offline and deterministic),
:class:`ScriptedBackend` (canned replies for tests) and :class:`ChatModelBackend` (any
LangChain chat model). :func:`load_backend` builds one from a command-line spec.
"""

from __future__ import annotations

import asyncio
import importlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeAlias, runtime_checkable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from langchain_gprochat.protocol import Turn, turn_text
from langchain_gprochat.server.generation import apply_generation

__all__ = [
    "ECHO_CHUNK_CHARS",
    "Backend",
    "ChatModelBackend",
    "EchoBackend",
    "Reply",
    "ScriptExhaustedError",
    "ScriptedBackend",
    "echo_chunks",
    "echo_reply",
    "load_backend",
]

ECHO_CHUNK_CHARS = 8
"""Largest echo chunk, in characters (Python ``str`` slicing)."""


@runtime_checkable
class Backend(Protocol):
    """Produces the answer to a conversation as text chunks."""

    def stream(self, turns: list[Turn]) -> AsyncIterator[str]:
        """Stream the answer to ``turns`` (oldest first, the last is the user's)."""
        ...


def echo_reply(turns: Sequence[Turn]) -> str:
    """The echo backend's answer: ``f"Echo · turn {n} · «{last}» ✓"``.

    ``n`` is the number of user turns in the conversation and ``last`` the text of the
    last turn (:func:`~langchain_gprochat.protocol.turn_text`). Use it in tests to
    compute the expected answer.
    """
    n = sum(1 for turn in turns if turn.role == "user")
    last = turn_text(turns[-1]) if turns else ""
    return f"Echo · turn {n} · «{last}» ✓"


def echo_chunks(text: str, size: int = ECHO_CHUNK_CHARS) -> list[str]:
    """Split ``text`` into consecutive pieces of at most ``size`` characters.

    ``"".join(echo_chunks(text)) == text``; an empty text gives no chunk.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    return [text[i : i + size] for i in range(0, len(text), size)]


async def _paced(chunks: Iterable[str], delay: float) -> AsyncIterator[str]:
    for index, chunk in enumerate(chunks):
        if index and delay:
            await asyncio.sleep(delay)
        yield chunk


class EchoBackend:
    """Answers :func:`echo_reply`, streamed as :func:`echo_chunks`.

    Args:
        chunk_delay: seconds to sleep between two chunks.
    """

    def __init__(self, chunk_delay: float = 0.0) -> None:
        self.chunk_delay = chunk_delay

    def __repr__(self) -> str:
        return f"EchoBackend(chunk_delay={self.chunk_delay!r})"

    async def stream(self, turns: list[Turn]) -> AsyncIterator[str]:
        """Stream the echo of ``turns``."""
        async for chunk in _paced(echo_chunks(echo_reply(turns)), self.chunk_delay):
            yield chunk


class ScriptExhaustedError(RuntimeError):
    """A :class:`ScriptedBackend` was asked for more replies than it was given."""


Reply: TypeAlias = str | Sequence[str | Exception] | Exception
"""One scripted reply (see :class:`ScriptedBackend`)."""


class ScriptedBackend:
    """Plays canned replies in order, one per request; for tests.

    Each reply is one of:

    * a ``str``: streamed in the echo chunking (:func:`echo_chunks`);
    * a list of ``str``: streamed chunk by chunk exactly; an ``Exception`` inside the
      list is raised at that point, i.e. after the answer started (the server then
      appends ``INTERRUPTION_MARKER``);
    * an ``Exception``: raised before the first chunk (the server answers 500).

    Attributes:
        received: the turns of every request, in order.
    """

    def __init__(self, replies: Iterable[Reply]) -> None:
        self._replies: deque[Reply] = deque(replies)
        self._given = len(self._replies)
        self.received: list[list[Turn]] = []

    @property
    def remaining(self) -> int:
        """Replies not played yet."""
        return len(self._replies)

    async def stream(self, turns: list[Turn]) -> AsyncIterator[str]:
        """Record ``turns`` and play the next reply."""
        self.received.append(list(turns))
        if not self._replies:
            raise ScriptExhaustedError(
                f"ScriptedBackend has no reply left: it was given {self._given} and this "
                f"is request {len(self.received)}"
            )
        reply = self._replies.popleft()
        if isinstance(reply, Exception):
            raise reply
        chunks = echo_chunks(reply) if isinstance(reply, str) else reply
        for chunk in chunks:
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk


def turns_to_messages(turns: Iterable[Turn]) -> list[BaseMessage]:
    """Map ``user`` turns to ``HumanMessage`` and ``model`` turns to ``AIMessage``."""
    return [
        HumanMessage(turn_text(turn)) if turn.role == "user" else AIMessage(turn_text(turn))
        for turn in turns
    ]


class ChatModelBackend:
    """Serves answers from any LangChain chat model, streamed with ``astream``.

    Args:
        model: the chat model, e.g. ``ChatOllama(model="llama3.2")``.
    """

    def __init__(self, model: BaseChatModel) -> None:
        self.model = model

    def __repr__(self) -> str:
        return f"ChatModelBackend({type(self.model).__name__})"

    def with_generation(
        self, settings: Mapping[str, float | int]
    ) -> tuple[ChatModelBackend, list[str]]:
        """The backend with ``generationConfig`` applied where the model has the field.

        Returns the backend for one request and the names of the settings applied.
        """
        model, applied = apply_generation(self.model, settings)
        return (self if model is self.model else ChatModelBackend(model)), applied

    async def stream(self, turns: list[Turn]) -> AsyncIterator[str]:
        """Stream the model's answer; chunks without text are skipped."""
        async for chunk in self.model.astream(turns_to_messages(turns)):
            text = chunk.text
            if text:
                yield text


def _failure(exc: BaseException) -> str:
    """``"RuntimeError: boom"`` on one line (the class alone if there is no message)."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _import(spec: str, module_name: str) -> object:
    if module_name.startswith("."):
        raise ValueError(
            f"invalid backend {spec!r}: relative module names are not supported; "
            "give the module's full name, e.g. 'my_models:backend'"
        )
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"invalid backend {spec!r}: cannot import {module_name!r}: {exc}") from exc
    except (Exception, SystemExit) as exc:  # its code failed: a syntax error, a raise, an exit
        raise ValueError(
            f"invalid backend {spec!r}: importing {module_name!r} failed: {_failure(exc)}"
        ) from exc


def _resolve(spec: str) -> object:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(
            f"invalid backend {spec!r}: use 'echo' or 'module:attribute', e.g. "
            "'my_models:backend', or 'gemini'"
        )
    target = _import(spec, module_name)
    for name in attribute.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise ValueError(
                f"invalid backend {spec!r}: {module_name!r} has no attribute {attribute!r}"
            ) from None
        except Exception as exc:  # a module-level __getattr__ or a property that failed
            raise ValueError(
                f"invalid backend {spec!r}: getting {attribute!r} failed: {_failure(exc)}"
            ) from exc
    return target


def _as_backend(obj: object) -> Backend | None:
    if isinstance(obj, BaseChatModel):
        return ChatModelBackend(obj)
    if not isinstance(obj, type) and isinstance(obj, Backend):
        return obj
    return None


def _call_factory(spec: str, factory: Callable[[], object]) -> object:
    try:
        return factory()
    except TypeError as exc:
        raise ValueError(
            f"invalid backend {spec!r}: calling it without arguments failed: {exc}"
        ) from exc
    except (Exception, SystemExit) as exc:
        raise ValueError(f"invalid backend {spec!r}: calling it failed: {_failure(exc)}") from exc


def load_backend(spec: str) -> Backend:
    """Build a backend from a spec.

    Args:
        spec: ``"echo"`` for :class:`EchoBackend`; ``"gemini"`` (or ``"gemini/MODEL"``)
            for Gemini's REST API called directly, configured from the upstream app's
            variables (:mod:`~langchain_gprochat.server.gemini_direct`);
            ``"gemini-langchain"`` (or ``"gemini-langchain/MODEL"``) for
            ``ChatGoogleGenerativeAI`` configured the same way
            (:mod:`~langchain_gprochat.server.gemini`, the ``gemini`` extra); or
            ``"module:attribute"`` (the attribute may be dotted) naming a chat model
            instance (wrapped in :class:`ChatModelBackend`), a backend instance, or a
            zero-argument callable that returns either.

    Raises:
        ValueError: if the spec is malformed or relative, its module cannot be imported
            or fails while importing (a syntax error, an exception, ``sys.exit``), the
            attribute is missing, the factory fails, or the result is not a backend or
            a chat model. The message is one line naming the spec and the reason.
    """
    if spec.strip() == "echo":
        return EchoBackend()
    kind, _, model = spec.strip().partition("/")
    if kind == "gemini":
        from langchain_gprochat.server.gemini_direct import gemini_direct_backend

        return gemini_direct_backend(model=model or None)
    if kind == "gemini-langchain":
        from langchain_gprochat.server.gemini import gemini_backend  # the optional extra

        return gemini_backend(model=model or None)
    target = _resolve(spec.strip())
    backend = _as_backend(target)
    if backend is None and callable(target):
        backend = _as_backend(_call_factory(spec, target))
    if backend is None:
        raise ValueError(
            f"invalid backend {spec!r}: it names a {type(target).__name__}, not a chat "
            "model, a backend (an object with stream(turns)) or a zero-argument factory "
            "of either"
        )
    return backend
