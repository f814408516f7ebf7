"""Reads run aside (``Store.read_aside``: the Alertmanager API's alert lists,
``/api/v1/alerts`` and ``/api/v1/incidents``, the console's incident pages) run in read
threads while the event loop goes on changing what they read: alerts fire and resolve,
silences are created and expired, incidents acknowledged, the config reloaded with
other routes, inhibit rules, static silences and receivers. On a real ``hub serve``,
for a few seconds of all of it at once: no read fails (a 503 of the read limit only,
with ``Retry-After``), every answer is whole and agrees with itself (an alert shown
suppressed says by what; a list of muted alerts holds muted alerts), and the log has
no traceback. A read aside cut short, by its client leaving or by hub stopping, gives
its slot back and stops nothing.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from conftest import TLS_CONTEXT
from console_support import sign_in
from hub_process import HubProcess, hub_process

ADMIN = {"Authorization": "Bearer admin-token"}
HOOK = {"Authorization": "Bearer hook-token"}
STRESS_SECONDS = 5.0
TEAMS = {"muted": 600, "paged": 600, "static": 200}
"""Firing alerts that never change, by team: a silence the test makes and expires over
and over mutes ``muted``; an inhibit rule some configs hold mutes ``paged`` while an
``Outage`` of its job fires; static silences and a maintenance window some configs
hold mute ``static``."""
OUTAGES = 10
STABLE = sum(TEAMS.values()) + OUTAGES
CHURN = 20
"""Alerts that fire and resolve in turn (and so flap: they are not checked for why)."""

BASE = """
[server]
host = "127.0.0.1"
port = {port}
max_body_bytes = 4194304
read_concurrency = 2

[storage]
path = "{db}"

[api]
tokens = [{ name = "ada", token = "admin-token", role = "admin" }]

[[sources]]
name = "prom"
format = "prometheus"
auth = { type = "none" }

[[sources]]
name = "hook"
auth = { type = "bearer", tokens = ["hook-token"] }

[[receivers]]
name = "ops"
urls = ["logfile://sent.jsonl"]
"""
PLAIN = """
[route]
receiver = "ops"
group_by = ["alertname", "job"]
group_wait = "0s"
"""
MUTING = """
[[receivers]]
name = "spare"
urls = ["logfile://spare.jsonl"]

[route]
receiver = "ops"
group_by = ["alertname"]
group_wait = "0s"

[[inhibit_rules]]
source_matchers = ['alertname="Outage"']
target_matchers = ['team="paged"']
equal = ["job"]

[[silences]]
matchers = ['team="static"', 'job=~"job-1.*"']
comment = "static"

[[maintenance]]
name = "window"
starts_at = "2020-01-01T00:00:00Z"
ends_at = "2999-01-01T00:00:00Z"
matchers = ['team="static"']
"""
CONFIGS = (BASE + PLAIN, BASE + MUTING)


@dataclass
class Tally:
    reads: Counter = field(default_factory=Counter)
    writes: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def started(tmp_path: Path, read_concurrency: int = 2) -> HubProcess:
    """A hub holding the ``STABLE`` alerts, posted as Prometheus posts them."""
    config = CONFIGS[1].replace("read_concurrency = 2", f"read_concurrency = {read_concurrency}")
    hub = hub_process(tmp_path, config).start()
    items = [
        {
            "labels": {
                "alertname": f"Team-{team}",
                "team": team,
                "job": f"job-{n % 20}",
                "instance": f"host-{n}",
            },
            "annotations": {"summary": f"{team} {n}"},
            "startsAt": "2026-01-01T00:00:00Z",
        }
        for team, count in TEAMS.items()
        for n in range(count)
    ] + [{"labels": {"alertname": "Outage", "job": f"job-{n}"}} for n in range(OUTAGES)]
    with hub.client() as http:
        for start in range(0, len(items), 500):
            body = json.dumps(items[start : start + 500])
            answer = http.post(
                "/webhooks/prom/api/v2/alerts",
                content=body,
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 200, answer.text
    return hub


def session_cookies(hub: HubProcess) -> httpx.Cookies:
    with hub.client() as http:
        assert sign_in(http, "admin-token").status_code in (302, 303), "signed in"
        return http.cookies


# reads ---------------------------------------------------------------------


def _suppressed_says_why(alerts: list[dict]) -> list[str]:
    """An alert that neither flaps nor is muted by a time interval (none here, but for
    the churning ones) is suppressed exactly when silences or inhibit rules hold it."""
    found = []
    for alert in alerts:
        if alert["labels"].get("team") in (None, "churn"):
            continue
        status = alert["status"]
        held = bool(status["silencedBy"] or status["inhibitedBy"])
        if (status["state"] == "suppressed") != held:
            found.append(f"{alert['labels']}: {status}")
    return found


def _v2_alerts(body: list) -> list[str]:
    found = [] if len(body) >= STABLE else [f"{len(body)} alerts, fewer than {STABLE}"]
    return found + _suppressed_says_why(body)


def _v2_groups(body: list) -> list[str]:
    return _suppressed_says_why([alert for group in body for alert in group["alerts"]])


def _muted_alerts(want: bool) -> Callable[[list], list[str]]:
    """``?muted=`` lists only the firing alerts a mute holds, or only the others."""

    def check(body: list) -> list[str]:
        return [
            f"muted={want}: alert {alert['id']} has mutes {alert['mutes']}"
            for alert in body
            if alert["status"] == "firing" and bool(alert["mutes"]) != want
        ]

    return check


def _one(key: str) -> Callable[[dict], list[str]]:
    return lambda body: [] if key in body else [f"no {key!r} in {sorted(body)}"]


def _page(body: str) -> list[str]:
    return [] if body.rstrip().endswith("</html>") else [f"a page cut short: {body[-200:]!r}"]


def reads(incident: int, alert: int) -> dict[str, Callable]:
    """Each read aside, with what its answer must satisfy."""
    return {
        "/api/v2/alerts": _v2_alerts,
        "/api/v2/alerts/groups": _v2_groups,
        "/api/v1/alerts?muted=true&status=firing&limit=500": _muted_alerts(True),
        "/api/v1/alerts?muted=false&limit=500": _muted_alerts(False),
        f"/api/v1/alerts/{alert}": _one("history"),
        "/api/v1/incidents?muted=true": lambda body: [],
        "/api/v1/incidents?muted=false&status=open": lambda body: [],
        f"/api/v1/incidents/{incident}": _one("alerts"),
        "/?muted=true": _page,
        f"/incidents/{incident}": _page,
    }


async def _read(
    http: httpx.AsyncClient, path: str, check: Callable, deadline: float, tally: Tally
) -> None:
    while time.monotonic() < deadline:
        answer = await http.get(path)
        tally.reads[answer.status_code] += 1
        if answer.status_code == 503:
            if answer.headers.get("retry-after") != "1":
                tally.problems.append(f"{path}: 503 without Retry-After: {answer.text[:200]}")
            await asyncio.sleep(0.01)
        elif answer.status_code != 200:
            tally.problems.append(f"{path}: {answer.status_code} {answer.text[:300]}")
        else:
            body = answer.text if path.startswith(("/?", "/incidents")) else answer.json()
            tally.problems += [f"{path}: {problem}" for problem in check(body)[:3]]


# writes --------------------------------------------------------------------


async def _churn(http: httpx.AsyncClient, deadline: float, tally: Tally) -> None:
    """The ``CHURN`` alerts fired and resolved in turn, and now and then a new one."""
    sent = 0
    while time.monotonic() < deadline:
        sent += 1
        key = f"churn-{sent % CHURN}" if sent % 5 else f"new-{sent}"
        status = "firing" if (sent // CHURN) % 2 == 0 or key.startswith("new") else "resolved"
        event = {"status": status, "summary": key, "dedup_key": key, "labels": {"team": "churn"}}
        answer = await http.post("/webhooks/hook", json=event, headers=HOOK)
        tally.writes[f"webhook {answer.status_code}"] += 1
        await asyncio.sleep(0.01)


async def _silence(http: httpx.AsyncClient, deadline: float, tally: Tally) -> None:
    """A silence over every ``muted`` alert made and expired over and over."""
    body = {"matchers": ['team="muted"'], "comment": "stress", "duration": "1h"}
    while time.monotonic() < deadline:
        made = await http.post("/api/v1/silences", json=body, headers=ADMIN)
        tally.writes[f"silence {made.status_code}"] += 1
        await asyncio.sleep(0.02)
        if made.status_code == 201:
            gone = await http.delete(f"/api/v1/silences/{made.json()['id']}", headers=ADMIN)
            tally.writes[f"expire {gone.status_code}"] += 1
        await asyncio.sleep(0.02)


async def _ack(http: httpx.AsyncClient, incidents: list[int], deadline: float, tally: Tally):
    turn = 0
    while time.monotonic() < deadline:
        turn += 1
        action = "ack" if turn % 2 else "unack"
        for incident in incidents:
            done = await http.post(f"/api/v1/incidents/{incident}/{action}", headers=ADMIN)
            tally.writes[f"{action} {done.status_code}"] += 1
        await asyncio.sleep(0.02)


async def _reload(hub: HubProcess, http: httpx.AsyncClient, deadline: float, tally: Tally):
    """The config swapped between one without mutes and one with inhibition, static
    silences, a maintenance window, another receiver and other group labels."""
    turn = 0
    while time.monotonic() < deadline:
        turn += 1
        text = CONFIGS[turn % 2].replace("{port}", str(hub.port))
        db = hub.config_path.with_suffix(".db").as_posix()
        hub.config_path.write_text(text.replace("{db}", db))
        answer = await http.post("/-/reload", headers=ADMIN)
        tally.writes[f"reload {answer.status_code}"] += 1
        if answer.status_code != 200:
            tally.problems.append(f"reload: {answer.status_code} {answer.text[:300]}")
        await asyncio.sleep(0.1)


async def stress(hub: HubProcess, cookies: httpx.Cookies, tally: Tally) -> None:
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(
        base_url=hub.url,
        limits=limits,
        timeout=60,
        headers=ADMIN,
        cookies=cookies,
        verify=TLS_CONTEXT,
    ) as http:
        listed = (await http.get("/api/v1/incidents?status=open&limit=5")).json()
        incidents = [incident["id"] for incident in listed]
        alert = (await http.get("/api/v1/alerts?limit=1")).json()[0]["id"]
        deadline = time.monotonic() + STRESS_SECONDS
        await asyncio.gather(
            *(
                _read(http, path, check, deadline, tally)
                for path, check in reads(incidents[0], alert).items()
            ),
            _churn(http, deadline, tally),
            _silence(http, deadline, tally),
            _ack(http, incidents[1:3], deadline, tally),
            _reload(hub, http, deadline, tally),
        )


def troubles(log: str) -> list[str]:
    """Log lines that say something went wrong: a traceback, an error."""
    return [line for line in log.splitlines() if "Traceback" in line or " level=error " in line]


def test_reads_aside_stay_whole_while_alerts_silences_acks_and_reloads_change_under_them(
    tmp_path,
):
    hub = started(tmp_path)
    tally = Tally()
    try:
        asyncio.run(stress(hub, session_cookies(hub), tally))
    finally:
        hub.stop()
    print(f"reads {dict(tally.reads)}; writes {dict(tally.writes)}")
    assert not tally.problems, tally.problems[:10]
    assert set(tally.reads) <= {200, 503} and tally.reads[200] >= 10, tally.reads
    # that each kind of change went on meanwhile: a loaded machine makes fewer
    assert tally.writes["silence 201"] >= 3 and tally.writes["reload 200"] >= 3, tally.writes
    assert not troubles(hub.log()), troubles(hub.log())[:5]


def _hang_up_during(hub: HubProcess, path: str) -> None:
    """Ask for ``path`` and hang up before the answer, as a client timing out does."""
    with socket.create_connection(("127.0.0.1", hub.port)) as sock:
        request = f"GET {path} HTTP/1.1\r\nHost: hub\r\nAuthorization: {ADMIN['Authorization']}"
        sock.sendall(f"{request}\r\n\r\n".encode())
        time.sleep(0.05)


def _answered(http: httpx.Client, path: str, seconds: float = 10.0) -> int:
    """The status of ``path`` once it is no longer refused for the read limit."""
    deadline = time.monotonic() + seconds
    while (status := http.get(path).status_code) == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    return status


HUNG_UP = ("/api/v2/alerts", "/api/v1/incidents?muted=true", "/api/v2/alerts/groups")


def test_a_read_aside_whose_client_hangs_up_gives_its_slot_back(tmp_path):
    """With one slot, each read its client left mid-way still runs to its end, and then
    the next read is answered: were a slot kept, every read after would be a 503."""
    hub = started(tmp_path, read_concurrency=1)
    try:
        with hub.client(headers=ADMIN) as http:
            answered = []
            for path in HUNG_UP * 2:
                _hang_up_during(hub, path)
                answered.append(_answered(http, path))
    finally:
        hub.stop()
    assert answered == [200] * 6
    assert not troubles(hub.log()), troubles(hub.log())[:5]


async def _read_until_gone(http: httpx.AsyncClient, path: str, seen: Counter) -> None:
    while True:
        try:
            seen[(await http.get(path)).status_code] += 1
        except httpx.TransportError:
            return


async def stop_mid_reads(
    hub: HubProcess, paths: Sequence[str], headers: Mapping[str, str]
) -> tuple[float, Counter]:
    """``paths`` read over and over, one client task each; hub stopped (SIGTERM) while
    they are. How long it took to exit, and the statuses the reads got."""
    seen: Counter = Counter()
    async with httpx.AsyncClient(
        base_url=hub.url, headers=dict(headers), timeout=30, verify=TLS_CONTEXT
    ) as http:
        readers = [asyncio.create_task(_read_until_gone(http, path, seen)) for path in paths]
        await asyncio.sleep(1.0)
        assert hub.process is not None
        hub.process.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        await asyncio.to_thread(hub.process.wait, 30)
        took = time.monotonic() - stopping
        await asyncio.wait_for(asyncio.gather(*readers), 30)
    return took, seen


def test_hub_stopping_while_reads_aside_run_stops_promptly_and_cleanly(tmp_path):
    """The store closes after the reads under way end, on connections still open: no
    read fails for it, and nothing hangs (the server waits up to 10 s for requests)."""
    hub = started(tmp_path)
    try:
        took, seen = asyncio.run(
            stop_mid_reads(
                hub, ("/api/v2/alerts", "/api/v2/alerts/groups", "/api/v1/alerts?muted=true"), ADMIN
            )
        )
    finally:
        hub.stop()
    assert took < 10, f"hub took {took:.1f}s to stop"
    assert seen[200] > 0 and set(seen) <= {200, 503}, seen
    assert "event=hub_stopped" in hub.log()
    assert not troubles(hub.log()), troubles(hub.log())[:5]
