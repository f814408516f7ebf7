"""Inhibition at scale: a hub holding 200,000 firing alerts and an inhibit rule decides
whom to tell about a new alert every 0.2 s, while a client probes ``/readyz`` back to
back; the baseline is the same probes on the same hub idle just before.

    python -m bench.inhibit [--alerts 200000] [--seconds 20] [--rounds 2]

Each dispatcher round with a receiver due finds the rule's firing sources. The alerts go
in as Prometheus posts them (POSTs of 256), under 100 alertnames (one incident each);
a few are ``DatacenterDown``, the rule's sources. Two rules, each on a hub of its own
started afresh: ``plain`` (``alertname="DatacenterDown"``) and ``regex``
(``alertname=~"DatacenterDown|RegionDown"``), each beside ``severity="critical"`` over
warnings. Printed: the probes' p50, p99 and slowest, idle and while new alerts arrive,
and the slowest's ratio to the idle p50. The hub runs on core 0, the two clients (this
process's threads) on whatever the OS gives them.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.bulk import IDLE_PROBES, ms, probe
from bench.common import free_port, start_hub, stop, wait_drained
from bench.resend import PATHS, bodies, send_round

NAMES = 100
"""Alertnames the stored alerts are spread over, an incident each."""
NEW_EVERY = 0.2
"""Seconds between the new alerts, each an incident of its own with a receiver due."""
RULES = {
    "plain": 'alertname="DatacenterDown"',
    "regex": 'alertname=~"DatacenterDown|RegionDown"',
}
RULE = """
[[inhibit_rules]]
source_matchers = ['{source}']
target_matchers = ['alertname="HostDown"']
equal = ["instance"]

[[inhibit_rules]]
source_matchers = ['severity="critical"']
target_matchers = ['severity="warning"']
equal = ["alertname", "instance"]
"""


def fill(port: int, alerts: int) -> None:
    """``alerts`` firing alerts under ``NAMES`` alertnames, ten of them DatacenterDown."""
    per_name = alerts // NAMES
    for n in range(NAMES):
        send_round(port, PATHS["hub"], bodies(per_name, alertname=f"Alert{n}", severity="warning"))
    send_round(port, PATHS["hub"], bodies(10, alertname="DatacenterDown", severity="critical"))


def post_new(port: int, until: float, sent: list[int]) -> None:
    """A new alert every ``NEW_EVERY`` seconds, each of a new alertname, until ``until``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        while time.monotonic() < until:
            for body in bodies(1, alertname=f"Fresh{len(sent)}", severity="warning"):
                connection.request("POST", PATHS["hub"], body, {"Content-Type": "application/json"})
                answer = connection.getresponse()
                answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"a new alert was answered {answer.status}")
            sent.append(1)
            time.sleep(NEW_EVERY)
    finally:
        connection.close()


def one_round(rule: str, alerts: int, seconds: float) -> dict[str, float]:
    """A fresh hub holding ``alerts``: its idle probes and those while new alerts arrive."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        extra = RULE.format(source=RULES[rule])
        process = start_hub(Path(tmp), port, group_by='["alertname"]', extra=extra)
        prober = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            fill(port, alerts)
            wait_drained(port)
            idle = [probe(prober) for _ in range(IDLE_PROBES)]
            sent: list[int] = []
            until = time.monotonic() + seconds
            sender = threading.Thread(target=post_new, args=(port, until, sent))
            sender.start()
            busy = []
            while sender.is_alive():
                busy.append(probe(prober))
            sender.join()
            return {"idle": idle, "busy": busy, "new": len(sent)}
        finally:
            prober.close()
            stop(process)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2, help="hubs started afresh per rule")
    args = parser.parse_args()
    print(
        f"{'rule':<7}{'round':<6}{'new':>5}{'idle p50':>10}{'idle max':>10}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'ratio':>8}"
    )
    for rule in RULES:
        for n in range(1, args.rounds + 1):
            row = one_round(rule, args.alerts, args.seconds)
            idle, busy = row["idle"], row["busy"]
            print(
                f"{rule:<7}{n:<6}{row['new']:>5}{ms(statistics.median(idle)):>10}"
                f"{ms(max(idle)):>10}{ms(statistics.median(busy)):>8}{ms(p99(busy)):>8}"
                f"{ms(max(busy)):>8}{max(busy) / statistics.median(idle):>8.0f}"
            )
    print(
        f"{args.alerts} firing alerts; new: alerts sent, one every {NEW_EVERY} s, each a"
        " dispatcher round; ratio: the slowest probe over the idle p50"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
