"""The README's tables match the code: settings, env vars, server options, modules."""

from __future__ import annotations

import re
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from langchain_gprochat import ChatGPROChat
from langchain_gprochat.server.__main__ import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"\n{title}\n")
    rest = README[start + len(title) + 2 :]
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
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install -e ".[test]" && python -m pytest' in ci


def test_settings_table_lists_every_field_with_its_default() -> None:
    own = [name for name in ChatGPROChat.model_fields if name not in BaseChatModel.model_fields]
    rows = re.findall(r"^\| `(\w+)`(?: \(`(\w+)`\))? \| [^|]+(?:\\\|[^|]+)* \| ([^|]+) \|",
                      _section("## Settings"), re.M)
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
        used.update(re.findall(r"\bGPROCHAT_[A-Z_]+\b", path.read_text(encoding="utf-8")))
    assert sorted(_first_column(_section("### Environment variables"))) == sorted(used)


def test_server_options_table_matches_the_command() -> None:
    options = sorted(
        opt for action in build_parser()._actions for opt in action.option_strings
        if opt.startswith("--") and opt != "--help"
    )
    table = sorted(cell.split()[0] for cell in _first_column(_section("### The command")))
    assert table == options


def test_module_table_lists_every_module() -> None:
    section = _section("## Modules")
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
