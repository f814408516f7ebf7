"""A sender's dedup_key names an alert within its source: the same key from two
sources is two alerts, while Alertmanager's fingerprints stay shared by all sources.
Alerts stored under a bare key before the upgrade keep receiving their re-sends."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from conftest import AUTH, BASE_CONFIG, mail_url
from source_factory import fixture_json

from hub.store import migrations

CONFIG = (
    BASE_CONFIG
    + """
[[sources]]
name = "crm"
format = "native"
auth = {{ type = "bearer", tokens = ["shop-secret-token"] }}

[[sources]]
name = "pd-a"
format = "pagerduty"
auth = {{ type = "none" }}

[[sources]]
name = "pd-b"
format = "pagerduty"
auth = {{ type = "none" }}

[[sources]]
name = "am-a"
format = "alertmanager"
auth = {{ type = "none" }}

[[sources]]
name = "am-b"
format = "alertmanager"
labels = {{ cluster = "eu-1" }}
auth = {{ type = "none" }}
"""
)

FIRING = {"status": "firing", "summary": "run 1001 failed", "dedup_key": "1001"}
PAID = {"status": "resolved", "summary": "order 1001 paid", "dedup_key": "1001"}


def pagerduty(action: str, summary: str) -> dict:
    payload = {"summary": summary, "source": "srv01", "severity": "critical"}
    return {"routing_key": "k", "event_action": action, "dedup_key": "shared-1", "payload": payload}


@pytest.fixture
def hub(hub_factory, smtp):
    return hub_factory(CONFIG, mail_url=mail_url(smtp[1]))


def alerts(http) -> list[tuple[str, str, str, str]]:
    shown = http.get("/api/v1/alerts").json()
    return sorted((a["source"], a["fingerprint"], a["status"], a["summary"]) for a in shown)


def test_the_same_key_from_two_sources_is_two_alerts(hub):
    with hub.client(headers=AUTH) as http:
        first = http.post("/webhooks/shop", json=FIRING).json()
        second = http.post("/webhooks/crm", json=PAID).json()
        assert (first["accepted"], second["accepted"]) == (1, 1)
        assert first["alerts"][0]["id"] != second["alerts"][0]["id"]
        assert alerts(http) == [
            ("crm", "crm/1001", "resolved", "order 1001 paid"),
            ("shop", "shop/1001", "firing", "run 1001 failed"),
        ]


def test_pagerduty_sources_keep_their_own_alerts_and_hear_their_own_key(hub):
    with hub.client() as http:
        answer = http.post("/webhooks/pd-a", json=pagerduty("trigger", "disk full on a"))
        http.post("/webhooks/pd-b", json=pagerduty("trigger", "disk full on b"))
        http.post("/webhooks/pd-b", json=pagerduty("resolve", "disk fine on b"))
        assert answer.json()["dedup_key"] == "shared-1"
        assert [(a[1], a[2]) for a in alerts(http)] == [
            ("pd-a/shared-1", "firing"),
            ("pd-b/shared-1", "resolved"),
        ]


def test_a_source_re_sending_its_key_repeats_its_alert(hub):
    with hub.client(headers=AUTH) as http:
        first = http.post("/webhooks/shop", json=FIRING).json()
        again = http.post("/webhooks/shop", json=FIRING).json()
        assert again["duplicates"] == 1
        assert again["alerts"][0]["id"] == first["alerts"][0]["id"]
        assert len(alerts(http)) == 1


def test_alertmanager_fingerprints_are_shared_by_sources(hub):
    body = fixture_json("alertmanager", "firing.json")
    with hub.client() as http:
        first = http.post("/webhooks/am-a", json=body).json()
        second = http.post("/webhooks/am-b", json=body).json()
        assert second["duplicates"] == 1
        assert second["alerts"][0]["id"] == first["alerts"][0]["id"]
        assert [a[1] for a in alerts(http)] == ["6b157f79b26a43ad"]


def test_alerts_stored_under_a_bare_key_before_the_upgrade_take_their_re_sends(hub, tmp_path):
    """A firing alert that missed its re-sends would fire for ever beside a new one.
    Hashed and Alertmanager fingerprints stay, a source's default labels included."""
    unkeyed = {"status": "firing", "summary": "no key", "labels": {"host": "db-1"}}
    am_body = fixture_json("alertmanager", "firing.json")
    sends = [("shop", FIRING, AUTH), ("shop", unkeyed, AUTH), ("am-b", am_body, {})]
    with hub.client() as http:
        for source, body, headers in sends:
            assert http.post(f"/webhooks/{source}", json=body, headers=headers).is_success
        before = alerts(http)
    hub.stop()
    with sqlite3.connect(tmp_path / "hub.db") as conn:
        conn.execute("UPDATE alerts SET fingerprint = '1001' WHERE fingerprint = 'shop/1001'")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm015_source_scoped_keys'")
    hub.start()
    with hub.client() as http:
        for source, body, headers in sends:
            answer = http.post(f"/webhooks/{source}", json=body, headers=headers).json()
            assert answer["duplicates"] == 1, source
        assert alerts(http) == before


HEX_KEY = "0123456789abcdef"


def database_before_scoped_keys(path: Path) -> None:
    """A file as hub left it before m015: shop's firing alert stored under its bare
    dedup_key, in an open incident."""
    db = sqlite_utils.Database(path)
    migrations.apply(db, stop_before="m015_source_scoped_keys")
    timing = {"group_wait": 0.0, "group_interval": 0.2, "repeat_interval": 3600.0}
    db["incidents"].insert(
        {
            "id": 1,
            "group_key": "{}",
            "route_id": "root",
            "status": "open",
            "severity": "warning",
            "title": "run 1001 failed",
            "labels": "{}",
            "receivers": '["ops"]',
            "timing": json.dumps(timing),
            "opened_at": 1.0,
            "updated_at": 1.0,
            "active_alerts": 1,
        }
    )
    db["alerts"].insert(
        {
            "id": 1,
            "fingerprint": HEX_KEY,
            "source": "shop",
            "status": "firing",
            "severity": "warning",
            "summary": "run 1001 failed",
            "labels": "{}",
            "annotations": "{}",
            "first_seen": 1.0,
            "last_seen": 1.0,
            "last_change": 1.0,
            "incident_id": 1,
        }
    )
    db.close()


def test_an_alert_keyed_with_sixteen_hex_digits_before_the_upgrade_takes_its_resolve(
    hub_factory, smtp, tmp_path
):
    """m015 could not tell such a bare key from a label hash and left it as it was: the
    sender's resolve must still find the alert, not store a second one beside it while
    it fires for ever. Another source's same key stays another alert."""
    database_before_scoped_keys(tmp_path / "hub.db")
    hub = hub_factory(CONFIG, mail_url=mail_url(smtp[1]))
    resolve = {**PAID, "dedup_key": HEX_KEY}
    with hub.client(headers=AUTH) as http:
        answer = http.post("/webhooks/shop", json=resolve).json()
        other = http.post("/webhooks/crm", json=resolve).json()
        incident = http.get("/api/v1/incidents/1").json()
        shown = alerts(http)
    assert answer["alerts"] == [
        {"id": 1, "fingerprint": f"shop/{HEX_KEY}", "status": "resolved", "incident_id": 1}
    ]
    assert other["alerts"][0]["id"] != 1
    assert shown == [
        ("crm", f"crm/{HEX_KEY}", "resolved", "order 1001 paid"),
        ("shop", f"shop/{HEX_KEY}", "resolved", "order 1001 paid"),
    ]
    assert incident["status"] == "resolved"


def test_a_test_mode_decision_finds_such_an_alert_and_leaves_it_as_it_is(
    hub_factory, smtp, tmp_path
):
    database_before_scoped_keys(tmp_path / "hub.db")
    testing = CONFIG.replace("max_body_bytes = 4096", 'max_body_bytes = 4096\nmode = "test"')
    hub = hub_factory(testing, mail_url=mail_url(smtp[1]))
    with hub.client(headers=AUTH) as http:
        answer = http.post("/webhooks/shop", json={**PAID, "dedup_key": HEX_KEY}).json()
        shown = alerts(http)
    (decided,) = answer["decision"]
    assert (decided["outcome"], decided["notification"]) == ("changed", "resolved")
    assert shown == [("shop", HEX_KEY, "firing", "run 1001 failed")]
