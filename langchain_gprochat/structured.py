"""Structured output over a text-only endpoint: prompts and parsers.

Three methods, as in LangChain's partner packages:

* ``function_calling`` (default): the schema becomes a tool the model must call
  (through :mod:`langchain_gprochat.tools`), parsed with LangChain's tool parsers.
* ``json_schema``: the model is told to reply with only a JSON object matching the
  schema (``JSON_SCHEMA_INSTRUCTIONS``).
* ``json_mode``: the model is told to reply with only a JSON object
  (``JSON_MODE_INSTRUCTIONS``); the schema, if any, is used to parse.

A reply that does not parse raises ``OutputParserException``, or with
``include_raw=True`` is returned as ``{"raw": ..., "parsed": None, "parsing_error": ...}``.
"""

from __future__ import annotations

import json
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

if TYPE_CHECKING:
    from langchain_core.language_models import LanguageModelInput
    from langchain_core.language_models.chat_models import BaseChatModel

__all__ = [
    "JSON_MODE_INSTRUCTIONS",
    "JSON_SCHEMA_INSTRUCTIONS",
    "StructuredMethod",
    "response_format_instructions",
    "structured_output",
]

StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]

JSON_SCHEMA_INSTRUCTIONS = (
    "Reply with ONLY a JSON object that matches this JSON schema, with no other text and "
    "no Markdown code fence:\n{schema}"
)
"""Instruction for ``method="json_schema"``."""

JSON_MODE_INSTRUCTIONS = (
    "Reply with ONLY a valid JSON object, with no other text and no Markdown code fence."
)
"""Instruction for ``method="json_mode"``."""


def response_format_instructions(response_format: dict[str, Any]) -> str:
    """The instruction text for an OpenAI-style ``response_format`` value."""
    kind = response_format.get("type")
    if kind == "json_object":
        return JSON_MODE_INSTRUCTIONS
    if kind == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema")
        if not isinstance(schema, dict):
            raise ValueError("response_format json_schema needs a 'schema' object")
        return JSON_SCHEMA_INSTRUCTIONS.format(schema=json.dumps(schema, ensure_ascii=False))
    raise ValueError(
        f"response_format type {kind!r} is not supported; use 'json_object' or 'json_schema'"
    )


def _is_pydantic(schema: Any) -> bool:
    return isinstance(schema, type) and is_basemodel_subclass(schema)


def structured_output(
    llm: BaseChatModel,
    schema: dict[str, Any] | type,
    *,
    method: StructuredMethod,
    include_raw: bool,
    strict: bool | None,
) -> Runnable[LanguageModelInput, Any]:
    """Build the runnable behind ``ChatGPROChat.with_structured_output``."""
    if schema is None:
        raise ValueError("with_structured_output needs a schema")
    if strict and not _is_pydantic(schema):
        raise ValueError(
            "strict=True needs a pydantic class: the endpoint cannot constrain its output, "
            "so strictness is enforced by validating the reply with pydantic"
        )
    pydantic = _is_pydantic(schema)
    output_parser: Runnable[Any, Any]
    if method == "function_calling":
        name = convert_to_openai_tool(schema)["function"]["name"]
        bound = llm.bind_tools(
            [schema],
            tool_choice=name,
            ls_structured_output_format={"kwargs": {"method": method}, "schema": schema},
        )
        if pydantic:
            output_parser = PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
        else:
            output_parser = JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
    elif method in ("json_schema", "json_mode"):
        if method == "json_schema":
            response_format: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {"schema": convert_to_json_schema(schema)},
            }
        else:
            response_format = {"type": "json_object"}
        bound = llm.bind(
            response_format=response_format,
            ls_structured_output_format={"kwargs": {"method": method}, "schema": schema},
        )
        output_parser = (
            PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
            if pydantic
            else JsonOutputParser()
        )
    else:
        raise ValueError(
            f"method must be 'function_calling', 'json_schema' or 'json_mode', not {method!r}"
        )
    if not include_raw:
        return bound | output_parser
    parse = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | output_parser, parsing_error=lambda _: None
    )
    no_parse = RunnablePassthrough.assign(parsed=lambda _: None)
    with_fallback = parse.with_fallbacks([no_parse], exception_key="parsing_error")
    return RunnableMap(raw=bound) | with_fallback
