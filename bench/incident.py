"""An incident of many alerts, and the look that writes its message: the alerts go in
as Prometheus posts them (POSTs of 256, grouped by alertname: one incident), then its
``group_wait`` ends and the dispatcher reads every alert of it, mutes them and writes
the message (in the commit thread, off the event loop). A client probes ``/readyz``
back to back meanwhile; the baseline is the same probes on the same hub idle just
before.

    python -m bench.incident [--alerts 20000] [--group-wait 15] [--rounds 3]

Prints the slowest probe while the message was due against the time from its
``group_wait`` ending to the message being in the outbox (near 1: the hub answered
nothing else while it looked), the idle hub's probes, the hub's peak resident memory
(its high-water mark: sampled between probes, it missed a look that held the probes)
and the size of the message in the outbox. Each round
starts a fresh hub. ``--group-wait`` must outlast the POSTs, or the look comes before
every alert is in (the bench then stops and says so).
"""

from __future__ import annotations

import argparse
import http.client
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bench.bulk import IDLE_PROBES, ms, probe
from bench.common import free_port, rss_mb, start_hub, stop
from bench.resend import PATHS, bodies, send_round

LOOK_WAIT = 300.0
"""Seconds the message may take to be written once due."""


def message_bytes(db: Path) -> int:
    """The size of the first message's payload in the outbox, 0 before it is written."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT length(payload) FROM notifications ORDER BY id").fetchone()
    return row[0] if row else 0


def one_round(alerts: int, group_wait: float) -> dict[str, float]:
    """A fresh hub: its idle probes, the slowest probe while the message was due, the
    time from due to written, its peak RSS and the message's size."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        process = start_hub(
            workdir, port, group_by='["alertname"]', group_wait=f"{group_wait:.0f}s"
        )
        prober = http.client.HTTPConnection("127.0.0.1", port, timeout=LOOK_WAIT)
        try:
            idle = [probe(prober) for _ in range(IDLE_PROBES)]
            started = time.monotonic()
            send_round(port, PATHS["hub"], bodies(alerts, alertname="Outage"))
            prober.close()  # idle past the keep-alive while 200,000 alerts went in
            if time.monotonic() - started >= group_wait:
                raise RuntimeError("the POSTs outlasted group_wait: raise --group-wait")
            probes = []
            deadline = time.monotonic() + group_wait + LOOK_WAIT
            while not message_bytes(workdir / "hub.db"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no message within {LOOK_WAIT:.0f} s of group_wait")
                probes.append(probe(prober))
            written = time.monotonic() - (started + group_wait)
            return {
                "look": written,
                "idle": max(idle),
                "idle_p50": statistics.median(idle),
                "slowest": max(probes),
                "peak_mb": rss_mb(process.pid, "VmHWM"),
                "message_kb": message_bytes(workdir / "hub.db") / 1024,
            }
        finally:
            prober.close()
            stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--group-wait", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'round':<6}{'idle p50 ms':>12}{'idle max ms':>12}{'due max ms':>11}", end="")
    print(f"{'look ms':>9}{'ratio':>7}{'peak MB':>9}{'message KB':>12}")
    ratios = []
    for n in range(1, args.rounds + 1):
        row = one_round(args.alerts, args.group_wait)
        ratios.append(row["slowest"] / row["look"])
        print(
            f"{n:<6}{ms(row['idle_p50']):>12}{ms(row['idle']):>12}{ms(row['slowest']):>11}"
            f"{ms(row['look']):>9}{ratios[-1]:>7.2f}{row['peak_mb']:>9.0f}"
            f"{row['message_kb']:>12.0f}"
        )
    print(
        f"{args.alerts} alerts in one incident; look: from group_wait's end to the message"
        " in the outbox; ratio: the slowest probe meanwhile over the look"
        f" (median {statistics.median(ratios):.2f}); 1.00: nothing else was answered"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
