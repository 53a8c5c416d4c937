"""Time the prompt-based tool-call parser per MiB of reply, whole and streamed.

Usage: ``python bench/tool_parser.py [--mib 1] [--piece 16] [--repeat 3]``. For each kind
of text it times ``parse_tool_reply`` on the whole reply and ``ToolStreamParser`` fed in
pieces of ``--piece`` characters, and prints the median seconds per MiB as a Markdown
table. Every row also checks that both paths agree. Self-contained: it needs only the
package itself, no server.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata

from langchain_gprochat._tool_stream import ToolStreamParser
from langchain_gprochat._tools import ParsedReply, parse_tool_reply

NAMES = frozenset({"get_weather", "add"})
CALL = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'
PROSE = (
    "The weather in Paris is mild today, with a light breeze from the west and a few "
    "clouds in the afternoon. Tomorrow (Tuesday) should be sunnier: highs near 21 °C.\n"
)
JSON_UNIT = (
    'Here is the record: {"id": 17, "name": "Ada", "tags": ["x", "y"], "score": 4.5e-1, '
    '"ok": true, "next": null}\n```json\n[{"step": 1, "args": {"a": [1, 2, {"b": "c"}]}}, '
    '{"step": 2}]\n```\nAnd a config `{"retries": 3}` inline.\n'
)
JS_UNIT = (
    "function render(items, opts = {}) {\n"
    "  for (const { id, tags = [] } of items) {\n"
    '    out.push({ id, label: `#${id}`, tags: [...tags, "x"], meta: { ok: true } });\n'
    "  }\n"
    '  return JSON.parse(\'{"depth": 2, "keys": ["a", "b"]}\');\n'
    "}\n"
)


def repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


KINDS: dict[str, Callable[[int], str]] = {
    "plain prose": lambda n: repeat(PROSE, n),
    "JSON-heavy prose (non-call JSON, then a call)": lambda n: repeat(JSON_UNIT, n) + CALL,
    "JavaScript-like code": lambda n: repeat(JS_UNIT, n),
    "one call with n characters of arguments": lambda n: CALL.replace("Paris", "x" * n),
    'adversarial: "{" * n': lambda n: "{" * n,
    'adversarial: "[" * n': lambda n: "[" * n,
    "adversarial: unbalanced quotes, '\"' * n": lambda n: '"' * n,
    "adversarial: '{\"' * n (brace, unbalanced quote)": lambda n: repeat('{"', n),
    "adversarial: '\"{' * n (braces inside keys)": lambda n: repeat('"{', n),
    "adversarial: '{\"a\":' * n (nested, never closed)": lambda n: repeat('{"a":', n),
    "adversarial: '[{}, ' * n (nested arrays, never closed)": lambda n: repeat("[{}, ", n),
}


def whole(text: str) -> ParsedReply:
    return parse_tool_reply(text, NAMES)


def streamed(text: str, piece: int) -> ParsedReply:
    parser = ToolStreamParser(NAMES)
    for start in range(0, len(text), piece):
        parser.feed(text[start : start + piece])
    parser.finish()
    return parser.result


def shape(reply: ParsedReply) -> tuple[object, ...]:
    """The reply without its (random) call ids."""
    calls = [(c["name"], c["args"]) for c in reply.tool_calls]
    invalid = [(c["name"], c["args"], c["error"]) for c in reply.invalid_tool_calls]
    return reply.content, calls, invalid


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--mib", type=float, default=1.0, help="size of each text, in MiB")
    parser.add_argument("--piece", type=int, default=16, help="characters per streamed delta")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    args = parser.parse_args()
    size = int(args.mib * (1 << 20))
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores, "
        f"langchain-gprochat {metadata.version('langchain-gprochat')}, "
        f"langchain-core {metadata.version('langchain-core')}"
    )
    print(
        f"texts of {args.mib:g} MiB, streamed in {args.piece}-character pieces, "
        f"median of {args.repeat}\n"
    )
    print("| text | whole reply, s/MiB | streamed, s/MiB | calls |")
    print("|---|---:|---:|---:|")
    for name, make in KINDS.items():
        text = make(size)
        mib = len(text) / (1 << 20)
        result = whole(text)
        if shape(result) != shape(streamed(text, args.piece)):
            sys.exit(f"{name}: the whole and the streamed parse disagree")
        whole_s = median_seconds(lambda t=text: whole(t), args.repeat) / mib
        stream_s = median_seconds(lambda t=text: streamed(t, args.piece), args.repeat) / mib
        calls = len(result.tool_calls) + len(result.invalid_tool_calls)
        print(f"| {name} | {whole_s:.3f} | {stream_s:.3f} | {calls} |", flush=True)


if __name__ == "__main__":
    main()
