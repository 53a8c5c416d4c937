"""The README's and the docs pages' tables match the code.

README.md: the two opening commands, the module table, links to every docs page.
docs/connecting.md: settings, environment variables, errors. docs/server.md: the
command's options and the upstream's environment variables. docs/tools.md: the examples.
"""

from __future__ import annotations

import re
from pathlib import Path

import langchain_core.exceptions
from langchain_core.language_models import BaseChatModel

from langchain_gprochat import ChatGPROChat, errors
from langchain_gprochat.server.__main__ import build_parser
from langchain_gprochat.server.env import ENV_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


README = _read(ROOT / "README.md")


def _section(text: str, title: str) -> str:
    """The text under the heading ``title``, up to the next heading of level 2 or 3."""
    start = text.index(f"\n{title}\n")
    rest = text[start + len(title) + 2 :]
    match = re.search(r"^#{2,3} ", rest, re.M)
    return rest[: match.start()] if match else rest


def _first_column(section: str) -> list[str]:
    return re.findall(r"^\| `([^`]+)`", section, re.M)


def test_readme_opens_with_the_two_commands() -> None:
    assert README.splitlines()[:5] == [
        "# langchain-gprochat",
        "",
        "```bash",
        "pip install -e . && python examples/quickstart.py",
        'pip install -e ".[test]" && python -m pytest',
    ]
    ci = _read(ROOT / ".ci" / "run")
    assert 'pip install -e ".[test]" && python -m pytest' in ci


def test_readme_links_every_docs_page() -> None:
    pages = sorted(path.name for path in DOCS.glob("*.md"))
    linked = sorted(set(re.findall(r"\]\(docs/([\w-]+\.md)(?:#[\w-]+)?\)", README)))
    assert linked == pages


def test_settings_table_lists_every_field_with_its_default() -> None:
    own = [name for name in ChatGPROChat.model_fields if name not in BaseChatModel.model_fields]
    rows = re.findall(
        r"^\| `(\w+)`(?: \(`(\w+)`\))? \| [^|]+(?:\\\|[^|]+)* \| ([^|]+) \|",
        _section(_read(DOCS / "connecting.md"), "## Settings"),
        re.M,
    )
    assert [row[0] for row in rows] == own
    for name, alias, default in rows:
        field = ChatGPROChat.model_fields[name]
        assert (alias or None) == field.alias, name
        if field.default_factory is None:
            shown = default.strip().strip("`").strip('"')
            assert shown == str(field.default).removesuffix(".0"), name


def test_env_var_table_lists_every_variable_the_code_reads() -> None:
    used: set[str] = set()
    for path in [*(ROOT / "langchain_gprochat").rglob("*.py"), *(ROOT / "examples").glob("*.py")]:
        used.update(re.findall(r"\bGPROCHAT_[A-Z_]+\b", _read(path)))
    section = _section(_read(DOCS / "connecting.md"), "## Environment variables")
    assert sorted(_first_column(section)) == sorted(used)


def test_errors_table_lists_every_exception_with_its_langchain_class() -> None:
    section = _section(_read(DOCS / "connecting.md"), "## Errors")
    rows = re.findall(r"^\| `(\w+)`[^|]* \| `(\w+)` \|", section, re.M)
    classes = {name for name in errors.__all__ if isinstance(getattr(errors, name), type)}
    exported = classes - {"GPROChatError"}  # the base is described in the text above
    assert sorted(name for name, _ in rows) == sorted(exported)
    for name, core in rows:
        assert issubclass(getattr(errors, name), getattr(langchain_core.exceptions, core)), name


def test_server_options_table_matches_the_command() -> None:
    options = sorted(
        opt
        for action in build_parser()._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help"
    )
    section = _section(_read(DOCS / "server.md"), "## The command")
    table = sorted(cell.split()[0] for cell in _first_column(section))
    assert table == options


def test_upstream_env_table_lists_every_variable_the_server_reads() -> None:
    section = _section(_read(DOCS / "server.md"), "### The upstream's environment variables")
    rows = re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", section, re.M)
    assert rows == [(variable.name, variable.setting) for variable in ENV_VARIABLES]
    options = {opt for action in build_parser()._actions for opt in action.option_strings}
    assert {setting.split()[0] for _, setting in rows} <= options
    code = "".join(_read(path) for path in (ROOT / "langchain_gprochat" / "server").glob("*.py"))
    for name, _ in rows:
        assert f'"{name}"' in code, name


def test_examples_table_lists_every_example() -> None:
    section = _section(_read(DOCS / "tools.md"), "## Examples")
    listed = sorted(_first_column(section))
    assert listed == sorted(path.name for path in (ROOT / "examples").glob("*.py"))


def test_module_table_lists_every_module() -> None:
    section = _section(README, "## Modules")
    listed = set(_first_column(section))
    package = ROOT / "langchain_gprochat"
    for path in package.glob("*.py"):
        assert f"langchain_gprochat/{path.name}" in listed, path.name
    server_row = next(
        line for line in section.splitlines() if "`langchain_gprochat/server/`" in line
    )
    for path in (package / "server").glob("*.py"):
        if path.name != "__init__.py":
            assert f"`{path.name}`" in server_row, path.name
