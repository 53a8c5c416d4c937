"""A deterministic stand-in for a real model's judgement: a TEST DOUBLE, not a model.

LangChain's standard integration tests ask things like "What is the value of
magic_function(3)? Use the tool." or "Tell me a joke about cats." and check that the
answer is a well-formed tool call or joke. The echo backend cannot answer them, and a
real model is not available offline, so :class:`OracleBackend` answers by reading the
conversation it receives (the ``turns`` of the request, as ChatGPROChat sends them in
``history_mode="native"``) and applying fixed rules:

1. The system instructions hold the exact text of ``tools.tool_instructions`` (checked
   by rebuilding that text from the tools listed in it) with a tool choice other than
   "none", and the last user turn is not a tool result: it answers with a tool call in
   the JSON format the instructions ask for, to the named tool (``tool_choice`` a
   name) or else the first tool, with arguments synthesized from the tool's JSON schema
   (see :func:`synthesize`).
2. The last user turn is a tool result (``[Tool result] ...`` / ``[Tool error] ...``):
   a plain-text answer that contains each result, ``"<name> returned: <content>"``.
3. JSON-schema instructions (``structured.JSON_SCHEMA_INSTRUCTIONS``): a JSON object
   synthesized from that schema.
4. JSON-mode instructions (``structured.JSON_MODE_INSTRUCTIONS``): a JSON object whose
   keys are the words quoted in the question (``'setup'`` ...), each with the fixed
   phrase, or ``{"answer": <fixed phrase>}`` when nothing is quoted.
5. Otherwise: ``"Oracle reply to: <question>"``.

Values are synthesized from the question, never from the instructions: integers and
numbers from the numbers in the question, in order (``0`` when they run out); strings
from the words quoted in it with ``'...'`` or ``"..."``, in order (``FIXED_PHRASE``
when they run out); booleans ``true``; enums their first value; arrays one item;
objects their required properties only (a required property with a default gets the
default). ``anyOf``/``oneOf`` take their first non-null option and local ``$ref``s are
followed. The answer streams in echo-sized chunks, so every streaming path is exercised.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from langchain_gprochat._structured import JSON_MODE_INSTRUCTIONS, JSON_SCHEMA_INSTRUCTIONS
from langchain_gprochat._tools import (
    TOOL_CHOICE_INSTRUCTIONS,
    TOOL_INSTRUCTIONS_TEMPLATE,
    tool_instructions,
)
from langchain_gprochat.protocol import Turn, turn_text
from langchain_gprochat.server import echo_chunks

__all__ = ["FIXED_PHRASE", "OracleBackend", "oracle_reply", "synthesize"]

FIXED_PHRASE = "oracle text"
"""The string value used once the question's quoted words have run out."""

_SYSTEM_OPEN = "[System instructions]\n"
_SYSTEM_CLOSE = "\n[End of system instructions]\n\n"
_TOOLS_HEAD = TOOL_INSTRUCTIONS_TEMPLATE.split("{tools}")[0]
_SCHEMA_HEAD = JSON_SCHEMA_INSTRUCTIONS.split("{schema}")[0]
_TOOL_ENTRY_RE = re.compile(
    r"- (?P<name>[^:\n]+): (?P<description>.*?)\n  Arguments schema: ", re.S
)
_RESULT_RE = re.compile(r"^\[Tool (?:result|error)\] (?P<name>.+?) \(call .*?\):\n", re.M)
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")
_QUOTED_RE = re.compile(r"(?<!\w)'([^'\n]+)'(?!\w)|\"([^\"\n]+)\"")
_DECODER = json.JSONDecoder()


def _split_system(turns: list[Turn]) -> tuple[str, str]:
    """``(system instructions, the last user turn's own text)``."""
    first = turn_text(turns[0]) if turns else ""
    system = ""
    if first.startswith(_SYSTEM_OPEN) and _SYSTEM_CLOSE in first:
        system = first[len(_SYSTEM_OPEN) : first.index(_SYSTEM_CLOSE)]
    last = turn_text(turns[-1]) if turns else ""
    if len(turns) == 1 and system:
        last = last[len(_SYSTEM_OPEN) + len(system) + len(_SYSTEM_CLOSE) :]
    return system, last


def _find_tools(system: str) -> tuple[list[dict[str, Any]], str] | None:
    """The tools and tool choice of ``tool_instructions`` text in ``system``, if exact."""
    start = system.find(_TOOLS_HEAD)
    if start == -1:
        return None
    pos, tools = start + len(_TOOLS_HEAD), []
    while match := _TOOL_ENTRY_RE.match(system, pos):
        try:
            parameters, pos = _DECODER.raw_decode(system, match.end())
        except json.JSONDecodeError:
            return None
        function = {
            "name": match["name"],
            "description": match["description"],
            "parameters": parameters,
        }
        tools.append({"type": "function", "function": function})
        pos += 1  # the newline before the next entry
    choices = [*TOOL_CHOICE_INSTRUCTIONS, *(t["function"]["name"] for t in tools)]
    for choice in choices:
        if tools and tool_instructions(tools, choice) in system:
            return tools, choice
    return None


@dataclass
class _Values:
    """The question's numbers and quoted words, handed out in order."""

    numbers: Iterator[str]
    words: Iterator[str]

    @classmethod
    def of(cls, question: str) -> _Values:
        words = [a or b for a, b in _QUOTED_RE.findall(question)]
        unquoted = _QUOTED_RE.sub(" ", question)
        return cls(iter(_NUMBER_RE.findall(unquoted)), iter(words))


def synthesize(schema: dict[str, Any], question: str) -> Any:
    """A value matching ``schema``, built from ``question`` (see the module docs)."""
    return _value(schema, schema, _Values.of(question))


def _value(schema: dict[str, Any], root: dict[str, Any], values: _Values) -> Any:
    if "$ref" in schema:
        target: Any = root
        for key in schema["$ref"].removeprefix("#/").split("/"):
            target = target[key]
        return _value(target, root, values)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return _value(options[0], root, values)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {
            name: properties[name]["default"]
            if "default" in properties[name]
            else _value(properties[name], root, values)
            for name in schema.get("required", [])
        }
    if kind == "array":
        return [_value(schema.get("items", {}), root, values)]
    if kind in ("integer", "number"):
        number = next(values.numbers, "0")
        return int(float(number)) if kind == "integer" else json.loads(number)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return next(values.words, FIXED_PHRASE)


def _tool_results(last: str) -> list[tuple[str, str]]:
    """``(tool name, result text)`` of each tool result in the last user turn."""
    headers = list(_RESULT_RE.finditer(last))
    if not headers or headers[0].start() != 0:
        return []
    ends = [h.start() for h in headers[1:]] + [len(last)]
    return [(h["name"], last[h.end() : end].strip()) for h, end in zip(headers, ends, strict=True)]


def oracle_reply(turns: list[Turn]) -> str:
    """The oracle's whole answer to ``turns`` (see the module docs for the rules)."""
    system, question = _split_system(turns)
    results = _tool_results(question)
    found = _find_tools(system)
    if results:
        return "\n".join(f"{name} returned: {text}" for name, text in results)
    if found is not None:
        tools, choice = found
        names = [tool["function"]["name"] for tool in tools]
        function = tools[names.index(choice) if choice in names else 0]["function"]
        arguments = synthesize(function["parameters"], question)
        call = {"name": function["name"], "arguments": arguments}
        return json.dumps({"tool_calls": [call]}, ensure_ascii=False)
    if (start := system.find(_SCHEMA_HEAD)) != -1:
        schema, _ = _DECODER.raw_decode(system, start + len(_SCHEMA_HEAD))
        return json.dumps(synthesize(schema, question), ensure_ascii=False)
    if JSON_MODE_INSTRUCTIONS in system:
        keys = [a or b for a, b in _QUOTED_RE.findall(question)] or ["answer"]
        return json.dumps(dict.fromkeys(keys, FIXED_PHRASE), ensure_ascii=False)
    return f"Oracle reply to: {question}"


class OracleBackend:
    """A server backend that answers :func:`oracle_reply`, streamed in echo chunks.

    Attributes:
        received: the turns of every request, in order.
    """

    def __init__(self) -> None:
        self.received: list[list[Turn]] = []

    async def stream(self, turns: list[Turn]) -> AsyncIterator[str]:
        """Record ``turns`` and stream the oracle's answer."""
        self.received.append(list(turns))
        for chunk in echo_chunks(oracle_reply(turns)):
            yield chunk
