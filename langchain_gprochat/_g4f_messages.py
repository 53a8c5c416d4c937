"""g4f-style messages → the turns of a gprochat request; pure.

g4f's messages are ``[{"role": ..., "content": ...}]``, the content a string or a list
of ``{"type": "text", "text": ...}`` parts. :func:`format_prompt` flattens them into one
prompt as gpt4free's ``format_prompt`` does (the original provider's request);
:func:`native_turns` converts them into real turns as ``ChatGPROChat`` converts
LangChain messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_gprochat._convert import messages_to_turns
from langchain_gprochat.protocol import Part, Turn

__all__ = ["format_prompt", "native_turns", "prompt_turns"]

_TEXT_ONLY = (
    "the gprochat endpoint takes text only; remove the {kind!r} part of message {index} "
    "or describe its content in text"
)


def _part_text(part: Any, index: int) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, Mapping):
        raise ValueError(f"message {index}: a content part must be a dict, got {part!r}")
    kind = part.get("type", "text")
    if kind != "text":
        raise ValueError(_TEXT_ONLY.format(kind=kind, index=index))
    text = part.get("text")
    if not isinstance(text, str):
        raise ValueError(f"message {index}: a text part has no string 'text'")
    return text


def _content_text(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        return _part_text(content, index)
    if isinstance(content, list | tuple):
        return "".join(_part_text(part, index) for part in content)
    raise ValueError(
        f"message {index}: content must be a string or a list of text parts, got "
        f"{type(content).__name__}"
    )


def _checked(messages: Any) -> list[tuple[str, str, Mapping[str, Any]]]:
    """``(role, text, message)`` of each message, or a ValueError saying what is wrong."""
    if isinstance(messages, str) or not isinstance(messages, Sequence):
        raise ValueError(
            'messages must be a list of {"role": ..., "content": ...} dicts, e.g. '
            f'[{{"role": "user", "content": "Hi"}}]; got {type(messages).__name__}'
        )
    if not messages:
        raise ValueError('messages is empty; add {"role": "user", "content": "..."}')
    checked = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise ValueError(
                f'message {index} must be a dict with a string "role" and a "content", '
                f"got {message!r}"
            )
        if "content" not in message:
            raise ValueError(f'message {index} ({message["role"]}) has no "content"')
        checked.append((message["role"], _content_text(message["content"], index), message))
    return checked


def format_prompt(messages: Sequence[Mapping[str, Any]]) -> str:
    """The conversation as one prompt, in the format of gpt4free's ``format_prompt``.

    A single message is sent as its text alone. Otherwise each message whose text is
    not blank becomes a line ``"{Role}: {text}"`` (the role capitalized: ``System``,
    ``User``, ``Assistant``), and a last line ``"Assistant:"`` follows.

    Raises:
        ValueError: for an empty list, a message without ``role`` or ``content``, or a
            content part that is not text.
    """
    checked = _checked(messages)
    if len(checked) == 1:
        return checked[0][1]
    lines = [f"{role.capitalize()}: {text}" for role, text, _ in checked if text.strip()]
    return "\n".join(lines) + "\nAssistant:"


def _langchain_message(role: str, text: str, message: Mapping[str, Any]) -> BaseMessage:
    lowered = role.lower()
    if lowered in ("system", "developer"):
        return SystemMessage(text)
    if lowered == "user":
        return HumanMessage(text)
    if lowered == "assistant":
        return AIMessage(text)
    if lowered == "tool":
        name = message.get("name")
        return ToolMessage(
            text,
            tool_call_id=str(message.get("tool_call_id") or ""),
            name=name if isinstance(name, str) else None,
        )
    raise ValueError(
        f"role {role!r} has no turn in native history mode; use system, developer, "
        "user, assistant or tool (or history_mode='prompt', which flattens any role)"
    )


def native_turns(messages: Sequence[Mapping[str, Any]]) -> list[Turn]:
    """Real ``user``/``model`` turns, converted as ``ChatGPROChat`` converts messages.

    System (and developer) messages are folded into the first user turn, consecutive
    turns of one role are merged, a tool result becomes a user turn.

    Raises:
        ValueError: for malformed messages, an unknown role, or a conversation that
            does not end with the user.
    """
    return messages_to_turns([_langchain_message(*item) for item in _checked(messages)])


def prompt_turns(messages: Sequence[Mapping[str, Any]]) -> list[Turn]:
    """The original's request turns: one user turn holding :func:`format_prompt`."""
    prompt = format_prompt(messages)
    return [Turn.model_construct(role="user", parts=[Part.model_construct(text=prompt)])]
