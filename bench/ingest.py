"""Single-event native ingest through the real hub vs a bare Litestar endpoint that
only decodes the same body. One run measures both, so the ratio is meaningful on a
shared, noisy machine.

    python -m bench.ingest [--seconds 10] [--connections 64] [--rounds 5]

Cores: the servers are pinned to core 0 and wrk (Debian package ``wrk``) to core 1.
The hub runs durable (synchronous=FULL) with a notification per new alert going to
a log file. Scenarios: ``new`` (every request a new alert: state change, history
row, outbox row) and ``repeat`` (1000 alerts re-sent: de-dup path). The bare
endpoint and the repeating hub run for the whole bench and the rounds alternate
between the scenarios, so the two sides of a ratio are measured seconds apart; an
idle server takes no measurable CPU. The ``new`` hub starts afresh for each round,
so that every round measures the same work (its store grows by some 30,000 alerts
a round otherwise), and it is stopped before the next run starts.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.common import (
    ROOT,
    free_port,
    median_run,
    require_wrk,
    start_hub,
    start_python,
    stop,
    warm_then_measure,
)

BARE = "bare Litestar (decode only)"


def start_bare(workdir: Path, port: int) -> subprocess.Popen:
    args = [
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--no-proxy-headers",
        "--no-server-header",
        "--log-level",
        "warning",
    ]
    return start_python(args, ROOT, port)


# name: (how to start the server, distinct dedup keys: 0 is a new alert every request)
SCENARIOS: dict[str, tuple[Callable[[Path, int], subprocess.Popen], int]] = {
    BARE: (start_bare, 0),
    "hub: new alert each": (start_hub, 0),
    "hub: repeats of 1000": (start_hub, 1000),
}
FRESH_EACH_ROUND = {"hub: new alert each"}


def start(name: str, stack: contextlib.ExitStack) -> int:
    """Start the server of scenario ``name`` in its own directory, until ``stack`` closes."""
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    port = free_port()
    stack.callback(stop, SCENARIOS[name][0](workdir, port))
    return port


def measure(name: str, port: int, seconds: int, connections: int) -> dict[str, float]:
    """One warmed-up run; with a hub, its warm-up's notifications are sent first."""
    keys_env = {"BENCH_KEYS": str(SCENARIOS[name][1])}
    drain = None if name == BARE else port
    url = f"http://127.0.0.1:{port}"
    return warm_then_measure(url, "ingest.lua", seconds, connections, keys_env, drain)


def measure_fresh(name: str, seconds: int, connections: int) -> dict[str, float]:
    with contextlib.ExitStack() as stack:
        return measure(name, start(name, stack), seconds, connections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs; medians shown")
    args = parser.parse_args()
    require_wrk()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SCENARIOS}
    with contextlib.ExitStack() as stack:
        ports = {name: start(name, stack) for name in SCENARIOS if name not in FRESH_EACH_ROUND}
        for round_number in range(args.rounds):
            order = list(SCENARIOS) if round_number % 2 == 0 else list(reversed(SCENARIOS))
            for name in order:
                if name in FRESH_EACH_ROUND:
                    result = measure_fresh(name, args.seconds, args.connections)
                else:
                    result = measure(name, ports[name], args.seconds, args.connections)
                runs[name].append(result)
    print(f"{'scenario':<28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'ratio':>8}")
    for name, results in runs.items():
        ratios = [hub["rate"] / bare["rate"] for hub, bare in zip(results, runs[BARE], strict=True)]
        row = median_run(results)
        print(
            f"{name:<28}{row['rate']:>10.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
            f"{row['errors']:>9.0f}{statistics.median(ratios):>8.2f}"
            f"   rounds: {' '.join(f'{ratio:.2f}' for ratio in ratios)}"
            f" ({' '.join(str(round(result['rate'])) for result in results)} req/s)"
        )
    print(f"medians of {args.rounds} alternating rounds; ratio: median of each round's pair")
    return 0


if __name__ == "__main__":
    sys.exit(main())
