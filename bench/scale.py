"""Ingest with 10,000 vs 1,000,000 alerts already stored: re-sends of random stored
alerts (the de-dup path, random keys over the unique fingerprint index), through the
real hub, durable. Goal: the 1M rate >= 0.8 of the 10k rate.

    python -m bench.scale [--seconds 10] [--large 1000000] [--rounds 5]

Each store is filled directly with the schema's own migrations and one bulk insert,
then a ``hub serve`` runs on each (core 0) for the whole bench, and the rounds
alternate between them under wrk (core 1), as ``bench.ingest``'s do: the two sides
of a ratio are measured seconds apart, and the ratio is the median of the rounds'.
One run of each, a minute apart, gave 0.79-0.91 for the same code in one afternoon.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from bench.common import (
    free_port,
    median_run,
    require_wrk,
    start_hub,
    stop,
    warm_then_measure,
)
from hub.fingerprints import fingerprint
from hub.store import Store

CHUNK = 50_000
SMALL = 10_000
# The labels and annotations ingest.lua sends, stored as the store encodes them: a fill
# that differed would have every first re-send rewrite the row (the latest annotations
# win), which the 1M run pays on nearly every request and the 10k run only in warm-up.
LABELS = {"service": "checkout", "env": "prod", "alertname": "HighErrorRate"}
REGION = "eu-west-1"
ANNOTATIONS = msgspec.json.encode(
    {
        "runbook": "https://wiki.example/runbooks/checkout",
        "dashboard": "https://grafana.example/d/checkout",
    }
)


def fill(db: Path, alerts: int) -> None:
    """Stored alerts with dedup keys bench-0 .. bench-N-1 of source ``bench``, as
    ingest.lua sends them, under the fingerprints ingest gives them."""
    store = Store(str(db))
    store.open()
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA synchronous = OFF")
        now = time.time() - 3600
        for start in range(0, alerts, CHUNK):
            rows = [
                (
                    fingerprint("bench", f"bench-{n}", {}),
                    "bench",
                    "firing",
                    "critical",
                    f"checkout API error rate above 5% on pod {n}",
                    msgspec.json.encode({**LABELS, "pod": f"checkout-{n}", "region": REGION}),
                    ANNOTATIONS,
                    now,
                    now,
                    now,
                )
                for n in range(start, min(start + CHUNK, alerts))
            ]
            conn.executemany(
                "INSERT INTO alerts (fingerprint, source, status, severity, summary, labels,"
                " annotations, first_seen, last_seen, last_change) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )


def start_filled(stored: int, stack: contextlib.ExitStack) -> int:
    """A hub on a store of ``stored`` alerts, until ``stack`` closes; its port."""
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    fill(workdir / "hub.db", stored)
    port = free_port()
    stack.callback(stop, start_hub(workdir, port))
    return port


def measure(stored: int, port: int, seconds: int, connections: int) -> dict[str, float]:
    """One warmed-up run of re-sends of random stored alerts."""
    options = {"BENCH_KEYS": str(stored), "BENCH_RANDOM": "1"}
    url = f"http://127.0.0.1:{port}"
    return warm_then_measure(url, "ingest.lua", seconds, connections, options, port)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs; medians shown")
    args = parser.parse_args()
    require_wrk()
    sizes = [SMALL, args.large]
    runs: dict[int, list[dict[str, float]]] = {stored: [] for stored in sizes}
    with contextlib.ExitStack() as stack:
        ports = {stored: start_filled(stored, stack) for stored in sizes}
        for round_number in range(args.rounds):
            for stored in sizes if round_number % 2 == 0 else reversed(sizes):
                runs[stored].append(measure(stored, ports[stored], args.seconds, args.connections))
    ratios = [large["rate"] / small["rate"] for small, large in zip(*runs.values(), strict=True)]
    print(f"{'stored alerts':>14}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'ratio':>7}")
    for stored, results in runs.items():
        row = median_run(results)
        ratio = 1.0 if stored == SMALL else statistics.median(ratios)
        print(
            f"{stored:>14}{row['rate']:>9.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
            f"{row['errors']:>9.0f}{ratio:>7.2f}"
        )
    print(
        f"medians of {args.rounds} alternating rounds; rounds"
        f" {' '.join(f'{ratio:.2f}' for ratio in ratios)}; goal: ratio >= 0.8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
