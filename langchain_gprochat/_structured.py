"""Structured output over a text-only endpoint: prompts and parsers.

Three methods, as in LangChain's partner packages:

* ``function_calling`` (default): the schema becomes a tool the model must call
  (through :mod:`langchain_gprochat._tools`), parsed with LangChain's tool parsers.
* ``json_schema``: the model is told to reply with only a JSON object matching the
  schema (``JSON_SCHEMA_INSTRUCTIONS``).
* ``json_mode``: the model is told to reply with only a JSON object
  (``JSON_MODE_INSTRUCTIONS``); the schema, if any, is used to parse.

A reply that does not parse raises ``OutputParserException``, or with
``include_raw=True`` is returned as ``{"raw": ..., "parsed": None, "parsing_error": ...}``.
With ``function_calling`` that includes a reply without a valid call to the schema's
tool (prose only, or an invalid call): LangChain's tool parsers alone would return
``None`` for it, but the tool was forced, so it is an error, whose message says which
``method=`` fits a model that answers with plain JSON. A reply that is only a JSON
object matching the schema (the call's arguments without the call) is taken as the
call. A call whose arguments fail
the pydantic class's validation raises pydantic's ``ValidationError``, as elsewhere in
LangChain.
"""

from __future__ import annotations

import json
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.tool import tool_call
from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.runnables import (
    Runnable,
    RunnableLambda,
    RunnableMap,
    RunnablePassthrough,
)
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

from langchain_gprochat._tools import new_tool_call_id

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


_OTHER_METHODS = (
    "if this model answers with plain JSON rather than a tool call, "
    "method='json_schema' (or 'json_mode') fits it"
)


def _bare_arguments(text: str) -> dict[str, Any] | None:
    """``text`` as one JSON object (a fenced block allowed), or ``None``."""
    text = text.strip()
    if text.startswith("```"):
        text = text.strip("`").strip()
        text = text[4:] if text.startswith("json") else text
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _matches(schema: dict[str, Any] | type, arguments: dict[str, Any]) -> bool:
    """Whether ``arguments`` can be the arguments of the forced tool for ``schema``."""
    if _is_pydantic(schema):
        try:
            schema.model_validate(arguments)  # type: ignore[union-attr]
        except ValueError:
            return False
        return True
    parameters = convert_to_openai_tool(schema)["function"].get("parameters", {})
    known = set(parameters.get("properties", {}))
    required = set(parameters.get("required", []))
    return required <= set(arguments) and (not known or set(arguments) <= known)


def _require_call(name: str, schema: dict[str, Any] | type) -> Runnable[BaseMessage, BaseMessage]:
    """Pass the reply on if it holds a valid call to ``name``, else raise.

    A reply that is only a JSON object matching the schema (the arguments without the
    call around them, as some models answer a forced tool) is taken as that call.
    """

    def check(message: BaseMessage) -> BaseMessage:
        calls = message.tool_calls if isinstance(message, AIMessage) else []
        if any(call["name"] == name for call in calls):
            return message
        arguments = _bare_arguments(message.text)
        if arguments is not None and _matches(schema, arguments):
            call = tool_call(name=name, args=arguments, id=new_tool_call_id())
            return AIMessage(
                content="", tool_calls=[call], response_metadata=message.response_metadata
            )
        invalid = message.invalid_tool_calls if isinstance(message, AIMessage) else []
        errors = [str(call["error"]) for call in invalid if call.get("error")]
        if errors:
            why = "; ".join(errors)
        elif arguments is not None:
            why = "the reply is a JSON object that does not match the schema"
        else:
            why = "the reply holds no valid call to it"
        raise OutputParserException(
            f"expected a call to the tool {name!r}: {why}; {_OTHER_METHODS}",
            llm_output=message.text,
        )

    return RunnableLambda(check, name="require_tool_call")


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
        output_parser = _require_call(name, schema) | output_parser
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
