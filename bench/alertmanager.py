"""Alertmanager API v2 ingest (what Prometheus posts) through the real hub, durable,
against Alertmanager itself (in memory) run side by side in the same run.

    python -m bench.alertmanager [--seconds 10] [--connections 16] [--rounds 5]

Both servers are pinned to core 0 and wrk to core 1. Both run for the whole bench,
each with a pool of 10,000 alerts sent once beforehand, and the rounds alternate
between them (the first server of each round alternates too): the two sides of a
ratio are measured seconds apart, under the same load from other tenants of the
machine. Each request carries a batch of alerts from the pool: re-sends of known
alerts, which is most of what Prometheus posts. The idle server waits on its
sockets and takes no measurable CPU from the busy one.
Goals: hub >= 1.0x Alertmanager at 100 alerts a request, >= 0.5x at one.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

from bench.common import median_run, require_wrk, run_wrk
from bench.resend import PATHS, bodies, start_filled

POOL = 10_000


def measure(server: str, port: int, batch: int, seconds: int, connections: int) -> dict:
    options = {"BENCH_BATCH": str(batch), "BENCH_POOL": str(POOL), "BENCH_PATH": PATHS[server]}
    url = f"http://127.0.0.1:{port}"
    run_wrk(url, "alerts_v2.lua", 2, connections, options)  # warm-up
    result = run_wrk(url, "alerts_v2.lua", seconds, connections, options)
    result["alerts"] = result["rate"] * batch
    return result


def compare(batch: int, args: argparse.Namespace) -> dict[str, list[dict]] | None:
    """Both servers' runs at ``batch`` alerts a request, rounds alternating."""
    runs: dict[str, list[dict]] = {"alertmanager": [], "hub": []}
    with contextlib.ExitStack() as stack:
        ports = {}
        for server in runs:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            # Fill the pool first: Prometheus traffic is mostly re-sends of known alerts.
            pool = bodies(POOL, "BenchAlert", severity="warning")
            started = start_filled(server, workdir, pool, stack)
            if started is None:
                return None
            ports[server] = started[1]
        for round_number in range(args.rounds):
            order = list(runs) if round_number % 2 == 0 else list(reversed(runs))
            for server in order:
                result = measure(server, ports[server], batch, args.seconds, args.connections)
                runs[server].append(result)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs; medians shown")
    args = parser.parse_args()
    require_wrk()
    print(
        f"{'batch':>6} {'server':<14}{'req/s':>9}{'alerts/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'non-2xx':>9}{'ratio':>7}"
    )
    for batch, goal in ((100, 1.0), (1, 0.5)):
        runs = compare(batch, args)
        if runs is None:
            print(
                f"{batch:>6} alertmanager   not installed (apt-get install prometheus-alertmanager)"
            )
            continue
        pairs = zip(runs["hub"], runs["alertmanager"], strict=True)
        round_ratios = [h["alerts"] / a["alerts"] for h, a in pairs]
        ratios = {"alertmanager": 1.0, "hub": statistics.median(round_ratios)}
        for name, results in runs.items():
            row = median_run(results)
            print(
                f"{batch:>6} {name:<14}{row['rate']:>9.0f}{row['alerts']:>10.0f}"
                f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['errors']:>9.0f}{ratios[name]:>7.2f}"
            )
        print(
            f"{'':>6} goal: hub >= {goal}x Alertmanager (medians of {args.rounds} rounds;"
            f" each round: {' '.join(f'{ratio:.2f}' for ratio in round_ratios)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
