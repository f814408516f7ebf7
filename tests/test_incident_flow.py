"""Incidents over HTTP: correlation across sources, acknowledgement with an actor, and
muting at send time (silence, inhibition, maintenance, flapping) while alerts are kept."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import MovedClock, mail_url, wait_for
from test_metrics_catalogue import label_values
from test_snooze import unsent

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}

[storage]
path = "{db}"

[api]
tokens = [
  {{ name = "dana", token = "write-token", role = "write" }},
  {{ name = "eve", token = "other-write-token", role = "write" }},
]

[[sources]]
name = "shop"
auth = {{ type = "bearer", tokens = ["shop-token"] }}

[[sources]]
name = "uptime"
auth = {{ type = "bearer", tokens = ["uptime-token"] }}

[[receivers]]
name = "ops"
urls = ["{mail_url}"]
timeout = "2s"

[route]
receiver = "ops"
group_by = ["service"]
group_wait = "{group_wait}"
group_interval = "{group_interval}"
repeat_interval = "1h"

[flapping]
threshold = 3
window = "10m"

[[inhibit_rules]]
source_matchers = ['alertname="DatacenterDown"']
target_matchers = ['severity="warning"']
equal = ["dc"]
{extra}
"""
SHOP = {"Authorization": "Bearer shop-token"}
UPTIME = {"Authorization": "Bearer uptime-token"}
WRITER = {"Authorization": "Bearer write-token"}


def event(service: str, status: str = "firing", **labels: str) -> dict:
    return {
        "status": status,
        "summary": f"{service} {labels.get('alertname', 'problem')}",
        "severity": labels.pop("severity", "warning"),
        "labels": {"service": service, **labels},
    }


@pytest.fixture
def start(hub_factory, smtp):
    def started(
        group_wait: str = "0s", group_interval: str = "200ms", extra: str = "", clock=time.time
    ):
        return hub_factory(
            CONFIG,
            clock=clock,
            mail_url=mail_url(smtp[1]),
            group_wait=group_wait,
            group_interval=group_interval,
            extra=extra,
        )

    return started


def checkout_incident(http) -> int:
    """Fire the shop's checkout alert; the id of the incident it opened."""
    answer = http.post("/webhooks/shop", json=event("checkout"), headers=SHOP)
    return answer.json()["alerts"][0]["incident_id"]


def test_two_sources_firing_about_one_service_share_one_incident(start, smtp):
    """group_wait is a minute on a moved clock: a loaded machine now and then took
    longer than 500 ms to post the burst."""
    mailbox, _ = smtp
    clock = MovedClock()
    hub = start(group_wait="1m", clock=clock)
    with hub.client(headers=WRITER) as http:
        a = http.post("/webhooks/shop", json=event("checkout", alertname="Errors"), headers=SHOP)
        b = http.post("/webhooks/uptime", json=event("checkout", alertname="Down"), headers=UPTIME)
        c = http.post("/webhooks/uptime", json=event("search", alertname="Down"), headers=UPTIME)
        first, second, other = (r.json()["alerts"][0]["incident_id"] for r in (a, b, c))
        assert first == second != other
        incident = http.get(f"/api/v1/incidents/{first}").json()
    assert sorted(alert["source"] for alert in incident["alerts"]) == ["shop", "uptime"]
    assert incident["labels"] == {"service": "checkout"}
    assert [t["kind"] for t in incident["timeline"]][:3] == [
        "opened",
        "alert_joined",
        "alert_joined",
    ]
    clock.advance(60)
    wait_for(lambda: len(mailbox.messages) == 2)
    checkout = next(m for m in mailbox.subjects() if "checkout" in m)
    assert "FIRING:2" in checkout, "both alerts of the burst arrive in one message"


def test_an_incident_is_as_severe_as_its_most_severe_firing_alert_and_titled_by_it(start):
    """Raised by an alert joining or growing worse, which then leads its messages;
    lowered when it resolves or eases, and the title goes back to the most severe
    firing alert hub has known longest."""
    hub = start()
    steps = [
        ("a", "firing", "warning", "warning", "a"),
        ("b", "firing", "critical", "critical", "b"),  # more severe: it leads
        ("c", "firing", "info", "critical", "b"),  # a milder alert joining changes nothing
        ("d", "firing", "warning", "critical", "b"),
        ("b", "resolved", "critical", "warning", "a"),
        ("c", "firing", "error", "error", "c"),  # one alert grows worse
        ("c", "firing", "info", "warning", "a"),  # and eases again
        ("b", "firing", "critical", "critical", "b"),  # fires again beside the others
    ]
    seen = []
    with hub.client(headers=WRITER) as http:
        for name, status, severity, *_ in steps:
            body = {
                **event("checkout", status, severity=severity),
                "dedup_key": name,
                "summary": name,
            }
            answer = http.post("/webhooks/shop", json=body, headers=SHOP)
            assert answer.status_code == 202, answer.text
            incident_id = answer.json()["alerts"][0]["incident_id"]
            shown = http.get(f"/api/v1/incidents/{incident_id}").json()
            seen.append((shown["severity"], shown["title"]))
    assert seen == [(severity, title) for *_, severity, title in steps]


def test_a_person_resolving_keeps_the_title_and_severity_of_the_episodes_worst_alert(start):
    """While open, the title follows the firing alerts; resolved, the incident keeps
    what its pages led with, as when its alerts resolve."""
    hub = start()
    down = {**event("checkout", severity="critical"), "summary": "checkout down", "dedup_key": "d"}
    slow = {**event("checkout"), "summary": "checkout slow", "dedup_key": "s"}
    with hub.client(headers=WRITER) as http:
        for body in (down, slow, {**down, "status": "resolved"}):
            answer = http.post("/webhooks/shop", json=body, headers=SHOP)
            assert answer.status_code == 202, answer.text
        incident_id = answer.json()["alerts"][0]["incident_id"]
        moved = http.get(f"/api/v1/incidents/{incident_id}").json()
        http.post(f"/api/v1/incidents/{incident_id}/resolve").raise_for_status()
        resolved = http.get(f"/api/v1/incidents/{incident_id}").json()
    assert (moved["title"], moved["severity"]) == ("checkout slow", "warning")
    assert (resolved["title"], resolved["severity"]) == ("checkout down", "critical")


@pytest.mark.parametrize(
    ("still", "headline"),
    [("warning", ("warning", "checkout 5xx")), ("error", ("error", "checkout slow"))],
)
def test_an_incident_reopened_with_alerts_still_firing_leads_with_the_worst_firing(
    start, still, headline
):
    """Resolved by a person, it kept its worst alert's severity, which had resolved: the
    episode it reopens into is as severe as what fires now, and titled by the alert
    reopening it unless one still firing is more severe."""
    hub = start(extra='[incidents]\nreopen_window = "1h"')
    down = {**event("checkout", severity="critical"), "summary": "checkout down", "dedup_key": "d"}
    slow = {**event("checkout", severity=still), "summary": "checkout slow", "dedup_key": "s"}
    back = {**event("checkout"), "summary": "checkout 5xx", "dedup_key": "x"}
    with hub.client(headers=WRITER) as http:
        for body in (down, slow, {**down, "status": "resolved"}):
            answer = http.post("/webhooks/shop", json=body, headers=SHOP)
        incident_id = answer.json()["alerts"][0]["incident_id"]
        http.post(f"/api/v1/incidents/{incident_id}/resolve").raise_for_status()
        assert http.get(f"/api/v1/incidents/{incident_id}").json()["severity"] == "critical"
        answer = http.post("/webhooks/shop", json=back, headers=SHOP)
        assert answer.json()["alerts"][0]["incident_id"] == incident_id
        reopened = http.get(f"/api/v1/incidents/{incident_id}").json()
    assert (reopened["status"], reopened["episode"]) == ("open", 2)
    assert (reopened["severity"], reopened["title"]) == headline


def test_an_acknowledgement_is_recorded_with_its_actor_and_comment(start):
    hub = start()
    with hub.client(headers=WRITER) as http:
        incident_id = checkout_incident(http)
        acked = http.post(f"/api/v1/incidents/{incident_id}/ack", json={"comment": "on it"})
        assert acked.status_code == 200
        assert acked.json()["status"] == "acknowledged"
        assert acked.json()["acknowledged_by"] == "dana"
        timeline = unsent(http.get(f"/api/v1/incidents/{incident_id}").json())
        assert {"kind": "acknowledged", "actor": "dana"}.items() <= timeline[-1].items()
        assert timeline[-1]["detail"] == {"comment": "on it"}
        unacked = http.post(f"/api/v1/incidents/{incident_id}/unack")
        assert unacked.json()["status"] == "open"
        resolved = http.post(f"/api/v1/incidents/{incident_id}/resolve", json={"comment": "x"})
        assert resolved.json()["status"] == "resolved"
        assert resolved.json()["resolved_by"] == "dana"
        again = http.post(f"/api/v1/incidents/{incident_id}/ack")
        assert again.status_code == 409
        assert again.json()["incident_status"] == "resolved"
        assert "acknowledged_by" not in again.json()


def test_acknowledging_an_incident_someone_else_holds_is_a_conflict_naming_them(start):
    """A second person must not read 200 and think they took it; the holder acknowledging
    again is answered as the first time, and neither records anything."""
    hub = start()
    other = {"Authorization": "Bearer other-write-token"}
    with hub.client(headers=WRITER) as http:
        incident_id = checkout_incident(http)
        first = http.post(f"/api/v1/incidents/{incident_id}/ack", json={"comment": "mine"})
        taken = http.post(f"/api/v1/incidents/{incident_id}/ack", headers=other)
        again = http.post(f"/api/v1/incidents/{incident_id}/ack")
        incident = http.get(f"/api/v1/incidents/{incident_id}").json()
    assert taken.status_code == 409
    assert taken.headers["content-type"] == "application/problem+json"
    acked_at = first.json()["acknowledged_at"]
    assert taken.json()["detail"] == (
        f"incident {incident_id} is already acknowledged by dana at {acked_at[:19]}Z"
    )
    assert taken.json() | {"detail": "..."} == {
        "type": "about:blank",
        "status": 409,
        "title": "Conflict",
        "detail": "...",
        "incident_status": "acknowledged",
        "acknowledged_by": "dana",
        "acknowledged_at": acked_at,
        "acknowledged_until": None,
    }, "who holds it as members, so a script need not parse the detail"
    assert again.status_code == 200
    assert again.json() == first.json()
    assert (incident["acknowledged_by"], incident["acknowledged_at"]) == ("dana", acked_at)
    acks = [t for t in incident["timeline"] if t["kind"] == "acknowledged"]
    assert [(t["actor"], t["detail"]) for t in acks] == [("dana", {"comment": "mine"})]


def test_a_repeated_resolve_by_anyone_answers_the_incident_as_stored_and_records_nothing(start):
    """Scripts and runbooks retry a resolve: no one holds a resolution as they hold an
    ack, so any token gets 200 with the incident as it was resolved, and no timeline
    entry; an ack of it is still refused."""
    hub = start()
    other = {"Authorization": "Bearer other-write-token"}
    with hub.client(headers=WRITER) as http:
        incident_id = checkout_incident(http)
        first = http.post(f"/api/v1/incidents/{incident_id}/resolve", json={"comment": "fixed"})
        again = [
            http.post(f"/api/v1/incidents/{incident_id}/resolve", headers=headers)
            for headers in (WRITER, other)
        ]
        acked = http.post(f"/api/v1/incidents/{incident_id}/ack", headers=other)
        incident = http.get(f"/api/v1/incidents/{incident_id}").json()
    assert first.status_code == 200
    assert [answer.status_code for answer in again] == [200, 200]
    assert [answer.json() for answer in again] == [first.json()] * 2
    assert (incident["resolved_by"], incident["updated_at"]) == ("dana", first.json()["updated_at"])
    resolves = [t for t in incident["timeline"] if t["kind"] == "resolved"]
    assert [(t["actor"], t["detail"]) for t in resolves] == [("dana", {"comment": "fixed"})]
    assert acked.status_code == 409


def test_acting_needs_a_write_token(start):
    hub = start()
    with hub.client() as http:
        incident_id = checkout_incident(http)
        assert http.post(f"/api/v1/incidents/{incident_id}/ack").status_code == 401
        bad = {"Authorization": "Bearer shop-token"}
        assert http.post(f"/api/v1/incidents/{incident_id}/ack", headers=bad).status_code == 401
        shown = http.get(f"/api/v1/incidents/{incident_id}", headers=WRITER).json()
        assert shown["status"] == "open"


def test_a_silence_created_after_the_alert_arrived_still_mutes_it(start, smtp):
    """Made within group_wait, a minute on a moved clock: a loaded machine now and then
    took longer than 1 s to make it."""
    mailbox, _ = smtp
    clock = MovedClock()
    hub = start(group_wait="1m", clock=clock)
    with hub.client(headers=WRITER) as http:
        answer = http.post("/webhooks/shop", json=event("checkout"), headers=SHOP)
        assert answer.status_code == 202
        silence = {"matchers": ['service="checkout"'], "duration": "1h", "comment": "deploy"}
        assert http.post("/api/v1/silences", json=silence).status_code == 201
        http.post("/webhooks/shop", json=event("search"), headers=SHOP)
        clock.advance(60)
        wait_for(lambda: len(mailbox.messages) == 1)
        time.sleep(1.0)
        assert len(mailbox.messages) == 1
        assert "search" in mailbox.subjects()[0]
        alerts = http.get("/api/v1/alerts", params={"label": 'service="checkout"'}).json()
        assert [a["status"] for a in alerts] == ["firing"], "the muted alert is still stored"
        metrics = http.get("/metrics").text
    assert 'hub_notifications_suppressed_total{reason="silence"}' in metrics
    assert 'hub_notifications_suppressed_total{reason="silence"} 0.0' not in metrics


def test_a_firing_datacenter_alert_inhibits_host_alerts_in_that_datacenter(start, smtp):
    mailbox, _ = smtp
    hub = start(group_wait="500ms")
    with hub.client(headers=WRITER) as http:
        down = event("network", alertname="DatacenterDown", dc="eu", severity="critical")
        http.post("/webhooks/uptime", json=down, headers=UPTIME)
        http.post("/webhooks/shop", json=event("checkout", dc="eu"), headers=SHOP)
        http.post("/webhooks/shop", json=event("search", dc="us"), headers=SHOP)
        wait_for(lambda: len(mailbox.messages) == 2)
        time.sleep(0.8)
        metrics = http.get("/metrics").text
    subjects = sorted(mailbox.subjects())
    assert len(subjects) == 2
    assert any("network" in s for s in subjects) and any("search" in s for s in subjects)
    assert 'hub_notifications_suppressed_total{reason="inhibition"} 0.0' not in metrics


def test_a_message_never_reads_resolved_while_inhibited_alerts_of_its_incident_fire(start, smtp):
    """The only alert of an open incident not held back resolves while the others fire
    under an inhibition: a message listing only that resolution would read "resolved"
    (Alertmanager sends it so) though the incident is open. It waits, and the message
    the inhibition ending sends lists it beside the alerts that fire."""
    mailbox, _ = smtp
    hub = start()
    down = event("network", alertname="DatacenterDown", dc="eu", severity="critical")
    slow = event("checkout", alertname="Slow", dc="us")
    with hub.client(headers=WRITER) as http:
        answer = http.post("/webhooks/shop", json=event("checkout", dc="eu"), headers=SHOP)
        incident_id = answer.json()["alerts"][0]["incident_id"]
        wait_for(lambda: len(mailbox.messages) == 1)
        http.post("/webhooks/uptime", json=down, headers=UPTIME)
        wait_for(lambda: len(mailbox.messages) == 2)
        http.post("/webhooks/shop", json=slow, headers=SHOP)
        wait_for(lambda: len(mailbox.messages) == 3)
        http.post("/webhooks/shop", json={**slow, "status": "resolved"}, headers=SHOP)
        time.sleep(0.8)  # four group intervals: room for a message
        assert http.get(f"/api/v1/incidents/{incident_id}").json()["status"] == "open"
        assert len(mailbox.messages) == 3, mailbox.subjects()
        http.post("/webhooks/uptime", json={**down, "status": "resolved"}, headers=UPTIME)
        wait_for(lambda: len(mailbox.messages) == 5)
    ours = [i for i, s in enumerate(mailbox.subjects()) if f"#{incident_id} " in s]
    assert [mailbox.subjects()[i] for i in ours] == [
        f"[FIRING] #{incident_id} checkout problem",
        f"[FIRING] #{incident_id} checkout Slow",  # the only alert it lists
        f"[FIRING] #{incident_id} checkout problem",
    ]
    last = mailbox.text_of(ours[-1])
    assert "checkout problem" in last and "checkout Slow" in last


def test_a_message_leaving_the_silenced_title_alert_out_leads_with_its_worst(start, smtp):
    """With the incident's critical headline silenced, the message lists a warning and
    an info alert (the info one hub has known longer) and leads with the warning: the
    most severe alert it shows, as the incident's own title would, and reads as severe
    as it (chat, SMS and a receiver's own template get the same ``title`` and
    ``severity``). group_wait is a minute on a moved clock: a loaded machine now and
    then took longer than 500 ms to post the alerts and the silence."""
    mailbox, _ = smtp
    clock = MovedClock()
    hub = start(group_wait="1m", clock=clock)
    down = event("checkout", alertname="Down", severity="critical")
    minor = event("checkout", alertname="Minor", severity="info")
    with hub.client(headers=WRITER) as http:
        answer = http.post("/webhooks/shop", json=down, headers=SHOP)
        incident_id = answer.json()["alerts"][0]["incident_id"]
        body = {"matchers": ['alertname="Down"'], "duration": "1h", "comment": "known"}
        assert http.post("/api/v1/silences", json=body).status_code == 201
        http.post("/webhooks/shop", json=minor, headers=SHOP)
        http.post("/webhooks/shop", json=event("checkout", alertname="Slow"), headers=SHOP)
        clock.advance(60)
        wait_for(lambda: len(mailbox.messages) == 1)
        incident = http.get(f"/api/v1/incidents/{incident_id}").json()
    assert mailbox.subjects() == [f"[FIRING:2] #{incident_id} checkout Slow"]
    text = mailbox.text_of(0)
    assert "checkout Minor" in text and "checkout Down" not in text
    header = text[: text.index("\nAlerts:")].splitlines()
    assert "Severity: warning" in header, "the message's own severity, not the silenced one's"
    assert (incident["title"], incident["severity"]) == ("checkout Down", "critical")


def test_a_maintenance_window_mutes_matching_alerts(start, smtp):
    mailbox, _ = smtp
    now = datetime.now(UTC)
    window = f"""
[[maintenance]]
name = "db-upgrade"
starts_at = "{(now - timedelta(minutes=5)).isoformat()}"
ends_at = "{(now + timedelta(hours=1)).isoformat()}"
matchers = ['service="db"']
"""
    hub = start(extra=window)
    with hub.client(headers=WRITER) as http:
        http.post("/webhooks/shop", json=event("db"), headers=SHOP)
        http.post("/webhooks/shop", json=event("web"), headers=SHOP)
        wait_for(lambda: len(mailbox.messages) == 1)
        time.sleep(0.5)
        metrics = http.get("/metrics").text
    assert len(mailbox.messages) == 1 and "web" in mailbox.subjects()[0]
    assert 'hub_notifications_suppressed_total{reason="maintenance"} 0.0' not in metrics


def flapping_suppressed(http) -> float:
    """``hub_notifications_suppressed_total{reason="flapping"}``, 0 before any."""
    metrics = http.get("/metrics").text
    return label_values(metrics, "hub_notifications_suppressed_total", "reason").get(
        ("flapping",), 0.0
    )


def test_a_flapping_alert_is_marked_and_its_notifications_are_held(start, smtp):
    """A minute's group_interval on a moved clock, and firing again reopens the
    incident: the changes after the first message wait for one look, which finds the
    alert flapping. With 200 ms (and a new incident paged at once for each firing) a
    loaded machine let changes of the four that make it flap (the first firing is
    none) go out before the last of them."""
    mailbox, _ = smtp
    clock = MovedClock()
    reopen = '[incidents]\nreopen_window = "1h"\n'
    hub = start(group_interval="1m", clock=clock, extra=reopen)
    with hub.client(headers=WRITER) as http:
        for status in ("firing", "resolved", "firing", "resolved", "firing"):
            body = {**event("cache"), "status": status, "dedup_key": "cache-flap"}
            http.post("/webhooks/shop", json=body, headers=SHOP)
            wait_for(lambda: mailbox.messages)  # the first firing goes out at once
        steady = http.post("/webhooks/shop", json=event("db"), headers=SHOP).json()
        (alert,) = http.get("/api/v1/alerts", params={"label": 'service="cache"'}).json()
        shown = http.get(f"/api/v1/alerts/{alert['id']}").json()
        calm = http.get(f"/api/v1/alerts/{steady['alerts'][0]['id']}").json()
        assert alert["flapping"] is True, "a boolean, as the README shows it, not 1"
        assert (shown["flapping"], calm["flapping"]) == (True, False)
        assert isinstance(calm["flapping"], bool)
        changes = [datetime.fromisoformat(moment) for moment in shown["changes"]]
        assert len(changes) == 4, "the changes that make it flap"
        assert all(abs(datetime.now(UTC) - moment) < timedelta(minutes=1) for moment in changes)
        assert all(moment.endswith("Z") for moment in shown["changes"]), "RFC 3339 in UTC"
        wait_for(lambda: len(mailbox.messages) == 2)
        clock.advance(61)
        wait_for(lambda: flapping_suppressed(http) > 0)
    cache, db = (
        [subject for subject in mailbox.subjects() if f" {service} " in subject]
        for service in ("cache", "db")
    )
    assert len(cache) == 1 and "FIRING" in cache[0], "only the first firing, before it flapped"
    assert len(db) == 1, "the steady alert's incident is told as ever"


def mutes_shown(http, alert: dict) -> list[list[dict]]:
    """What the alert's own answer, its incident's and the alert list say holds it back."""
    one = http.get(f"/api/v1/alerts/{alert['id']}").json()
    incident = http.get(f"/api/v1/incidents/{alert['incident_id']}").json()
    listed = http.get("/api/v1/alerts").json()
    return [
        one["mutes"],
        *(a["mutes"] for a in incident["alerts"] if a["id"] == alert["id"]),
        *(a["mutes"] for a in listed if a["id"] == alert["id"]),
    ]


REGION_DOWN_MUTES = """
[[inhibit_rules]]
source_matchers = ['alertname=~"(Region|Zone)Down"']
target_matchers = ['severity="warning"']
equal = ["region"]
"""


def test_a_rule_whose_source_side_is_a_regex_inhibits_while_a_source_it_matches_fires(start):
    """Its sources are found through the index of its label's values (see
    ``test_inhibit``), made when the hub starts."""
    hub = start(extra=REGION_DOWN_MUTES)
    down = event("network", alertname="ZoneDown", region="eu", severity="critical")
    with hub.client(headers=WRITER) as http:
        source = http.post("/webhooks/uptime", json=down, headers=UPTIME).json()["alerts"][0]
        eu = http.post("/webhooks/shop", json=event("checkout", region="eu"), headers=SHOP)
        us = http.post("/webhooks/shop", json=event("search", region="us"), headers=SHOP)
        target, other = eu.json()["alerts"][0], us.json()["alerts"][0]
        inhibited = [{"reason": "inhibition", "by": ["inhibit_rules[1]"]}]
        assert mutes_shown(http, target) == [inhibited] * 3
        assert mutes_shown(http, other) == [[]] * 3
        up = {**down, "status": "resolved"}
        assert http.post("/webhooks/uptime", json=up, headers=UPTIME).status_code == 202
        assert mutes_shown(http, target) == [[]] * 3
        assert mutes_shown(http, source) == [[]] * 3


def test_the_alert_and_incident_answers_name_the_silence_holding_an_alert_back(start):
    hub = start()
    with hub.client(headers=WRITER) as http:
        held = http.post("/webhooks/shop", json=event("checkout"), headers=SHOP).json()
        free = http.post("/webhooks/shop", json=event("search"), headers=SHOP).json()
        checkout, search = held["alerts"][0], free["alerts"][0]
        assert mutes_shown(http, checkout) == [[]] * 3
        body = {"matchers": ['service="checkout"'], "duration": "1h", "comment": "deploy"}
        silence = http.post("/api/v1/silences", json=body).json()
        assert mutes_shown(http, checkout) == [[{"reason": "silence", "by": [silence["id"]]}]] * 3
        assert mutes_shown(http, search) == [[]] * 3
        assert http.delete(f"/api/v1/silences/{silence['id']}").status_code == 200
        assert mutes_shown(http, checkout) == [[]] * 3


def test_the_answers_say_an_alert_is_inhibited_while_its_source_fires(start):
    hub = start()
    down = event("network", alertname="DatacenterDown", dc="eu", severity="critical")
    with hub.client(headers=WRITER) as http:
        source = http.post("/webhooks/uptime", json=down, headers=UPTIME).json()["alerts"][0]
        eu = http.post("/webhooks/shop", json=event("checkout", dc="eu"), headers=SHOP).json()
        us = http.post("/webhooks/shop", json=event("search", dc="us"), headers=SHOP).json()
        target, other = eu["alerts"][0], us["alerts"][0]
        inhibited = [{"reason": "inhibition", "by": ["inhibit_rules[0]"]}]
        assert mutes_shown(http, target) == [inhibited] * 3
        assert mutes_shown(http, other) == [[]] * 3
        assert mutes_shown(http, source) == [[]] * 3
        up = {**down, "status": "resolved"}
        assert http.post("/webhooks/uptime", json=up, headers=UPTIME).status_code == 202
        assert mutes_shown(http, target) == [[]] * 3
        assert mutes_shown(http, source) == [[]] * 3, "a resolved alert is never held back"
