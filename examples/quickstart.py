"""Stream an answer through ChatGPROChat.

With no configuration this starts the bundled gprochat-compatible server in-process on
127.0.0.1 (offline echo backend) and streams from it. With GPROCHAT_BASE_URL set it talks
to that endpoint instead (GPROCHAT_SECRET_KEY and GPROCHAT_PASSWORD are read too).

    python examples/quickstart.py
    GPROCHAT_BASE_URL=http://127.0.0.1:8080 python examples/quickstart.py
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack

from langchain_gprochat import ChatGPROChat

QUESTION = "Say hello to LangChain in three languages."


def main() -> int:
    with ExitStack() as stack:
        if os.environ.get("GPROCHAT_BASE_URL"):
            llm = stack.enter_context(ChatGPROChat())
        else:
            from langchain_gprochat.server import GPROChatServer

            server = stack.enter_context(GPROChatServer(chunk_delay=0.05))
            print(f"started a local gprochat server at {server.url}", file=sys.stderr)
            llm = stack.enter_context(ChatGPROChat(base_url=server.url))
        messages = [
            ("system", "You are a friendly assistant."),
            ("human", QUESTION),
        ]
        for chunk in llm.stream(messages):
            print(chunk.text, end="", flush=True)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
