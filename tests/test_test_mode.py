"""Sources in test mode: deliveries are authenticated, decoded and kept with their
routing decision, and nothing is notified, escalated or correlated."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import BASE_CONFIG, mail_url

from hub import silencing
from hub.decoders import decode
from hub.ingest import Answer, Delivery
from hub.webhooks import commit

TEST_SOURCE = """
[[sources]]
name = "rehearsal"
format = "native"
mode = "test"
auth = {{ type = "bearer", tokens = ["rehearsal-token"] }}

[[receivers]]
name = "pager"
urls = ["{mail_url}"]

[[escalations]]
name = "night"
steps = [{{ notify = ["pager"] }}]

[[route.routes]]
matchers = ['service="checkout"']
receiver = "pager"
group_by = ["service"]
escalation = "night"
continue = true

[[route.routes]]
matchers = ['severity="critical"']
receiver = "ops"

[api]
tokens = [
  {{ name = "rita", token = "read-token", role = "read" }},
  {{ name = "will", token = "write-token", role = "write" }},
  {{ name = "ada", token = "admin-token", role = "admin" }},
]
"""
CONFIG = BASE_CONFIG + TEST_SOURCE
TEST_AUTH = {"Authorization": "Bearer rehearsal-token"}
WRITE = {"Authorization": "Bearer write-token"}
ADMIN = {"Authorization": "Bearer admin-token"}
CHECKOUT = {
    "status": "firing",
    "summary": "checkout down",
    "severity": "critical",
    "labels": {"service": "checkout"},
}
SEARCH = {"status": "firing", "summary": "search slow", "labels": {"service": "search"}}
SILENCE = {"matchers": ['service="search"'], "duration": "1h", "comment": "reindexing"}


@pytest.fixture
def hub(hub_factory, smtp):
    return hub_factory(CONFIG, mail_url=mail_url(smtp[1]), group_wait="100ms")


def test_a_test_delivery_is_kept_with_its_decision_and_notifies_nobody(hub, smtp):
    mailbox, _ = smtp
    with hub.client(headers=WRITE) as http:
        silence = http.post("/api/v1/silences", json=SILENCE).json()
        answer = http.post("/webhooks/rehearsal", json=[CHECKOUT, SEARCH], headers=TEST_AUTH)
        time.sleep(1.0)  # well past group_wait and group_interval
        shown = http.get(f"/api/v1/events/{answer.json()['delivery_id']}").json()
        alerts = http.get("/api/v1/alerts").json()
        incidents = http.get("/api/v1/incidents").json()
    assert answer.status_code == 202
    assert (answer.json()["mode"], answer.json()["accepted"]) == ("test", 2)
    assert (shown["mode"], shown["replay_of"], shown["events"]) == ("test", None, [])
    assert shown["decision"] == answer.json()["decision"]
    checkout, search = shown["decision"]
    assert (checkout["outcome"], checkout["receivers"], checkout["mutes"]) == (
        "new",
        ["pager", "ops"],
        [],
    )
    owner = checkout["routes"][0]
    assert (owner["route_id"], owner["group_key"], owner["escalation"]) == (
        "0.0",
        '{}/{service="checkout"}:{service="checkout"}',
        "night",
    )
    assert search["mutes"] == [{"reason": "silence", "by": [silence["id"]]}]
    assert search["receivers"] == []
    assert search["event"]["labels"] == {"service": "search"}
    assert mailbox.messages == []
    assert (alerts, incidents) == ([], [])


def test_a_test_delivery_never_touches_the_live_alert_it_is_about(hub_factory, smtp):
    """A key names an alert within its source: the live alert is the one this source
    raised before it was switched to test mode."""
    live_config = CONFIG.replace('mode = "test"', 'mode = "live"')
    hub = hub_factory(live_config, mail_url=mail_url(smtp[1]), group_wait="100ms")
    live = {"status": "firing", "summary": "disk full", "dedup_key": "disk"}
    resolved = {**live, "status": "resolved"}
    with hub.client(headers=WRITE) as http:
        http.post("/webhooks/rehearsal", json=live, headers=TEST_AUTH).raise_for_status()
        tested = hub.config_path.read_text().replace('mode = "live"', 'mode = "test"')
        hub.config_path.write_text(tested)
        http.post("/-/reload", headers=ADMIN).raise_for_status()
        answer = http.post("/webhooks/rehearsal", json=resolved, headers=TEST_AUTH).json()
        (alert,) = http.get("/api/v1/alerts").json()
        (incident,) = http.get("/api/v1/incidents").json()
    (decision,) = answer["decision"]
    assert (decision["outcome"], decision["notification"]) == ("changed", "resolved")
    assert alert["status"] == "firing"
    assert incident["status"] == "open"


async def decided_as_a_silence_expires(runtime: Any, silence_id: str, event: dict) -> Answer:
    """A test delivery of ``event`` taken as the silence is expired: the expiry's write
    is queued first, and the delivery is decided before that write is applied."""
    expiring = asyncio.ensure_future(silencing.expire(runtime, silence_id, "will"))
    await asyncio.sleep(0)  # the expiry's write is queued, not yet applied
    (source,) = [s for s in runtime.config.sources if s.name == "rehearsal"]
    body, now = json.dumps(event).encode(), runtime.clock()
    decoded = decode(body, source, datetime.fromtimestamp(now, UTC))
    delivery = Delivery(source.name, None, now, {}, body, mode="test")
    answer = await commit(runtime, delivery, decoded, None)
    await expiring
    return answer


def test_a_silence_expired_as_a_test_delivery_comes_in_does_not_mute_it(hub):
    """The silences were read before the delivery's write, so a silence whose expiry that
    write queued behind still showed as muting the alert in the decision."""
    with hub.client(headers=WRITE) as http:
        silence = http.post("/api/v1/silences", json=SILENCE).json()
    answer = hub.run(decided_as_a_silence_expires(hub.runtime, silence["id"], SEARCH))
    (decision,) = answer.body["decision"]
    assert (answer.status_code, decision.mutes) == (202, [])


PAGERDUTY_TEST_SOURCE = """
[[sources]]
name = "pd-rehearsal"
format = "pagerduty"
mode = "test"
auth = {{ type = "none" }}
"""


def test_a_test_resolve_of_no_alert_is_shown_ignored(hub_factory, smtp):
    hub = hub_factory(BASE_CONFIG + PAGERDUTY_TEST_SOURCE, mail_url=mail_url(smtp[1]))
    resolve = {"routing_key": "k", "event_action": "resolve", "dedup_key": "never-triggered"}
    with hub.client() as http:
        answer = http.post("/webhooks/pd-rehearsal", json=resolve).json()
    (decision,) = answer["decision"]
    assert (decision["outcome"], decision["notification"]) == ("ignored", None)
    assert (decision["routes"], decision["receivers"]) == ([], [])


def test_a_test_source_still_authenticates_and_decodes(hub):
    with hub.client(headers=WRITE) as http:
        not_its_token = http.post("/webhooks/rehearsal", json=CHECKOUT)
        wrong = http.post("/webhooks/rehearsal", json={"status": "firing"}, headers=TEST_AUTH)
        listed = http.get("/api/v1/events").json()
    assert (not_its_token.status_code, wrong.status_code) == (401, 422)
    assert listed == []


def test_a_repeated_test_delivery_gets_its_first_answer(hub):
    headers = {**TEST_AUTH, "Idempotency-Key": "try-1"}
    with hub.client(headers=WRITE) as http:
        first = http.post("/webhooks/rehearsal", json=CHECKOUT, headers=headers)
        again = http.post("/webhooks/rehearsal", json=CHECKOUT, headers=headers)
        listed = http.get("/api/v1/events").json()
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == first.json()
    assert len(listed) == 1


def test_a_test_delivery_key_reused_with_another_body_is_refused(hub):
    headers = {**TEST_AUTH, "Idempotency-Key": "try-1"}
    with hub.client(headers=WRITE) as http:
        first = http.post("/webhooks/rehearsal", json=CHECKOUT, headers=headers)
        reused = http.post("/webhooks/rehearsal", json=SEARCH, headers=headers)
        listed = http.get("/api/v1/events").json()
    assert (first.status_code, reused.status_code) == (202, 422)
    assert "Idempotency-Key 'try-1'" in reused.json()["detail"]
    assert len(listed) == 1
