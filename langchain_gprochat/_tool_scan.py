"""The scanner behind :mod:`langchain_gprochat._tools`: finds tool-call JSON in model text.

It answers as ``json.JSONDecoder.raw_decode`` run from each ``{`` (and each ``[`` that
opens an array of objects) at the top level would, fenced blocks taken with their
fences, in time linear in the text however it is split into deltas. Most JSON decodes
at once; otherwise a ``Run`` checks it from its bracket on as it arrives (an automaton
with its own stack, so no recursion), recording where each object in it ends and how
deeply it nests: a bracket inside a value that failed is answered from that run, and
only one inside its strings starts another. ``Scanner`` keeps the text it has not
resolved and, while it waits (on a run, for more than whitespace, or for the end of the
reply), keeps new text aside unjoined. With ``final=False`` it stops where more text
could still change the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from langchain_core.messages import InvalidToolCall, ToolCall
from langchain_core.messages.tool import invalid_tool_call, tool_call
from langchain_core.utils.json import parse_partial_json

from langchain_gprochat._json_check import Run, skip, too_deep

__all__ = ["MAX_DEPTH", "PARTIAL_JSON_LIMIT", "Scanner", "Span", "dump", "names_text"]

MAX_DEPTH = 100
"""JSON nested more deeply than this (arrays and objects) is not decoded: json recurses."""

_ARGUMENT_KEYS = ("arguments", "args", "parameters")
_SINGLE_CALL_KEYS = frozenset({"name", "id", "type", "function", *_ARGUMENT_KEYS})
_DECODER = json.JSONDecoder(strict=False)
_MARGIN = 16
"""A JSON error this many characters before the end of the text can no longer be cured
by more text (the longest partial token, ``-Infinity``, is shorter)."""
_EARLY = 64  # a decode failing this soon needs no run: re-decoding inside it is cheap
PARTIAL_JSON_LIMIT = 1024  # parse_partial_json may retry once per character: O(n²)
_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"
_BROKEN_CALL_RE = re.compile(r'\{\s*"(?:tool_calls|name|function)"\s*:')
_FENCE_BEFORE_RE = re.compile(r"```(?i:json)?\s*\Z")
_FENCE_PREFIX_RE = re.compile(r"(?:```(?i:json|jso|js|j)?|``|`)\s*\Z")
_FENCE_AFTER_RE = re.compile(r"\s*```")
_FENCE_AFTER_PREFIX_RE = re.compile(r"\s*`{0,2}")
_NOT_JSON = r'(?![ \t\n\r]*(?:[^"}\s]|"[^"\\]*"[ \t\n\r]*[^:\s]))'
_CANDIDATE_RE = re.compile(rf"\{{{_NOT_JSON}|\[(?=\s*(?:\{{{_NOT_JSON}|\Z))")
"""A bracket that may start a call: ``{``, unless what follows shows that it cannot open
JSON (as in ``{x``, ``{{`` or ``{"a"}``), or ``[`` before such a ``{`` (or at the end).
Near the end of a streamed text, where more text may cure that, ``_TAIL_CANDIDATE_RE``."""
_TAIL_CANDIDATE_RE = re.compile(r"\{|\[(?=\s*(?:\{|\Z))")
_ARRAY_START_RE = re.compile(r"\[\s*")
_NAME_RE = re.compile(r'"name"\s*:\s*("(?:[^"\\]|\\.)*")')


@dataclass(frozen=True)
class Span:
    """A tool-call object found in the text (with its fence), as parsed calls."""

    calls: tuple[ToolCall | InvalidToolCall, ...]


_Piece: TypeAlias = "str | Span"


@dataclass(frozen=True)
class _Outcome:
    """What decoding at ``start`` gives: a value up to ``end``, or a failure (``run``)."""

    start: int
    end: int
    value: Any = None
    failed: bool = False  # the JSON does not parse: see ``run`` (if any) and ``error``
    run: Run | None = None
    error: str = ""  # a failure's message, when known without asking the decoder
    deep: bool = False  # a value nested more than MAX_DEPTH levels deep: not decoded


class Scanner:
    """Turns a reply, given whole or in deltas, into prose and tool-call spans."""

    def __init__(self, tool_names: Collection[str], new_id: Callable[[], str]) -> None:
        self._tool_names = tool_names
        self._new_id = new_id
        self._text = ""  # the text not returned yet; it starts at ``_base`` in the reply
        self._base = 0
        self._length = 0
        self._held: list[str] = []
        self._wait: Run | Literal["space", "final"] | None = None
        self._runs: list[Run] = []
        self._fence_open = False  # a call opened a code fence that no call closed yet

    def scan(self, delta: str, *, final: bool) -> list[_Piece]:
        """Take the next text; return the pieces of the reply that no more text changes.

        With ``final`` the reply is complete and everything is resolved. Otherwise
        scanning stops before the first ``{`` whose JSON is not resolved yet, before a
        possible fence that may open such JSON, and before a possible closing fence.
        """
        self._length += len(delta)
        self._held.append(delta)
        released = self._wait is None or self._released(delta)
        if not (final or (delta and released)):
            return []
        self._text = "".join([self._text, *self._held])
        self._held, self._wait = [], None
        pieces, cut = self._scan(final)
        self._text, self._base = self._text[cut:], self._base + cut
        return pieces

    def _released(self, delta: str) -> bool:
        wait = self._wait
        if wait == "space":
            return not delta.isspace()
        if not isinstance(wait, Run):
            return False
        wait.feed(delta, 0, self._length - len(delta))
        if wait.end is not None or (wait.error is not None and wait.margin is None):
            return True
        return wait.margin is not None and self._length >= wait.margin + _MARGIN

    def _scan(self, final: bool) -> tuple[list[_Piece], int]:
        text, base = self._text, self._base
        pieces: list[_Piece] = []
        start = search = cut = 0

        def commit(end: int) -> tuple[list[_Piece], int]:
            nonlocal cut
            prose = text[start:end]
            if prose:
                pieces.append(prose)
                if not prose.isspace():
                    self._fence_open = False
            cut = end
            return pieces, cut

        limit = len(text) if final else max(0, len(text) - _MARGIN + 1)
        while True:
            candidate = _CANDIDATE_RE.search(text, search, limit) or _TAIL_CANDIDATE_RE.search(
                text, max(search, limit)
            )
            if candidate is None:
                tail = None if final else _FENCE_PREFIX_RE.search(text, start)
                self._wait = "space" if tail else None
                return commit(tail.start() if tail else len(text))
            brace = candidate.start()
            if text[brace] == "[":  # only an array of objects may hold calls
                first = skip(_ARRAY_START_RE, text, brace)
                if first == len(text) and not final:
                    self._wait = "space"
                    return commit(_fence_start(text, start, brace))
                if first == len(text) or text[first] != "{":
                    search = brace + 1
                    continue
            outcome = self._outcome(brace + base, final)
            if outcome is None:
                return commit(_fence_start(text, start, brace))
            failed = outcome.failed
            decoded = not (failed or outcome.deep)
            items = _call_items(outcome.value) if decoded else None
            if items is None and (decoded or _BROKEN_CALL_RE.match(text, brace) is None):
                search = brace + 1 if failed else outcome.end - base
                continue
            begin = _fence_start(text, start, brace)
            if failed and not final:
                self._wait = "final"
                return commit(begin)
            end = len(text) if failed else outcome.end - base
            commit(begin)
            fenced = begin < brace or self._fence_open
            closed = False
            if fenced and not failed:
                closing = _FENCE_AFTER_RE.match(text, end)
                if closing:
                    end, closed = closing.end(), True
                elif not final and _FENCE_AFTER_PREFIX_RE.fullmatch(text, end):
                    self._wait = "space" if text[end:].isspace() else None
                    return pieces, cut  # wait: the next delta may close the fence
            self._fence_open = fenced and not closed
            if items is None:
                raw = text[brace:] if failed else text[brace : outcome.end - base]
                calls: tuple[ToolCall | InvalidToolCall, ...] = (
                    self._invalid(outcome, raw, fenced),
                )
            else:
                calls = tuple(_convert_call(item, self._tool_names, self._new_id) for item in items)
            pieces.append(Span(calls))
            start = search = cut = end

    def _outcome(self, opened: int, final: bool) -> _Outcome | None:
        """What decoding at ``opened`` gives; ``None`` while more text may change it."""
        start = opened - self._base
        for run in self._runs:
            if opened in run.ends:
                break
        else:
            size = 256  # most JSON decodes at once; a window, since an error costs its offset
            while True:
                window = self._text[start : start + size]
                try:
                    value, end = _DECODER.raw_decode(window)
                except (ValueError, RecursionError) as exc:
                    if _cut_short(exc, len(window)):
                        if start + size >= len(self._text):
                            break
                        size *= 4
                        continue
                    if isinstance(exc, json.JSONDecodeError) and exc.pos <= _EARLY:
                        error = f"{exc.msg} at character {exc.pos}"
                        return _Outcome(opened, opened + exc.pos, failed=True, error=error)
                    break
                deep = too_deep(window, 0, end, MAX_DEPTH)
                return _Outcome(opened, opened + end, None if deep else value, deep=deep)
            run = Run(opened)
            run.feed(self._text, start, self._base)
            self._runs = [old for old in self._runs if old.limit > opened] + [run]
        end = run.ends[opened]
        if end >= 0 and too_deep(self._text, start, end - self._base, MAX_DEPTH):
            return _Outcome(opened, end, deep=True)
        if end >= 0:
            try:
                return _Outcome(opened, end, _DECODER.raw_decode(self._text, start)[0])
            except (ValueError, RecursionError) as exc:  # e.g. an int of 5,000 digits
                return _Outcome(opened, end, failed=True, run=run, error=str(exc))
        if not final:
            if run.error is None:
                self._wait = run
                return None
            if run.margin is None:
                run.margin = self._error(run, run.start)[1]
            if self._length < run.margin + _MARGIN:
                self._wait = run
                return None
        return _Outcome(opened, self._length, failed=True, run=run)

    def _error(self, run: Run, opened: int) -> tuple[str, int]:
        """The decoder's message for the broken JSON at ``opened``, and where it points."""
        start = opened - self._base
        window = self._text[start : min(run.limit - self._base + _MARGIN, len(self._text))]
        if too_deep(window, 0, len(window), MAX_DEPTH):
            return _TOO_DEEP, run.limit
        try:
            _DECODER.raw_decode(window)
        except json.JSONDecodeError as exc:
            return f"{exc.msg} at character {exc.pos}", opened + exc.pos
        except (ValueError, RecursionError) as exc:
            return str(exc), run.limit
        return "incomplete JSON", run.limit  # not reached: the run found an error

    def _invalid(self, outcome: _Outcome, raw: str, fenced: bool) -> InvalidToolCall:
        """An invalid call for JSON that starts like a call but is not decoded."""
        raw = raw.rstrip()
        if fenced and raw.endswith("```"):
            raw = raw[:-3].rstrip()
        items, run = None, outcome.run
        if outcome.deep:
            error = f"tool call is {_TOO_DEEP}"
        else:
            why = outcome.error or (self._error(run, outcome.start)[0] if run else "")
            error = f"tool call is not valid JSON: {why}"
            if len(raw) <= PARTIAL_JSON_LIMIT and raw.count("{") + raw.count("[") <= MAX_DEPTH:
                try:  # a reply cut short (e.g. by a token limit) parses once closed
                    items = _call_items(parse_partial_json(raw, strict=False))
                except ValueError:
                    items = None
        return invalid_tool_call(
            name=_unique_name(items, raw), args=raw, id=self._new_id(), error=error
        )


def _cut_short(exc: Exception, size: int) -> bool:
    """Whether more text could cure the decoder's error ``exc`` in a text of ``size``."""
    if not isinstance(exc, json.JSONDecodeError):
        return False
    return exc.msg.startswith("Unterminated string") or exc.pos + _MARGIN > size


def _fence_start(text: str, start: int, brace: int) -> int:
    """Where a code fence right before ``brace`` starts, or ``brace`` without one."""
    end = brace
    while end > start and text[end - 1].isspace():
        end -= 1
    fence = _FENCE_BEFORE_RE.search(text, max(start, end - 7), brace)
    return fence.start() if fence else brace


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
        error = f"unknown tool {name!r}; available tools: {names_text(tool_names)}"
        return invalid_tool_call(name=name, args=raw_text, id=call_id, error=error)
    args, error = raw, ""
    if isinstance(raw, str) and raw.strip():
        try:
            if too_deep(raw, 0, len(raw), MAX_DEPTH):
                raise ValueError(_TOO_DEEP)
            args = json.loads(raw, strict=False)
        except json.JSONDecodeError as exc:
            error = f"arguments are not valid JSON: {exc.msg} at character {exc.pos}"
        except ValueError as exc:  # too deep, or an int of 5,000 digits
            error = f"arguments are not valid JSON: {exc}"
    elif isinstance(raw, str):
        args = {}
    if not error and not isinstance(args, dict):
        error = f"arguments must be a JSON object, not {_json_type(args)}"
    if error:
        return invalid_tool_call(name=name, args=raw_text, id=call_id, error=error)
    return tool_call(name=name, args=args, id=call_id)


def _unique_name(items: list[Any] | None, raw: str) -> str | None:
    """The tool name of broken call JSON, when it names exactly one tool."""
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
    names = [name if isinstance(name, str) else None for name in names]
    return names[0] if names and len(set(names)) == 1 else None


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def names_text(tool_names: Collection[str]) -> str:
    return ", ".join(sorted(tool_names)) or "none"


def _json_type(value: Any) -> str:
    kinds = ((list, "an array"), (str, "a string"), (bool, "a boolean"), ((int, float), "a number"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")
