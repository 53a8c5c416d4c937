r"""Build helpers for the documentation site (referenced from ``mkdocs.yml``).

* ``on_files`` (an MkDocs hook): publishes ``bench/results.png`` next to the pages, so
  that ``bench/README.md``, included in ``performance.md``, shows its plot.
* ``on_page_content`` (an MkDocs hook): in a table cell, ``str \| None`` is how the pages
  write a ``|`` inside code (GitHub shows ``str | None``); Python-Markdown keeps the
  backslash inside code, so it is dropped from the HTML here.
* ``RstDocstrings`` (a griffe extension, for mkdocstrings): the package's docstrings are
  Google style with a few reStructuredText constructs (LangChain's chat-model layout).
  It renders them as Markdown before they are parsed: ``.. code-block:: LANG`` becomes a
  fenced block, a ``:class:`X``` role becomes ```X```, and a ``Key init args — ...:``
  section becomes a titled block with one list item per argument. The source files are
  not changed.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import griffe
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

_CODE_BLOCK = re.compile(r"^(?P<indent>\s*)\.\. code-block::\s*(?P<lang>\S*)\s*$")
_ROLE = re.compile(r":(?:py:)?(?:class|mod|data|func|meth|attr|exc|obj|const):`(~?)([^`]+)`")
_INIT_ARGS = re.compile(r"^(?P<indent>\s*)Key init args\s*[—–-]+\s*(?P<what>[\w ]+):\s*$")
_ARG = re.compile(r"^(?P<names>[^:]+):\s*(?P<type>.+)$")
_CELL = re.compile(r"<td[^>]*>.*?</td>", re.S)
_CODE = re.compile(r"<code>.*?</code>", re.S)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the benchmark plot, which lives outside ``docs/``, to the site."""
    plot = Path(config.config_file_path).parent / "bench" / "results.png"
    files.append(File.generated(config, "results.png", abs_src_path=str(plot)))
    return files


def on_page_content(html: str, **kwargs: Any) -> str:
    r"""Show ``\|`` inside code in a table cell as ``|``, as GitHub does."""

    def code(match: re.Match[str]) -> str:
        return match[0].replace("\\|", "|")

    return _CELL.sub(lambda cell: _CODE.sub(code, cell[0]), html)


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int, indent: int) -> int:
    """Index just past the lines from ``start`` that are blank or indented past ``indent``."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent_of(lines[end]) > indent):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


def _code_blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _CODE_BLOCK.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent = match["indent"]
        end = _block(lines, i + 1, len(indent))
        body = textwrap.dedent("\n".join(lines[i + 1 : end])).strip("\n").split("\n")
        out.append(f"{indent}```{match['lang']}")
        out.extend(f"{indent}{line}" if line else "" for line in body)
        out.append(f"{indent}```")
        i = end
    return out


def _init_args(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _INIT_ARGS.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent = match["indent"]
        out.append(f"{indent}Key init args - {match['what']}:")
        end = _block(lines, i + 1, len(indent))
        item = _indent_of(lines[i + 1]) if end > i + 1 else 0
        for line in lines[i + 1 : end]:
            arg = _ARG.match(line.strip())
            if line.strip() and _indent_of(line) == item and arg:
                out.append(f"{' ' * item}- `{arg['names']}` (`{arg['type']}`):")
            elif line.strip():
                out.append(f"{' ' * (item + 2)}{line.strip()}")
            else:
                out.append("")
        i = end
    return out


def _roles(text: str) -> str:
    return _ROLE.sub(lambda m: f"`{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}`", text)


def to_markdown(docstring: str) -> str:
    """The docstring with its reStructuredText constructs written as Markdown."""
    lines = _init_args(_code_blocks(docstring.split("\n")))
    return _roles("\n".join(lines))


class RstDocstrings(griffe.Extension):
    """Rewrite each docstring with :func:`to_markdown` as griffe loads it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring, if it has one."""
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
