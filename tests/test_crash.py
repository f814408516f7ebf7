"""A hub killed with SIGKILL in the middle of a load loses nothing it answered 2xx for
(events, and heartbeats paused and resumed through the API), and every notification
that was due is delivered after the restart (at least once; duplicates are counted and
printed, never a silent loss).

The kill moment is random but seeded: the seed is printed, and ``HUB_CRASH_SEED=<n>``
replays a run.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import threading
import time
from pathlib import Path

import httpx
from conftest import AUTH, TLS_CONTEXT, mail_url, wait_for
from hub_process import HubProcess, hub_process

CLIENTS = 8
EVENTS_PER_CLIENT = 20
ROUNDS = 3
TOKEN = "crash-test-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
API = {"Authorization": "Bearer crash-api-token"}
KEY = re.compile(r"crash-r\d-c\d+-e\d+")
HEARTBEATS = [f"job-{n}" for n in range(EVENTS_PER_CLIENT)]
"""Paused in even rounds and resumed in odd ones, one after another as the events go."""

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}

[storage]
path = "{db}"

[notifier]
backoff = "100ms"
max_backoff = "500ms"

[[sources]]
name = "shop"
format = "native"
auth = { type = "bearer", tokens = ["%s"] }

[[receivers]]
name = "ops"
urls = ["{mail}"]
timeout = "5s"

[route]
receiver = "ops"
group_by = ["key"]
group_wait = "0s"
group_interval = "200ms"
repeat_interval = "1h"

[api]
tokens = [{ name = "operator", token = "crash-api-token", role = "write" }]
""" + "".join(f'\n[[heartbeats]]\nname = "{name}"\nperiod = "1h"\n' for name in HEARTBEATS)


class Load:
    """Clients posting distinct events until told to stop or the hub goes away."""

    def __init__(self, url: str, round_: int) -> None:
        self.url = url
        self.round = round_
        self.acknowledged: set[str] = set()
        self.unanswered: set[str] = set()
        self.unexpected: list[str] = []
        self.paused: dict[str, bool] = {}
        """Each heartbeat whose pause or resume was answered: whether it is paused."""
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._client, args=(c,), daemon=True) for c in range(CLIENTS)
        ]
        self.threads.append(threading.Thread(target=self._operator, daemon=True))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a load client did not stop"

    def _client(self, client: int) -> None:
        with httpx.Client(
            base_url=self.url, headers=HEADERS, timeout=30, verify=TLS_CONTEXT
        ) as http:
            for event in range(EVENTS_PER_CLIENT):
                key = f"crash-r{self.round}-c{client}-e{event}"
                body = {
                    "status": "firing",
                    "summary": f"disk full {key}",
                    "labels": {"key": key},
                    "dedup_key": key,
                }
                try:
                    answer = http.post("/webhooks/shop", json=body)
                except httpx.TransportError:
                    with self.lock:
                        self.unanswered.add(key)
                    return
                with self.lock:
                    if 200 <= answer.status_code < 300:
                        self.acknowledged.add(key)
                    elif answer.status_code != 503:
                        self.unexpected.append(f"{answer.status_code} {answer.text[:200]}")

    def _operator(self) -> None:
        """Pause (even rounds) or resume (odd rounds) every heartbeat in turn. A resume
        answered 409 says the heartbeat is not paused: its pause was never answered."""
        action = "resume" if self.round % 2 else "pause"
        with httpx.Client(base_url=self.url, headers=API, timeout=30, verify=TLS_CONTEXT) as http:
            for name in HEARTBEATS:
                body = {"reason": f"round {self.round}"} if action == "pause" else None
                try:
                    answer = http.post(f"/api/v1/heartbeats/{name}/{action}", json=body)
                except httpx.TransportError:
                    return
                with self.lock:
                    if answer.status_code == 200 or (action, answer.status_code) == ("resume", 409):
                        self.paused[name] = action == "pause"
                    elif answer.status_code != 503:
                        self.unexpected.append(f"{action} {answer.status_code} {answer.text[:200]}")

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)


def stored_keys(hub: HubProcess) -> set[str]:
    """The dedup keys of the stored alerts: their fingerprints are ``shop/<key>``."""
    with hub.client(headers=API) as http:
        alerts = http.get("/api/v1/alerts", params={"limit": 1000}).json()
    return {alert["fingerprint"].removeprefix("shop/") for alert in alerts}


def paused_heartbeats(hub: HubProcess) -> set[str]:
    """The heartbeats the restarted hub shows paused, each by the token that paused it."""
    with hub.client(headers=API) as http:
        shown = http.get("/api/v1/heartbeats").json()
    return {h["name"] for h in shown if h["state"] == "paused" and h["paused_by"] == "operator"}


def mailed_keys(mailbox) -> list[str]:
    return [key for message in mailbox.messages for key in KEY.findall(str(message["Subject"]))]


def crash_once(hub: HubProcess, round_: int, rng: random.Random) -> tuple[Load, set[str]]:
    """Load the hub, SIGKILL it after a random number of answers, restart it; the load
    and the heartbeats paused after the restart."""
    kill_after = rng.randint(1, CLIENTS * EVENTS_PER_CLIENT // 2)
    jitter = rng.uniform(0, 0.05)
    print(f"round {round_}: kill after {kill_after} answers + {jitter:.3f}s")
    load = Load(hub.url, round_)
    load.start()
    wait_for(lambda: load.count() >= kill_after, timeout=120)
    time.sleep(jitter)
    hub.kill()
    load.join()
    started = time.monotonic()
    hub.start()
    print(f"round {round_}: restarted in {time.monotonic() - started:.1f}s")
    assert not load.unexpected, load.unexpected[:5]
    return load, paused_heartbeats(hub)


def test_sigkill_during_load_loses_no_acknowledged_event_and_no_due_notification(tmp_path, smtp):
    mailbox, smtp_port = smtp
    seed = int(os.environ.get("HUB_CRASH_SEED", random.randrange(2**32)))
    print(f"HUB_CRASH_SEED={seed}")
    rng = random.Random(seed)
    hub = hub_process(tmp_path, CONFIG % TOKEN)
    hub.config_path.write_text(hub.config_path.read_text().replace("{mail}", mail_url(smtp_port)))
    hub.start()
    acknowledged: set[str] = set()
    try:
        for round_ in range(ROUNDS):
            load, paused = crash_once(hub, round_, rng)
            acknowledged |= load.acknowledged
            stored = stored_keys(hub)
            lost = acknowledged - stored
            assert not lost, f"seed {seed}: answered 2xx but not stored: {sorted(lost)[:10]}"
            changed = {name for name, wanted in load.paused.items() if (name in paused) != wanted}
            assert not changed, f"seed {seed}: answered 200, undone by the kill: {sorted(changed)}"
            in_flight = len(stored & load.unanswered)
            print(
                f"round {round_}: {len(load.acknowledged)} answered 2xx, {in_flight} in flight"
                f" stored, {len(load.paused)} heartbeats paused or resumed"
            )
            started = time.monotonic()
            _wait_for_mail(hub, mailbox, stored, seed)
            print(f"round {round_}: mailed in {time.monotonic() - started:.1f}s")
        mailed = mailed_keys(mailbox)
        duplicates = len(mailed) - len(set(mailed))
        print(f"{len(set(mailed))} incidents notified, {duplicates} duplicate emails")
        _assert_no_dead_letters(hub, seed)
    finally:
        hub.stop()
    assert "Traceback" not in _after_restarts(hub.log_path)


def _wait_for_mail(hub: HubProcess, mailbox, stored: set[str], seed: int) -> None:
    """Every stored alert's incident is mailed; on timeout, say what the log holds."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if stored <= set(mailed_keys(mailbox)):
            return
        time.sleep(0.1)
    missing = sorted(stored - set(mailed_keys(mailbox)))
    with hub.client(headers=API) as http:
        notes = http.get("/api/v1/notifications", params={"limit": 1000}).json()
        incidents = http.get("/api/v1/incidents", params={"limit": 1000}).json()
    titles = {i["id"]: i["title"] for i in incidents}
    about = [n for n in notes if KEY.findall(titles.get(n["incident_id"], "")) == missing[:1]]
    raise AssertionError(
        f"seed {seed}: {len(missing)} stored alerts never mailed, e.g. {missing[:5]}; "
        f"notifications of the first: {about}; incidents: {len(incidents)}, "
        f"notifications: {len(notes)}"
    )


def _assert_no_dead_letters(hub: HubProcess, seed: int) -> None:
    with hub.client(headers=API) as http:
        dead = http.get("/api/v1/notifications", params={"state": "dead"}).json()
    assert dead == [], f"seed {seed}: dead-lettered notifications: {dead[:3]}"


def _after_restarts(log_path: Path) -> str:
    """The log of every start; a traceback in any of them is a bug worth seeing."""
    return log_path.read_text(errors="replace")


def test_a_notification_claimed_by_a_killed_hub_is_sent_at_the_restart_not_after_its_lease(
    hub_factory, smtp, tmp_path
):
    mailbox, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port), group_wait="1h")
    event = {"status": "firing", "summary": "claimed before the crash", "dedup_key": "lease"}
    with hub.client() as http:
        assert http.post("/webhooks/shop", json=event, headers=AUTH).status_code == 202
    hub.stop()
    with sqlite3.connect(tmp_path / "hub.db") as db:
        incident_id = db.execute("SELECT id FROM incidents").fetchone()[0]
        db.execute(
            "INSERT INTO notifications (incident_id, receiver, channel, integration, kind,"
            " payload, state, created_at, due_at, claimed_until, attempts)"
            " VALUES (?, 'ops', 0, 'mailto', 'firing', ?, 'sending', ?, ?, ?, 1)",
            (incident_id, json.dumps(_context(incident_id)), time.time(), time.time(), 4e9),
        )
    hub.start()
    wait_for(lambda: "claimed before the crash" in " ".join(mailbox.subjects()), timeout=30)


def _context(incident_id: int) -> dict:
    return {
        "incident_id": incident_id,
        "status": "firing",
        "severity": "warning",
        "title": "claimed before the crash",
        "alerts": [],
        "incident_url": "http://127.0.0.1/incidents/1",
        "ack_url": "",
        "receiver": "ops",
    }
