"""LangChain messages → the ``user``/``model`` turns a gprochat endpoint takes; pure.

Conversion rules (``history_mode="native"``):

* ``HumanMessage`` → ``user``; ``AIMessage`` → ``model``.
* ``SystemMessage`` texts are joined with a blank line and folded into the first user
  turn as ``SYSTEM_TEMPLATE`` shows. Where the conversation starts with an AI message,
  they form a user turn of their own before it.
* An ``AIMessage`` with ``tool_calls`` renders its calls after its text as one JSON
  object ``{"tool_calls": [{"name": ..., "arguments": {...}}]}``; a ``ToolMessage``
  renders as a ``user`` turn, ``TOOL_RESULT_TEMPLATE`` (or ``TOOL_ERROR_TEMPLATE`` when
  its status is ``"error"``).
* Consecutive turns of one role are merged, their texts joined with a blank line, since
  Gemini rejects histories whose roles do not alternate.
* Content is a string or a list of text blocks; image, audio, file and any other
  non-text block raise ``ValueError``.
* An empty conversation, one that starts with the model, or one whose last turn is not
  the user's, raises ``ValueError`` before any request is made.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_gprochat._tools import TOOL_ERROR_TEMPLATE, TOOL_RESULT_TEMPLATE, render_tool_calls
from langchain_gprochat.protocol import SYSTEM_TEMPLATE, Part, Turn

__all__ = [
    "SYSTEM_TEMPLATE",
    "messages_to_prompt",
    "messages_to_turns",
]


_TEXT_ONLY = (
    "the gprochat endpoint takes text only; remove the {kind!r} block from the "
    "{message} or describe its content in text"
)
_PASSTHROUGH_AI_BLOCKS = frozenset({"tool_use", "tool_call", "function_call"})


def _content_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    pieces: list[str] = []
    for block in content:
        if isinstance(block, str):
            pieces.append(block)
            continue
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise ValueError(f"a text block of a {message.type} message has no text")
            pieces.append(text)
        elif isinstance(message, AIMessage) and kind in _PASSTHROUGH_AI_BLOCKS:
            continue  # rendered from message.tool_calls instead
        else:
            raise ValueError(_TEXT_ONLY.format(kind=kind, message=f"{message.type} message"))
    return "".join(pieces)


def _tool_name(message: ToolMessage, names: dict[str, str]) -> str:
    return message.name or names.get(message.tool_call_id, "unknown tool")


def _role_and_text(message: BaseMessage, names: dict[str, str]) -> tuple[str, str]:
    """Map one message to ``("system" | "user" | "model", text)``."""
    if isinstance(message, SystemMessage):
        return "system", _content_text(message)
    if isinstance(message, HumanMessage):
        return "user", _content_text(message)
    if isinstance(message, AIMessage):
        text = _content_text(message)
        if message.tool_calls:
            for call in message.tool_calls:
                if call.get("id"):
                    names[str(call["id"])] = call["name"]
            rendered = render_tool_calls(message.tool_calls)
            text = f"{text}\n{rendered}" if text else rendered
        return "model", text
    if isinstance(message, ToolMessage):
        template = TOOL_ERROR_TEMPLATE if message.status == "error" else TOOL_RESULT_TEMPLATE
        text = template.format(
            name=_tool_name(message, names),
            id=message.tool_call_id,
            content=_content_text(message),
        )
        return "user", text
    if isinstance(message, FunctionMessage):
        name = message.name
        return "user", TOOL_RESULT_TEMPLATE.format(
            name=name, id=name, content=_content_text(message)
        )
    if isinstance(message, ChatMessage):
        roles = {
            "user": "user",
            "human": "user",
            "assistant": "model",
            "ai": "model",
            "model": "model",
            "system": "system",
        }
        if message.role not in roles:
            raise ValueError(
                f"ChatMessage role {message.role!r} is not supported; use one of {sorted(roles)}"
            )
        return roles[message.role], _content_text(message)
    raise ValueError(
        f"{type(message).__name__} cannot be sent to a gprochat endpoint; use Human, AI, "
        "System and Tool messages"
    )


def _merge(turns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    merged: list[tuple[str, str]] = []
    for role, text in turns:
        if merged and merged[-1][0] == role:
            merged[-1] = (role, f"{merged[-1][1]}\n\n{text}")
        else:
            merged.append((role, text))
    return merged


def _check_conversation(turns: list[tuple[str, str]]) -> None:
    if not turns:
        raise ValueError(
            "the conversation has no user or AI message; add a HumanMessage with the question"
        )
    if turns[-1][0] != "user":
        raise ValueError(
            "the last message must be the user's (a HumanMessage or a ToolMessage); the "
            "endpoint answers only a user turn"
        )


def messages_to_turns(
    messages: Sequence[BaseMessage], *, max_history_messages: int | None = None
) -> list[Turn]:
    """Convert LangChain messages to alternating ``user``/``model`` turns.

    Args:
        messages: the conversation, oldest first.
        max_history_messages: keep only this many of the latest turns (after merging),
            as the upstream web client does with ``PUBLIC_MAX_HISTORY_MESSAGES``; a
            leading model turn left by the cut is dropped too. System messages are
            always kept. ``None`` keeps everything.

    Raises:
        ValueError: for non-text content, unsupported message types, an empty
            conversation, or one that does not end with a user turn.
    """
    names: dict[str, str] = {}
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    for message in messages:
        role, text = _role_and_text(message, names)
        if role == "system":
            system.append(text)
        else:
            turns.append((role, text))
    turns = _merge(turns)
    _check_conversation(turns)
    if max_history_messages is not None:
        if max_history_messages < 1:
            raise ValueError("max_history_messages must be at least 1")
        turns = turns[-max_history_messages:]
        if turns[0][0] == "model":
            turns = turns[1:]
    if system:
        system_text = "\n\n".join(system)
        if turns[0][0] == "user":
            turns[0] = ("user", SYSTEM_TEMPLATE.format(system=system_text, content=turns[0][1]))
        else:
            turns.insert(0, ("user", system_text))
    if turns[0][0] != "user":
        raise ValueError(
            "the conversation starts with an AI message; Gemini needs a user turn first: "
            "start with a HumanMessage or a SystemMessage"
        )
    return [_turn(role, text) for role, text in turns]


def _turn(role: str, text: str) -> Turn:
    """A turn from values already known to be valid (skips pydantic validation)."""
    return Turn.model_construct(role=role, parts=[Part.model_construct(text=text)])


_PROMPT_ROLES = {"system": "System", "user": "User", "model": "Assistant"}


def messages_to_prompt(messages: Sequence[BaseMessage]) -> list[Turn]:
    """Flatten the conversation into one user turn, as the gpt4free provider does.

    A single user message is sent as it is; otherwise each message becomes a line
    ``"{Role}: {text}"`` (System, User, Assistant) and the prompt ends with
    ``"Assistant:"``.
    """
    names: dict[str, str] = {}
    pairs = [_role_and_text(message, names) for message in messages]
    _check_conversation([pair for pair in pairs if pair[0] != "system"])
    if len(pairs) == 1:
        text = pairs[0][1]
    else:
        lines = [f"{_PROMPT_ROLES[role]}: {text}" for role, text in pairs]
        text = "\n".join(lines) + "\nAssistant:"
    return [_turn("user", text)]
