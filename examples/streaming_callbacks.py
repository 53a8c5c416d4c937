"""Watch tokens arrive with a LangChain callback handler.

ChatGPROChat(streaming=True) streams internally even in ``invoke``, so a
``BaseCallbackHandler`` sees every token as it arrives. Offline (no GPROCHAT_BASE_URL),
this starts the bundled server in-process on 127.0.0.1 with its echo backend, which
repeats the question (no model judgement is involved) and waits 50 ms between chunks so
that the streaming is visible. With GPROCHAT_BASE_URL set it talks to that endpoint.

    python examples/streaming_callbacks.py
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from langchain_gprochat import ChatGPROChat

QUESTION = "Name three rivers of Europe."


class TokenPrinter(BaseCallbackHandler):
    """Prints each token the moment it arrives, and counts them."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.started = time.monotonic()

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        if token:  # LangChain also reports the closing empty chunk
            self.tokens.append(token)
            elapsed = time.monotonic() - self.started
            print(f"[{elapsed:5.2f}s] {token!r}", file=sys.stderr, flush=True)
            print(token, end="", flush=True)


def main() -> int:
    with ExitStack() as stack:
        if os.environ.get("GPROCHAT_BASE_URL"):
            base_url = None
        else:
            from langchain_gprochat.server import GPROChatServer

            server = stack.enter_context(GPROChatServer(chunk_delay=0.05))
            print(f"started a local gprochat server at {server.url}", file=sys.stderr)
            print("note: offline, the echo backend repeats the question (no real model)")
            base_url = server.url
        printer = TokenPrinter()
        params: dict[str, Any] = {"streaming": True, "callbacks": [printer]}
        if base_url is not None:
            params["base_url"] = base_url
        llm = stack.enter_context(ChatGPROChat(**params))
        message = llm.invoke(QUESTION)
        print()
        print(f"tokens received: {len(printer.tokens)}")
        print(f"tokens joined equal the answer: {''.join(printer.tokens) == message.text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
