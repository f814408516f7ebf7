"""The whole flow on a real server: ingest, de-duplication, out-of-order events,
idempotent deliveries, notifications by real email, and a restart."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
from conftest import AUTH, BASE_CONFIG, mail_url, render_config, wait_for
from hub_process import hub_process

FIRING = {
    "status": "firing",
    "summary": "checkout API error rate above 5%",
    "severity": "critical",
    "labels": {"service": "checkout", "env": "prod", "alertname": "HighErrorRate"},
    "annotations": {"runbook": "https://wiki.example/runbooks/checkout"},
    "dedup_key": "checkout-errors",
    "occurred_at": "2026-11-28T12:00:00Z",
}
RESOLVED = {**FIRING, "status": "resolved", "occurred_at": "2026-11-28T12:10:00Z"}
LATE_FIRING = {**FIRING, "occurred_at": "2026-11-28T12:05:00Z"}


def table_count(db, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_an_alert_travels_the_whole_flow_and_survives_a_restart(hub_factory, smtp, tmp_path):
    mailbox, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    db = tmp_path / "hub.db"
    with hub.client(headers=AUTH) as http:
        first = http.post("/webhooks/shop", json=FIRING)
        assert first.status_code == 202
        body = first.json()
        assert (body["accepted"], body["duplicates"], body["stale"]) == (1, 0, 0)
        assert body["alerts"][0]["fingerprint"] == "shop/checkout-errors"
        assert body["alerts"][0]["status"] == "firing"
        alert_id = body["alerts"][0]["id"]

        wait_for(lambda: len(mailbox.messages) == 1)
        assert "checkout API error rate above 5%" in mailbox.subjects()[0]
        assert "FIRING" in mailbox.subjects()[0]
        assert "checkout API error rate above 5%" in mailbox.text_of(0)

        again = http.post("/webhooks/shop", json=FIRING)
        assert again.status_code == 202
        assert again.json()["duplicates"] == 1
        alert = http.get(f"/api/v1/alerts/{alert_id}").json()
        assert alert["duplicates"] == 1
        assert len(alert["history"]) == 1
        assert table_count(db, "alerts") == 1

        resolved = http.post("/webhooks/shop", json=RESOLVED)
        assert resolved.json()["alerts"][0]["status"] == "resolved"
        wait_for(lambda: len(mailbox.messages) == 2)
        assert "RESOLVED" in mailbox.subjects()[1]

        late = http.post("/webhooks/shop", json=LATE_FIRING)
        assert late.status_code == 202
        assert (late.json()["duplicates"], late.json()["stale"]) == (0, 1)
        assert late.json()["alerts"][0]["status"] == "resolved"
        alert = http.get(f"/api/v1/alerts/{alert_id}").json()
        assert alert["status"] == "resolved"
        assert [h["applied"] for h in alert["history"]] == [1, 1, 0]
        path = f"/api/v1/incidents/{alert['incident_id']}"

        def all_sent():
            shown = http.get(path).json()
            return shown if all(n["state"] == "sent" for n in shown["notifications"]) else None

        incident = wait_for(all_sent)
        assert incident["status"] == "resolved"
        notified = [n["kind"] for n in reversed(incident["notifications"])]
        assert notified == ["firing", "resolved"]

    hub.restart()
    with hub.client(headers=AUTH) as http:
        alert = http.get(f"/api/v1/alerts/{alert_id}").json()
        assert alert["status"] == "resolved"
        assert alert["duplicates"] == 1
        assert len(alert["history"]) == 3
        assert [a["status"] for a in http.get("/api/v1/alerts").json()] == ["resolved"]
    assert len(mailbox.messages) == 2, "nothing is sent twice after a restart"


def test_a_repeated_idempotency_key_gets_the_first_answer_and_counts_once(hub_factory, smtp):
    mailbox, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    headers = {**AUTH, "Idempotency-Key": "delivery-42"}
    with hub.client(headers=headers) as http:
        first = http.post("/webhooks/shop", json=FIRING)
        second = http.post("/webhooks/shop", json=FIRING)
        assert first.status_code == 202
        assert second.status_code == 200
        assert second.json() == first.json()
        alert = http.get(f"/api/v1/alerts/{first.json()['alerts'][0]['id']}").json()
        assert alert["duplicates"] == 0
    wait_for(lambda: len(mailbox.messages) == 1)


def test_two_alerts_sharing_an_x_request_id_are_both_stored(hub_factory, smtp, tmp_path):
    """A tracing id is propagated across unrelated calls: it is no delivery id."""
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    other = {**FIRING, "summary": "disk full on db-1", "dedup_key": "db-1-disk"}
    with hub.client(headers={**AUTH, "X-Request-ID": "trace-abc123"}) as http:
        first = http.post("/webhooks/shop", json=FIRING)
        second = http.post("/webhooks/shop", json=other)
        stored = http.get("/api/v1/alerts").json()
    assert (first.status_code, second.status_code) == (202, 202)
    assert sorted(a["fingerprint"] for a in stored) == ["shop/checkout-errors", "shop/db-1-disk"]
    assert table_count(tmp_path / "hub.db", "deliveries") == 2


def test_a_reused_idempotency_key_with_another_body_is_refused_and_changes_nothing(
    hub_factory, smtp, tmp_path
):
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    db = tmp_path / "hub.db"
    headers = {**AUTH, "Idempotency-Key": "k1"}
    with hub.client(headers=headers) as http:
        first = http.post("/webhooks/shop", json=FIRING)
        before = {t: table_count(db, t) for t in ("deliveries", "events", "alert_history")}
        reused = http.post("/webhooks/shop", json=RESOLVED)
        alert = http.get(f"/api/v1/alerts/{first.json()['alerts'][0]['id']}").json()
        retried = http.post("/webhooks/shop", json=FIRING)
        metrics = http.get("/metrics").text
    assert first.status_code == 202
    assert reused.status_code == 422, reused.text
    assert reused.headers["content-type"].startswith("application/problem+json")
    detail = reused.json()["detail"]
    assert "body differs from the first delivery with Idempotency-Key 'k1'" in detail
    assert alert["status"] == "firing" and len(alert["history"]) == 1
    assert {t: table_count(db, t) for t in before} == before
    assert (retried.status_code, retried.json()) == (200, first.json())
    assert 'hub_webhooks_received_total{outcome="key_reused",source="shop"} 1.0' in metrics


def test_a_resolve_naming_its_alert_by_key_alone_keeps_its_labels_annotations_and_severity(
    hub_factory, smtp
):
    """A sender that resolves by ``dedup_key`` and a summary has said nothing about
    labels, annotations or severity: the alert keeps its own, so silences still match
    it, the resolved message still carries the runbook, and neither it nor the
    incident's timeline calls a critical alert a warning."""
    mailbox, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    by_key = {"status": "resolved", "summary": FIRING["summary"], "dedup_key": "checkout-errors"}
    with hub.client(headers=AUTH) as http:
        alert_id = http.post("/webhooks/shop", json=FIRING).json()["alerts"][0]["id"]
        wait_for(lambda: len(mailbox.messages) == 1)
        answer = http.post("/webhooks/shop", json=by_key)
        assert answer.json()["alerts"][0]["status"] == "resolved"
        alert = http.get(f"/api/v1/alerts/{alert_id}").json()
        timeline = http.get(f"/api/v1/incidents/{alert['incident_id']}").json()["timeline"]
        wait_for(lambda: len(mailbox.messages) == 2)
    assert alert["labels"] == FIRING["labels"]
    assert alert["annotations"] == FIRING["annotations"]
    assert alert["severity"] == "critical"
    resolved = [entry for entry in timeline if entry["kind"] == "alert_resolved"]
    assert [entry["detail"]["severity"] for entry in resolved] == ["critical"]
    assert "RESOLVED" in mailbox.subjects()[1]
    assert FIRING["annotations"]["runbook"] in mailbox.text_of(1)
    assert "critical" in mailbox.text_of(1) and "warning" not in mailbox.text_of(1)


def test_a_resolve_by_key_without_a_summary_keeps_the_alerts_summary_in_every_message(
    hub_factory, smtp
):
    """A sender that resolves by ``dedup_key`` knows only "resolved": the alert keeps
    what it is about, in the resolved message, the API and the message when it fires
    again by key with a summary of its own."""
    mailbox, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    by_key = {"status": "resolved", "dedup_key": "checkout-errors"}
    with hub.client(headers=AUTH) as http:
        alert_id = http.post("/webhooks/shop", json=FIRING).json()["alerts"][0]["id"]
        wait_for(lambda: len(mailbox.messages) == 1)
        answer = http.post("/webhooks/shop", json=by_key)
        assert answer.status_code == 202, answer.text
        assert answer.json()["alerts"][0]["status"] == "resolved"
        wait_for(lambda: len(mailbox.messages) == 2)
        alert = http.get(f"/api/v1/alerts/{alert_id}").json()
    assert alert["summary"] == FIRING["summary"]
    assert alert["severity"] == "critical"
    assert mailbox.subjects()[1].startswith("[RESOLVED]")
    assert mailbox.subjects()[1].endswith(FIRING["summary"])
    assert FIRING["summary"] in mailbox.text_of(1)


def test_a_resolve_without_a_summary_of_an_alert_hub_does_not_have_is_ignored(
    hub_factory, smtp, tmp_path
):
    """There is nothing to call such an alert: as PagerDuty's resolve of nothing, it
    changes nothing, and the answer says so."""
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    with hub.client(headers=AUTH) as http:
        answer = http.post("/webhooks/shop", json={"status": "resolved", "dedup_key": "gone"})
        alerts = http.get("/api/v1/alerts").json()
        metrics = http.get("/metrics").text
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["accepted"], body["ignored"]) == (1, 1)
    assert body["alerts"] == [
        {"id": None, "fingerprint": "shop/gone", "status": None, "incident_id": None}
    ]
    assert alerts == []
    assert table_count(tmp_path / "hub.db", "events") == 0
    assert 'hub_events_total{outcome="ignored",source="shop"} 1.0' in metrics


def test_an_event_for_an_existing_alert_never_changes_its_labels(hub_factory, smtp):
    """The alert's incident was chosen by its labels: a resolve under the same key with
    other labels leaves it with the labels its incident has, and a re-fire groups it
    by them again, so filters and silences on those labels keep finding it."""
    _, smtp_port = smtp
    grouped = BASE_CONFIG + 'group_by = ["service"]\n'
    hub = hub_factory(grouped, mail_url=mail_url(smtp_port))
    fired = {"status": "firing", "summary": "queue stuck", "dedup_key": "queue"}
    with hub.client(headers=AUTH) as http:

        def post(status: str, service: str) -> dict:
            event = {**fired, "status": status, "labels": {"service": service}}
            answer = http.post("/webhooks/shop", json=event)
            assert answer.status_code == 202, answer.text
            return answer.json()["alerts"][0]

        first = post("firing", "a")
        assert post("resolved", "b")["incident_id"] == first["incident_id"]
        resolved_labels = http.get(f"/api/v1/alerts/{first['id']}").json()["labels"]
        again = post("firing", "c")
        alert = http.get(f"/api/v1/alerts/{first['id']}").json()
        incident = http.get(f"/api/v1/incidents/{again['incident_id']}").json()
        relabelled = http.get("/api/v1/alerts", params={"label": 'service=~"b|c"'}).json()
    assert resolved_labels == alert["labels"] == {"service": "a"}
    assert incident["labels"] == {"service": "a"}
    assert relabelled == []


def test_a_list_of_events_is_accepted_in_one_delivery(hub_factory, smtp):
    _, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    events = [
        {"status": "firing", "summary": f"disk full on db-{i}", "labels": {"host": f"db-{i}"}}
        for i in range(3)
    ]
    with hub.client(headers=AUTH) as http:
        answer = http.post("/webhooks/shop", json=events)
        assert answer.status_code == 202
        assert answer.json()["accepted"] == 3
        assert len({a["fingerprint"] for a in answer.json()["alerts"]}) == 3
        listed = http.get("/api/v1/alerts", params={"label": 'host=~"db-[01]"'}).json()
        assert sorted(a["labels"]["host"] for a in listed) == ["db-0", "db-1"]
        assert http.get("/api/v1/alerts", params={"severity": "critical"}).json() == []


BULK_CONFIG = BASE_CONFIG.replace("max_body_bytes = 4096", "max_body_bytes = 4194304").replace(
    "[route]\n", '[route]\ngroup_by = ["alertname"]\n'
)


def test_a_delivery_of_thousands_of_events_leaves_the_hub_answering_meanwhile(smtp, tmp_path):
    """5,000 new alerts in one POST take a while to apply (10,000 took 0.65 s, in which
    the hub answered nothing, and a readiness probe arriving meanwhile held the event
    loop up to a second more): decoded and written off the loop, they leave probes
    answered, each promptly and ready, and are then all stored and answered for. The
    hub runs in a process of its own: in the test's, its clients' threads shared the
    interpreter lock with it, and a loaded machine once held a probe 1.8 s of 3.1."""
    _, smtp_port = smtp
    text = render_config(BULK_CONFIG, port="{port}", db="{db}", mail_url=mail_url(smtp_port))
    hub = hub_process(tmp_path, text).start()
    try:
        probes, answer, took = probed_delivery(hub.url)
    finally:
        hub.stop()
    assert (answer.status_code, answer.json()["accepted"]) == (202, 5000)
    assert table_count(tmp_path / "hub.db", "alerts") == 5000
    assert {status for status, _ in probes} == {200}
    slowest = max(waited for _, waited in probes)
    assert slowest < took / 2, f"a probe waited {slowest:.3f} s of the POST's {took:.3f} s"


LOOK_CONFIG = BULK_CONFIG.replace('group_wait = "{group_wait}"', 'group_wait = "12s"')


def test_the_look_at_an_incident_of_many_alerts_leaves_the_hub_answering_meanwhile(smtp, tmp_path):
    """The look that writes the message about an incident reads each of its alerts:
    20,000 took 335-424 ms, in which the hub answered nothing (a readiness probe waited
    195-304 ms of it). Applied off the event loop, as the delivery that brought them
    in, it leaves probes answered, each promptly and ready, and the message still tells
    of every alert. ``group_wait`` keeps the look apart from the POST."""
    mailbox, smtp_port = smtp
    text = render_config(LOOK_CONFIG, port="{port}", db="{db}", mail_url=mail_url(smtp_port))
    hub = hub_process(tmp_path, text).start()
    events = [
        {"status": "firing", "summary": f"host-{n} down", "labels": {"host": f"host-{n}"}}
        for n in range(20_000)
    ]
    try:
        with httpx.Client(base_url=hub.url, headers=AUTH, timeout=60) as http:
            answer = http.post("/webhooks/shop", json=events)
            probes, look = probed_look(http, tmp_path / "hub.db")
        wait_for(lambda: len(mailbox.messages) == 1, timeout=30)
    finally:
        hub.stop()
    assert (answer.status_code, answer.json()["accepted"]) == (202, 20_000)
    assert "Alerts: 20000 firing, 0 resolved" in mailbox.text_of(0)
    assert "... and 19900 more alerts" in mailbox.text_of(0)
    assert {status for status, _ in probes} == {200}
    slowest = max(waited for _, waited in probes)
    assert slowest < look / 3, f"a probe waited {slowest:.3f} s of the look's {look:.3f} s"


def probed_look(http: httpx.Client, db) -> tuple[list[tuple[int, float]], float]:
    """Probe ``/readyz`` back to back from just before the incident's message falls due
    until it is in the outbox: each probe's status and wait, and the look's time from
    due to written."""
    with sqlite3.connect(db) as conn:
        (due_at,) = conn.execute("SELECT due_at FROM incident_receivers").fetchone()
    due = time.monotonic() + due_at - time.time()
    assert due > time.monotonic(), "the POST outlasted group_wait: the look came with it"
    time.sleep(max(0.0, due - time.monotonic() - 0.5))
    probes = []
    while not table_count(db, "notifications"):
        assert time.monotonic() - due < 60, "no message within 60 s of falling due"
        started = time.monotonic()
        status = http.get("/readyz").status_code
        probes.append((status, time.monotonic() - started))
    return probes, time.monotonic() - due


def probed_delivery(url: str) -> tuple[list[tuple[int, float]], httpx.Response, float]:
    """POST 5,000 new alerts and probe ``/readyz`` back to back meanwhile: each probe's
    status and wait, the POST's answer and how long it took."""
    events = [
        {"status": "firing", "summary": f"host-{n} down", "labels": {"host": f"host-{n}"}}
        for n in range(5000)
    ]
    answered = []

    def deliver():
        started = time.monotonic()
        with httpx.Client(base_url=url, headers=AUTH, timeout=60) as http:
            answer = http.post("/webhooks/shop", json=events)
        answered.append((answer, time.monotonic() - started))

    delivery = threading.Thread(target=deliver)
    delivery.start()
    probes = []
    with httpx.Client(base_url=url, timeout=60) as http:
        while delivery.is_alive():
            started = time.monotonic()
            status = http.get("/readyz").status_code
            probes.append((status, time.monotonic() - started))
    delivery.join()
    (answer, took), *_ = answered
    return probes, answer, took


def test_a_sender_clock_running_ahead_never_outranks_the_events_after_it(hub_factory, smtp):
    """A time later than the receive time counts as the receive time: a firing dated
    next year is resolved by the resolve sent next, and a resolve dated next year does
    not keep the alert from firing again. The sender's time stays in the stored body."""
    _, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    next_year = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    firing = {"status": "firing", "summary": "clock ahead", "dedup_key": "ahead"}
    resolved = {**firing, "status": "resolved"}
    with hub.client(headers=AUTH) as http:

        def post(event: dict) -> tuple[str, int]:
            answer = http.post("/webhooks/shop", json=event)
            assert answer.status_code == 202
            return answer.json()["alerts"][0]["status"], answer.json()["stale"]

        assert post({**firing, "occurred_at": next_year}) == ("firing", 0)
        assert post(resolved) == ("resolved", 0)
        assert post({**resolved, "dedup_key": "back", "occurred_at": next_year}) == ("resolved", 0)
        assert post({**firing, "dedup_key": "back"}) == ("firing", 0)
        one_delivery = [{**firing, "occurred_at": next_year}, resolved]
        batch = http.post(
            "/webhooks/shop", json=[{**e, "dedup_key": "batch"} for e in one_delivery]
        )
        assert (batch.json()["alerts"][-1]["status"], batch.json()["stale"]) == ("resolved", 0)

        (first, *_) = reversed(http.get("/api/v1/events", params={"source": "shop"}).json())
        delivery = http.get(f"/api/v1/events/{first['id']}").json()
        alert = http.get(f"/api/v1/alerts/{delivery['events'][0]['alert_id']}").json()
    now = datetime.now(UTC)
    assert datetime.fromisoformat(delivery["events"][0]["occurred_at"]) <= now
    assert [datetime.fromisoformat(h["at"]) <= now for h in alert["history"]] == [True, True]
    assert next_year in delivery["body"]


TICKETS = (
    BASE_CONFIG
    + """
[[sources]]
name = "tickets"
format = "generic"
auth = {{ type = "none" }}

[sources.mapping]
summary = "title"
status = "state"
status_map = {{ open = "firing", taken = "acknowledged", closed = "resolved" }}
dedup_key = "id"
"""
)


def test_an_acknowledgement_of_an_alert_hub_does_not_have_is_ignored(hub_factory, smtp, tmp_path):
    """It must not create a firing alert that pages: the answer says so, nothing is stored."""
    hub = hub_factory(TICKETS, mail_url=mail_url(smtp[1]))
    taken = {"id": "T-1", "title": "printer on fire", "state": "taken"}
    with hub.client() as http:
        answer = http.post("/webhooks/tickets", json=taken)
        alerts = http.get("/api/v1/alerts").json()
        incidents = http.get("/api/v1/incidents").json()
    assert answer.status_code == 202
    body = answer.json()
    assert (body["accepted"], body["ignored"]) == (1, 1)
    assert body["alerts"] == [
        {"id": None, "fingerprint": "tickets/T-1", "status": None, "incident_id": None}
    ]
    assert (alerts, incidents) == ([], [])
    assert table_count(tmp_path / "hub.db", "events") == 0


def test_an_acknowledgement_of_a_resolved_alert_is_ignored(hub_factory, smtp):
    """A ticket taken after it closed acknowledges nothing: not the incident its alert
    shared with a ticket still open. The answer shows the alert as it stays."""
    hub = hub_factory(TICKETS, mail_url=mail_url(smtp[1]))
    with hub.client() as http:
        for ticket, state in (("T-1", "open"), ("T-2", "open"), ("T-1", "closed")):
            body = {"id": ticket, "title": f"printer {ticket}", "state": state}
            assert http.post("/webhooks/tickets", json=body).status_code == 202
        taken = {"id": "T-1", "title": "printer T-1", "state": "taken"}
        answer = http.post("/webhooks/tickets", json=taken)
        (incident,) = http.get("/api/v1/incidents").json()
    assert answer.status_code == 202
    assert answer.json()["ignored"] == 1
    (alert,) = answer.json()["alerts"]
    assert (alert["fingerprint"], alert["status"]) == ("tickets/T-1", "resolved")
    assert alert["incident_id"] == incident["id"]
    assert (incident["status"], incident["acknowledged_by"]) == ("open", None)
