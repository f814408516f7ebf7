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
Besides the request rates, the table gives the CPU time each server took per request
(from /proc, over the measured run) and its ratio, bare's over hub's: the difference
of the two is what hub's own work costs a request. A server here keeps core 0 busy,
so the CPU ratio follows the rate ratio, noise included.
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


def start(name: str, stack: contextlib.ExitStack) -> tuple[int, int]:
    """Start the server of scenario ``name`` in its own directory, until ``stack`` closes;
    its port and process id."""
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    port = free_port()
    process = SCENARIOS[name][0](workdir, port)
    stack.callback(stop, process)
    return port, process.pid


def measure(name: str, server: tuple[int, int], seconds: int, connections: int) -> dict:
    """One warmed-up run; with a hub, its warm-up's notifications are sent first."""
    port, pid = server
    keys_env = {"BENCH_KEYS": str(SCENARIOS[name][1])}
    drain = None if name == BARE else port
    url = f"http://127.0.0.1:{port}"
    return warm_then_measure(url, "ingest.lua", seconds, connections, keys_env, drain, pid)


def measure_fresh(name: str, seconds: int, connections: int) -> dict[str, float]:
    with contextlib.ExitStack() as stack:
        return measure(name, start(name, stack), seconds, connections)


def round_ratios(runs: dict[str, list[dict]], name: str, key: str) -> list[float]:
    """Each round's ratio of hub to bare by ``key``: a rate, or the CPU a request took
    (inverted, so that above 1 is better for both)."""
    pairs = zip(runs[name], runs[BARE], strict=True)
    if key == "cpu_us":
        return [bare[key] / hub[key] for hub, bare in pairs]
    return [hub[key] / bare[key] for hub, bare in pairs]


def print_table(runs: dict[str, list[dict]], rounds: int) -> None:
    print(
        f"{'scenario':<28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'ratio':>8}"
        f"{'CPU µs/req':>12}{'CPU ratio':>11}"
    )
    ratios = {name: round_ratios(runs, name, "rate") for name in runs}
    cpu_ratios = {name: round_ratios(runs, name, "cpu_us") for name in runs}
    for name, results in runs.items():
        row = median_run(results)
        cpu_us = statistics.median(result["cpu_us"] for result in results)
        print(
            f"{name:<28}{row['rate']:>10.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
            f"{row['errors']:>9.0f}{statistics.median(ratios[name]):>8.2f}"
            f"{cpu_us:>12.0f}{statistics.median(cpu_ratios[name]):>11.2f}"
        )
    print(f"medians of {rounds} alternating rounds; a ratio is the median of each round's pair")
    for name, results in runs.items():
        print(
            f"  {name}: rounds {' '.join(f'{r:.2f}' for r in ratios[name])}"
            f" ({' '.join(str(round(result['rate'])) for result in results)} req/s);"
            f" CPU {' '.join(f'{r:.2f}' for r in cpu_ratios[name])}"
            f" ({' '.join(str(round(result['cpu_us'])) for result in results)} µs)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs; medians shown")
    args = parser.parse_args()
    require_wrk()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SCENARIOS}
    with contextlib.ExitStack() as stack:
        servers = {name: start(name, stack) for name in SCENARIOS if name not in FRESH_EACH_ROUND}
        for round_number in range(args.rounds):
            order = list(SCENARIOS) if round_number % 2 == 0 else list(reversed(SCENARIOS))
            for name in order:
                if name in FRESH_EACH_ROUND:
                    result = measure_fresh(name, args.seconds, args.connections)
                else:
                    result = measure(name, servers[name], args.seconds, args.connections)
                runs[name].append(result)
    print_table(runs, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
