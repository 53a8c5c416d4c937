"""Request validation for the local server: JSON shape, password, signature.

Every check raises :class:`Rejected` with the status and message the client gets; the
messages are fixed strings (listed in the README) so that clients and tests can match
them exactly.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from langchain_gprochat.protocol import GenerateRequest, sign, turn_text, well_formed

__all__ = [
    "EXPIRED_MESSAGE",
    "HISTORY_MESSAGE",
    "PASSWORD_MESSAGE",
    "SIGNATURE_MESSAGE",
    "UNREADABLE_MESSAGE",
    "Rejected",
    "check_auth",
    "check_history",
    "parse_generate",
    "parse_json_object",
    "password_ok",
]

HISTORY_MESSAGE = "Invalid message history: The last message must be from user role."
PASSWORD_MESSAGE = "Invalid password."
SIGNATURE_MESSAGE = "Invalid signature."
EXPIRED_MESSAGE = "Request expired."
UNREADABLE_MESSAGE = "Invalid request body: it was cut off or its transfer encoding is broken."


class Rejected(Exception):
    """A request is refused with ``status`` and the JSON error ``message``.

    Attributes:
        status: the HTTP status of the answer.
        message: the JSON error's message.
        close: close the connection after the answer (``Connection: close``).
        retry_after: the value of a ``Retry-After`` header, if any.
    """

    def __init__(
        self, status: int, message: str, *, close: bool = False, retry_after: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close
        self.retry_after = retry_after


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parse ``body`` as a JSON object (UTF-8, or UTF-16/32 with detection)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Rejected(400, "Invalid request body: not valid JSON.") from None
    if not isinstance(data, dict):
        raise Rejected(400, "Invalid request body: the body must be a JSON object.")
    return data


def _path(loc: Sequence[int | str]) -> str:
    path = ""
    for item in loc:
        if isinstance(item, int):
            path += f"[{item}]"
        else:
            path += f".{item}" if path else item
    return path or "body"


_PHRASES = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "dict_type": "must be an object",
    "too_short": "must not be empty",
}


def describe_error(error: ErrorDetails) -> str:
    """One sentence naming the field of a pydantic error, e.g. ``time must be an integer``."""
    path = _path(error["loc"])
    kind = error["type"]
    if path == "pass" and kind == "string_type":
        return "pass must be a string or null"
    if kind == "literal_error":
        return f"{path} must be {error.get('ctx', {}).get('expected', 'a known value')}"
    phrase = _PHRASES.get(kind)
    return f"{path} {phrase}" if phrase else f"{path}: {error['msg']}"


def check_history(data: dict[str, Any]) -> None:
    """The upstream's first check: ``messages`` is there and its last turn is the user's.

    A missing, ``null`` or empty ``messages``, or a list whose last item is not an
    object with ``"role": "user"`` (``assistant``, ``model``, no role, not an object),
    gets the history message, before the password, the signature and the shape are
    looked at, as upstream. A ``messages`` that is not a list is left to the shape check.

    Raises:
        Rejected: 400 with :data:`HISTORY_MESSAGE`.
    """
    messages = data.get("messages")
    if messages is None or messages == []:
        raise Rejected(400, HISTORY_MESSAGE)
    if isinstance(messages, list):
        last = messages[-1]
        if not (isinstance(last, dict) and last.get("role") == "user"):
            raise Rejected(400, HISTORY_MESSAGE)


def parse_generate(data: dict[str, Any]) -> GenerateRequest:
    """Validate a generate body: the upstream's history rule first, then the shape.

    :func:`check_history` runs before any shape check, as upstream.

    Raises:
        Rejected: 400 with the history message, or naming the first invalid field.
    """
    check_history(data)
    try:
        request = GenerateRequest.model_validate(data)
    except ValidationError as exc:
        sentence = describe_error(exc.errors(include_url=False)[0])
        raise Rejected(400, f"Invalid request body: {sentence}.") from None
    _replace_lone_surrogates(request)
    return request


def _replace_lone_surrogates(request: GenerateRequest) -> None:
    """Replace lone surrogates (legal in JSON) with U+FFFD, as the upstream's encoder does.

    The upstream signs the UTF-8 bytes from JavaScript's ``TextEncoder``, which writes
    U+FFFD for a lone surrogate; doing the same keeps signatures equal and the text
    encodable.
    """
    for turn in request.messages:
        for part in turn.parts:
            part.text = well_formed(part.text)


def _same(left: str, right: str) -> bool:
    return hmac.compare_digest(
        left.encode("utf-8", "surrogatepass"), right.encode("utf-8", "surrogatepass")
    )


def password_ok(given: object, passwords: Sequence[str]) -> bool:
    """Whether ``given`` is accepted: any password when none is set, else one of them."""
    if not passwords:
        return True
    if not isinstance(given, str):
        return False
    matches = [_same(given, password) for password in passwords]
    return any(matches)


def check_auth(
    request: GenerateRequest,
    *,
    passwords: Sequence[str],
    secret_key: str,
    max_clock_skew: float | None,
) -> None:
    """Check password, then signature, then (optionally) the request time.

    Raises:
        Rejected: 401 with the password, signature or expiry message.
    """
    if not password_ok(request.password, passwords):
        raise Rejected(401, PASSWORD_MESSAGE)
    expected = sign(request.time, turn_text(request.messages[-1]), secret_key)
    if not _same(request.sign, expected):
        raise Rejected(401, SIGNATURE_MESSAGE)
    if max_clock_skew is not None:
        skew_ms = abs(time.time_ns() // 1_000_000 - request.time)
        if skew_ms > max_clock_skew * 1000:
            raise Rejected(401, EXPIRED_MESSAGE)
