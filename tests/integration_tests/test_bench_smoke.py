"""Smoke test of the benchmark script: it runs at the tiny size and writes every row.

No timing is asserted: benchmarks never decide whether the suite passes.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _report_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", BENCH / "report.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(180)
def test_bench_tiny_writes_table(tmp_path: Path) -> None:
    out = tmp_path / "README.md"
    subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--size", "tiny", "--out", str(out)],
        check=True,
        timeout=170,
    )
    text = out.read_text(encoding="utf-8")
    report = _report_module()
    assert report.TABLE_HEADER in text
    for name in report.ROWS.values():
        assert name.partition(" · ")[2] in text, name
    assert (tmp_path / "results.png").stat().st_size > 0
