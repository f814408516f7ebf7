"""Each format answers over HTTP as its senders expect: Alertmanager's API v2 for
Prometheus, PagerDuty's Events API, and hub's own answer listing rejected items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import AUTH, BASE_CONFIG, mail_url, wait_for
from notify_support import metric
from source_factory import fixture, fixture_json
from test_access import TOKENS
from test_bad_input import stored_rows

FORMATS = (
    BASE_CONFIG
    + """
[[sources]]
name = "prom"
format = "prometheus"
[sources.auth]
type = "none"

[[sources]]
name = "pd"
format = "pagerduty"
[sources.auth]
type = "none"

[[sources]]
name = "am"
format = "alertmanager"
[sources.auth]
type = "none"

[[sources]]
name = "grafana"
format = "grafana"
[sources.auth]
type = "none"

[[sources]]
name = "github"
format = "generic"
[sources.auth]
type = "none"
[sources.mapping]
summary = "Workflow {{workflow_run.name}}: {{workflow_run.conclusion}}"
status = "workflow_run.conclusion"
status_map = {{ failure = "firing", success = "resolved" }}
dedup_key = "workflow_run.workflow_id"
defaults = {{ status = "ignore" }}
"""
)


@pytest.fixture
def hub(hub_factory, smtp):
    _, smtp_port = smtp
    return hub_factory(FORMATS, mail_url=mail_url(smtp_port))


def counted(http, source: str) -> dict[str, float | None]:
    """What /metrics says of a source's deliveries and of their items."""
    text = http.get("/metrics").text
    return {
        "accepted": metric(text, "hub_webhooks_received_total", source=source, outcome="accepted"),
        "new": metric(text, "hub_events_total", source=source, outcome="new"),
        "rejected": metric(text, "hub_events_total", source=source, outcome="rejected"),
    }


def prometheus_alert(ends_in: timedelta, **labels: str) -> dict:
    now = datetime.now(UTC)
    return {
        "labels": labels,
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (now + ends_in).isoformat(),
    }


def test_prometheus_posts_are_answered_200_with_an_empty_body(hub):
    batch = [
        prometheus_alert(timedelta(minutes=4), alertname="DiskFull", instance="db1"),
        prometheus_alert(timedelta(seconds=-1), alertname="DiskFull", instance="db2"),
    ]
    with hub.client() as http:
        answer = http.post("/webhooks/prom/api/v2/alerts", json=batch)
        assert answer.status_code == 200
        assert answer.content == b""
        alerts = http.get("/api/v1/alerts", params={"source": "prom"}).json()
    by_instance = {alert["labels"]["instance"]: alert["status"] for alert in alerts}
    assert by_instance == {"db1": "firing", "db2": "resolved"}


def test_a_prometheus_alert_starting_next_year_is_resolved_by_a_later_resolve(hub):
    """One Prometheus of a pair has a clock a year ahead; its alert still resolves when
    the other one resolves it (a startsAt after the receive time counts as that time)."""
    next_year = datetime.now(UTC) + timedelta(days=365)
    ahead = {
        "labels": {"alertname": "ClockAhead"},
        "startsAt": next_year.isoformat(),
        "endsAt": (next_year + timedelta(minutes=4)).isoformat(),
    }
    with hub.client() as http:
        assert http.post("/webhooks/prom/api/v2/alerts", json=[ahead]).status_code == 200
        resolve = prometheus_alert(timedelta(0), alertname="ClockAhead")
        assert http.post("/webhooks/prom/api/v2/alerts", json=[resolve]).status_code == 200
        (alert,) = http.get("/api/v1/alerts", params={"source": "prom"}).json()
    assert alert["status"] == "resolved"


def test_a_re_sent_prometheus_alert_shows_its_latest_annotations_as_alertmanager_does(hub):
    """Prometheus re-sends a firing alert at every evaluation, with the value of the
    moment in its description: the alert shows the latest one, and the re-send still
    counts as a repeat (no history row)."""
    first = {
        **prometheus_alert(timedelta(minutes=4), alertname="HighLatency"),
        "annotations": {"summary": "checkout latency high", "description": "p99 is 910 ms"},
    }
    later = {**first, "annotations": {**first["annotations"], "description": "p99 is 1240 ms"}}
    with hub.client() as http:
        for alert in (first, later):
            assert http.post("/webhooks/prom/api/v2/alerts", json=[alert]).status_code == 200
        (shown,) = http.get("/api/v1/alerts", params={"source": "prom"}).json()
        history = http.get(f"/api/v1/alerts/{shown['id']}").json()["history"]
    assert shown["annotations"]["description"] == "p99 is 1240 ms"
    assert (shown["duplicates"], len(history)) == (1, 1)


def test_a_grafana_re_send_shows_the_latest_evaluated_values(hub):
    notification = fixture_json("grafana", "firing.json")
    with hub.client() as http:
        assert http.post("/webhooks/grafana", json=notification).is_success
        notification["alerts"][0]["valueString"] = "[ var='B' value=97.5 ]"
        assert http.post("/webhooks/grafana", json=notification).is_success
        alerts = http.get("/api/v1/alerts", params={"source": "grafana"}).json()
    values = {alert["fingerprint"]: alert["annotations"]["values"] for alert in alerts}
    assert values["c6eadffa33fcdf37"] == "[ var='B' value=97.5 ]"
    assert "value=44.23943737541908" in values["bc97ff14869b13e3"]
    assert [alert["duplicates"] for alert in alerts] == [1, 1]


def test_a_prometheus_batch_keeps_its_valid_alerts_and_lists_the_invalid_as_alertmanager_does(
    hub,
):
    batch = [
        prometheus_alert(timedelta(minutes=4), alertname="DiskFull"),
        prometheus_alert(timedelta(minutes=4)),
    ]
    with hub.client() as http:
        answer = http.post("/webhooks/prom/api/v2/alerts", json=batch)
        assert answer.status_code == 400
        assert "$[1].labels" in answer.json()
        alerts = http.get("/api/v1/alerts", params={"source": "prom"}).json()
        (event,) = http.get("/api/v1/events", params={"source": "prom"}).json()
        metrics = counted(http, "prom")
    assert [alert["labels"] for alert in alerts] == [{"alertname": "DiskFull"}]
    assert (event["status_code"], event["answer"]) == (400, answer.json())
    assert metrics == {"accepted": 1, "new": 1, "rejected": 1}, "the valid alert was applied"


@pytest.mark.parametrize(
    ("content", "named"),
    [(b"[", "not valid JSON"), (b'{"labels": {}}', "$")],
    ids=["malformed", "not-a-list"],
)
def test_a_prometheus_post_with_nothing_usable_is_a_400_and_changes_nothing(
    hub, tmp_path, content, named
):
    before = stored_rows(tmp_path / "hub.db")
    with hub.client() as http:
        answer = http.post("/webhooks/prom/api/v2/alerts", content=content)
    assert answer.status_code == 400
    assert named in answer.json()
    assert stored_rows(tmp_path / "hub.db") == before


def test_an_empty_prometheus_batch_is_answered_200_as_alertmanager_does(hub):
    """Alertmanager takes ``[]`` with 200; a 400 would count as a failed send."""
    with hub.client() as http:
        answer = http.post("/webhooks/prom/api/v2/alerts", content=b"[]")
        alerts = http.get("/api/v1/alerts", params={"source": "prom"}).json()
    assert (answer.status_code, answer.content) == (200, b"")
    assert alerts == []


def test_a_body_of_the_other_alertmanager_format_is_refused_with_the_format_it_needs(hub):
    """Alertmanager's webhook body posted to a prometheus source, and Prometheus'
    alerts posted to an alertmanager source: the refusal says which format fits."""
    with hub.client() as http:
        webhook = http.post(
            "/webhooks/prom/api/v2/alerts", content=fixture("alertmanager", "firing.json")
        )
        alerts = http.post("/webhooks/am", content=fixture("prometheus", "firing-batch.json"))
    assert webhook.status_code == 400
    assert webhook.json().startswith("$: Expected `array`, got `object`; ")
    assert 'Alertmanager webhook body: a source of format "alertmanager"' in webhook.json()
    assert alerts.status_code == 422
    assert (alerts.json()["field"], alerts.json()["detail"]) == (
        "$",
        "Expected `object`, got `array`; this looks like the alerts Prometheus posts:"
        ' a source of format "prometheus" takes it',
    )


def test_the_alertmanager_api_serves_only_prometheus_sources(hub):
    """The 404 counts as the source's unknown_endpoint, not as a wrong-shaped body; a
    prometheus source, which has that path, has no such series."""
    with hub.client() as http:
        answer = http.post("/webhooks/shop/api/v2/alerts", json=[], headers=AUTH)
        text = http.get("/metrics").text
    assert answer.status_code == 404
    assert "format 'native'" in answer.json()["detail"]
    counted = {
        (source, outcome): metric(
            text, "hub_webhooks_received_total", source=source, outcome=outcome
        )
        for source in ("shop", "prom")
        for outcome in ("unknown_endpoint", "invalid")
    }
    assert counted == {
        ("shop", "unknown_endpoint"): 1,
        ("shop", "invalid"): 0,
        ("prom", "unknown_endpoint"): None,
        ("prom", "invalid"): 0,
    }


def test_pagerduty_events_are_answered_as_pagerduty_does(hub):
    with hub.client() as http:
        triggered = http.post("/webhooks/pd", content=fixture("pagerduty", "trigger.json"))
        resolved = http.post("/webhooks/pd", content=fixture("pagerduty", "resolve.json"))
        invalid = http.post("/webhooks/pd", json={"event_action": "trigger"})
        alerts = http.get("/api/v1/alerts", params={"source": "pd"}).json()
    assert triggered.status_code == 202
    assert triggered.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "srv01/mysql",
    }
    assert resolved.status_code == 202
    assert [(a["fingerprint"], a["status"]) for a in alerts] == [("pd/srv01/mysql", "resolved")]
    assert invalid.status_code == 400
    assert invalid.json()["status"] == "invalid event"


def test_hubs_answer_lists_the_rejected_items_of_a_batch_and_metrics_count_them_once(hub):
    body = fixture_json("alertmanager", "mixed-batch.json")
    body["alerts"].append({"status": "exploded", "labels": {"alertname": "x"}})
    retry = {"Idempotency-Key": "am-batch-1"}
    with hub.client() as http:
        answer = http.post("/webhooks/am", json=body, headers=retry)
        assert http.post("/webhooks/am", json=body, headers=retry).status_code == 200
        metrics = counted(http, "am")
    assert answer.status_code == 202
    assert answer.json()["accepted"] == 2
    (rejected,) = answer.json()["rejected"]
    assert rejected.startswith("$.alerts[2].status")
    assert metrics == {"accepted": 1, "new": 2, "rejected": 1}, "the retry counts as repeated"


def test_an_alertmanager_alert_without_labels_is_rejected_as_prometheus_rejects_it(hub):
    """Alertmanager itself refuses such an alert: stored, it would be one catch-all
    alert titled "{}", opening an incident every unlabelled alert joins."""
    body = fixture_json("alertmanager", "mixed-batch.json")
    body["alerts"].append({"status": "firing", "labels": {}, "fingerprint": "0"})
    with hub.client() as http:
        answer = http.post("/webhooks/am", json=body)
        alerts = http.get("/api/v1/alerts", params={"source": "am"}).json()
    assert answer.status_code == 202
    assert answer.json()["accepted"] == 2
    assert answer.json()["rejected"] == ["$.alerts[2].labels: at least one label pair is required"]
    assert sorted(alert["summary"] for alert in alerts) == [
        "checkout is always on fire",
        "fires for ten seconds out of twenty",
    ]


def test_a_generic_mapping_ignores_the_words_it_maps_to_ignore_and_answers_202(hub):
    """GitHub pings a new webhook and sends runs that were cancelled: a mapping with
    ``defaults.status = "ignore"`` answers them 202 ``ignored`` as hub answers an
    acknowledgement of nothing, so the sender keeps its subscription, and nothing
    about them is stored or changes the alert of their workflow."""
    run = {"workflow_run": {"name": "deploy", "workflow_id": 42, "conclusion": "failure"}}
    cancelled = {"workflow_run": {**run["workflow_run"], "conclusion": "cancelled"}}
    with hub.client() as http:
        ping = http.post("/webhooks/github", json={"zen": "Design for failure.", "hook_id": 9})
        failed = http.post("/webhooks/github", json=run)
        ignored = http.post("/webhooks/github", json=cancelled)
        alerts = http.get("/api/v1/alerts", params={"source": "github"}).json()
        text = http.get("/metrics").text
    assert (ping.status_code, ping.json()["accepted"], ping.json()["ignored"]) == (202, 1, 1)
    assert ping.json()["alerts"][0]["id"] is None
    assert (ignored.status_code, ignored.json()["ignored"]) == (202, 1)
    assert [(a["id"], a["status"]) for a in alerts] == [
        (failed.json()["alerts"][0]["id"], "firing")
    ]
    assert metric(text, "hub_events_total", source="github", outcome="ignored") == 2


def pagerduty(action: str, dedup_key: str = "srv01/mysql") -> dict:
    """An acknowledge or resolve as PagerDuty documents it: no payload."""
    return {"routing_key": "k", "event_action": action, "dedup_key": dedup_key}


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_pagerduty_drops_an_acknowledge_or_resolve_for_a_key_without_an_alert(hub, smtp, action):
    """As PagerDuty does: the sender gets its usual answer, nobody is paged, nothing is
    stored but the delivery, and the event counts as ignored."""
    mailbox, _ = smtp
    with hub.client() as http:
        answer = http.post("/webhooks/pd", json=pagerduty(action, "never-triggered"))
        alerts = http.get("/api/v1/alerts", params={"source": "pd"}).json()
        incidents = http.get("/api/v1/incidents").json()
        (delivery,) = http.get("/api/v1/events", params={"source": "pd"}).json()
        kept = http.get(f"/api/v1/events/{delivery['id']}").json()
        text = http.get("/metrics").text
        later = fixture("pagerduty", "trigger.json")
        assert http.post("/webhooks/pd", content=later).status_code == 202
    assert answer.status_code == 202
    assert answer.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "never-triggered",
    }
    assert (alerts, incidents) == ([], [])
    assert (kept["body"], kept["events"]) == (answer.request.content.decode(), [])
    assert metric(text, "hub_events_total", source="pd", outcome="ignored") == 1
    assert metric(text, "hub_events_total", source="pd", outcome="new") == 0
    wait_for(lambda: mailbox.messages)
    assert len(mailbox.messages) == 1, "only the later trigger pages"
    assert "never-triggered" not in mailbox.text_of(0)


def test_a_pagerduty_re_trigger_with_its_first_detection_time_fires_again_and_pages(hub, smtp):
    """PagerDuty applies events as they arrive, and senders keep the first detection
    time on every re-trigger: ordered by that time, the trigger after a resolve was
    stale and a real new outage never paged. The detection time still dates the
    alert's first firing; the second fires from its arrival, after the resolve."""
    mailbox, _ = smtp
    detected = datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC)
    trigger = fixture("pagerduty", "trigger.json")
    with hub.client() as http:
        assert http.post("/webhooks/pd", content=trigger).status_code == 202
        (first,) = http.get("/api/v1/alerts", params={"source": "pd"}).json()
        wait_for(lambda: mailbox.messages)
        assert http.post("/webhooks/pd", json=pagerduty("resolve")).status_code == 202
        wait_for(lambda: len(mailbox.messages) == 2)
        assert http.post("/webhooks/pd", content=trigger).status_code == 202
        (again,) = http.get("/api/v1/alerts", params={"source": "pd"}).json()
        history = http.get(f"/api/v1/alerts/{again['id']}").json()["history"]
        wait_for(lambda: len(mailbox.messages) == 3)
    assert datetime.fromisoformat(first["fired_at"]) == detected
    assert again["status"] == "firing"
    assert [(h["status"], h["applied"]) for h in history] == [
        ("firing", True),
        ("resolved", True),
        ("firing", True),
    ]
    assert datetime.fromisoformat(again["fired_at"]) >= datetime.fromisoformat(history[1]["at"])
    assert ["RESOLVED" in subject.upper() for subject in mailbox.subjects()] == [
        False,
        True,
        False,
    ]


def test_a_pagerduty_resolve_without_payload_keeps_the_alerts_details(hub, smtp):
    mailbox, _ = smtp
    with hub.client() as http:
        assert http.post("/webhooks/pd", content=fixture("pagerduty", "trigger.json")).is_success
        (before,) = http.get("/api/v1/alerts", params={"source": "pd"}).json()
        wait_for(lambda: mailbox.messages)
        assert http.post("/webhooks/pd", json=pagerduty("resolve")).status_code == 202
        (after,) = http.get("/api/v1/alerts", params={"source": "pd"}).json()
        wait_for(lambda: len(mailbox.messages) == 2)
    assert after["status"] == "resolved"
    details = ("summary", "severity", "labels", "annotations")
    assert {k: after[k] for k in details} == {k: before[k] for k in details}
    assert before["labels"]["component"] == "mysql"
    assert "Link text https://example.com/" in mailbox.text_of(0), "links show in notifications"
    resolved = mailbox.text_of(1)
    assert "RESOLVED" in resolved.upper()
    assert "prod-datapipe03.example.com" in resolved
    assert "component" in resolved


def test_a_pagerduty_acknowledge_of_a_resolved_alert_acknowledges_nothing(hub):
    """As PagerDuty drops an acknowledge for a resolved alert: a late acknowledge must
    not acknowledge the incident the alert shared with others still firing, which
    would silence their repeats and pause their escalation."""
    other = {**fixture_json("pagerduty", "trigger.json"), "dedup_key": "srv02/disk"}
    with hub.client() as http:
        assert http.post("/webhooks/pd", content=fixture("pagerduty", "trigger.json")).is_success
        assert http.post("/webhooks/pd", json=other).is_success
        assert http.post("/webhooks/pd", json=pagerduty("resolve")).is_success
        answer = http.post("/webhooks/pd", json=pagerduty("acknowledge"))
        (incident,) = http.get("/api/v1/incidents").json()
        text = http.get("/metrics").text
    assert answer.status_code == 202
    assert answer.json()["dedup_key"] == "srv01/mysql"
    assert (incident["status"], incident["acknowledged_by"]) == ("open", None)
    assert metric(text, "hub_events_total", source="pd", outcome="ignored") == 1
    assert metric(text, "hub_events_total", source="pd", outcome="acknowledged") == 0


def test_a_pagerduty_acknowledge_after_a_person_resolved_the_incident_pages_nobody(
    hub_factory, smtp
):
    """A person resolved the incident while its alert still fired at the sender; the
    sender's acknowledgement opened a new incident, paged it as firing, then
    acknowledged it. An acknowledgement never opens an incident: it leaves it over."""
    mailbox, smtp_port = smtp
    hub = hub_factory(FORMATS + TOKENS, mail_url=mail_url(smtp_port))
    with hub.client(headers={"Authorization": "Bearer write-token"}) as http:
        assert http.post("/webhooks/pd", content=fixture("pagerduty", "trigger.json")).is_success
        wait_for(lambda: mailbox.messages)
        (incident,) = http.get("/api/v1/incidents").json()
        resolve = http.post(f"/api/v1/incidents/{incident['id']}/resolve")
        assert resolve.status_code == 200
        wait_for(lambda: len(mailbox.messages) == 2)
        answer = http.post("/webhooks/pd", json=pagerduty("acknowledge"))
        incidents = http.get("/api/v1/incidents").json()
        outbox = http.get("/api/v1/notifications").json()
    assert answer.status_code == 202
    assert [(i["id"], i["status"]) for i in incidents] == [(incident["id"], "resolved")]
    assert len(outbox) == 2, "the firing page and the resolved message, nothing more"


def test_a_pagerduty_acknowledge_without_payload_acknowledges_and_keeps_the_details(hub):
    with hub.client() as http:
        assert http.post("/webhooks/pd", content=fixture("pagerduty", "trigger.json")).is_success
        (before,) = http.get("/api/v1/alerts", params={"source": "pd"}).json()
        assert http.post("/webhooks/pd", json=pagerduty("acknowledge")).status_code == 202
        (after,) = http.get("/api/v1/alerts", params={"source": "pd"}).json()
        (incident,) = http.get("/api/v1/incidents").json()
        history = http.get(f"/api/v1/alerts/{after['id']}").json()["history"]
    assert (after["status"], incident["status"]) == ("firing", "acknowledged")
    details = ("summary", "severity", "labels", "annotations")
    assert {k: after[k] for k in details} == {k: before[k] for k in details}
    assert {(row["summary"], row["severity"]) for row in history} == {
        (before["summary"], "critical")
    }, "the history shows the alert's details, not made-up ones"


def test_a_pagerduty_acknowledge_with_a_payload_changes_nothing_of_the_alert(hub):
    """The sources doc said a payload on an acknowledge updates the alert as a trigger
    does; it never did, and an acknowledge is about who handles it, not what it is."""
    acknowledge = {
        **pagerduty("acknowledge"),
        "payload": {"summary": "someone is on it", "source": "elsewhere", "severity": "info"},
    }
    with hub.client() as http:
        assert http.post("/webhooks/pd", content=fixture("pagerduty", "trigger.json")).is_success
        (before,) = http.get("/api/v1/alerts", params={"source": "pd"}).json()
        assert http.post("/webhooks/pd", json=acknowledge).status_code == 202
        (after,) = http.get("/api/v1/alerts", params={"source": "pd"}).json()
        (incident,) = http.get("/api/v1/incidents").json()
    assert incident["status"] == "acknowledged"
    details = ("status", "summary", "severity", "labels", "annotations")
    assert {k: after[k] for k in details} == {k: before[k] for k in details}
