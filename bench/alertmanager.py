"""Alertmanager API v2 ingest (what Prometheus posts) through the real hub, durable,
against Alertmanager itself (in memory) run side by side in the same run.

    python -m bench.alertmanager [--seconds 10] [--connections 16] [--rounds 3]

Both servers are pinned to core 0 and wrk to core 1. Each request carries a batch
of alerts drawn from a pool of 10,000 sent once beforehand: re-sends of known
alerts, which is most of what Prometheus posts.
Goals: hub >= 1.0x Alertmanager at 100 alerts a request, >= 0.5x at one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench.common import (
    free_port,
    median_run,
    require_wrk,
    run_wrk,
    start_alertmanager,
    start_hub,
    stop,
    wait_drained,
)
from bench.resend import bodies, send_round

HUB_PATH = "/webhooks/prom/api/v2/alerts"
POOL = 10_000


def measure(server: str, batch: int, seconds: int, connections: int) -> dict[str, float] | None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        process = start_hub(workdir, port) if server == "hub" else start_alertmanager(workdir, port)
        if process is None:
            return None
        path = HUB_PATH if server == "hub" else "/api/v2/alerts"
        options = {"BENCH_BATCH": str(batch), "BENCH_POOL": str(POOL), "BENCH_PATH": path}
        url = f"http://127.0.0.1:{port}"
        try:
            # Fill the pool first: Prometheus traffic is mostly re-sends of known alerts.
            send_round(port, path, bodies(POOL, "BenchAlert", severity="warning"))
            if server == "hub":
                wait_drained(port)
            run_wrk(url, "alerts_v2.lua", 2, connections, options)  # warm-up
            result = run_wrk(url, "alerts_v2.lua", seconds, connections, options)
        finally:
            stop(process)
    result["alerts"] = result["rate"] * batch
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs; medians shown")
    args = parser.parse_args()
    require_wrk()
    print(
        f"{'batch':>6} {'server':<14}{'req/s':>9}{'alerts/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'non-2xx':>9}{'ratio':>7}"
    )
    for batch, goal in ((100, 1.0), (1, 0.5)):
        runs: dict[str, list] = {"alertmanager": [], "hub": []}
        for _ in range(args.rounds):
            for server, results in runs.items():
                results.append(measure(server, batch, args.seconds, args.connections))
        if None in runs["alertmanager"]:
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
