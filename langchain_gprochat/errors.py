"""The exception hierarchy of langchain-gprochat.

Every error raised by the client derives from :class:`GPROChatError`. Errors that come
from an HTTP answer carry the status code, the server's own message (parsed from the JSON
body whatever its content type says) and the URL; none of them ever carries the secret
key or the password.

```
GPROChatError
├── APIConnectionError           could not reach the server (refused, DNS, TLS, proxy)
├── APITimeoutError              a timeout fired (also a builtin ``TimeoutError``)
├── StreamInterruptedError       the answer broke off after text had reached the caller
├── UnexpectedResponseError      a 200 answer that is not a gprochat answer (an HTML page)
└── APIStatusError               the server answered with an error status
    ├── RedirectError            3xx that is not followed (another host, a downgrade)
    ├── BadRequestError          400
    ├── AuthenticationError      401 (``reason``: "password", "signature" or "expired")
    ├── PayloadTooLargeError     413
    ├── RateLimitError           429
    └── ServerError              5xx
```
"""

from __future__ import annotations

from typing import ClassVar, Literal

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "GPROChatError",
    "PayloadTooLargeError",
    "RateLimitError",
    "RedirectError",
    "ServerError",
    "StreamInterruptedError",
    "TimeoutKind",
    "UnexpectedResponseError",
]

TimeoutKind = Literal["connect", "first_byte", "between_chunks", "total"]

SHOWN_MESSAGE_MAX = 500
"""Characters of a server's message shown in an exception's text; the rest is noted."""

ERROR_BODY_MAX = 16 * 1024
"""Bytes of an error body (after decompression) that the client reads at most."""


class GPROChatError(Exception):
    """Base class of every error raised by langchain-gprochat."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIConnectionError(GPROChatError):
    """The server could not be reached, or the connection failed before an answer."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


_TIMEOUT_HINTS: dict[str, str] = {
    "connect": "the TCP/TLS connection was not established in time; check base_url and "
    "proxy, or raise `connect_timeout`",
    "first_byte": "the server accepted the request but sent no answer in time; "
    "raise `first_byte_timeout`",
    "between_chunks": "the server stopped sending in the middle of the answer; "
    "raise `chunk_timeout`",
    "total": "the whole request took longer than allowed; raise `timeout`",
}


class APITimeoutError(GPROChatError, TimeoutError):
    """A timeout fired. ``kind`` says which one, ``timeout`` its value in seconds."""

    def __init__(self, kind: TimeoutKind, timeout: float, *, url: str) -> None:
        message = (
            f"{kind.replace('_', ' ')} timeout of {timeout:g}s exceeded for {url}: "
            f"{_TIMEOUT_HINTS[kind]}."
        )
        super().__init__(message)
        self.kind: TimeoutKind = kind
        self.timeout = timeout
        self.url = url


class StreamInterruptedError(GPROChatError):
    """The answer broke off after part of it had already been delivered.

    It is never retried automatically, since the caller has already seen ``partial_text``.
    It is also what a stream that kept failing before any text arrived raises once the
    retries are spent (``delivered_chars == 0``).

    Attributes:
        reason: why the stream broke off.
        partial_text: the text delivered before the break.
        delivered_chars: how many characters had been delivered (``len(partial_text)``
            unless the transport was told not to keep the text).
        url: the URL that was requested.
    """

    def __init__(
        self, reason: str, *, partial_text: str, url: str, chars: int | None = None
    ) -> None:
        arrived = len(partial_text) if chars is None else chars
        if not arrived:
            message = (
                f"the answer from {url} broke off before any text arrived: {reason}."
            )
        else:
            kept = (
                "The partial text is in `partial_text`"
                if len(partial_text) == arrived
                else "The partial text was not kept (keep_partial=False)"
            )
            message = (
                f"the answer from {url} was interrupted after {arrived} characters had "
                f"arrived: {reason}. {kept}; the request was not retried because part of "
                "the answer had already been delivered."
            )
        super().__init__(message)
        self.reason = reason
        self.partial_text = partial_text
        self.delivered_chars = arrived
        self.url = url


class APIStatusError(GPROChatError):
    """The server answered with an error status.

    Attributes:
        status_code: the HTTP status.
        server_message: the server's own message (``error.message`` of its JSON body, or
            the raw body text when it is not JSON).
        server_code: ``error.code`` of the JSON body, where present.
        url: the URL that was requested.
        retry_after: the ``Retry-After`` header in seconds, where present.
        body_truncated: the body was longer than the client reads of an error body
            (``server_message`` holds its beginning).

    The exception's text shows at most :data:`SHOWN_MESSAGE_MAX` characters of the
    server's message and says how many more there were.
    """

    hint = ""

    def __init__(
        self,
        status_code: int,
        server_message: str,
        *,
        url: str,
        server_code: str | None = None,
        retry_after: float | None = None,
        body_truncated: bool = False,
    ) -> None:
        message = f"{status_code} from {url}: {shown_text(server_message, body_truncated)}"
        hint = self._hint(server_message)
        if hint:
            message = f"{message} ({hint})"
        super().__init__(message)
        self.status_code = status_code
        self.server_message = server_message
        self.server_code = server_code
        self.url = url
        self.retry_after = retry_after
        self.body_truncated = body_truncated

    def _hint(self, server_message: str) -> str:
        """What to do about it, shown after the server's message."""
        return self.hint


class BadRequestError(APIStatusError):
    """400: the server rejected the request body."""

    hint = "the request was malformed; the message above says which field"


class AuthenticationError(APIStatusError):
    """401: the password or the signature was refused, or the request expired.

    ``reason`` is ``"password"``, ``"signature"``, ``"expired"`` or ``"unknown"``.
    """

    reason: Literal["password", "signature", "expired", "unknown"]

    _HINTS: ClassVar[dict[str, str]] = {
        "password": "the site password was refused: set `password` (or GPROCHAT_PASSWORD) "
        "to one the deployment accepts",
        "signature": "the request signature was refused: set `secret_key` (or "
        "GPROCHAT_SECRET_KEY) to the deployment's PUBLIC_SECRET_KEY",
        "expired": "the server refused the request time: check this machine's clock",
        "unknown": "check `password` and `secret_key`",
    }

    def _hint(self, server_message: str) -> str:
        lowered = server_message.lower()
        self.reason = next(
            (r for r in ("password", "signature", "expired") if r in lowered), "unknown"
        )
        return self._HINTS[self.reason]


class PayloadTooLargeError(APIStatusError):
    """413: the request body is larger than the server accepts."""

    hint = "shorten the conversation or set `max_history_messages`"


class RateLimitError(APIStatusError):
    """429: too many requests; ``retry_after`` says how long the server asked to wait."""

    hint = "too many requests; wait, or raise `max_retries`"


class ServerError(APIStatusError):
    """5xx: the server or the model behind it failed."""

    hint = "the server failed; retried up to `max_retries` times"


class RedirectError(APIStatusError):
    """3xx that the client does not follow; ``location`` is where it pointed.

    Only redirects to the same host that keep the scheme or upgrade http to https are
    followed (a few at most), since following one re-sends the password and the
    signed conversation.
    """

    def __init__(self, status_code: int, why: str, *, url: str, location: str) -> None:
        self.location = location
        self._why = why
        super().__init__(status_code, f"redirect to {location or '(no Location header)'}",
                         url=url)

    def _hint(self, server_message: str) -> str:
        return (
            f"{self._why}; the request was not re-sent. If that is the deployment, set "
            "`base_url` to it"
        )


class UnexpectedResponseError(GPROChatError):
    """The server answered 200 with something that is not a gprochat answer.

    A gprochat endpoint streams ``text/plain``; an HTML page (a login page, a captive
    portal, a proxy's error page, a web app at the wrong URL) is not delivered as the
    model's answer.

    Attributes:
        status_code: the HTTP status (200).
        content_type: the ``Content-Type`` that came back.
        preview: the beginning of the body (at most a few KiB, decoded).
        url: the URL that was requested.
    """

    def __init__(self, status_code: int, content_type: str, preview: str, *, url: str) -> None:
        title = _html_title(preview)
        what = f"an HTML page titled {title!r}" if title else "an HTML page"
        super().__init__(
            f"{status_code} from {url} is {what} ({content_type}), not a gprochat answer: "
            "a login page, captive portal or proxy answered, or base_url does not point "
            "at a GeminiProChat deployment; check `base_url` and `proxy`."
        )
        self.status_code = status_code
        self.content_type = content_type
        self.preview = preview
        self.url = url


def _html_title(html: str) -> str:
    lowered = html.lower()
    start = lowered.find("<title")
    start = lowered.find(">", start) + 1 if start != -1 else -1
    end = lowered.find("</title>", start) if start > 0 else -1
    return " ".join(html[start:end].split())[:120] if end != -1 else ""


def shown_text(server_message: str, body_truncated: bool = False) -> str:
    """A server's message as an exception shows it: bounded, with a note when cut."""
    if not server_message:
        return "(empty body)"
    shown = server_message
    notes: list[str] = []
    if len(shown) > SHOWN_MESSAGE_MAX:
        notes.append(f"{len(shown) - SHOWN_MESSAGE_MAX} more characters in `server_message`")
        shown = shown[:SHOWN_MESSAGE_MAX]
    if body_truncated:
        notes.append(f"the body was longer than {ERROR_BODY_MAX} bytes; only those were read")
    return f"{shown} [cut: {'; '.join(notes)}]" if notes else shown


def status_error(
    status_code: int,
    server_message: str,
    *,
    url: str,
    server_code: str | None = None,
    retry_after: float | None = None,
    body_truncated: bool = False,
) -> APIStatusError:
    """Build the :class:`APIStatusError` subclass that matches ``status_code``."""
    cls: type[APIStatusError]
    if status_code == 400:
        cls = BadRequestError
    elif status_code == 401:
        cls = AuthenticationError
    elif status_code == 413:
        cls = PayloadTooLargeError
    elif status_code == 429:
        cls = RateLimitError
    elif status_code >= 500:
        cls = ServerError
    else:
        cls = APIStatusError
    return cls(
        status_code,
        server_message,
        url=url,
        server_code=server_code,
        retry_after=retry_after,
        body_truncated=body_truncated,
    )
