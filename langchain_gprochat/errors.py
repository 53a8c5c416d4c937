"""The exception hierarchy of langchain-gprochat.

Every error raised by the client derives from :class:`GPROChatError`. Errors that come
from an HTTP answer carry the status code, the server's own message (parsed from the JSON
body whatever its content type says) and the URL; none of them ever carries the secret
key or the password.

Each class is also one of langchain-core's model errors
(``langchain_core.exceptions.ModelError`` and its subclasses, in brackets below), so
LangChain's agent middleware and user code that classify failures by those classes and
their ``is_retryable`` treat this model like any other. ``is_retryable`` follows this
package's own retry rules: true exactly where the transport retries a request itself
(or, for an interrupted stream, where a new request may succeed).

```
GPROChatError [ModelError]
├── APIConnectionError       [ModelConnectionError]  refused, DNS, TLS, proxy
├── APITimeoutError          [ModelTimeoutError]     a timeout fired (also ``TimeoutError``)
├── StreamInterruptedError   [ModelAPIError]         the answer broke off mid-stream
├── UnexpectedResponseError  [ModelAPIError]         a 200 answer that is an HTML page
├── DiscoveryError                                   a deployment's page did not tell its settings
└── APIStatusError           [ModelError]            an error status
    ├── RedirectError                                3xx not followed
    ├── BadRequestError      [ModelInvalidRequestError]   400
    ├── AuthenticationError  [ModelAuthenticationError]   401 (``reason``)
    ├── PermissionDeniedError [ModelPermissionDeniedError] 403
    ├── NotFoundError        [ModelNotFoundError]         404
    ├── PayloadTooLargeError [ModelInvalidRequestError]   413
    ├── RateLimitError       [ModelRateLimitError]        429
    ├── ServerError          [ModelAPIError]              5xx
    └── ContextOverflowStatusError [ContextOverflowError] the input is too long
```
"""

from __future__ import annotations

from typing import ClassVar, Literal

from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

from langchain_gprochat._error_text import (
    ERROR_BODY_MAX,
    SHOWN_MESSAGE_MAX,
    html_title,
    shown_text,
)

__all__ = [
    "ERROR_BODY_MAX",
    "RETRY_STATUSES",
    "SHOWN_MESSAGE_MAX",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ContextOverflowStatusError",
    "DiscoveryError",
    "DiscoveryReason",
    "GPROChatError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RedirectError",
    "ServerError",
    "StreamInterruptedError",
    "TimeoutKind",
    "UnexpectedResponseError",
    "shown_text",
]

TimeoutKind = Literal["connect", "first_byte", "between_chunks", "total"]

DiscoveryReason = Literal[
    "page_status",
    "not_html",
    "page_too_large",
    "redirect",
    "no_scripts",
    "no_signing_code",
    "key_not_literal",
    "ambiguous_key",
    "password_required",
    "password_refused",
]

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses retried with backoff; 400, 401 and 413 never are."""


class GPROChatError(ModelError):
    """Base class of every error raised by langchain-gprochat (a langchain-core ``ModelError``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIConnectionError(GPROChatError, ModelConnectionError):
    """The server could not be reached, or the connection failed before an answer.

    ``is_retryable`` is false for a TLS certificate that failed verification.
    """

    def __init__(self, message: str, *, url: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.url = url
        self.is_retryable = retryable


_TIMEOUT_HINTS: dict[str, str] = {
    "connect": "the TCP/TLS connection was not established in time; check base_url and "
    "proxy, or raise `connect_timeout`",
    "first_byte": "the server accepted the request but sent no answer in time; "
    "raise `first_byte_timeout`",
    "between_chunks": "the server stopped sending in the middle of the answer; "
    "raise `chunk_timeout`",
    "total": "the whole request took longer than allowed; raise `timeout`",
}


class APITimeoutError(GPROChatError, ModelTimeoutError, TimeoutError):
    """A timeout fired. ``kind`` says which one, ``timeout`` its value in seconds.

    ``is_retryable`` is true for the connect and first-byte timeouts, which the transport
    retries.
    """

    def __init__(self, kind: TimeoutKind, timeout: float, *, url: str) -> None:
        message = (
            f"{kind.replace('_', ' ')} timeout of {timeout:g}s exceeded for {url}: "
            f"{_TIMEOUT_HINTS[kind]}."
        )
        super().__init__(message)
        self.kind: TimeoutKind = kind
        self.timeout = timeout
        self.url = url
        self.is_retryable = kind in ("connect", "first_byte")


class StreamInterruptedError(GPROChatError, ModelAPIError):
    """The answer broke off after part of it had already been delivered.

    A streaming call never retries it, since the caller has already seen
    ``partial_text``; a non-streaming call (``invoke``) retries it like a failure before
    the first byte. A new request may succeed (``is_retryable``).
    It is also what a stream that kept failing before any text arrived raises once the
    retries are spent (``delivered_chars == 0``).

    Attributes:
        reason: why the stream broke off.
        partial_text: the text delivered before the break.
        delivered_chars: how many characters had been delivered (``len(partial_text)``
            unless the transport was told not to keep the text).
        url: the URL that was requested.

    ``retried`` says the answer was never delivered (a non-streaming call) and was
    retried until ``max_retries`` ran out; the message then says so.
    """

    def __init__(
        self,
        reason: str,
        *,
        partial_text: str,
        url: str,
        chars: int | None = None,
        retried: bool = False,
    ) -> None:
        arrived = len(partial_text) if chars is None else chars
        if not arrived:
            message = f"the answer from {url} broke off before any text arrived: {reason}."
        else:
            kept = (
                "The partial text is in `partial_text`"
                if len(partial_text) == arrived
                else "The partial text was not kept (keep_partial=False)"
            )
            why = (
                "it was never delivered, and the retries that `max_retries` allows are spent"
                if retried
                else "the request was not retried because part of the answer had "
                "already been delivered"
            )
            message = (
                f"the answer from {url} was interrupted after {arrived} characters had "
                f"arrived: {reason}. {kept}; {why}."
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
        self.is_retryable = self._retryable(status_code)

    def _retryable(self, status_code: int) -> bool:
        """Whether the transport retries this answer (``is_retryable``)."""
        return status_code in RETRY_STATUSES

    def _hint(self, server_message: str) -> str:
        """What to do about it, shown after the server's message."""
        return self.hint


class BadRequestError(APIStatusError, ModelInvalidRequestError):
    """400: the server rejected the request body."""

    hint = "the request was malformed; the message above says which field"


class AuthenticationError(APIStatusError, ModelAuthenticationError):
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


class PermissionDeniedError(APIStatusError, ModelPermissionDeniedError):
    """403: the server (or a proxy in front of it) refused access."""

    hint = "access was refused; check `password`, `api_key` and `default_headers`"


class NotFoundError(APIStatusError, ModelNotFoundError):
    """404: there is no gprochat endpoint at that URL."""

    hint = "no endpoint at this URL; check `base_url` (the path /api/generate is added)"


class PayloadTooLargeError(APIStatusError, ModelInvalidRequestError):
    """413: the request body is larger than the server accepts."""

    hint = "shorten the conversation or set `max_history_messages`"


class RateLimitError(APIStatusError, ModelRateLimitError):
    """429: too many requests; ``retry_after`` says how long the server asked to wait."""

    hint = "too many requests; wait, or raise `max_retries`"


class ServerError(APIStatusError, ModelAPIError):
    """5xx: the server or the model behind it failed."""

    hint = "the server failed; retried up to `max_retries` times"


class ContextOverflowStatusError(APIStatusError, ContextOverflowError):
    """The server says the input is longer than its model takes (any status).

    Raised instead of the status's own class where the message matches
    Gemini's wording ("The input token count (…) exceeds the maximum number of tokens
    allowed (…)"); never retried, since the same input would fail again.
    """

    hint = "the conversation is too long for the model; shorten it or set `max_history_messages`"

    def _retryable(self, status_code: int) -> bool:
        return False


class RedirectError(APIStatusError):
    """3xx that the client does not follow; ``location`` is where it pointed.

    Only redirects to the same host that keep the scheme or upgrade http to https are
    followed (a few at most), since following one re-sends the password and the
    signed conversation.
    """

    def __init__(self, status_code: int, why: str, *, url: str, location: str) -> None:
        self.location = location
        self._why = why
        super().__init__(status_code, f"redirect to {location or '(no Location header)'}", url=url)

    def _hint(self, server_message: str) -> str:
        return (
            f"{self._why}; the request was not re-sent. If that is the deployment, set "
            "`base_url` to it"
        )


class UnexpectedResponseError(GPROChatError, ModelAPIError):
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
        title = html_title(preview)
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
        self.is_retryable = False


_SET_KEY_BY_HAND = (
    "To connect anyway, give the deployment's PUBLIC_SECRET_KEY by hand: "
    "ChatGPROChat(base_url=..., secret_key=...) (or GPROCHAT_SECRET_KEY, or "
    "`gprochat ... --secret-key`); an empty string if it set none"
)
_SET_PASSWORD = (
    "Set `password` (or GPROCHAT_PASSWORD, or `gprochat ... --password`) to the site password"
)
_SHOWN_FINDINGS = 8


class DiscoveryError(GPROChatError):
    """``discover`` could not read a deployment's settings from its page.

    The message says what was found, what was missing, and how to set ``secret_key``
    (or, for the two password reasons, ``password``) by hand.

    Attributes:
        reason: ``"page_status"`` (the page answered an error status),
            ``"not_html"``, ``"page_too_large"``, ``"redirect"`` (one that was not
            followed: to another origin, or too many), ``"no_scripts"`` (the page loads
            none), ``"no_signing_code"`` (no script holds the signing template
            literal), ``"key_not_literal"`` (it does, but the key is computed when the
            page runs), ``"ambiguous_key"`` (several different keys),
            ``"password_required"`` (no password was given) or ``"password_refused"``.
        url: the page's URL (credentials hidden).
        found: what was found, one short phrase each.
        missing: what was looked for and not found.
        location: where a refused redirect pointed (``""`` otherwise).
    """

    def __init__(
        self,
        reason: DiscoveryReason,
        detail: str,
        *,
        url: str,
        found: tuple[str, ...] = (),
        missing: tuple[str, ...] = (),
        location: str = "",
    ) -> None:
        parts = [f"could not discover the GeminiProChat deployment at {url}: {detail}."]
        if found:
            shown = list(found[:_SHOWN_FINDINGS])
            if len(found) > _SHOWN_FINDINGS:
                shown.append(f"{len(found) - _SHOWN_FINDINGS} more")
            parts.append(f"Found: {'; '.join(shown)}.")
        if missing:
            parts.append(f"Missing: {'; '.join(missing)}.")
        password = reason in ("password_required", "password_refused")
        parts.append(f"{_SET_PASSWORD if password else _SET_KEY_BY_HAND}.")
        super().__init__(" ".join(parts))
        self.reason: DiscoveryReason = reason
        self.url = url
        self.found = found
        self.missing = missing
        self.location = location
        self.is_retryable = False
