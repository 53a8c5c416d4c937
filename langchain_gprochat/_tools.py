"""Prompt-based tool calling for a text-only endpoint: tools → instructions, text → calls.

The gprochat endpoint takes and returns text only, so tools are described to the model
in a system message (``tool_instructions``) and its answer is parsed back into LangChain
tool calls (``parse_tool_reply``, or :mod:`~langchain_gprochat._tool_stream`'s
``ToolStreamParser`` while the answer streams).

This module owns the whole tool-call text format: the instructions, the rendering of
earlier calls and results into the history (``render_tool_calls``,
``TOOL_RESULT_TEMPLATE``, ``TOOL_ERROR_TEMPLATE``), and the parsing. The model is asked to
reply with exactly the JSON that ``render_tool_calls`` writes into the history for
earlier calls::

    {"tool_calls": [{"name": "<tool name>", "arguments": {...}}]}

Parsing is lenient about what models actually write:

* the object may stand alone, sit in a fenced block (```` ```json ```` or a bare
  ```` ``` ````, the fence is dropped with the object), or come with prose before and
  after it; several such objects in one reply are all taken;
* a single call may be written without the wrapper, as ``{"name": ..., "arguments": ...}``;
  ``"args"`` and ``"parameters"`` are accepted as synonyms of ``"arguments"``, and a call
  wrapped OpenAI-style as ``{"type": "function", "function": {...}}`` is unwrapped;
* a JSON array of such calls is taken too;
* arguments may be a JSON-encoded string; an empty string or missing arguments mean
  ``{}``.

Only JSON values found at the top level of the text count (as
``json.JSONDecoder.raw_decode`` finds them from each ``{``, and each ``[`` that opens an
array of objects); an object nested in a non-call value is not a call. A JSON object that
is not a call (``{"answer": 42}``, as json-mode structured output produces) stays text.
A value nested more than ``MAX_DEPTH`` (100) arrays and objects deep is not decoded: it
stays text, or becomes an invalid call when it starts like a call. Parsing takes time
linear in the length of the reply, whatever the text and however it is streamed.

The ``content`` of a reply with calls is the text outside them (their fences included),
stripped of whitespace at both ends, except that the leading whitespace of prose that
came before the first call is kept, as streaming had already emitted it. A reply without
calls keeps its text exactly.

Calls that cannot be used become ``InvalidToolCall``s, never exceptions: an unknown tool,
a call without a name, arguments that are not a JSON object, and an object that starts
like a call (``{"tool_calls":``, ``{"name":`` or ``{"function":``) but is not valid JSON,
which then extends to the end of the reply. Every call, valid or not, gets a fresh id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, cast
from uuid import uuid4

from langchain_core.messages import InvalidToolCall, ToolCall
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_gprochat._tool_scan import MAX_DEPTH, Scanner, Span, names_text

__all__ = [
    "MAX_DEPTH",
    "NAMED_TOOL_CHOICE_TEMPLATE",
    "NO_TOOLS_INSTRUCTIONS",
    "TOOL_CHOICE_INSTRUCTIONS",
    "TOOL_ERROR_TEMPLATE",
    "TOOL_INSTRUCTIONS_TEMPLATE",
    "TOOL_RESULT_TEMPLATE",
    "ParsedReply",
    "format_tools",
    "new_tool_call_id",
    "normalize_tool_choice",
    "parse_tool_reply",
    "render_tool_calls",
    "reply",
    "tool_instructions",
]

TOOL_RESULT_TEMPLATE = "[Tool result] {name} (call {id}):\n{content}"
"""How a successful ``ToolMessage`` is rendered into a user turn."""

TOOL_ERROR_TEMPLATE = "[Tool error] {name} (call {id}):\n{content}"
"""How a ``ToolMessage`` with ``status="error"`` is rendered into a user turn."""

ToolChoice: TypeAlias = Literal["auto", "any", "required", "none"] | str
"""A tool choice as ``bind_tools`` takes it (also ``True``/``False``/``None``/a dict)."""

TOOL_INSTRUCTIONS_TEMPLATE = """\
You have access to the following tools, each listed with its name, what it does and \
the JSON schema of its arguments:

{tools}

To call tools, reply with ONLY a JSON object of exactly this form, with no other text \
and no Markdown code fence:
{{"tool_calls": [{{"name": "<tool name>", "arguments": {{<arguments matching the \
tool's schema>}}}}]}}
To call several tools at once, put several calls in the "tool_calls" list. When you do \
not call a tool, answer in plain text.
Tool results come back as user turns that start with "[Tool result] <tool name> (call \
<call id>):", or with "[Tool error] <tool name> (call <call id>):" when the tool failed.

{choice}"""
"""The instructions the model gets with its tools; ``{tools}`` holds one
``TOOL_DESCRIPTION_TEMPLATE`` per tool, ``{choice}`` the tool-choice sentence."""

TOOL_DESCRIPTION_TEMPLATE = "- {name}: {description}\n  Arguments schema: {parameters}"
"""How one tool is listed; ``parameters`` is the compact JSON schema of its arguments."""

TOOL_CHOICE_INSTRUCTIONS = {
    "auto": "Call a tool when it helps you answer; otherwise answer in plain text.",
    "required": "You must call at least one tool in this reply.",
}
"""The last sentence of the instructions for ``tool_choice`` "auto" and "required"."""

NAMED_TOOL_CHOICE_TEMPLATE = 'You must call the tool "{name}" in this reply, and no other tool.'
"""The last sentence of the instructions when ``tool_choice`` names a tool."""

NO_TOOLS_INSTRUCTIONS = (
    "No tools are available for this reply: do not call any tool and do not write a "
    '"tool_calls" JSON object; answer in plain text. Tool calls and tool results in '
    "earlier turns are history only."
)
"""The instructions for ``tool_choice="none"`` (and for an empty tool list): the tools
are not listed, since the model must not use them, but the history may show calls."""

_CHOICES = {
    None: "auto",
    "auto": "auto",
    "any": "required",
    "required": "required",
    True: "required",
    "none": "none",
    False: "none",
}


def new_tool_call_id() -> str:
    """A fresh tool call id, ``"call_"`` and 24 hex digits."""
    return f"call_{uuid4().hex[:24]}"


def normalize_tool_choice(tool_choice: Any, tool_names: Collection[str]) -> str:
    """Reduce the many spellings of a tool choice to one of four forms.

    Args:
        tool_choice: ``None`` or ``"auto"``; ``"any"``, ``"required"`` or ``True``;
            ``"none"`` or ``False``; a tool's name; or the OpenAI form
            ``{"type": "function", "function": {"name": <tool name>}}``.
        tool_names: the names of the bound tools.

    Returns:
        ``"auto"``, ``"required"``, ``"none"`` or the name of a bound tool.

    Raises:
        ValueError: for a name that is not a bound tool or any other value.
    """
    if tool_choice is None or isinstance(tool_choice, (str, bool)):
        choice = _CHOICES.get(tool_choice)
        if choice is not None:
            return choice
    name: object = tool_choice
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
    if isinstance(name, str) and not isinstance(tool_choice, bool):
        if name in tool_names:
            return name
        raise ValueError(
            f"tool_choice {name!r} is not a bound tool; bound tools: {names_text(tool_names)}"
        )
    raise ValueError(
        f"unsupported tool_choice {tool_choice!r}; use 'auto' or None, 'any', 'required' "
        "or True, 'none' or False, the name of a bound tool, or "
        "{'type': 'function', 'function': {'name': <tool name>}}"
    )


def format_tools(
    tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
) -> list[dict[str, Any]]:
    """Convert tools to OpenAI tool dicts with ``convert_to_openai_tool``.

    Args:
        tools: dict schemas (OpenAI, Anthropic or JSON schema form), pydantic classes,
            functions with docstrings, or LangChain tools.

    Returns:
        ``[{"type": "function", "function": {"name", "description", "parameters"}}]``.

    Raises:
        ValueError: for a tool that is not a function tool (e.g. a provider's built-in
            tool) or two different tools with one name (the same tool given twice,
            for example as a class and as its JSON schema, is listed once).
    """
    formatted: list[dict[str, Any]] = []
    seen: dict[str, Any] = {}
    for tool in tools:
        converted = convert_to_openai_tool(tool)
        function = converted.get("function")
        if converted.get("type") != "function" or not isinstance(function, dict):
            raise ValueError(
                f"tool {tool!r} is not a function tool; a text-only endpoint can only "
                "use tools described by a name and a JSON schema"
            )
        name = function["name"]
        shape = _without_titles(function)
        if name in seen:
            if seen[name] == shape:
                continue  # the same tool given twice (e.g. a class and its JSON schema)
            raise ValueError(f"two different tools are named {name!r}; tool names must be unique")
        seen[name] = shape
        formatted.append(converted)
    return formatted


def _without_titles(value: Any) -> Any:
    """A schema without its ``title`` keys, which only differ by how it was written."""
    if isinstance(value, dict):
        return {k: _without_titles(v) for k, v in value.items() if k != "title"}
    if isinstance(value, list):
        return [_without_titles(v) for v in value]
    return value


def tool_instructions(tools: Sequence[dict[str, Any]], tool_choice: str) -> str:
    """The instructions that tell the model about its tools and how to call them.

    Args:
        tools: tools as ``format_tools`` returns them.
        tool_choice: a value returned by ``normalize_tool_choice``.

    Returns:
        ``TOOL_INSTRUCTIONS_TEMPLATE`` filled in; ``NO_TOOLS_INSTRUCTIONS`` for
        ``"none"`` and for ``"auto"`` without tools.

    Raises:
        ValueError: for ``"required"`` or a tool name that the tools do not satisfy.
    """
    functions = [tool["function"] for tool in tools]
    names = [function["name"] for function in functions]
    if tool_choice == "none" or (tool_choice == "auto" and not functions):
        return NO_TOOLS_INSTRUCTIONS
    if tool_choice in TOOL_CHOICE_INSTRUCTIONS:
        if not functions:
            raise ValueError("tool_choice 'required' needs at least one tool")
        choice = TOOL_CHOICE_INSTRUCTIONS[tool_choice]
    elif tool_choice in names:
        choice = NAMED_TOOL_CHOICE_TEMPLATE.format(name=tool_choice)
    else:
        raise ValueError(f"tool_choice {tool_choice!r} is not one of the tools {names}")
    listed = "\n".join(
        TOOL_DESCRIPTION_TEMPLATE.format(
            name=function["name"],
            description=function.get("description") or "(no description)",
            parameters=json.dumps(
                function.get("parameters", {"type": "object", "properties": {}}),
                ensure_ascii=False,
            ),
        )
        for function in functions
    )
    return TOOL_INSTRUCTIONS_TEMPLATE.format(tools=listed, choice=choice)


@dataclass(frozen=True)
class ParsedReply:
    """A model reply split into visible text and tool calls."""

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)


def parse_tool_reply(
    text: str,
    tool_names: Collection[str],
    *,
    id_factory: Callable[[], str] = new_tool_call_id,
) -> ParsedReply:
    """Parse a complete model reply into text and tool calls (see the module docs).

    Args:
        text: the model's whole answer.
        tool_names: the names of the bound tools; calls to others are invalid.
        id_factory: makes the id of each call, in order of appearance.

    Returns:
        The reply; ``content`` is ``text`` itself when it holds no call.
    """
    pieces = Scanner(tool_names, id_factory).scan(text, final=True)
    spans = [piece for piece in pieces if isinstance(piece, Span)]
    content = "".join(piece for piece in pieces if isinstance(piece, str))
    if spans:
        first = pieces.index(spans[0])
        before = "".join(cast("list[str]", pieces[:first]))
        content = content.rstrip() if before.strip() else content.strip()
    calls = [call for span in spans for call in span.calls]
    return reply(content, calls)


def reply(content: str, calls: Sequence[ToolCall | InvalidToolCall]) -> ParsedReply:
    """A ``ParsedReply`` of ``content`` and ``calls``, valid and invalid kept apart."""
    valid = [cast("ToolCall", c) for c in calls if c.get("type") == "tool_call"]
    invalid = [cast("InvalidToolCall", c) for c in calls if c.get("type") == "invalid_tool_call"]
    return ParsedReply(content=content, tool_calls=valid, invalid_tool_calls=invalid)


def render_tool_calls(tool_calls: Iterable[ToolCall]) -> str:
    """Render tool calls into the history in the format the model is asked to produce."""
    calls = [{"name": call["name"], "arguments": call["args"]} for call in tool_calls]
    return json.dumps({"tool_calls": calls}, ensure_ascii=False)
