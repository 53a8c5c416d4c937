"""A logger for aiohttp's connection handler that keeps client errors to one line.

aiohttp logs a request it cannot parse (bad chunked encoding, an oversized header, a
cut-off body) at ERROR level with a traceback, although the client caused it and got
its 400. :class:`ProtocolLogger` logs those in one line at INFO instead, and anything
else exactly as aiohttp would.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.log import server_logger

__all__ = ["ProtocolLogger", "protocol_logger"]

if TYPE_CHECKING:
    _Adapter = logging.LoggerAdapter[logging.Logger]
else:
    _Adapter = logging.LoggerAdapter

_CLIENT_ERRORS = (HttpProcessingError, ConnectionError)


class ProtocolLogger(_Adapter):
    """Wraps ``aiohttp.server``; client-caused exceptions lose their traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        """Log ``msg``: one line at INFO for client errors, else with the traceback."""
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(error, _CLIENT_ERRORS):
            self.logger.info("client error: %s", " ".join(str(error).split()))
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)


def protocol_logger() -> logging.Logger:
    """The logger to give ``aiohttp.web.AppRunner(logger=...)``."""
    adapter = ProtocolLogger(server_logger, {})
    return adapter  # type: ignore[return-value]  # duck-typed: aiohttp calls only the methods
