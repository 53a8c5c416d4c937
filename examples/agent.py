"""A tool-using agent: langchain.agents.create_agent with ChatGPROChat and two tools.

The agent answers "What is the weather in the capital of France?" in three model steps:
it calls ``capital_of``, then ``weather_in`` with that tool's result, then answers.

Offline (no GPROCHAT_BASE_URL), the bundled server runs in-process on 127.0.0.1 with a
ScriptedBackend: the model's three replies below are written in this file and stand in
for a real model's judgement. The tools really run, and their results really travel back
to the server as text turns (see docs/tools.md). With GPROCHAT_BASE_URL set, a real
endpoint decides instead, and its answer may differ.

    pip install -e ".[agents]"   # create_agent comes with the `langchain` package
    python examples/agent.py
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from langchain_gprochat import ChatGPROChat


@tool
def capital_of(country: str) -> str:
    """Return the capital city of a country."""
    return {"France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi"}[country]


@tool
def weather_in(city: str) -> str:
    """Return the current weather in a city."""
    return f"sunny, 21 °C in {city}"


# What a model would write, step by step, in the format the tool instructions ask for.
SCRIPTED_REPLIES = [
    '{"tool_calls": [{"name": "capital_of", "arguments": {"country": "France"}}]}',
    "The capital is Paris; now the weather.\n"
    '{"tool_calls": [{"name": "weather_in", "arguments": {"city": "Paris"}}]}',
    "It is sunny, 21 °C in Paris, the capital of France.",
]


def open_model(stack: ExitStack) -> ChatGPROChat:
    if os.environ.get("GPROCHAT_BASE_URL"):
        return stack.enter_context(ChatGPROChat())
    from langchain_gprochat.server import GPROChatServer, ScriptedBackend

    server = stack.enter_context(GPROChatServer(backend=ScriptedBackend(SCRIPTED_REPLIES)))
    print(f"started a local gprochat server at {server.url}", file=sys.stderr)
    print("note: offline, the model's replies are scripted in examples/agent.py (no real model)")
    return stack.enter_context(ChatGPROChat(base_url=server.url))


def main() -> int:
    with ExitStack() as stack:
        agent = create_agent(model=open_model(stack), tools=[capital_of, weather_in])
        question = "What is the weather in the capital of France?"
        print(f"question: {question}")
        state = agent.invoke({"messages": [HumanMessage(question)]})
    step = 0
    for message in state["messages"][1:]:
        if isinstance(message, AIMessage):
            step += 1
            if message.tool_calls and message.text:
                print(f"step {step}: model says: {message.text}")
            for call in message.tool_calls:
                print(f"step {step}: model calls {call['name']}({call['args']})")
            if not message.tool_calls:
                print(f"step {step}: model answers: {message.text}")
        elif isinstance(message, ToolMessage):
            print(f"        tool {message.name} returned: {message.text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
