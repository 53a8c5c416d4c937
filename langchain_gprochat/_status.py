"""An error status → the matching :class:`~langchain_gprochat.errors.APIStatusError`."""

from __future__ import annotations

import re
from typing import Any

from langchain_gprochat.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContextOverflowStatusError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)

__all__ = ["CONTEXT_OVERFLOW", "status_error"]

CONTEXT_OVERFLOW = re.compile(
    r"input token count .{0,40}exceeds the maximum number of tokens"
    r"|exceeds the maximum number of tokens allowed"
    r"|context (?:length|window) (?:exceeded|is too long)",
    re.IGNORECASE,
)
"""How a server says the input is too long (Gemini's wording first): "The input token
count (1200293) exceeds the maximum number of tokens allowed (1048576)."."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    429: RateLimitError,
}


def status_error(
    status_code: int, server_message: str, *, url: str, **details: Any
) -> APIStatusError:
    """Build the :class:`APIStatusError` subclass that matches ``status_code``.

    ``details`` are the other keyword arguments of :class:`APIStatusError`
    (``server_code``, ``retry_after``, ``body_truncated``).
    """
    cls: type[APIStatusError]
    if CONTEXT_OVERFLOW.search(server_message):
        cls = ContextOverflowStatusError
    elif status_code >= 500:
        cls = ServerError
    else:
        cls = _STATUS_CLASSES.get(status_code, APIStatusError)
    return cls(status_code, server_message, url=url, **details)
