"""A logger for aiohttp's connection handler that never writes what a request carried.

aiohttp logs a request it cannot parse (a bad request line, an oversized header, bad
chunked encoding) at ERROR with a traceback whose message quotes the raw bytes: the
request line with its query string, a ``Cookie`` or ``Authorization`` header. A handler
that fails is logged the same way, its exception message included. Through
:class:`ProtocolLogger`, at every level:

* a client-caused error becomes one INFO line naming its status and class only
  (``client error: 400 BadStatusLine``), at DEBUG where aiohttp chose DEBUG;
* any other exception is logged with its class and the places it passed through
  (:func:`stack_summary`), never with its message or a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.log import server_logger

__all__ = ["ProtocolLogger", "client_error_text", "protocol_logger", "stack_summary"]

if TYPE_CHECKING:
    _Adapter = logging.LoggerAdapter[logging.Logger]
else:
    _Adapter = logging.LoggerAdapter

_CLIENT_ERRORS = (HttpProcessingError, ConnectionError)
_MAX_CHAIN = 5


def client_error_text(error: BaseException) -> str:
    """``"400 BadStatusLine"``: the status (if any) and the class, nothing of the request."""
    if isinstance(error, HttpProcessingError) and error.code:
        return f"{error.code} {type(error).__name__}"
    return type(error).__name__


def _frames(error: BaseException) -> str:
    places = [
        f"{os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
        for frame in traceback.extract_tb(error.__traceback__)
    ]
    return " > ".join(places) if places else "no stack"


def stack_summary(error: BaseException) -> str:
    """The exception's class and where it was raised, without its message.

    For example ``RuntimeError (message withheld) at app.py:120 in _generate >
    my_models.py:7 in stream``, followed by ``; from <cause>`` for chained exceptions.
    A message may quote what the request carried, so it is left out.
    """
    parts: list[str] = []
    current: BaseException | None = error
    while current is not None and len(parts) < _MAX_CHAIN:
        parts.append(f"{type(current).__name__} (message withheld) at {_frames(current)}")
        current = current.__cause__ or current.__context__
    return "; from ".join(parts)


def _error_of(exc_info: object) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        error = exc_info[1]
        return error if isinstance(error, BaseException) else None
    return sys.exc_info()[1] if exc_info else None


def _render(msg: object, args: tuple[object, ...]) -> str:
    try:
        return str(msg) % args if args else str(msg)
    except (TypeError, ValueError):
        return str(msg)


class ProtocolLogger(_Adapter):
    """Wraps ``aiohttp.server``; exception messages and tracebacks never get through."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log ``msg``; an attached exception is reduced to what cannot leak a secret."""
        error = _error_of(kwargs.pop("exc_info", None))
        kwargs.pop("stack_info", None)
        if error is None:
            self.logger.log(level, msg, *args, **kwargs)
        elif isinstance(error, _CLIENT_ERRORS):
            level = min(level, logging.INFO)
            self.logger.log(level, "client error: %s", client_error_text(error), **kwargs)
        else:
            self.logger.log(level, "%s: %s", _render(msg, args), stack_summary(error), **kwargs)


def protocol_logger() -> logging.Logger:
    """The logger to give ``aiohttp.web.AppRunner(logger=...)``."""
    adapter = ProtocolLogger(server_logger, {})
    return adapter  # type: ignore[return-value]  # duck-typed: aiohttp calls only the methods
