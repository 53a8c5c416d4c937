"""Every example runs offline (in-process server on 127.0.0.1) and prints what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from ._support import expected_echo

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EXPECTED_LINES = {
    "quickstart.py": expected_echo(
        [
            SystemMessage("You are a friendly assistant."),
            HumanMessage("Say hello to LangChain in three languages."),
        ]
    ).splitlines(),
    "chain.py": [
        "note: offline, the replies are scripted in examples/chain.py (no real model)",
        "French: J'adore la programmation.",
        "German (streamed): Ich liebe das Programmieren.",
    ],
    "streaming_callbacks.py": [
        "note: offline, the echo backend repeats the question (no real model)",
        "Echo · turn 1 · «Name three rivers of Europe.» ✓",
        "tokens received: 6",
        "tokens joined equal the answer: True",
    ],
    "agent.py": [
        "note: offline, the model's replies are scripted in examples/agent.py (no real model)",
        "question: What is the weather in the capital of France?",
        "step 1: model calls capital_of({'country': 'France'})",
        "        tool capital_of returned: Paris",
        "step 2: model says: The capital is Paris; now the weather.",
        "step 2: model calls weather_in({'city': 'Paris'})",
        "        tool weather_in returned: sunny, 21 °C in Paris",
        "step 3: model answers: It is sunny, 21 °C in Paris, the capital of France.",
    ],
    "structured_output.py": [
        "note: offline, the model's replies are scripted in examples/structured_output.py "
        "(no real model)",
        "function_calling: Joke(setup='Why did the cat sit on the computer?', "
        "punchline='To keep an eye on the mouse.')",
        "json_schema (dict schema): {'setup': 'What do you call a pile of cats?', "
        "'punchline': 'A meowtain.'}",
        "include_raw: parsed=None",
        "include_raw: raw text='Sorry, I am not in the mood for jokes.'",
        "include_raw: parsing_error=OutputParserException",
    ],
}


def test_every_example_is_covered() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(EXPECTED_LINES)


@pytest.mark.parametrize("name", sorted(EXPECTED_LINES))
def test_example_runs_offline(name: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPROCHAT_")}
    env["PYTHONIOENCODING"] = "utf-8"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == EXPECTED_LINES[name]
    assert "started a local gprochat server at http://127.0.0.1:" in result.stderr
