"""A bulk POST beside readiness probes: 10,000 alerts in one Alertmanager API request
(900 KB), first as new alerts, then re-sent, while a client probes ``/readyz`` back to
back on a connection of its own; the baseline is the same probes on the same hub idle
just before.

    python -m bench.bulk [--alerts 10000] [--rounds 3]

The hub runs on core 0, the two clients (this process's threads) on whatever the OS
gives them. The figure that matters is the slowest probe against the POST's own time:
near 1, the hub answered nothing else while it applied the batch.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.common import free_port, start_hub, stop
from bench.resend import PATHS

IDLE_PROBES = 200


def bulk_body(alerts: int, alertname: str) -> bytes:
    return json.dumps(
        [
            {
                "labels": {"alertname": alertname, "instance": f"host-{n}:9100", "job": "node"},
                "annotations": {"summary": f"host-{n} is unhappy"},
                "startsAt": "2026-11-28T12:00:00Z",
            }
            for n in range(alerts)
        ]
    ).encode()


def probe(connection: http.client.HTTPConnection) -> float:
    """Seconds one ``GET /readyz`` took; raises unless it was answered 200."""
    started = time.perf_counter()
    connection.request("GET", "/readyz")
    answer = connection.getresponse()
    answer.read()
    if answer.status != 200:
        raise RuntimeError(f"/readyz answered {answer.status}")
    return time.perf_counter() - started


def post(port: int, body: bytes, took: list[float]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    started = time.perf_counter()
    connection.request("POST", PATHS["hub"], body, {"Content-Type": "application/json"})
    answer = connection.getresponse()
    answer.read()
    if answer.status != 200:
        raise RuntimeError(f"the bulk POST answered {answer.status}")
    took.append(time.perf_counter() - started)
    connection.close()


def probed_post(port: int, body: bytes) -> tuple[float, list[float]]:
    """The POST's seconds, and the probes answered while it was under way."""
    took: list[float] = []
    sender = threading.Thread(target=post, args=(port, body, took))
    prober = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    probes = []
    sender.start()
    while sender.is_alive():
        probes.append(probe(prober))
    sender.join()
    prober.close()
    return took[0], probes


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="hubs started afresh")
    args = parser.parse_args()
    print(
        f"{'round':<6}{'POST':<9}{'POST ms':>9}{'probes':>8}{'p50 ms':>8}{'max ms':>8}{'ratio':>7}"
    )
    ratios = []
    for round_number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory() as workdir:
            port = free_port()
            hub = start_hub(Path(workdir), port)
            try:
                idle = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                baseline = [probe(idle) for _ in range(IDLE_PROBES)]
                idle.close()
                print(
                    f"{round_number:<6}{'none':<9}{'':>9}{len(baseline):>8}"
                    f"{ms(statistics.median(baseline)):>8}{ms(max(baseline)):>8}"
                )
                body = bulk_body(args.alerts, f"Bulk{round_number}")
                for kind in ("new", "re-sent"):
                    took, probes = probed_post(port, body)
                    ratio = max(probes, default=took) / took
                    ratios.append(ratio)
                    print(
                        f"{'':<6}{kind:<9}{ms(took):>9}{len(probes):>8}"
                        f"{ms(statistics.median(probes)) if probes else '-':>8}"
                        f"{ms(max(probes, default=took)):>8}{ratio:>7.2f}"
                    )
            finally:
                stop(hub)
    print(
        f"{args.alerts} alerts a POST; ratio: the slowest probe over the POST's time"
        f" (highest {max(ratios):.2f}); 1.00: nothing else was answered meanwhile"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
