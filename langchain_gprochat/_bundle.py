r"""Reading a GeminiProChat page and its script chunks as text: pure, no I/O.

What a browser would load (:func:`parse_page`), the modules a chunk imports statically
(:func:`static_imports`), and, in the chunks, the two settings the web client was built
with (:func:`find_signing_keys`, :func:`find_history_limits`). Nothing is executed: the
forms below are matched as text, as Vite and esbuild write them. Seen in real builds of
the upstream app (Astro 2.7, Vite 4.4):

* a key set at build time, inlined into the signing template literal::

      const{t:e,m:t}=r,a=`${e}:${t}:7F3A9C2E-...`;return await digestMessage(a)

  (backslash, backtick and ``${`` escaped as ``\\\\``, ``\\```, ``\\${``; ``</script`` as
  ``<\\/script``);
* no key set: ``n={}.PUBLIC_SECRET_KEY||"",a=`${e}:${t}:${n}``` (the fallback ``""``);
* the history limit set: ``f=parseInt("12")`` with ``.slice(-f)``; not set:
  ``f=parseInt({}.PUBLIC_MAX_HISTORY_MESSAGES||"99")`` (``"9"`` in the first week's
  releases). An unminified ``maxHistoryMessages = 12`` (a number, a string or
  ``parseInt(...)``) is read too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

__all__ = [
    "HistoryLimit",
    "Page",
    "SigningKey",
    "find_history_limits",
    "find_signing_keys",
    "js_parse_int",
    "js_unescape",
    "parse_page",
    "static_imports",
]

_STRING = (
    r"""(?:"(?:[^"\\\n]|\\[\s\S])*"|'(?:[^'\\\n]|\\[\s\S])*'"""
    r"""|`(?:[^`\\$]|\\[\s\S]|\$(?!\{))*`)"""
)
"""A JavaScript string literal, or a template literal without substitutions."""

_NO_ENV = r"(?:\(\s*\{\s*\}\s*\)|\{\s*\}|void 0|undefined|import\.meta\.env)"
"""What Vite leaves of ``import.meta.env`` for a variable that was not set."""

_SIGNING = re.compile(
    r"`\$\{\s*[\w$.]+\s*\}:\$\{\s*[\w$.]+\s*\}:"
    r"(?:(?P<literal>(?:[^`\\$]|\\[\s\S]|\$(?!\{))*)`|\$\{\s*(?P<name>[\w$]+)\s*\}`)"
)
"""The signing template literal ``${t}:${m}:KEY``, or ``${t}:${m}:${name}``."""

_KEY_FALLBACK = rf"{_NO_ENV}\.PUBLIC_SECRET_KEY\s*\|\|\s*(?P<value>{_STRING})"
_HISTORY_ARG = rf"(?:{_NO_ENV}\.PUBLIC_MAX_HISTORY_MESSAGES\s*\|\|\s*)?(?P<value>{_STRING})"
_HISTORY_MINIFIED = re.compile(
    rf"(?<![\w$.])(?P<name>[\w$]+)\s*=\s*parseInt\(\s*{_HISTORY_ARG}\s*\)"
)
_HISTORY_NAMED = re.compile(
    rf"\bmaxHistoryMessages\s*=\s*(?:parseInt\(\s*{_HISTORY_ARG}\s*\)|(?P<number>[0-9]+)(?![\w.]))"
)
_IMPORT = re.compile(
    r"""(?<![\w$.])(?:import|export)\s*(?:[\w$*{}\s,]*?\bfrom\s*)?["'](?P<spec>[^"'\s]+)["']"""
    r"""|(?<![\w$.])import\s*\(\s*["'](?P<dynamic>[^"'\s]+)["']\s*\)"""
)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|\r\n|[\s\S])")
_CONTEXT = 400
"""Characters before a match that are searched for the names around it."""


@dataclass(frozen=True)
class Page:
    """What the HTML page loads and shows.

    Attributes:
        scripts: URLs of the scripts a browser loads, most likely signing code first:
            Astro islands' ``component-url``, ``<link rel="modulepreload">``,
            ``<script type="module" src>``, islands' ``renderer-url`` and
            ``before-hydration-url``, then classic ``<script src>``.
        inline: the text of inline scripts.
        title: the ``<title>``.
        application_name: ``<meta name="application-name">``.
        generator: ``<meta name="generator">`` (``Astro v2.7.0`` upstream).
        version: ``<meta name="version">`` or ``<meta name="application-version">``.
    """

    scripts: tuple[str, ...] = ()
    inline: tuple[str, ...] = ()
    title: str | None = None
    application_name: str | None = None
    generator: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class SigningKey:
    """A signing template literal found in a script.

    ``key`` is ``None`` when the literal interpolates a name whose value this module
    cannot read as text (the key is computed when the page runs).
    """

    key: str | None
    offset: int
    near_signing_names: bool


@dataclass(frozen=True)
class HistoryLimit:
    """``PUBLIC_MAX_HISTORY_MESSAGES`` as a script shows it.

    ``value`` is the number the web client slices with, ``None`` when ``parseInt``
    gives ``NaN`` or 0 (the client then sends the whole history); ``text`` is the
    string or number as written.
    """

    value: int | None
    text: str


class _Collector(HTMLParser):
    """Collects the script references, inline scripts, title and meta tags of a page."""

    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.islands: list[str] = []
        self.preloads: list[str] = []
        self.modules: list[str] = []
        self.renderers: list[str] = []
        self.classic: list[str] = []
        self.inline: list[str] = []
        self.meta: dict[str, str] = {}
        self.title: str | None = None
        self._in: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name.lower(): (value or "").strip() for name, value in attrs}
        if tag == "base" and a.get("href"):
            self.base = urljoin(self.base, a["href"])
        elif tag == "astro-island":
            self._add(self.islands, a.get("component-url"))
            self._add(self.renderers, a.get("renderer-url"))
            self._add(self.renderers, a.get("before-hydration-url"))
        elif tag == "link" and "modulepreload" in a.get("rel", "").lower().split():
            self._add(self.preloads, a.get("href"))
        elif tag == "meta" and a.get("name"):
            self.meta.setdefault(a["name"].lower(), a.get("content", ""))
        elif tag == "script":
            module = a.get("type", "").lower() == "module"
            if a.get("src"):
                self._add(self.modules if module else self.classic, a["src"])
            elif a.get("type", "").lower() in ("", "module", "text/javascript"):
                self._in, self._text = "script", []
        elif tag == "title" and self.title is None:
            self._in, self._text = "title", []

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._in == tag == "script":
            self.inline.append("".join(self._text))
        elif self._in == tag == "title":
            self.title = " ".join("".join(self._text).split()) or None
        if self._in == tag:
            self._in = None

    def _add(self, into: list[str], ref: str | None) -> None:
        if ref:
            into.append(urljoin(self.base, ref))


def parse_page(html: str, url: str) -> Page:
    """The scripts ``html`` (served at ``url``) loads, and what it says of itself."""
    c = _Collector(url)
    c.feed(html)
    c.close()
    ordered = c.islands + c.preloads + c.modules + c.renderers + c.classic
    meta = c.meta
    return Page(
        scripts=tuple(dict.fromkeys(ordered)),
        inline=tuple(c.inline),
        title=c.title,
        application_name=meta.get("application-name") or None,
        generator=meta.get("generator") or None,
        version=meta.get("version") or meta.get("application-version") or None,
    )


def static_imports(code: str, url: str) -> list[str]:
    """URLs of the modules ``code`` (served at ``url``) imports by path.

    ``import{a}from"./web.js"``, ``import"./x.js"``, ``export*from"/y.js"`` and
    ``import("./z.js")`` count; bare package names cannot load in a browser and are
    skipped.
    """
    found: list[str] = []
    for match in _IMPORT.finditer(code):
        spec = match.group("spec") or match.group("dynamic")
        if spec.startswith(("./", "../", "http://", "https://")) or (
            spec.startswith("/") and not spec.startswith("//")
        ):
            found.append(urljoin(url, spec))
    return list(dict.fromkeys(found))


def js_unescape(raw: str) -> str:
    r"""The value of a JavaScript string or template literal's body ``raw`` (cooked).

    A template literal's raw line breaks (CR LF, CR) read as LF; ``\\u`` escapes of a
    surrogate pair join into the character.
    """
    raw = raw.replace("\r\n", "\n").replace("\r", "\n")

    def one(match: re.Match[str]) -> str:
        esc = match.group(1)
        if esc.startswith("u{"):
            return chr(min(int(esc[2:-1], 16), 0x10FFFF))
        if esc[0] in "ux" and len(esc) > 1:
            return chr(int(esc[1:], 16))
        if esc in ("\n", "\u2028", "\u2029"):
            return ""  # a line continuation
        return _SIMPLE_ESCAPES.get(esc, esc)

    text = _ESCAPE.sub(one, raw)
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")


def js_parse_int(text: str) -> int | None:
    """JavaScript's ``parseInt(text)`` (base 10); ``None`` for ``NaN``."""
    match = re.match(r"\s*([+-]?)([0-9]+)", text)
    if match is None:
        return None
    value = int(match.group(2))
    return -value if match.group(1) == "-" else value


def _literal_value(literal: str) -> str:
    return js_unescape(literal[1:-1])


def _near_signing_names(code: str, offset: int) -> bool:
    before = code[max(0, offset - _CONTEXT) : offset].lower()
    return any(word in before for word in ("signature", "sign", "digest", "sha256"))


def _resolve_name(code: str, name: str, offset: int) -> str | None:
    """The value the code before ``offset`` gives ``name``, if it can be read as text.

    That is the key's fallback (``{}.PUBLIC_SECRET_KEY||""``) or a string literal;
    anything else is ``None``.
    """
    before = code[max(0, offset - _CONTEXT) : offset]
    assign = rf"(?<![\w$.]){re.escape(name)}\s*=\s*"
    matches = list(
        re.finditer(assign + rf"(?:{_KEY_FALLBACK}|(?P<plain>{_STRING})\s*[,;])", before)
    )
    if not matches:
        return None
    last = matches[-1]
    return _literal_value(last.group("value") or last.group("plain"))


def find_signing_keys(code: str) -> list[SigningKey]:
    """Every signing template literal ``${t}:${m}:KEY`` in ``code``, with its key."""
    found: list[SigningKey] = []
    for match in _SIGNING.finditer(code):
        literal, name = match.group("literal"), match.group("name")
        key = (
            js_unescape(literal)
            if literal is not None
            else _resolve_name(code, name, match.start())
        )
        found.append(SigningKey(key, match.start(), _near_signing_names(code, match.start())))
    return found


def _limit(text: str) -> HistoryLimit:
    value = js_parse_int(text)
    return HistoryLimit(value if value is not None and value > 0 else None, text)


def find_history_limits(code: str) -> list[HistoryLimit]:
    """``PUBLIC_MAX_HISTORY_MESSAGES`` as ``code`` shows it.

    That is a ``name=parseInt("N")`` whose name the code slices the history with
    (``.slice(-name)``), or an unminified ``maxHistoryMessages = N``.
    """
    found: list[HistoryLimit] = []
    for match in _HISTORY_MINIFIED.finditer(code):
        if re.search(rf"\.slice\(\s*-\s*{re.escape(match.group('name'))}\s*\)", code):
            found.append(_limit(_literal_value(match.group("value"))))
    for match in _HISTORY_NAMED.finditer(code):
        number = match.group("number")
        found.append(_limit(number if number else _literal_value(match.group("value"))))
    return found
