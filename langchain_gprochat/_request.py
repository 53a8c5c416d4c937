"""One call's request: its arguments checked, its body, its confirmation check.

Pure of I/O: what ``ChatGPROChat`` prepares before the transport sends anything.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage

from langchain_gprochat._config import UNSUPPORTED, GPROChatFields, unsupported
from langchain_gprochat._convert import messages_to_prompt, messages_to_turns
from langchain_gprochat._streaming import Assembler
from langchain_gprochat._structured import response_format_instructions
from langchain_gprochat._tools import format_tools, normalize_tool_choice, tool_instructions
from langchain_gprochat._urls import redact_url
from langchain_gprochat.protocol import APPLIED_HEADER, GENERATION_SETTINGS, RequestEncoder, Turn

__all__ = ["Call", "apply_tools", "check_call_arguments", "confirmation", "prepare_call"]

_CALL_ARGUMENTS = ("model", "stop", *GENERATION_SETTINGS, "tools", "tool_choice", "response_format")


def check_call_arguments(kwargs: Mapping[str, Any]) -> None:
    """Refuse per-call arguments left over, with the message construction gives."""
    for name in kwargs:
        if name in UNSUPPORTED:
            raise TypeError(unsupported(name))
    if kwargs:
        raise TypeError(
            f"ChatGPROChat got unexpected call arguments: {sorted(kwargs)}; a call takes "
            f"{', '.join(_CALL_ARGUMENTS)}"
        )


@dataclass(frozen=True)
class Call:
    """One prepared call: the body to send, the chunk assembler, the header check."""

    body: Callable[[], bytes]
    assembler: Assembler
    on_response: Callable[[Mapping[str, str]], None] | None


def confirmation(
    shown_url: str, generation: Collection[str], warned: set[str]
) -> Callable[[Mapping[str, str]], None] | None:
    """A header check that warns once per ``warned`` set about unconfirmed settings."""
    if not generation:
        return None

    def check(headers: Mapping[str, str]) -> None:
        applied = {name.strip() for name in headers.get(APPLIED_HEADER, "").split(",")}
        for name in generation:
            wire = GENERATION_SETTINGS[name]
            if wire in applied or name in warned:
                continue
            warned.add(name)
            warnings.warn(
                f"{shown_url} did not confirm `{name}` (sent as "
                f"generationConfig.{wire}): the endpoint may ignore it, as the upstream "
                "GeminiProChat app does. gprochat-server applies it where its backend "
                "model has that setting.",
                UserWarning,
                stacklevel=2,
            )

    return check


def apply_tools(
    messages: list[BaseMessage], kwargs: dict[str, Any]
) -> tuple[list[BaseMessage], list[str] | None]:
    """Put tool and response-format instructions in front of the conversation.

    Pops ``tools``, ``tool_choice`` and ``response_format`` from ``kwargs``; returns
    the messages to send and the tool names to parse calls for (``None``: plain
    text).
    """
    tools = kwargs.pop("tools", None)
    tool_choice = kwargs.pop("tool_choice", None)
    response_format = kwargs.pop("response_format", None)
    instructions: list[str] = []
    tool_names: list[str] | None = None
    if tools:
        formatted = format_tools(tools)
        names = [tool["function"]["name"] for tool in formatted]
        choice = normalize_tool_choice(tool_choice, names)
        instructions.append(tool_instructions(formatted, choice))
        if choice != "none":
            tool_names = names
    elif tool_choice not in (None, "auto", "none"):
        raise ValueError(f"tool_choice={tool_choice!r} was given without any tools")
    if response_format is not None:
        instructions.append(response_format_instructions(response_format))
    if instructions:
        messages = [SystemMessage("\n\n".join(instructions)), *messages]
    return messages, tool_names


def _turns(fields: GPROChatFields, messages: Sequence[BaseMessage]) -> list[Turn]:
    if fields.history_mode == "prompt":
        return messages_to_prompt(messages)
    return messages_to_turns(messages, max_history_messages=fields.max_history_messages)


def _body_factory(
    fields: GPROChatFields,
    messages: Sequence[BaseMessage],
    generation: Mapping[str, Any],
    model: str | None = None,
) -> Callable[[], bytes]:
    turns = _turns(fields, messages)  # raises ValueError before any I/O
    password = fields.password
    encoder = RequestEncoder(
        turns,
        password=None if password is None else password.get_secret_value(),
        secret_key=fields.secret_key.get_secret_value(),
        generation_config={GENERATION_SETTINGS[k]: v for k, v in generation.items()},
        model=model,
    )
    return lambda: encoder.encode(time.time_ns() // 1_000_000)


def prepare_call(
    fields: GPROChatFields,
    messages: list[BaseMessage],
    stop: list[str] | None,
    kwargs: dict[str, Any],
) -> Call:
    """Check one call's arguments and prepare its body, assembler and header check.

    Raises:
        TypeError: an argument the call does not take, or a ``model`` that is not a string.
        ValueError: messages the endpoint cannot take (before any I/O).
    """
    kwargs = dict(kwargs)
    override = kwargs.pop("model", None)  # sent as the body's "model", see MODEL_FIELD
    if override is not None and not isinstance(override, str):
        raise TypeError(f"model must be a string, got {type(override).__name__}")
    if "max_output_tokens" in kwargs:
        kwargs.setdefault("max_tokens", kwargs.pop("max_output_tokens"))
    generation = fields._generation(
        {name: kwargs.pop(name) for name in GENERATION_SETTINGS if name in kwargs}
    )
    messages, tool_names = apply_tools(messages, kwargs)
    check_call_arguments(kwargs)
    model_name = override or fields.model
    assembler = Assembler(model_name, stop if stop is not None else fields.stop, tool_names)
    body = _body_factory(fields, messages, generation, override or None)
    check = confirmation(redact_url(fields.base_url), generation, fields._unconfirmed)
    return Call(body, assembler, check)
