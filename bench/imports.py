"""Measurement 5: the import cost of langchain_gprochat, in fresh subprocesses."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections import Counter

from harness import Sample, Trial, interleave
from measure import Section
from report import Row, ms, verdict

CORE = "import langchain_core.language_models"
CHAT = "from langchain_core.language_models import BaseChatModel"
OURS = "import langchain_gprochat"

_CHILD = """\
import sys, time
{before}
start = time.perf_counter()
{statement}
print(time.perf_counter() - start, "aiohttp.web" in sys.modules)
"""


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )


def import_trial(statement: str, before: str = "") -> Trial:
    """A trial timing ``statement`` in a fresh interpreter (after ``before``)."""
    code = _CHILD.format(statement=statement, before=before)

    def trial() -> Sample:
        seconds, web = _python("-c", code).stdout.split()
        return {"seconds": float(seconds), "web": float(web == "True")}

    return trial


def _self_times(code: str) -> dict[str, int]:
    """Module → self import time in µs, from ``python -X importtime``."""
    lines = _python("-X", "importtime", "-c", code).stderr.splitlines()
    rows = [line.split("|") for line in lines if line.startswith("import time:")]
    return {row[2].strip(): int(row[0].split(":")[1]) for row in rows[1:]}


def extra_packages(top: int = 6) -> list[tuple[str, float]]:
    """Top-level packages ``import langchain_gprochat`` adds on top of ``BaseChatModel``.

    Returns ``(package, ms)``: the summed self import time of the added modules.
    """
    base = _self_times(CHAT)
    ours = _self_times(f"{CHAT}; {OURS}")
    added: Counter[str] = Counter()
    for module, micros in ours.items():
        if module not in base:
            added[module.split(".")[0]] += micros / 1000
    return added.most_common(top)


def imports(reps: int) -> Section:
    """5: import time of langchain_gprochat against langchain_core."""
    m = interleave(
        {
            "core": import_trial(CORE),
            "chat": import_trial(CHAT),
            "gprochat": import_trial(OURS),
            "incremental": import_trial(OURS, before=CHAT),
        },
        reps,
        warmup=1 if reps > 1 else 0,  # the first run also writes the bytecode caches
    )
    seconds = {name: sample["seconds"] for name, sample in m.items()}
    delta, delta_chat = seconds["gprochat"] - seconds["core"], seconds["gprochat"] - seconds["chat"]
    web = m["gprochat"]["web"] > 0 or m["incremental"]["web"] > 0
    rows = [
        Row("imp.core", ms(seconds["core"])),
        Row("imp.gprochat", ms(seconds["gprochat"])),
        Row("imp.delta", ms(delta), "≤ 30 ms", verdict(delta <= 0.030)),
        Row("imp.chat", ms(seconds["chat"])),
        Row("imp.delta_chat", ms(delta_chat), "(information)"),
        Row("imp.incremental", ms(seconds["incremental"])),
        Row("imp.web", "yes" if web else "no", "no", verdict(not web)),
    ]
    added = ", ".join(f"`{name}` {cost:.1f} ms" for name, cost in extra_packages())
    notes = [
        f"- 5: {reps} fresh interpreters per variant, interleaved; `time.perf_counter()` "
        "around the import inside the child. `import langchain_core.language_models` loads "
        "its members lazily (module `__getattr__`), so it does not load `BaseChatModel` and "
        "its dependencies (tracers, callbacks, runnables), which any chat model must import; "
        "the `BaseChatModel` rows give that fairer baseline. Packages that "
        "`import langchain_gprochat` adds on top of `BaseChatModel` (summed self time, one "
        f"`python -X importtime` run): {added}.",
    ]
    return Section(rows, notes, {"5 import delta / 30 ms": (delta / 0.030, 1.0)})
