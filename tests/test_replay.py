"""Replay: a stored delivery's body through the current config, as a dry run that
changes nothing, or for real as a new delivery marked as a replay."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import BASE_CONFIG, mail_url, wait_for
from test_test_mode import CHECKOUT, TEST_AUTH, TEST_SOURCE, WRITE

ADMIN = {"Authorization": "Bearer admin-token"}
CONFIG = BASE_CONFIG + TEST_SOURCE
TABLES = ("deliveries", "events", "alerts", "alert_history", "incidents", "notifications")


@pytest.fixture
def hub(hub_factory, smtp):
    return hub_factory(CONFIG, mail_url=mail_url(smtp[1]))


def rows(hub) -> dict[str, int]:
    """Row counts, read from the hub's SQLite file beside its config."""
    path = Path(hub.config_path).parent / "hub.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return {
            table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in TABLES
        }


def rehearse(http) -> int:
    answer = http.post("/webhooks/rehearsal", json=CHECKOUT, headers=TEST_AUTH)
    return answer.json()["delivery_id"]


def go_live(hub, http) -> None:
    """Switch the test source to live in the file and reload, as an operator would."""
    path = Path(hub.config_path)
    path.write_text(path.read_text().replace('mode = "test"', 'mode = "live"'))
    http.post("/-/reload", headers=ADMIN).raise_for_status()


def test_a_dry_run_answers_the_decision_and_changes_nothing(hub):
    with hub.client(headers=WRITE) as http:
        delivery_id = rehearse(http)
        before = rows(hub)
        answer = http.post(f"/api/v1/events/{delivery_id}/replay", params={"dry_run": "true"})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["dry_run"], body["replay_of"], body["source"]) == (True, delivery_id, "rehearsal")
    (decision,) = body["decision"]
    assert (decision["fingerprint"], decision["outcome"]) == (
        decision["event"]["fingerprint"],
        "new",
    )
    assert decision["receivers"] == ["pager", "ops"]
    assert [r["route_id"] for r in decision["routes"]] == ["0.0", "0.1"]
    assert rows(hub) == before


def test_a_replay_after_going_live_is_a_new_delivery_that_alerts(hub, smtp):
    mailbox, _ = smtp
    with hub.client(headers=WRITE) as http:
        delivery_id = rehearse(http)
        go_live(hub, http)
        answer = http.post(f"/api/v1/events/{delivery_id}/replay", headers=ADMIN)
        replayed = http.get(f"/api/v1/events/{answer.json()['delivery_id']}").json()
        alerts = http.get("/api/v1/alerts").json()
    assert (answer.status_code, answer.json()["replay_of"]) == (202, delivery_id)
    (alert,) = answer.json()["alerts"]
    assert replayed["id"] != delivery_id
    assert (replayed["replay_of"], replayed["mode"], replayed["delivery_key"]) == (
        delivery_id,
        "live",
        None,
    )
    assert [e["alert_id"] for e in replayed["events"]] == [alert["id"]]
    assert [a["id"] for a in alerts] == [alert["id"]]
    wait_for(lambda: mailbox.messages)


def test_a_replay_is_never_refused_as_a_repeat(hub):
    with hub.client(headers=WRITE) as http:
        delivery_id = rehearse(http)
        go_live(hub, http)
        answers = [http.post(f"/api/v1/events/{delivery_id}/replay", headers=ADMIN) for _ in "ab"]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json()["delivery_id"] != answers[1].json()["delivery_id"]
    assert answers[1].json()["duplicates"] == 1


def test_a_replay_to_a_source_still_in_test_mode_is_a_test_delivery(hub):
    with hub.client(headers=WRITE) as http:
        delivery_id = rehearse(http)
        answer = http.post(f"/api/v1/events/{delivery_id}/replay", headers=ADMIN)
        alerts = http.get("/api/v1/alerts").json()
    assert (answer.status_code, answer.json()["mode"]) == (202, "test")
    assert alerts == []


@pytest.mark.parametrize(
    ("dry_run", "token", "status"),
    [
        ("true", "read-token", 403),
        ("true", "write-token", 200),
        ("false", "write-token", 403),
        ("false", "admin-token", 202),
        ("false", None, 401),
    ],
)
def test_a_dry_run_needs_write_and_a_real_replay_admin(hub, dry_run, token, status):
    with hub.client(headers=WRITE) as http:
        delivery_id = rehearse(http)
        headers = {"Authorization": f"Bearer {token}"} if token else {"Authorization": ""}
        answer = http.post(
            f"/api/v1/events/{delivery_id}/replay", params={"dry_run": dry_run}, headers=headers
        )
    assert answer.status_code == status


def test_an_unknown_delivery_is_404_and_a_removed_source_409(hub):
    with hub.client(headers=ADMIN) as http:
        delivery_id = rehearse(http)
        missing = http.post("/api/v1/events/999/replay", params={"dry_run": "true"})
        path = Path(hub.config_path)
        path.write_text(path.read_text().replace('name = "rehearsal"', 'name = "renamed"'))
        http.post("/-/reload").raise_for_status()
        gone = http.post(f"/api/v1/events/{delivery_id}/replay", params={"dry_run": "true"})
    assert (missing.status_code, gone.status_code) == (404, 409)
    assert "rehearsal" in gone.json()["detail"]


def test_a_body_the_sources_new_format_refuses_says_which_format_refused_it(hub):
    """A source changed to another format since: the decoder's words alone ("missing
    field `version`") read as if the stored body were broken."""
    with hub.client(headers=ADMIN) as http:
        delivery_id = rehearse(http)
        path = Path(hub.config_path)
        text = path.read_text().replace('format = "native"\nmode', 'format = "alertmanager"\nmode')
        path.write_text(text)
        http.post("/-/reload").raise_for_status()
        before = rows(hub)
        refused = http.post(f"/api/v1/events/{delivery_id}/replay", params={"dry_run": "true"})
        real = http.post(f"/api/v1/events/{delivery_id}/replay")
    assert (refused.status_code, real.status_code) == (422, 422)
    assert refused.json()["detail"].startswith(
        "source 'rehearsal' (alertmanager format) refuses this body now: Object missing"
    )
    assert refused.json()["field"] == "$.version"
    assert rows(hub) == before


OWN_DELIVERIES = """
[[sources]]
name = "prom"
format = "prometheus"
auth = {{ type = "none" }}

[[heartbeats]]
name = "nightly-backup"
period = "1h"
"""


def fail_a_heartbeat(http) -> None:
    http.post("/ping/nightly-backup/fail").raise_for_status()


def let_an_alert_end(http) -> None:
    """A Prometheus alert not re-sent before its endsAt: hub resolves it then."""
    now = datetime.now(UTC)
    alert = {
        "labels": {"alertname": "NodeDown", "instance": "db1"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (now + timedelta(seconds=0.5)).isoformat(),
    }
    http.post("/webhooks/prom/api/v2/alerts", json=[alert]).raise_for_status()


@pytest.mark.parametrize(
    ("source", "make"), [("heartbeat", fail_a_heartbeat), ("expiry", let_an_alert_end)]
)
def test_a_delivery_hub_made_itself_is_refused_as_no_senders(hub_factory, smtp, source, make):
    """It was refused as if its source had been removed from the config, which it
    never was in: nothing sent it, so there is nothing to send again."""
    hub = hub_factory(CONFIG + OWN_DELIVERIES, mail_url=mail_url(smtp[1]))
    with hub.client(headers=ADMIN) as http:
        make(http)
        (delivery,) = wait_for(lambda: http.get("/api/v1/events", params={"source": source}).json())
        dry = http.post(f"/api/v1/events/{delivery['id']}/replay", params={"dry_run": "true"})
        real = http.post(f"/api/v1/events/{delivery['id']}/replay")
    assert (dry.status_code, real.status_code) == (409, 409)
    assert dry.json() == real.json()
    detail = dry.json()["detail"]
    assert f"made by hub itself ({source})" in detail
    assert "no sender sent it" in detail
    assert "no longer configured" not in detail


def test_the_openapi_document_gives_a_replay_the_statuses_it_answers(hub):
    """It said 201 Created; a replay answers as a webhook (202), a dry run 200."""
    with hub.client(headers=ADMIN) as http:
        delivery_id = rehearse(http)
        dry = http.post(f"/api/v1/events/{delivery_id}/replay", params={"dry_run": "true"})
        real = http.post(f"/api/v1/events/{delivery_id}/replay")
        schema = http.get("/schema/openapi.json").json()
    operation = schema["paths"]["/api/v1/events/{delivery_id}/replay"]["post"]
    assert (dry.status_code, real.status_code) == (200, 202)
    assert sorted(code for code in operation["responses"] if code.startswith("2")) == ["200", "202"]
