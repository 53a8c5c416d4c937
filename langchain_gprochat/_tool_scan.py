"""The scanner behind :mod:`langchain_gprochat.tools`: finds tool-call JSON in model text.

It walks the text once, from each ``{`` (and each ``[`` that opens an array of objects)
at the top level, decoding with ``json.JSONDecoder.raw_decode``; fenced blocks are
taken with their fences. With ``final=False`` it stops where more text could still
change the answer, so that a stream can be scanned as it grows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeAlias

from langchain_core.messages import InvalidToolCall, ToolCall
from langchain_core.messages.tool import invalid_tool_call, tool_call
from langchain_core.utils.json import parse_partial_json

__all__ = ["ScanState", "Span", "dump", "names_text", "scan"]

_ARGUMENT_KEYS = ("arguments", "args", "parameters")
_SINGLE_CALL_KEYS = frozenset({"name", "id", "type", "function", *_ARGUMENT_KEYS})
_DECODER = json.JSONDecoder(strict=False)
_MARGIN = 16
"""A JSON error this many characters before the end of the text can no longer be cured
by more text (the longest partial token, ``-Infinity``, is shorter), except an
unterminated string, whose error points back at its opening quote."""
_BROKEN_CALL_RE = re.compile(r'\{\s*"(?:tool_calls|name|function)"\s*:')
_FENCE_BEFORE_RE = re.compile(r"```(?i:json)?\s*\Z")
_FENCE_PREFIX_RE = re.compile(r"(?:```(?i:json|jso|js|j)?|``|`)\s*\Z")
_FENCE_AFTER_RE = re.compile(r"\s*```")
_FENCE_AFTER_PREFIX_RE = re.compile(r"\s*`{0,2}")
_CANDIDATE_RE = re.compile(r"[{\[]")
_ARRAY_START_RE = re.compile(r"\[\s*")
_NAME_RE = re.compile(r'"name"\s*:\s*("(?:[^"\\]|\\.)*")')


@dataclass(frozen=True)
class Span:
    """A tool-call object found in the text (with its fence), as parsed calls."""

    calls: tuple[ToolCall | InvalidToolCall, ...]


_Piece: TypeAlias = "str | Span"


@dataclass
class ScanState:
    """Where scanning resumes: everything before ``pos`` has been returned as pieces."""

    pos: int = 0
    fence_open: bool = False  # a call opened a code fence that no call closed yet


@dataclass(frozen=True)
class _Decoded:
    value: Any
    end: int


@dataclass(frozen=True)
class _Failed:
    error: str
    pos: int


def scan(
    text: str,
    state: ScanState,
    *,
    final: bool,
    tool_names: Collection[str],
    new_id: Callable[[], str],
) -> list[_Piece]:
    """Return the pieces of ``text`` from ``state.pos`` that no further text can change.

    With ``final`` the text is complete and everything is resolved. Otherwise scanning
    stops before the first ``{`` whose JSON is not resolved yet, before a possible
    fence that may open such JSON, and before a possible closing fence of a call.
    """
    pieces: list[_Piece] = []
    start = search = state.pos

    def commit(end: int) -> list[_Piece]:
        prose = text[start:end]
        if prose:
            pieces.append(prose)
            if not prose.isspace():
                state.fence_open = False
        state.pos = end
        return pieces

    while True:
        candidate = _CANDIDATE_RE.search(text, search)
        if candidate is None:
            if final:
                return commit(len(text))
            tail = _FENCE_PREFIX_RE.search(text, start)
            return commit(tail.start() if tail else len(text))
        brace = candidate.start()
        fence = _FENCE_BEFORE_RE.search(text, start, brace)
        begin = fence.start() if fence else brace
        if text[brace] == "[":  # only an array of objects may hold calls
            opening = _ARRAY_START_RE.match(text, brace)
            first = opening.end() if opening else brace + 1
            if first == len(text) and not final:
                return commit(begin)
            if first == len(text) or text[first] != "{":
                search = brace + 1
                continue
        outcome = _decode_at(text, brace, final=final)
        if outcome is None:
            return commit(begin)
        if isinstance(outcome, _Decoded):
            items = _call_items(outcome.value)
            if items is None:
                search = outcome.end
                continue
            end = outcome.end
        elif _BROKEN_CALL_RE.match(text, brace) is None:
            search = brace + 1
            continue
        elif not final:
            return commit(begin)
        else:
            items, end = None, len(text)
        commit(begin)
        fenced = fence is not None or state.fence_open
        closed = False
        if fenced and items is not None:
            closing = _FENCE_AFTER_RE.match(text, end)
            if closing:
                end, closed = closing.end(), True
            elif not final and _FENCE_AFTER_PREFIX_RE.fullmatch(text, end):
                return pieces  # wait: the next delta may close the fence
        state.fence_open = fenced and not closed
        if items is None:
            assert isinstance(outcome, _Failed)
            calls: tuple[ToolCall | InvalidToolCall, ...] = (
                _broken_call(text[brace:], outcome, brace, fenced, new_id),
            )
        else:
            calls = tuple(_convert_call(item, tool_names, new_id) for item in items)
        pieces.append(Span(calls))
        start = search = state.pos = end


def _decode_at(text: str, pos: int, *, final: bool) -> _Decoded | _Failed | None:
    """Decode the JSON value at ``pos``; ``None`` while more text may still complete it."""
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        curable = exc.msg.startswith("Unterminated string") or exc.pos + _MARGIN > len(text)
        if curable and not final:
            return None
        return _Failed(f"{exc.msg} at character {exc.pos - pos}", exc.pos)
    except RecursionError:
        return _Failed("nested too deeply", pos)
    return _Decoded(value, end)


def _call_items(value: Any) -> list[Any] | None:
    """The calls a decoded value holds, or ``None`` when it is not a tool call."""
    if isinstance(value, list):
        nested = [_call_items(item) for item in value]
        if not value or any(items is None for items in nested):
            return None
        return [call for items in nested for call in items or ()]
    if not isinstance(value, dict):
        return None
    if "tool_calls" in value:
        calls = value["tool_calls"]
        if isinstance(calls, list):
            return calls
        return [calls] if isinstance(calls, dict) else None
    if not value.keys() <= _SINGLE_CALL_KEYS:
        return None
    function = value.get("function")
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return [value]
    if isinstance(value.get("name"), str) and any(key in value for key in _ARGUMENT_KEYS):
        return [value]
    return None


def _convert_call(
    item: Any, tool_names: Collection[str], new_id: Callable[[], str]
) -> ToolCall | InvalidToolCall:
    """Turn one decoded call into a ``ToolCall``, or an ``InvalidToolCall`` saying why."""
    call_id = new_id()
    if not isinstance(item, dict):
        return invalid_tool_call(
            args=dump(item), id=call_id, error="tool call is not a JSON object"
        )
    if isinstance(item.get("function"), dict):
        item = item["function"]
    raw: Any = next((item[key] for key in _ARGUMENT_KEYS if key in item), {})
    raw_text = raw if isinstance(raw, str) else dump(raw)
    name = item.get("name")
    if not isinstance(name, str) or not name:
        return invalid_tool_call(args=raw_text, id=call_id, error='tool call has no "name"')
    if name not in tool_names:
        return invalid_tool_call(
            name=name,
            args=raw_text,
            id=call_id,
            error=f"unknown tool {name!r}; available tools: {names_text(tool_names)}",
        )
    args = raw
    if isinstance(raw, str):
        try:
            args = json.loads(raw, strict=False) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            return invalid_tool_call(
                name=name,
                args=raw,
                id=call_id,
                error=f"arguments are not valid JSON: {exc.msg} at character {exc.pos}",
            )
    if not isinstance(args, dict):
        return invalid_tool_call(
            name=name,
            args=raw_text,
            id=call_id,
            error=f"arguments must be a JSON object, not {_json_type(args)}",
        )
    return tool_call(name=name, args=args, id=call_id)


def _broken_call(
    raw: str, failure: _Failed, offset: int, fenced: bool, new_id: Callable[[], str]
) -> InvalidToolCall:
    """An invalid call for JSON that starts like a call but does not parse."""
    raw = raw.rstrip()
    if fenced and raw.endswith("```"):
        raw = raw[:-3].rstrip()
    return invalid_tool_call(
        name=_recover_name(raw),
        args=raw,
        id=new_id(),
        error=f"tool call is not valid JSON: {failure.error}",
    )


def _recover_name(raw: str) -> str | None:
    """The tool name of broken call JSON, when it names exactly one tool."""
    try:  # a reply cut short (e.g. by a token limit) parses once closed
        items = _call_items(parse_partial_json(raw, strict=False))
    except (ValueError, RecursionError):
        items = None
    if items is not None:
        calls = [item.get("function", item) if isinstance(item, dict) else None for item in items]
        names = [call.get("name") if isinstance(call, dict) else None for call in calls]
    else:
        names = []
        for match in _NAME_RE.findall(raw):
            try:
                names.append(json.loads(match, strict=False))
            except ValueError:
                names.append(None)
    unique = set(names)
    return names[0] if len(unique) == 1 and isinstance(names[0], str) else None


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def names_text(tool_names: Collection[str]) -> str:
    return ", ".join(sorted(tool_names)) or "none"


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"
