"""A flood of reads over every firing alert (karma, Grafana and scripts polling the
Alertmanager API's lists and hub's own, the console's incident list) does not starve
ingest: each such read runs off the event loop, at most ``[server] read_concurrency``
at once, and one more is answered 503 with ``Retry-After``, counted in
``hub_reads_refused_total``. Webhooks and ``/readyz`` go on being answered meanwhile,
never refused.

Measured on a real ``hub serve`` before this (30,000 firing alerts, one
``GET /api/v2/alerts`` about 1 s on the loop): with 8 clients polling it, webhooks
waited 6 s at the median; with 32, they timed out. Here the store is smaller and the
limit 1, so the flood is real on a small scale, in a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from conftest import TLS_CONTEXT
from hub_process import HubProcess, hub_process

ALERTS = 5_000
READERS = 12
FLOOD_SECONDS = 4.0
WEBHOOK_BOUND = 5.0
"""Seconds any webhook may take under the flood: generous for a loaded test machine;
before the fix one waited as long as every read queued ahead of it."""
TOKEN = "hook-token"
READS = ("/api/v2/alerts", "/api/v2/alerts/groups", "/api/v1/incidents?muted=true", "/")

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
max_body_bytes = 4194304
read_concurrency = 1

[storage]
path = "{db}"

[[sources]]
name = "prom"
format = "prometheus"
auth = { type = "none" }

[[sources]]
name = "hook"
auth = { type = "bearer", tokens = ["%(token)s"] }

[[receivers]]
name = "ops"
urls = ["logfile://sent.jsonl"]

[route]
receiver = "ops"
group_by = ["alertname", "job"]
group_wait = "0s"
"""


@dataclass
class Tally:
    webhooks: Counter = field(default_factory=Counter)
    webhook_seconds: list[float] = field(default_factory=list)
    probes: Counter = field(default_factory=Counter)
    reads: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def fill(hub: HubProcess) -> None:
    """``ALERTS`` firing alerts in 50 incidents, posted as Prometheus posts them."""
    items = [
        {
            "labels": {"alertname": "Full", "instance": f"host-{n}", "job": f"job-{n % 50}"},
            "annotations": {"summary": f"host-{n} is unhappy"},
            "startsAt": "2026-01-01T00:00:00Z",
        }
        for n in range(ALERTS)
    ]
    with hub.client() as http:
        for start in range(0, ALERTS, 500):
            body = json.dumps(items[start : start + 500])
            answer = http.post(
                "/webhooks/prom/api/v2/alerts",
                content=body,
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 200, answer.text


async def flood(hub: HubProcess, tally: Tally) -> None:
    deadline = time.monotonic() + FLOOD_SECONDS
    limits = httpx.Limits(max_connections=READERS + 2)
    async with httpx.AsyncClient(
        base_url=hub.url, limits=limits, timeout=60, verify=TLS_CONTEXT
    ) as http:
        await asyncio.gather(
            _post_webhooks(http, deadline, tally),
            _probe(http, deadline, tally),
            *(_read(http, READS[n % len(READS)], deadline, tally) for n in range(READERS)),
        )


async def _post_webhooks(http: httpx.AsyncClient, deadline: float, tally: Tally) -> None:
    """One alert fired and resolved in turn: each webhook changes its state."""
    sent = 0
    while time.monotonic() < deadline:
        sent += 1
        status = "firing" if sent % 2 else "resolved"
        body = {"status": status, "summary": "during the flood", "dedup_key": "flapping"}
        started = time.monotonic()
        answer = await http.post(
            "/webhooks/hook", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        tally.webhook_seconds.append(time.monotonic() - started)
        tally.webhooks[answer.status_code] += 1
        await asyncio.sleep(0.05)


async def _probe(http: httpx.AsyncClient, deadline: float, tally: Tally) -> None:
    while time.monotonic() < deadline:
        tally.probes[(await http.get("/readyz")).status_code] += 1
        await asyncio.sleep(0.2)


async def _read(http: httpx.AsyncClient, path: str, deadline: float, tally: Tally) -> None:
    while time.monotonic() < deadline:
        answer = await http.get(path)
        tally.reads[answer.status_code] += 1
        if answer.status_code == 200:
            _check_whole(path, answer, tally)
        elif answer.status_code == 503:
            _check_refusal(path, answer, tally)
        else:
            tally.problems.append(f"{path}: {answer.status_code} {answer.text[:200]}")


def _check_whole(path: str, answer: httpx.Response, tally: Tally) -> None:
    """A read answered is answered in full: every firing alert, or every group (the
    webhooks' own alert fires and resolves in turn meanwhile)."""
    whole = {ALERTS, ALERTS + 1}
    if path == "/api/v2/alerts" and len(answer.json()) not in whole:
        tally.problems.append(f"{path}: {len(answer.json())} alerts, not {ALERTS}")
    if path == "/api/v2/alerts/groups":
        shown = sum(len(group["alerts"]) for group in answer.json())
        if shown not in whole:
            tally.problems.append(f"{path}: {shown} alerts in groups, not {ALERTS}")


def _check_refusal(path: str, answer: httpx.Response, tally: Tally) -> None:
    """A refused read says when to retry, and why: the limit, by its key."""
    if answer.headers.get("retry-after") != "1":
        tally.problems.append(f"{path}: 503 without Retry-After: {dict(answer.headers)}")
    if "[server] read_concurrency" not in answer.text:
        tally.problems.append(f"{path}: 503 not naming the limit: {answer.text[:300]}")


def refused_count(hub: HubProcess) -> float:
    with hub.client() as http:
        text = http.get("/metrics").text
    return float(re.search(r"^hub_reads_refused_total (\S+)$", text, re.MULTILINE).group(1))


def test_a_read_flood_leaves_webhooks_and_readiness_answered_and_refuses_reads_with_503(
    tmp_path,
):
    hub = hub_process(tmp_path, CONFIG % {"token": TOKEN}).start()
    try:
        fill(hub)
        tally = Tally()
        asyncio.run(flood(hub, tally))
        refused = refused_count(hub)
    finally:
        hub.stop()
    seen = (
        f"webhooks {dict(tally.webhooks)} slowest {max(tally.webhook_seconds):.2f}s;"
        f" reads {dict(tally.reads)}; readyz {dict(tally.probes)}; counted {refused}"
    )
    assert not tally.problems, tally.problems[:5]
    assert set(tally.webhooks) == {202}, seen
    assert max(tally.webhook_seconds) < WEBHOOK_BOUND, seen
    assert len(tally.webhook_seconds) >= 3, f"webhooks went on being answered: {seen}"
    assert set(tally.probes) == {200}, seen
    assert set(tally.reads) == {200, 503}, f"reads answered in full, the excess refused: {seen}"
    assert refused == tally.reads[503], seen
