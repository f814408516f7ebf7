"""Ingest with 10,000 vs 1,000,000 alerts already stored: re-sends of random stored
alerts (the de-dup path, random keys over the unique fingerprint index), through the
real hub, durable. Goal: the 1M rate >= 0.8 of the 10k rate.

    python -m bench.scale [--seconds 10] [--large 1000000]

The store is filled directly with the schema's own migrations and one bulk insert,
then ``hub serve`` runs on it (core 0) under wrk (core 1).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from bench.common import free_port, require_wrk, start_hub, stop, warm_then_measure
from hub.fingerprints import fingerprint
from hub.store import Store

CHUNK = 50_000
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


def measure(stored: int, seconds: int, connections: int) -> dict[str, float]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        fill(workdir / "hub.db", stored)
        process = start_hub(workdir, port)
        options = {"BENCH_KEYS": str(stored), "BENCH_RANDOM": "1"}
        url = f"http://127.0.0.1:{port}"
        try:
            return warm_then_measure(url, "ingest.lua", seconds, connections, options, port)
        finally:
            stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    require_wrk()
    small = measure(10_000, args.seconds, args.connections)
    large = measure(args.large, args.seconds, args.connections)
    print(f"{'stored alerts':>14}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'ratio':>7}")
    for stored, row in ((10_000, small), (args.large, large)):
        print(
            f"{stored:>14}{row['rate']:>9.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
            f"{row['errors']:>9.0f}{row['rate'] / small['rate']:>7.2f}"
        )
    print("goal: ratio >= 0.8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
