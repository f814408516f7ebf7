"""Single-event native ingest through the real hub vs a bare Litestar endpoint that
only decodes the same body. One run measures both, so the ratio is meaningful on a
shared, noisy machine.

    python -m bench.ingest [--seconds 10] [--connections 64] [--rounds 3]

Cores: the server under test is pinned to core 0 and wrk (Debian package ``wrk``)
to core 1. The hub runs durable (synchronous=FULL) with a notification per new
alert going to a log file. Scenarios: ``new`` (every request a new alert: state
change, history row, outbox row) and ``repeat`` (1000 alerts re-sent: de-dup path).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
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


def measure(start, seconds: int, connections: int, keys: int) -> dict[str, float]:
    port = free_port()
    keys_env = {"BENCH_KEYS": str(keys)}
    with tempfile.TemporaryDirectory() as tmp:
        process = start(Path(tmp), port)
        drain = port if start is start_hub else None
        try:
            url = f"http://127.0.0.1:{port}"
            return warm_then_measure(url, "ingest.lua", seconds, connections, keys_env, drain)
        finally:
            stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs; medians shown")
    args = parser.parse_args()
    require_wrk()
    scenarios = {"hub: new alert each": 0, "hub: repeats of 1000": 1000}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in (BARE, *scenarios)}
    for _ in range(args.rounds):
        runs[BARE].append(measure(start_bare, args.seconds, args.connections, 0))
        for name, keys in scenarios.items():
            runs[name].append(measure(start_hub, args.seconds, args.connections, keys))
    print(f"{'scenario':<28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'ratio':>8}")
    for name, results in runs.items():
        ratios = [hub["rate"] / bare["rate"] for hub, bare in zip(results, runs[BARE], strict=True)]
        row = median_run(results)
        print(
            f"{name:<28}{row['rate']:>10.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
            f"{row['errors']:>9.0f}{statistics.median(ratios):>8.2f}"
            f"   rounds: {' '.join(f'{ratio:.2f}' for ratio in ratios)}"
        )
    print(f"medians of {args.rounds} alternating rounds; ratio: median of each round's pair")
    return 0


if __name__ == "__main__":
    sys.exit(main())
