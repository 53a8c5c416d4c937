"""The results table, the plot and bench/README.md (stdlib only at import time)."""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

TABLE_HEADER = "| # | figure | value | target | result |"

ROWS: dict[str, str] = {
    "seq.gprochat": "1 · ChatGPROChat.ainvoke, 1 KB answer",
    "seq.raw": "1 · raw aiohttp, reused session (post + read)",
    "seq.seed": "1 · seed-style: new ClientSession per request",
    "seq.fake": "1 · FakeListChatModel.ainvoke (langchain-core fake)",
    "seq.floor": "1 · NoIOChatModel.ainvoke (native-async no-I/O floor)",
    "seq.ratio_fake": "1 · ChatGPROChat / (raw + FakeListChatModel)",
    "seq.ratio_floor": "1 · ChatGPROChat / (raw + NoIOChatModel) (stricter)",
    "seq.ratio_seed": "1 · ChatGPROChat / seed-style",
    "stream.gprochat": "2 · ChatGPROChat.astream, 200 KB in 4,000 writes",
    "stream.raw": "2 · raw aiohttp iter_any, same response",
    "stream.floor": "2 · NoIOChatModel.astream, 4,000 chunks",
    "stream.writes": "2 · server writes per answer",
    "stream.ratio_total": "2 · total: ChatGPROChat / (raw + floor)",
    "stream.ratio_ttfc": "2 · first chunk: ChatGPROChat / (raw + floor)",
    "conc.gprochat": "3 · ChatGPROChat, concurrent astream",
    "conc.raw": "3 · raw aiohttp (TCPConnector limit=100), same",
    "conc.floor": "3 · NoIOChatModel, concurrent astream (no I/O)",
    "conc.ratio": "3 · wall: ChatGPROChat / raw aiohttp, zero errors",
    "conc.ratio_floor": "3 · wall: ChatGPROChat / (raw aiohttp + NoIOChatModel)",
    "conc.mem_gprochat": "3 · peak memory, ChatGPROChat (child process)",
    "conc.mem_raw": "3 · peak memory, raw aiohttp (child process)",
    "sync.invoke": "4 · ChatGPROChat.invoke, 1 KB answer",
    "sync.ainvoke": "4 · ChatGPROChat.ainvoke, 1 KB answer",
    "sync.ratio": "4 · invoke / ainvoke",
    "sync.stream": "4 · sync stream(): first chunk vs server finished",
    "imp.core": "5 · import langchain_core.language_models",
    "imp.gprochat": "5 · import langchain_gprochat",
    "imp.delta": "5 · extra cost of import langchain_gprochat",
    "imp.chat": "5 · from langchain_core.language_models import BaseChatModel",
    "imp.delta_chat": "5 · extra cost over importing BaseChatModel",
    "imp.incremental": "5 · import langchain_gprochat after importing BaseChatModel",
    "imp.web": "5 · aiohttp.web imported by import langchain_gprochat",
}
"""Row key → row name, in table order. The smoke test checks every name is written."""


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    key: str
    value: str
    target: str = ""
    result: str = ""


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def ratio_row(key: str, ratio: float, limit: float, extra_ok: bool = True) -> Row:
    """A row for a ratio with an upper bound."""
    return Row(key, f"{ratio:.3f}", f"≤ {limit}", verdict(ratio <= limit and extra_ok))


def ms(seconds: float) -> str:
    """Seconds as milliseconds, 2 decimals."""
    return f"{seconds * 1000:.2f} ms"


def us(seconds: float) -> str:
    """Seconds as microseconds, no decimals."""
    return f"{seconds * 1e6:.0f} µs"


def table(rows: list[Row]) -> str:
    """The markdown table, rows in the order of ``ROWS``."""
    by_key = {row.key: row for row in rows}
    missing = set(ROWS) - set(by_key)
    if missing:
        raise ValueError(f"rows missing from the results: {sorted(missing)}")
    lines = [TABLE_HEADER, "|---|---|---|---|---|"]
    for key, name in ROWS.items():
        row = by_key[key]
        number, _, title = name.partition(" · ")
        lines.append(f"| {number} | {title} | {row.value} | {row.target} | {row.result} |")
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> list[str]:
    """Lines describing where and when the benchmark ran."""
    versions = {
        name: metadata.version(name) for name in ("aiohttp", "langchain-core", "langchain-gprochat")
    }
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"- date: {now}",
        f"- CPU: {_cpu_model()}, {os.cpu_count()} cores",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
        "- " + ", ".join(f"{name} {version}" for name, version in versions.items()),
    ]


def plot(ratios: dict[str, tuple[float, float]], seq: dict[str, float], path: Path) -> None:
    """Ratios against their targets, and the per-request times of measurement 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    names = list(ratios)
    values = [ratios[n][0] for n in names]
    limits = [ratios[n][1] for n in names]
    colors = ["tab:green" if v <= lim else "tab:red" for v, lim in zip(values, limits, strict=True)]
    shown = [min(v, 3.0) for v in values]  # clip so one outlier does not hide the rest
    left.barh(names, shown, color=colors)
    for y, (value, width) in enumerate(zip(values, shown, strict=True)):
        left.annotate(
            f"{value:.2f}",
            (width, y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    left.scatter(limits, names, marker="|", s=400, color="black", label="target")
    left.set_xlim(0, 3.4)
    left.invert_yaxis()
    left.set_xlabel("ratio (lower is better)")
    left.set_title("Ratios measured side by side")
    left.legend(loc="lower right")
    right.bar(list(seq), [v * 1e6 for v in seq.values()], color="tab:blue")
    right.set_ylabel("µs per request (median)")
    right.set_title("1 · sequential 1 KB requests")
    right.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_readme(
    path: Path, command: str, rows: list[Row], notes: list[str], profile: list[str]
) -> None:
    """Write the whole bench README."""
    text = "\n".join(
        [
            "# Benchmarks",
            "",
            "ChatGPROChat against raw aiohttp, a seed-style client (the gpt4free provider:",
            "a new `ClientSession` per request) and LangChain's own floor, over HTTPS on",
            "127.0.0.1 (trustme certificates) against `bench/fast_server.py`, a minimal",
            "aiohttp server running in its own process. Variants are interleaved (their",
            "order rotates every round) and repeated; every figure is a median and every",
            "ratio compares variants measured side by side in the same run. The figures",
            "do not decide whether the test suite passes.",
            "",
            "## Command",
            "",
            "```bash",
            command,
            "```",
            "",
            "## Machine",
            "",
            *machine(),
            "",
            "## Results",
            "",
            table(rows),
            "",
            "![results](results.png)",
            "",
            "## Notes",
            "",
            *notes,
            "",
            "## Profile",
            "",
            *profile,
            "",
        ]
    )
    path.write_text(text, encoding="utf-8")
