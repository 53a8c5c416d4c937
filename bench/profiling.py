"""Where ChatGPROChat's time goes on the hot paths of measurements 1 and 2 (pyinstrument)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from harness import LoopRunner
from pyinstrument import Profiler
from pyinstrument.frame import Frame

INTERVAL = 0.0001
_IDLE = "idle (epoll wait)"


def bucket(frame: Frame) -> str:
    """The package a frame's code belongs to (``asyncio``/``ssl``… for the stdlib).

    A built-in (C) function counts for the package that called it; waiting in epoll is
    idle time.
    """
    path = frame.file_path or ""
    if not path or path.startswith("<"):
        if frame.function.endswith(("poll", "select")):
            return _IDLE
        return bucket(frame.parent) if frame.parent is not None else "<built-in>"
    if "langchain_gprochat" in path:
        return "langchain_gprochat (ours)"
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if path.endswith("selectors.py"):
        return _IDLE
    parent = Path(path).parent.name
    return f"stdlib {parent if parent in ('asyncio', 'json') else Path(path).stem}"


def _frames(frame: Frame) -> Iterator[Frame]:
    yield frame
    for child in frame.children:
        yield from _frames(child)


def profile(runner: LoopRunner, work: Callable[[], Awaitable[object]], text_path: Path) -> Frame:
    """Profile ``work()`` on the runner's loop; save pyinstrument's text; return the tree."""
    profiler = Profiler(interval=INTERVAL, async_mode="disabled")
    profiler.start()
    runner.run(work())
    session = profiler.stop()
    text_path.write_text(profiler.output_text(unicode=True, show_all=False), encoding="utf-8")
    root = session.root_frame()
    assert root is not None
    return root


def _label(frame: Frame) -> str:
    return f"`{frame.function}` ({frame.file_path_short}:{frame.line_no})"


def summary(root: Frame, title: str, calls: int) -> list[str]:
    """Markdown: busy time per package, top self-time functions, our inclusive times."""
    frames = [f for f in _frames(root) if not f.is_synthetic]
    by_bucket: Counter[str] = Counter()
    by_function: Counter[tuple[str, str]] = Counter()
    ours: Counter[str] = Counter()
    for frame in frames:
        name = bucket(frame)
        by_bucket[name] += frame.total_self_time
        by_function[(_label(frame), name)] += frame.total_self_time
        if name.startswith("langchain_gprochat"):
            ours[_label(frame)] += frame.time
    busy = sum(t for name, t in by_bucket.items() if name != _IDLE)
    per = 1e6 / calls
    lines = [f"**{title}** — {root.time:.2f} s profiled, {busy:.2f} s busy (not in epoll):", ""]
    lines += [
        f"- {name}: {t / busy:.0%} of busy time ({t * per:.0f} µs per call)"
        for name, t in by_bucket.most_common()
        if name != _IDLE and t / busy >= 0.02
    ]
    lines += ["", "Top self time:", ""]
    lines += [
        f"- {label} [{name}]: {t * per:.0f} µs per call"
        for (label, name), t in by_function.most_common(12)
        if name != _IDLE
    ]
    lines += ["", "Inclusive time of our functions (includes what they call):", ""]
    lines += [f"- {label}: {t * per:.0f} µs per call" for label, t in ours.most_common(12)]
    return [*lines, ""]
