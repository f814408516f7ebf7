"""Dismissing a dead letter, in the console and the API: it leaves the dead letters
(and ``hub_outbox_notifications{state="dead"}``, which the dashboard's *Dead letters*
stat shows), so that count means letters someone still has to act on; the incident's
timeline records who dismissed it and why."""

from __future__ import annotations

import html

import httpx
import pytest
from conftest import TLS_CONTEXT, free_port, mail_url, wait_for
from console_support import CONSOLE_CONFIG, csrf_in, fire, sign_in
from notify_support import metric

ADMIN = {"Authorization": "Bearer admin-token"}


@pytest.fixture
def dead_letter(hub_factory):
    """A hub whose only receiver's mail server is down, and the dead letter it wrote."""
    hub = hub_factory(CONSOLE_CONFIG, mail_url=mail_url(free_port()), max_attempts=1)
    fire(hub.url, "checkout down")
    with httpx.Client(base_url=hub.url, headers=ADMIN, verify=TLS_CONTEXT) as http:
        (letter,) = wait_for(lambda: dead_letters(http))
    return hub, letter


def dead_letters(http: httpx.Client) -> list[dict]:
    return http.get("/api/v1/notifications", params={"state": "dead"}).json()


def dead_count(http: httpx.Client) -> float | None:
    text = http.get("/metrics").text
    return metric(text, "hub_outbox_notifications", state="dead")


def test_an_admin_dismisses_a_dead_letter_in_the_console_and_the_timeline_names_them(
    dead_letter,
):
    hub, letter = dead_letter
    with hub.client() as http:
        sign_in(http, "admin-token")
        listed = http.get("/notifications?state=dead").text
        assert f'action="/notifications/{letter["id"]}/dismiss"' in listed
        assert dead_count(http) == 1.0
        done = http.post(
            f"/notifications/{letter['id']}/dismiss",
            data={"_csrf": csrf_in(listed), "comment": "told ops by phone"},
            follow_redirects=True,
        )
        assert done.status_code == 200, done.text
        assert "The dead letter is dismissed" in done.text
        assert "No notifications in state dead." in http.get("/notifications?state=dead").text
        dismissed = http.get("/notifications?state=dismissed").text
        assert f'data-notification="{letter["id"]}"' in dismissed
        incident = html.unescape(http.get(f"/incidents/{letter['incident_id']}").text)
        assert dead_count(http) == 0.0
    entry = incident.split('data-kind="dead_letter_dismissed"', 1)[1].split("</li>", 1)[0]
    assert "dead letter dismissed</strong> by ada" in entry
    assert "<q>told ops by phone</q>" in entry
    assert f"notification #{letter['id']} to ops, not sent" in entry


def test_dismissing_takes_the_admin_role_and_only_a_dead_letter(dead_letter):
    hub, letter = dead_letter
    dismiss = f"/api/v1/notifications/{letter['id']}/dismiss"
    with hub.client() as http:
        writer = {"Authorization": "Bearer write-token"}
        assert http.post(dismiss, headers=writer).status_code == 403
        answer = http.post(dismiss, headers=ADMIN, json={"comment": "receiver retired"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "dismissed"
        assert http.post(dismiss, headers=ADMIN).status_code == 409
        retried = http.post(f"/api/v1/notifications/{letter['id']}/retry", headers=ADMIN)
        assert retried.status_code == 409
        assert http.post("/api/v1/notifications/999/dismiss", headers=ADMIN).status_code == 404
        timeline = http.get(f"/api/v1/incidents/{letter['incident_id']}", headers=ADMIN)
    (entry,) = [t for t in timeline.json()["timeline"] if t["kind"] == "dead_letter_dismissed"]
    assert entry["actor"] == "ada"
    assert entry["detail"] == {
        "notification": letter["id"],
        "receiver": "ops",
        "comment": "receiver retired",
    }


def test_a_read_or_write_viewer_gets_no_dismiss_button(dead_letter):
    hub, letter = dead_letter
    with hub.client() as http:
        sign_in(http, "write-token")
        listed = http.get("/notifications?state=dead").text
        assert f'data-notification="{letter["id"]}"' in listed
        assert "/dismiss" not in listed
        refused = http.post(
            f"/notifications/{letter['id']}/dismiss", data={"_csrf": csrf_in(listed)}
        )
        assert refused.status_code == 403
