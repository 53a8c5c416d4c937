"""An incremental JSON checker, without recursion, for the tool-call scanner.

:class:`Run` reads a JSON value as its text arrives, the way ``json.raw_decode`` would,
with its own stack instead of recursion: it records where the value ends (or the first
character no JSON can have), where each object inside it ends, and how deeply it nests.
The scanner in :mod:`langchain_gprochat._tool_scan` uses it to decide when
``raw_decode`` may run, so that no text is read more than a bounded number of times.
"""

from __future__ import annotations

import re
import sys

__all__ = ["Run", "skip", "too_deep"]

_WS_RE = re.compile(r"[ \t\n\r]*")
_STRING_RE = re.compile(r'[^"\\]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\]*)*')
_ESCAPE_START_RE = re.compile(r"\\(?:u[0-9a-fA-F]{0,3})?")
_DIGITS_RE = re.compile(r"[0-9]*")
_D = "0123456789"
_NUMBER = {  # number automaton: state → {character → state}; it may end in "0", "i", "f", "x"
    "-": {"0": "0", **dict.fromkeys(_D[1:], "i")},
    "0": {".": ".", "e": "e", "E": "e"},
    "i": {**dict.fromkeys(_D, "i"), ".": ".", "e": "e", "E": "e"},
    ".": dict.fromkeys(_D, "f"),
    "f": {**dict.fromkeys(_D, "f"), "e": "e", "E": "e"},
    "e": {**dict.fromkeys(_D, "x"), "+": "s", "-": "s"},
    "s": dict.fromkeys(_D, "x"),
    "x": dict.fromkeys(_D, "x"),
}
_LITERALS = {"n": "ull", "t": "rue", "f": "alse", "N": "aN", "I": "nfinity"}
_VALUE, _FIRST_ITEM, _FIRST_KEY, _KEY, _COLON, _AFTER_KEY, _AFTER_ITEM = range(7)  # modes
_STRING, _KEY_STRING, _NUM, _LIT, _OPEN, _CLOSE = range(7, 13)  # modes and moves
_VALUE_STEPS = {'"': _STRING, **dict.fromkeys("{[", _OPEN), **dict.fromkeys("-" + _D, _NUM)}
_VALUE_STEPS.update(dict.fromkeys(_LITERALS, _LIT))
_STEPS = {  # mode → {character → what it does}
    _VALUE: _VALUE_STEPS,
    _FIRST_ITEM: {**_VALUE_STEPS, "]": _CLOSE},
    _FIRST_KEY: {'"': _KEY_STRING, "}": _CLOSE},
    _KEY: {'"': _KEY_STRING},
    _COLON: {":": _VALUE},
    _AFTER_KEY: {",": _KEY, "}": _CLOSE},
    _AFTER_ITEM: {",": _VALUE, "]": _CLOSE},
}


def skip(pattern: re.Pattern[str], text: str, pos: int) -> int:
    match = pattern.match(text, pos)
    assert match is not None  # the patterns used here match the empty string
    return match.end()


class Run:
    """Checks the JSON value at ``start`` as its text arrives, as ``raw_decode`` reads it.

    ``end`` is set once the value is complete, ``error`` at the first character that no
    more text can make valid, ``levels`` to how deeply it nests. ``ends`` maps the
    opening bracket of the value, of each object in it and of each array whose first
    item is an object, to where that value ends (-1 while open).
    """

    def __init__(self, start: int) -> None:
        self.start = start
        self.end: int | None = None
        self.error: int | None = None
        self.margin: int | None = None  # where raw_decode reports ``error``
        self.levels = 0
        self.ends: dict[int, int] = {}
        self._stack: list[tuple[int, bool]] = []  # open values: bracket, is an object
        self._mode = _VALUE
        self._state = ""  # the number automaton's state, or the rest of a literal
        self._carry = ""  # a partial escape at the end of the last text

    @property
    def limit(self) -> int:
        """Where this run stops telling anything about the text."""
        stop = self.end if self.error is None else self.error
        return sys.maxsize if stop is None else stop

    def feed(self, text: str, i: int, offset: int) -> None:
        """Check ``text[i:]``; ``text[0]`` is at ``offset`` in the reply."""
        if self._carry:
            text, i, offset = self._carry + text[i:], 0, offset + i - len(self._carry)
            self._carry = ""
        while i < len(text) and self.end is None and self.error is None:
            mode = self._mode
            if mode in (_STRING, _KEY_STRING):
                i = self._string(text, i, offset)
            elif mode == _NUM:
                i = self._number(text, i, offset)
            elif mode == _LIT:
                size = min(len(self._state), len(text) - i)
                if text[i : i + size] != self._state[:size]:
                    self.error = offset + i
                i, self._state = i + size, self._state[size:]
                if not self._state and self.error is None:
                    self._value_done(offset + i)
            elif text[i] in " \t\n\r":
                i = skip(_WS_RE, text, i)
            else:
                self._token(text[i], offset + i, mode)
                i += 1

    def _token(self, char: str, pos: int, mode: int) -> None:
        step = _STEPS[mode].get(char)
        if step is None:
            self.error = pos
        elif step == _CLOSE:
            self._pop(pos)
        elif step == _OPEN:
            if mode == _FIRST_ITEM and char == "{":
                self.ends[self._stack[-1][0]] = -1
            self._push(pos, char == "{")
        elif step == _NUM:
            self._mode, self._state = _NUM, "i" if char > "0" else char
        elif step == _LIT:
            self._mode, self._state = _LIT, _LITERALS[char]
        else:
            self._mode = step

    def _string(self, text: str, i: int, offset: int) -> int:
        i = skip(_STRING_RE, text, i)
        if i == len(text):
            return i
        if text[i] == '"':
            if self._mode == _KEY_STRING:
                self._mode = _COLON
            else:
                self._value_done(offset + i + 1)
        elif _ESCAPE_START_RE.fullmatch(text, i):
            self._carry = text[i:]
            return len(text)
        else:
            self.error = offset + i
        return i + 1

    def _number(self, text: str, i: int, offset: int) -> int:
        state = self._state
        while True:
            if state in "ifx":
                i = skip(_DIGITS_RE, text, i)
            if i == len(text):
                break
            if state == "-" and text[i] == "I":
                self._mode, state = _LIT, "Infinity"
                break
            following = _NUMBER[state].get(text[i])
            if following is None:
                if state in "0ifx":
                    self._value_done(offset + i)
                else:
                    self.error = offset + i
                break
            state, i = following, i + 1
        self._state = state
        return i

    def _push(self, pos: int, is_object: bool) -> None:
        if is_object or not self._stack:
            self.ends[pos] = -1
        self._stack.append((pos, is_object))
        self.levels = max(self.levels, len(self._stack))
        self._mode = _FIRST_KEY if is_object else _FIRST_ITEM

    def _pop(self, pos: int) -> None:
        opened = self._stack.pop()[0]
        if opened in self.ends:
            self.ends[opened] = pos + 1
        self._value_done(pos + 1)

    def _value_done(self, pos: int) -> None:
        if not self._stack:
            self.end = pos
        else:
            self._mode = _AFTER_KEY if self._stack[-1][1] else _AFTER_ITEM


def too_deep(text: str, start: int, end: int, max_depth: int) -> bool:
    """Whether the JSON at ``start`` (valid up to ``end``) nests over ``max_depth`` levels."""
    if text.count("{", start, end) + text.count("[", start, end) <= max_depth:
        return False
    run = Run(start)
    run.feed(text, start, 0)
    return run.levels > max_depth
