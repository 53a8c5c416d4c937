"""Child process measuring the memory of one variant of measurement 3.

Prints JSON: the growth of peak RSS (``VmHWM``, reset through ``/proc/self/clear_refs``
first, falling back to ``ru_maxrss``) over a first (cold) round of concurrent streams, and
the tracemalloc peak of a second (warm) round.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import tracemalloc
from pathlib import Path

import clients
from harness import gather_sample, stream_sample
from loopback import Endpoint
from measure import CONC_CHUNKS, CONC_SIZE


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _reset_peak_rss() -> float:
    """Reset the peak RSS to the current RSS where Linux allows; return the baseline."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_mb("VmRSS")
    except OSError:
        return _max_rss_mb()


def _max_rss_mb() -> float:
    try:
        return _status_mb("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(variant: str, endpoint: Endpoint, n: int) -> dict[str, float]:
    session = clients.raw_session(endpoint)
    opener = clients.stream_openers(endpoint, session, CONC_SIZE, CONC_CHUNKS)[variant]
    gc.collect()
    base = _reset_peak_rss()
    await gather_sample(lambda: stream_sample(opener), n)
    rss_delta = _max_rss_mb() - base
    tracemalloc.start()
    await gather_sample(lambda: stream_sample(opener), n)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    await session.close()
    return {"rss_delta_mb": rss_delta, "tracemalloc_peak_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=["gprochat", "raw"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    endpoint = Endpoint(port=args.port, ca_path=args.ca)
    print(json.dumps(asyncio.run(measure(args.variant, endpoint, args.n))))


if __name__ == "__main__":
    main()
