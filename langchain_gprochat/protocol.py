"""The gprochat wire format: pure functions and pydantic models, no I/O, no LangChain.

Turns, signing, request bodies and error bodies, exactly as the upstream GeminiProChat
app takes and sends them (the project's PROTOCOL.md). The client's transport and the
local server both build on this module; LangChain messages become turns in
:mod:`langchain_gprochat._convert`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

__all__ = [
    "APPLIED_HEADER",
    "DEFAULT_BASE_URL",
    "DEFAULT_SECRET_KEY",
    "GENERATE_PATH",
    "GENERATION_CONFIG",
    "GENERATION_SETTINGS",
    "INTERRUPTION_MARKER",
    "MODEL_FIELD",
    "SYSTEM_TEMPLATE",
    "GenerateRequest",
    "Part",
    "RequestEncoder",
    "Turn",
    "parse_error_body",
    "sign",
    "turn_text",
    "well_formed",
]

DEFAULT_BASE_URL = "https://gprochat.com"
"""The public gprochat deployment (offline at the time of writing)."""

DEFAULT_SECRET_KEY = "2BC120D4-BB36-1B60-26DE-DB630472A3D8"
"""gprochat.com's ``PUBLIC_SECRET_KEY``: public by design, it ships in the site's JS."""

GENERATE_PATH = "/api/generate"
AUTH_PATH = "/api/auth"

GENERATION_CONFIG = "generationConfig"
"""Optional body field (an extension, see below) carrying the sampling settings."""

MODEL_FIELD = "model"
"""Optional body field (an extension the upstream ignores) naming the server's backend;
``gprochat-server`` with named backends answers with the one it names."""

GENERATION_SETTINGS = {
    "temperature": "temperature",
    "max_tokens": "maxOutputTokens",
    "top_p": "topP",
    "top_k": "topK",
}
"""LangChain's standard parameters and their names in ``generationConfig`` (Gemini's)."""

APPLIED_HEADER = "X-GPROChat-Applied"
"""Answer header by which a server confirms the ``generationConfig`` names it applied
(comma-separated). The upstream app ignores ``generationConfig`` and sends no such
header; ``gprochat-server`` sends it."""

INTERRUPTION_MARKER = "Internal server error"
"""Text the upstream appends to a 200 stream when the model fails mid-answer."""

Role = Literal["user", "model"]

SYSTEM_TEMPLATE = "[System instructions]\n{system}\n[End of system instructions]\n\n{content}"
"""How a system prompt travels in the first user turn (the protocol has no system role);
used by the client's conversion and by the local server's chat page alike."""


class Part(BaseModel):
    """One part of a turn; only text parts exist in this protocol."""

    model_config = ConfigDict(extra="ignore")

    text: StrictStr


class Turn(BaseModel):
    """One message of the conversation as the endpoint takes it."""

    model_config = ConfigDict(extra="ignore")

    role: Role
    parts: list[Part] = Field(min_length=1)


class GenerateRequest(BaseModel):
    """The JSON body of ``POST /api/generate``."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    messages: list[Turn]
    time: StrictInt
    password: StrictStr | None = Field(default=None, alias="pass")
    sign: StrictStr


def turn_text(turn: Turn) -> str:
    """The text of a turn: its parts' texts concatenated, as the upstream signs it."""
    if len(turn.parts) == 1:
        return turn.parts[0].text
    return "".join(part.text for part in turn.parts)


def well_formed(text: str) -> str:
    """``text`` as JavaScript's ``TextEncoder`` sends it: lone surrogates become U+FFFD.

    A Python string (and JSON) may hold lone UTF-16 surrogates, which UTF-8 cannot
    encode; the upstream's web client and server replace them with U+FFFD, so the
    client, the local server and the signatures do the same. Surrogate pairs stored as
    two code points are joined into the character they encode.
    """
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def sign(time_ms: int, text: str, secret_key: str) -> str:
    """Lowercase hex SHA-256 of ``f"{time_ms}:{text}:{secret_key}"`` (UTF-8).

    ``text`` and ``secret_key`` are taken as :func:`well_formed` makes them.
    """
    payload = f"{time_ms}:{well_formed(text)}:{well_formed(secret_key)}"
    return hashlib.sha256(payload.encode()).hexdigest()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _wire_messages(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """The ``messages`` of a request body, texts as the upstream's encoder sends them."""
    return [
        {"role": t.role, "parts": [{"text": well_formed(p.text)} for p in t.parts]} for t in turns
    ]


class RequestEncoder:
    """Encodes one conversation into request bodies, one per attempt.

    The turns are serialized once; each call only adds a fresh ``time`` and ``sign``,
    so a retry is signed with a new timestamp at almost no cost. The bytes are the
    upstream web client's (compact JSON, UTF-8, lone surrogates as U+FFFD). A
    ``generation_config`` (Gemini's names, see :data:`GENERATION_SETTINGS`) adds a
    ``generationConfig`` object after ``sign``, and a ``model`` (a server's backend name,
    see :data:`MODEL_FIELD`) comes last; without them the body is exactly the upstream
    web client's.
    """

    __slots__ = ("_head", "_last_text", "_secret_key", "_tail", "_trailer")

    def __init__(
        self,
        turns: Sequence[Turn],
        *,
        password: str | None,
        secret_key: str,
        generation_config: dict[str, float | int] | None = None,
        model: str | None = None,
    ) -> None:
        if not turns:
            raise ValueError("cannot build a request without messages")
        self._head = '{"messages":' + _json(_wire_messages(turns)) + ',"time":'
        password = None if password is None else well_formed(password)
        self._tail = ',"pass":' + _json(password) + ',"sign":"'
        config = f',"{GENERATION_CONFIG}":{_json(generation_config)}' if generation_config else ""
        named = "" if model is None else f',"{MODEL_FIELD}":{_json(well_formed(model))}'
        self._trailer = f"{config}{named}}}"
        self._last_text = turn_text(turns[-1])
        self._secret_key = secret_key

    def __repr__(self) -> str:
        return "RequestEncoder(...)"

    def encode(self, time_ms: int) -> bytes:
        """The body signed for ``time_ms``."""
        signature = sign(time_ms, self._last_text, self._secret_key)
        return f'{self._head}{time_ms}{self._tail}{signature}"{self._trailer}'.encode()


def parse_error_body(body: bytes) -> tuple[str, str | None]:
    """Extract ``(message, code)`` from an error body, whatever its content type says.

    The upstream sends JSON error bodies labelled ``text/plain``; anything that is not
    the expected JSON (nested too deeply to parse included) falls back to the raw text
    (decoded with replacement).
    """
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than json parses
        return text, None
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            code = error.get("code")
            return error["message"], None if code is None else str(code)
        if isinstance(error, str):
            return error, None
    return text, None
