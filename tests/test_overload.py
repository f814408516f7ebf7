"""A flood well over what the hub can commit: it pushes back with 503 (queue full) or
429 (rate limited), each with ``Retry-After``, never another 5xx; its memory stays
bounded; it is ready right after; and every event it answered 2xx for is stored.

The store's write queue is made tiny (``[storage] queue_max``) and each commit holds
one write (``batch_max``), so a few dozen concurrent clients are far above what it
can take: a real flood on a small scale, in a few seconds.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from conftest import TLS_CONTEXT
from hub_process import HubProcess, hub_process

FLOOD_SECONDS = 4.0
CONCURRENCY = 48
RSS_CAP_KB = 300 * 1024
TOKEN = "flood-token"

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}

[storage]
path = "{db}"
batch_max = 1
queue_max = 2

[[sources]]
name = "flood"
format = "native"
auth = { type = "bearer", tokens = ["%(token)s"] }

[[sources]]
name = "limited"
format = "native"
auth = { type = "bearer", tokens = ["%(token)s"] }
rate_limit = 20
burst = 5

[[receivers]]
name = "ops"
urls = ["logfile://sent.jsonl"]

[route]
receiver = "ops"
group_wait = "0s"
group_interval = "1s"
repeat_interval = "1h"
"""


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    accepted: set[str] = field(default_factory=set)
    missing_retry_after: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)


async def flood(hub: HubProcess, tally: Tally) -> None:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    deadline = time.monotonic() + FLOOD_SECONDS
    async with httpx.AsyncClient(
        base_url=hub.url, headers=headers, limits=limits, timeout=60, verify=TLS_CONTEXT
    ) as http:
        clients = [_client(http, c, deadline, tally) for c in range(CONCURRENCY)]
        await asyncio.gather(_watch_memory(hub, deadline, tally), *clients)


async def _client(http: httpx.AsyncClient, client: int, deadline: float, tally: Tally) -> None:
    sent = 0
    while time.monotonic() < deadline:
        key = f"flood-{client}-{sent}"
        source = "limited" if client % 8 == 0 else "flood"
        body = {
            "status": "firing",
            "summary": f"queue backlog {key}",
            "labels": {"key": key, "padding": "x" * 2000},
            "dedup_key": key,
        }
        answer = await http.post(f"/webhooks/{source}", json=body)
        sent += 1
        _count(tally, key, answer)


def _count(tally: Tally, key: str, answer: httpx.Response) -> None:
    status = answer.status_code
    tally.statuses[status] += 1
    if 200 <= status < 300:
        tally.accepted.add(key)
    elif status in (429, 503):
        if not answer.headers.get("retry-after", "").isdigit():
            tally.missing_retry_after.append(f"{status} {dict(answer.headers)}")
        if not answer.headers["content-type"].startswith("application/problem+json"):
            tally.unexpected.append(f"{status} not problem+json: {answer.text[:200]}")
    else:
        tally.unexpected.append(f"{status} {answer.text[:200]}")


async def _watch_memory(hub: HubProcess, deadline: float, tally: Tally) -> None:
    while time.monotonic() < deadline:
        tally.rss_kb.append(hub.rss_kb())
        await asyncio.sleep(0.25)


def stored_keys(db: str) -> set[str]:
    """The dedup keys of the stored alerts: their fingerprints are ``<source>/<key>``."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT fingerprint FROM alerts")
        return {fingerprint.partition("/")[2] for (fingerprint,) in rows}


def test_a_flood_gets_back_pressure_with_retry_after_bounded_memory_and_no_lost_event(
    tmp_path,
):
    config = CONFIG % {"token": TOKEN}
    hub = hub_process(tmp_path, config)
    hub.start()
    try:
        before = hub.rss_kb()
        tally = Tally()
        asyncio.run(flood(hub, tally))
        after = hub.rss_kb()
        with hub.client() as http:
            ready = http.get("/readyz")
        stored = stored_keys((tmp_path / "hub.db").as_posix())
    finally:
        hub.stop()
    print(f"statuses {dict(tally.statuses)}; RSS {before} kB -> peak {max(tally.rss_kb)} kB")
    assert not tally.unexpected, tally.unexpected[:5]
    assert not tally.missing_retry_after, tally.missing_retry_after[:5]
    assert tally.statuses[503] > 0, "the flood never filled the write queue"
    assert tally.accepted, "the hub accepted nothing at all"
    assert ready.status_code == 200, ready.text
    assert max([after, *tally.rss_kb]) < RSS_CAP_KB
    assert tally.accepted <= stored, sorted(tally.accepted - stored)[:10]
    assert "Traceback" not in hub.log(), hub.log()[-3000:]
    assert "event=webhook_refused" not in hub.log(), "429 and 503 are counted, not logged"
