"""Run the ChatGPROChat benchmarks and write a report (a README table) and a plot.

``python bench/run.py --help`` works with the package alone; a run needs the bench extra
(``pip install -e ".[bench]"``: trustme, matplotlib, pyinstrument). ``tiny`` is a smoke
run (under 30 s); ``full`` gives the figures of bench/README.md (a few minutes). The
report goes to bench/_out/ unless ``--out`` says otherwise, so that a trial run never
overwrites the committed figures: pass ``--out bench/README.md`` to update them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = ("full", "tiny")


def main() -> None:
    """Parse the arguments, then run the suite (which imports the bench extra)."""
    doc = (__doc__ or "").split("\n\n", 1)
    parser = argparse.ArgumentParser(
        description=doc[0],
        epilog=doc[1] if len(doc) > 1 else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--size", choices=SIZES, default="full", help="tiny: a smoke run; full: the figures"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "_out" / "README.md",
        help="report to write; results.png and the profiles go beside it",
    )
    args = parser.parse_args()
    try:
        from suite import run
    except ImportError as exc:
        parser.exit(2, f"bench/run.py: {exc}; install the bench extra: pip install -e '.[bench]'\n")
    command = shlex.join(["python", "bench/run.py", *sys.argv[1:]])
    run(args.size, args.out, command)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
