"""The network resources of one chat model: a transport and the private sync loop.

A :class:`Client` belongs to one model object, in one process, for one set of transport
settings. The model asks :meth:`Client.serves` before each call and makes a new client
when the answer is no, so that:

* a copy (``model_copy``, ``copy.copy``) never uses, nor closes, its original's client;
* a changed setting (``llm.base_url = B``, ``model_copy(update=...)``) takes effect on
  the next call;
* a forked child never touches a connection its parent opened: it abandons the
  inherited client (:meth:`Client.abandon`) and starts afresh, and the parent's pool is
  not disturbed.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from langchain_gprochat._sync import PrivateLoop
from langchain_gprochat._transport import Transport, TransportSettings

__all__ = ["Client", "CopyableLock", "no_client"]


class CopyableLock:
    """A lock that copies and pickles as a new lock, so that models can be copied."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def __deepcopy__(self, memo: dict[int, Any]) -> CopyableLock:
        return CopyableLock()

    def __reduce__(self) -> tuple[type[CopyableLock], tuple[()]]:
        return (CopyableLock, ())


def no_client() -> None:
    """What a pickled :class:`Client` unpickles as: none (made again on first use)."""
    return None


class Client:
    """A transport and a private sync loop, owned by one model in one process.

    A deep copy or an unpickled model starts without any (they are made on first use).

    Args:
        settings: the transport settings it serves.
        owner: ``id()`` of the model that owns it.
    """

    def __init__(self, settings: TransportSettings, owner: int) -> None:
        self.settings = settings
        self.owner = owner
        self.pid = os.getpid()
        self.transport = Transport(settings)
        self.sync_loop = PrivateLoop()
        self.inherited: Client | None = None
        """A parent's client, kept (untouched) so that nothing finalizes it here."""
        self._finalizer = weakref.finalize(
            self, _shutdown, self.pid, self.transport, self.sync_loop
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> None:
        return None

    def __reduce__(self) -> tuple[Callable[[], None], tuple[()]]:
        return (no_client, ())

    def serves(self, owner: int, settings: TransportSettings) -> bool:
        """Whether this client may serve a call of ``owner`` with ``settings`` now."""
        return self.owner == owner and self.pid == os.getpid() and self.settings == settings

    @property
    def foreign(self) -> bool:
        """Whether this client was made in another process (inherited through fork)."""
        return self.pid != os.getpid()

    def close(self) -> None:
        """Close the sessions and the private loop (once)."""
        self._finalizer()

    def abandon(self) -> None:
        """Forget the resources without closing them: they belong to another process."""
        self._finalizer.detach()
        self.transport.abandon()
        self.sync_loop.abandon()


def _shutdown(pid: int, transport: Transport, sync_loop: PrivateLoop) -> None:
    if os.getpid() != pid:  # finalized in a forked child: the parent's to close
        transport.abandon()
        sync_loop.abandon()
        return
    if sync_loop.started:
        sync_loop.stop()
    transport.close_other_loops()
