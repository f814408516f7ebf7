"""A Prometheus alert that is not re-sent resolves when its endsAt passes, as in
Alertmanager: on a real server with real email, through the normal ingest path (an
``expiry`` delivery in the audit log, a RESOLVED email, a counter), also when the end
passed while the hub was stopped. The console shows when a firing alert ends. A
re-send with a later end keeps it firing, and an alert whose sender gave no end
fires until resolved.

Ends are seconds away on a moved clock (``MovedClock``), passed by moving it once the
test has acted: ends a second away were now and then passed on a loaded machine before
the test had read or re-sent what it meant to."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from conftest import BASE_CONFIG, MovedClock, mail_url, wait_for
from notify_support import metric

PROMETHEUS = (
    BASE_CONFIG
    + """
[[sources]]
name = "prom"
format = "prometheus"
auth = {{ type = "none" }}
"""
)
PATH = "/webhooks/prom/api/v2/alerts"


def start(hub_factory, smtp_port: int, clock: Callable[[], float] = time.time):
    return hub_factory(PROMETHEUS, mail_url=mail_url(smtp_port), clock=clock)


def alert(instance: str, ends_in: float | None, clock: Callable[[], float] = time.time) -> dict:
    """The alert as Prometheus sends it, its end ``ends_in`` seconds from ``clock``'s now."""
    now = datetime.fromtimestamp(clock(), UTC)
    body = {
        "labels": {"alertname": "NodeDown", "instance": instance, "severity": "critical"},
        "annotations": {"summary": f"{instance} is down"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
    }
    if ends_in is not None:
        body["endsAt"] = (now + timedelta(seconds=ends_in)).isoformat()
    return body


def post(http, *alerts: dict) -> None:
    assert http.post(PATH, json=list(alerts)).status_code == 200


def status_of(http, instance: str) -> dict:
    rows = http.get("/api/v1/alerts", params={"label": f'instance="{instance}"'}).json()
    assert len(rows) == 1, rows
    return rows[0]


def ended_total(http) -> float:
    lines = http.get("/metrics").text.splitlines()
    (line,) = [line for line in lines if line.startswith("hub_alerts_ended_total ")]
    return float(line.split()[1])


def expiry_events(http, outcome: str) -> float | None:
    text = http.get("/metrics").text
    return metric(text, "hub_events_total", source="expiry", outcome=outcome)


def test_an_alert_not_re_sent_resolves_at_its_end_and_says_so(hub_factory, smtp):
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start(hub_factory, smtp_port, clock)
    with hub.client() as http:
        assert expiry_events(http, "changed") == 0, "the series exists from start"
        post(http, alert("db1", ends_in=9, clock=clock))
        firing = status_of(http, "db1")
        assert firing["status"] == "firing"
        assert firing["ends_at"].endswith("Z")
        incident_page = f"/incidents/{firing['incident_id']}"  # the console, open: no tokens
        ends = r"ends <time[^>]*>in \ds</time> unless re-sent"
        assert re.search(ends, http.get(incident_page).text)
        wait_for(lambda: [s for s in mailbox.subjects() if "FIRING" in s])

        clock.advance(9)
        wait_for(lambda: status_of(http, "db1")["status"] == "resolved")
        resolved = status_of(http, "db1")
        assert resolved["ends_at"] == firing["ends_at"], "the end it resolved at"
        assert resolved["resolved_at"] == firing["ends_at"]
        assert ended_total(http) == 1
        assert expiry_events(http, "changed") == 1, "counted as every applied event is"
        assert "unless re-sent" not in http.get(incident_page).text
        wait_for(lambda: [s for s in mailbox.subjects() if "RESOLVED" in s])

        (delivery,) = http.get("/api/v1/events", params={"source": "expiry"}).json()
        detail = http.get(f"/api/v1/events/{delivery['id']}").json()
        assert [(e["status"], e["outcome"]) for e in detail["events"]] == [("resolved", "changed")]
        history = http.get(f"/api/v1/alerts/{resolved['id']}").json()["history"]
        assert [h["status"] for h in history] == ["firing", "resolved"]


def test_a_re_send_with_a_later_end_keeps_the_alert_firing(hub_factory, smtp):
    _, smtp_port = smtp
    clock = MovedClock()
    hub = start(hub_factory, smtp_port, clock)
    with hub.client() as http:
        post(http, alert("db1", ends_in=9, clock=clock), alert("db2", ends_in=9, clock=clock))
        post(http, alert("db1", ends_in=300, clock=clock))  # db2 is not re-sent
        clock.advance(10)  # past both first ends: the look that ends db2 is past db1's too
        wait_for(lambda: status_of(http, "db2")["status"] == "resolved")
        assert status_of(http, "db1")["status"] == "firing"
        assert status_of(http, "db1")["duplicates"] == 1
        assert ended_total(http) == 1


def test_a_re_send_with_a_nearer_end_resolves_it_then(hub_factory, smtp):
    _, smtp_port = smtp
    hub = start(hub_factory, smtp_port)
    with hub.client() as http:
        post(http, alert("db1", ends_in=300))
        post(http, alert("db1", ends_in=1))
        wait_for(lambda: status_of(http, "db1")["status"] == "resolved")
        assert ended_total(http) == 1


def test_an_alert_without_an_end_fires_until_resolved(hub_factory, smtp):
    _, smtp_port = smtp
    clock = MovedClock()
    hub = start(hub_factory, smtp_port, clock)
    with hub.client() as http:
        post(http, alert("db1", ends_in=None), alert("db2", ends_in=9, clock=clock))
        post(http, alert("db3", ends_in=9, clock=clock))
        post(http, alert("db3", ends_in=None))  # the re-send takes the end away
        clock.advance(10)  # past db3's first end: the look that ends db2 is past it too
        wait_for(lambda: status_of(http, "db2")["status"] == "resolved")
        assert status_of(http, "db1")["status"] == "firing"
        assert status_of(http, "db3")["status"] == "firing"
        assert status_of(http, "db3")["ends_at"] is None


def test_an_end_that_passed_while_the_hub_was_stopped_resolves_it_at_start(hub_factory, smtp):
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start(hub_factory, smtp_port, clock)
    with hub.client() as http:
        post(http, alert("db1", ends_in=9, clock=clock))
        wait_for(lambda: [s for s in mailbox.subjects() if "FIRING" in s])
    hub.stop()
    clock.advance(10)  # the end passes while the hub is stopped
    hub.start()
    with hub.client() as http:
        wait_for(lambda: status_of(http, "db1")["status"] == "resolved")
        wait_for(lambda: [s for s in mailbox.subjects() if "RESOLVED" in s])
        assert ended_total(http) == 1


STARTED = datetime.now(UTC) - timedelta(minutes=10)


def same_alert(ends_in: float, clock: Callable[[], float] = time.time) -> dict:
    """The alert as Prometheus re-sends it while it fires: startsAt never changes."""
    ends = datetime.fromtimestamp(clock(), UTC) + timedelta(seconds=ends_in)
    labels = {"alertname": "NetBlip", "instance": "web7"}
    return {"labels": labels, "startsAt": STARTED.isoformat(), "endsAt": ends.isoformat()}


def history_of(http, alert_id: int) -> list[tuple[str, int]]:
    history = http.get(f"/api/v1/alerts/{alert_id}").json()["history"]
    return [(h["status"], h["applied"]) for h in history]


def firing_mails(mailbox) -> int:
    return len([s for s in mailbox.subjects() if "FIRING" in s])


def test_a_re_send_after_hub_ended_the_alert_fires_it_again(hub_factory, smtp):
    """A network cut longer than endsAt: hub resolves the alert, as Alertmanager does;
    Prometheus' next re-send (same startsAt, later endsAt) says it still fires."""
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start(hub_factory, smtp_port, clock)
    with hub.client() as http:
        post(http, same_alert(ends_in=9, clock=clock))
        wait_for(lambda: firing_mails(mailbox) == 1)
        clock.advance(10)
        wait_for(lambda: status_of(http, "web7")["status"] == "resolved")
        ended = status_of(http, "web7")

        post(http, same_alert(ends_in=9, clock=clock))
        again = status_of(http, "web7")
        assert again["status"] == "firing"
        assert datetime.fromisoformat(again["ends_at"]) > datetime.fromisoformat(ended["ends_at"])
        assert history_of(http, again["id"]) == [("firing", 1), ("resolved", 1), ("firing", 1)]
        wait_for(lambda: firing_mails(mailbox) == 2)

        clock.advance(10)  # re-sends stopped
        wait_for(lambda: status_of(http, "web7")["status"] == "resolved")
        assert ended_total(http) == 2


def test_a_delayed_firing_never_undoes_the_senders_own_resolve(hub_factory, smtp):
    """Prometheus resolves an alert with endsAt at the resolve time; a firing sent
    before it and delivered after stays stale, whatever its end: only an end hub
    inferred is replaced by a later one (Alertmanager would fire it again until then)."""
    _, smtp_port = smtp
    hub = start(hub_factory, smtp_port)
    with hub.client() as http:
        post(http, same_alert(ends_in=240))
        post(http, same_alert(ends_in=0))  # endsAt now: resolved
        post(http, same_alert(ends_in=300))
        resolved = status_of(http, "web7")
        assert resolved["status"] == "resolved"
        assert history_of(http, resolved["id"]) == [("firing", 1), ("resolved", 1), ("firing", 0)]


def test_a_senders_resolve_after_hub_ended_the_alert_is_final(hub_factory, smtp):
    """Once the sender itself says resolved, a delayed firing is stale again."""
    _, smtp_port = smtp
    hub = start(hub_factory, smtp_port)
    with hub.client() as http:
        post(http, same_alert(ends_in=1))
        wait_for(lambda: status_of(http, "web7")["status"] == "resolved")
        post(http, same_alert(ends_in=0))  # Prometheus' own resolve, after hub's
        post(http, same_alert(ends_in=300))
        assert status_of(http, "web7")["status"] == "resolved"
