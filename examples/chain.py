"""A LangChain chain: prompt | ChatGPROChat | StrOutputParser.

Offline (no GPROCHAT_BASE_URL), this starts the bundled gprochat-compatible server
in-process on 127.0.0.1 with a ScriptedBackend: the translations printed below are
replies written in this file, standing in for a real model's judgement. Everything else
(the prompt, the signed HTTP request, streaming, parsing) is the real path. With
GPROCHAT_BASE_URL set it talks to that endpoint instead (GPROCHAT_SECRET_KEY and
GPROCHAT_PASSWORD are read too).

    python examples/chain.py
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_gprochat import ChatGPROChat

# The scripted model's replies, in the order the chain asks for them.
SCRIPTED_REPLIES = ["J'adore la programmation.", "Ich liebe das Programmieren."]


def open_model(stack: ExitStack) -> ChatGPROChat:
    if os.environ.get("GPROCHAT_BASE_URL"):
        return stack.enter_context(ChatGPROChat())
    from langchain_gprochat.server import GPROChatServer, ScriptedBackend

    server = stack.enter_context(GPROChatServer(backend=ScriptedBackend(SCRIPTED_REPLIES)))
    print(f"started a local gprochat server at {server.url}", file=sys.stderr)
    print("note: offline, the replies are scripted in examples/chain.py (no real model)")
    return stack.enter_context(ChatGPROChat(base_url=server.url))


def main() -> int:
    prompt = ChatPromptTemplate.from_messages(
        [
            (
                "system",
                "Translate the user's sentence into {language}. Reply with the translation only.",
            ),
            ("human", "{sentence}"),
        ]
    )
    with ExitStack() as stack:
        chain = prompt | open_model(stack) | StrOutputParser()
        french = chain.invoke({"language": "French", "sentence": "I love programming."})
        print(f"French: {french}")
        print("German (streamed): ", end="", flush=True)
        for piece in chain.stream({"language": "German", "sentence": "I love programming."}):
            print(piece, end="", flush=True)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
