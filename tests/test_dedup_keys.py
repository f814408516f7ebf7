"""A sender's dedup_key names an alert within its source: the same key from two
sources is two alerts, while Alertmanager's fingerprints stay shared by sources with
the same labels. Alerts stored under an older identity keep receiving their re-sends."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from conftest import AUTH, BASE_CONFIG, mail_url, wait_for
from source_factory import fixture_json

from hub.fingerprints import label_fingerprint

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

[[sources]]
name = "am-b2"
format = "alertmanager"
labels = {{ cluster = "eu-1" }}
auth = {{ type = "none" }}

[[sources]]
name = "am-us"
format = "alertmanager"
labels = {{ cluster = "us-1" }}
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


def test_a_key_spelled_like_another_alerts_label_hash_is_its_own_alert(hub):
    """A sender echoing the fingerprint of hub's answer back as its dedup_key names a
    new alert, shop/<hash>, and leaves the alert of that hash as it was."""
    unkeyed = {"status": "firing", "summary": "disk full", "labels": {"host": "db1"}}
    with hub.client(headers=AUTH) as http:
        stored = http.post("/webhooks/shop", json=unkeyed).json()["alerts"][0]
        key = stored["fingerprint"]
        assert len(key) == 16 and "/" not in key
        echoed = {"status": "resolved", "summary": "job done", "dedup_key": key}
        answer = http.post("/webhooks/shop", json=echoed).json()["alerts"][0]
        assert answer["id"] != stored["id"]
        assert alerts(http) == sorted(
            [("shop", key, "firing", "disk full"), ("shop", f"shop/{key}", "resolved", "job done")]
        )


def test_an_alert_sent_with_and_without_an_empty_label_is_one_alert(hub, smtp):
    """As in Prometheus, ``env=""`` is no label: a sender that sometimes sends it opened
    a second alert and paged twice, and its resolve left the other firing."""
    mailbox, _ = smtp
    firing = {"status": "firing", "summary": "disk full", "labels": {"host": "db1"}}
    empty = {**firing, "labels": {"host": "db1", "env": ""}}
    with hub.client(headers=AUTH) as http:
        first = http.post("/webhooks/shop", json=empty).json()
        again = http.post("/webhooks/shop", json=firing).json()
        wait_for(lambda: mailbox.messages)
        resolve = http.post("/webhooks/shop", json={**empty, "status": "resolved"}).json()
        wait_for(lambda: len(mailbox.messages) == 2)
        (shown,) = http.get("/api/v1/alerts").json()
    assert again["duplicates"] == 1
    assert first["alerts"][0]["id"] == again["alerts"][0]["id"] == resolve["alerts"][0]["id"]
    assert (shown["status"], shown["labels"]) == ("resolved", {"host": "db1"})
    time.sleep(0.5)  # room for another page, were one coming
    assert ["RESOLVED" in subject.upper() for subject in mailbox.subjects()] == [False, True]


def test_an_alert_hashed_with_an_empty_label_before_the_upgrade_takes_its_resolve(hub, tmp_path):
    """An older hub counted ``env=""`` in the label hash: at the first start the alert
    takes the hash its next events have, so a firing one is not left firing for ever."""
    empty = {"status": "firing", "summary": "disk full", "labels": {"host": "db1", "env": ""}}
    with hub.client(headers=AUTH) as http:
        stored = http.post("/webhooks/shop", json=empty).json()["alerts"][0]
    hub.stop()
    older = label_fingerprint("shop", empty["labels"])
    with sqlite3.connect(tmp_path / "hub.db") as conn:
        conn.execute(
            "UPDATE alerts SET fingerprint = ?, labels = ?", (older, json.dumps(empty["labels"]))
        )
        conn.execute("DELETE FROM settings WHERE name = 'empty_labels_rekeyed'")
    hub.start()
    with hub.client(headers=AUTH) as http:
        answer = http.post("/webhooks/shop", json={**empty, "status": "resolved"}).json()
        assert len(alerts(http)) == 1
    assert (answer["alerts"][0]["id"], answer["alerts"][0]["status"]) == (stored["id"], "resolved")


def resolved(body: dict) -> dict:
    alert = {**body["alerts"][0], "status": "resolved", "endsAt": "2026-11-28T22:05:00Z"}
    return {**body, "status": "resolved", "alerts": [alert]}


def test_alertmanager_fingerprints_are_shared_by_sources_with_the_same_labels(hub):
    """A source's labels are part of the identity, as Prometheus' external_labels are:
    an HA pair posting to two sources alike sends one alert, while two clusters'
    identical alerts stay two and one's resolve leaves the other firing."""
    body = fixture_json("alertmanager", "firing.json")
    with hub.client() as http:
        first = http.post("/webhooks/am-b", json=body).json()
        twin = http.post("/webhooks/am-b2", json=body).json()
        http.post("/webhooks/am-us", json=body)
        http.post("/webhooks/am-us", json=resolved(body))
        http.post("/webhooks/am-a", json=body)
        shown = http.get("/api/v1/alerts").json()
    assert twin["duplicates"] == 1
    assert twin["alerts"][0]["id"] == first["alerts"][0]["id"]
    by_cluster = {a["labels"].get("cluster"): (a["fingerprint"], a["status"]) for a in shown}
    assert by_cluster[None] == ("6b157f79b26a43ad", "firing")
    assert (by_cluster["eu-1"][1], by_cluster["us-1"][1]) == ("firing", "resolved")
    assert len({fingerprint for fingerprint, _ in by_cluster.values()}) == 3


def test_alerts_of_a_labelled_source_stored_before_the_upgrade_take_their_resolve(hub, tmp_path):
    """An older hub identified them without the source's labels: at the first start
    they move to the identity their next events carry, so a firing alert resolves."""
    body = fixture_json("alertmanager", "firing.json")
    with hub.client() as http:
        stored = http.post("/webhooks/am-b", json=body).json()["alerts"][0]
    hub.stop()
    with sqlite3.connect(tmp_path / "hub.db") as conn:
        conn.execute("UPDATE alerts SET fingerprint = '6b157f79b26a43ad'")
        conn.execute("DELETE FROM settings WHERE name = 'labelled_sources_rekeyed'")
    hub.start()
    with hub.client() as http:
        answer = http.post("/webhooks/am-b", json=resolved(body)).json()["alerts"][0]
        assert len(alerts(http)) == 1
    assert (answer["id"], answer["fingerprint"]) == (stored["id"], stored["fingerprint"])
    assert answer["status"] == "resolved"


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
