"""Structured output: ChatGPROChat.with_structured_output with each method.

The endpoint returns text only, so the schema is put into the instructions (as a tool
to call, ``function_calling``, or as a JSON schema, ``json_schema``) and the reply is
parsed and validated. A reply that does not fit raises ``OutputParserException``, or
with ``include_raw=True`` comes back as ``parsing_error``.

Offline (no GPROCHAT_BASE_URL), the bundled server runs in-process on 127.0.0.1 with a
ScriptedBackend: the model's replies below are written in this file and stand in for a
real model's judgement (the last one is deliberately not JSON). With GPROCHAT_BASE_URL
set, a real endpoint answers instead.

    python examples/structured_output.py
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack

from pydantic import BaseModel, Field

from langchain_gprochat import ChatGPROChat


class Joke(BaseModel):
    """A joke to tell the user."""

    setup: str = Field(description="the question that sets up the joke")
    punchline: str = Field(description="the answer that resolves the joke")


SCRIPTED_REPLIES = [
    # function_calling: a call to the tool named after the schema
    '{"tool_calls": [{"name": "Joke", "arguments": {"setup": "Why did the cat sit on the '
    'computer?", "punchline": "To keep an eye on the mouse."}}]}',
    # json_schema: the bare JSON object
    '{"setup": "What do you call a pile of cats?", "punchline": "A meowtain."}',
    # a reply that does not parse
    "Sorry, I am not in the mood for jokes.",
]


def open_model(stack: ExitStack) -> ChatGPROChat:
    if os.environ.get("GPROCHAT_BASE_URL"):
        return stack.enter_context(ChatGPROChat())
    from langchain_gprochat.server import GPROChatServer, ScriptedBackend

    server = stack.enter_context(GPROChatServer(backend=ScriptedBackend(SCRIPTED_REPLIES)))
    print(f"started a local gprochat server at {server.url}", file=sys.stderr)
    print(
        "note: offline, the model's replies are scripted in examples/structured_output.py "
        "(no real model)"
    )
    return stack.enter_context(ChatGPROChat(base_url=server.url))


def main() -> int:
    with ExitStack() as stack:
        llm = open_model(stack)
        joke = llm.with_structured_output(Joke).invoke("Tell me a joke about cats.")
        print(f"function_calling: {joke!r}")
        as_dict = llm.with_structured_output(Joke.model_json_schema(), method="json_schema").invoke(
            "Tell me another joke about cats."
        )
        print(f"json_schema (dict schema): {as_dict!r}")
        result = llm.with_structured_output(Joke, include_raw=True).invoke("One more?")
        print(f"include_raw: parsed={result['parsed']!r}")
        print(f"include_raw: raw text={result['raw'].text!r}")
        print(f"include_raw: parsing_error={type(result['parsing_error']).__name__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
