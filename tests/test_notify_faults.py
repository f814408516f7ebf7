"""Notifications when things go wrong: a mail server that is down, a channel that never
answers, a hub killed in the middle of a send, a silence; each leaves its trace in
the delivery log and in /metrics."""

from __future__ import annotations

import html
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise

import pytest
from aiosmtpd.controller import Controller
from conftest import Mailbox, free_port, mail_url, wait_for
from console_support import sign_in
from notify_support import (
    ADMIN,
    NOTIFY_CONFIG,
    NOTIFY_DEFAULTS,
    WRITER,
    deliveries,
    fire,
    metric,
    receiver,
    route,
    start_hub,
    when,
)


class _Refuse(BaseHTTPRequestHandler):
    """Reads a request and answers 500, as a gateway that turns a message down does."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(500)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"denied")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port whose HTTP server answers every POST with 500."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def suppressed(http) -> float | None:
    """How many alerts silences have held back, from /metrics."""
    text = http.get("/metrics").text
    return metric(text, "hub_notifications_suppressed_total", reason="silence")


def dead_letters(http) -> list[dict]:
    return [n for n in deliveries(http) if n["state"] == "dead"]


def test_a_mail_server_that_is_down_gets_retries_with_growing_delays_then_a_dead_letter(
    hub_factory,
):
    hub = start_hub(
        hub_factory,
        receiver("ops", mail_url(free_port())),
        max_attempts=4,
        backoff="400ms",
        max_backoff="10s",
    )
    with hub.client(headers=WRITER) as http:
        fire(http, "payment gateway timeouts")
        (note,) = wait_for(lambda: dead_letters(http), timeout=20)
        metrics = http.get("/metrics").text
    attempts = note["attempts_log"]
    assert [a["outcome"] for a in attempts] == ["failed"] * 4
    assert all("refused" in a["error"].lower() for a in attempts), attempts
    assert note["last_error"] == attempts[-1]["error"]
    # The wait from each attempt's end to the next one's start: a loaded machine makes
    # an attempt itself slower, which says nothing of the backoff.
    ends = [when(a["started_at"]) + a["duration_ms"] / 1000 for a in attempts]
    starts = [when(a["started_at"]) for a in attempts]
    waits = [start - end for end, start in zip(ends, starts[1:], strict=False)]
    # the least jitter allows, less the times' rounding to milliseconds
    assert all(wait >= 0.2 * 2**i - 0.01 for i, wait in enumerate(waits)), waits
    assert waits[-1] > waits[0] * 1.5, waits  # at least 0.8 s against at most 0.4 s

    ops = {"receiver": "ops", "integration": "mailto"}
    assert metric(metrics, "hub_notifications_total", **ops, outcome="failed") == 3.0
    assert metric(metrics, "hub_notifications_total", **ops, outcome="dead") == 1.0
    assert metric(metrics, "hub_notifications_total", **ops, outcome="sent") == 0.0
    duration = "hub_notification_attempt_duration_seconds_count"
    assert metric(metrics, duration, integration="mailto") == 4.0
    assert metric(metrics, "hub_outbox_notifications", state="dead") == 1.0


def timeline(http, incident_id: int, *kinds: str) -> list[dict]:
    """The incident's timeline entries of these kinds, oldest first, as the API has them."""
    found = http.get(f"/api/v1/incidents/{incident_id}").json()["timeline"]
    return [{"kind": t["kind"], **t["detail"]} for t in found if t["kind"] in kinds]


def test_a_message_that_dies_is_on_the_timeline_as_failed_never_as_notified(hub_factory):
    """The timeline said "notified · pager: firing message" when the message was queued,
    and nothing when it then died: at 3 a.m. it claimed the pager was told. It now says
    so when the message dies, with a short error free of the URL's token."""
    token = "hook-s3cret-9z8y"
    pager = f"json://127.0.0.1:{free_port()}/hooks/{token}"
    hub = start_hub(hub_factory, receiver("ops", pager), max_attempts=2)
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "payment gateway timeouts")["incident_id"]
        (note,) = wait_for(lambda: dead_letters(http))
        entries = timeline(http, incident_id, "notified", "notification_dead")
        recorded = str(http.get(f"/api/v1/incidents/{incident_id}").json()["timeline"])
    with hub.client() as browser:
        sign_in(browser, "write-token")
        page = html.unescape(browser.get(f"/incidents/{incident_id}").text)
    assert entries == [
        {
            "kind": "notification_dead",
            "receiver": "ops",
            "integration": "json",
            "status": "firing",
            "alerts": 1,
            "notification": note["id"],
            "attempts": 2,
            "error": "connection refused",
        }
    ]
    assert token not in recorded + page.split("<h2>Notifications</h2>")[0]
    entry = page.split('data-kind="notification_dead">')[1].split("</li>")[0]
    words = " ".join(re.sub(r"<[^>]+>", " ", entry).split())
    assert words.endswith(
        "message to ops failed after 2 attempt(s): connection refused — see delivery log"
    )
    assert f'href="#notification-{note["id"]}"' in entry
    assert f'id="notification-{note["id"]}"' in page
    assert 'data-kind="notified"' not in page


def test_a_failed_send_keeps_the_reason_but_not_the_token_apprise_logged_in_its_request(
    hub_factory, refusing_port, caplog
):
    """SMSEagle sends its access token in the request body, and Apprise logs that body
    at debug level. A failure's text took every debug line mentioning a response, and
    this body always does ("responsetype"), as does any message about response times:
    the token reached the delivery log, the timeline and hub's log. The request is
    left out; the reason stays."""
    token = "eagle-s3cret-4f2a"
    gateway = f"smseagle://{token}@127.0.0.1:{refusing_port}/+15551234567"
    hub = start_hub(hub_factory, receiver("sms", gateway), root="sms", max_attempts=1)
    with caplog.at_level(logging.DEBUG, logger="hub"), hub.client(headers=WRITER) as http:
        incident_id = fire(http, "checkout response time above 2s")["incident_id"]
        (note,) = wait_for(lambda: dead_letters(http))
        recorded = http.get(f"/api/v1/incidents/{incident_id}").text
    logged = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("hub"))
    assert "error=500" in note["last_error"], note["last_error"]
    assert token not in note["last_error"] + str(note["attempts_log"]) + recorded + logged
    assert "Payload" not in note["last_error"]


def test_a_dead_letter_retried_by_an_admin_is_delivered_once_the_mail_server_is_up(
    hub_factory,
):
    port = free_port()
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)), max_attempts=1)
    mailbox = Mailbox()
    server = Controller(mailbox, hostname="127.0.0.1", port=port)
    with hub.client(headers=WRITER) as http:
        fire(http, "checkout down")
        (note,) = wait_for(lambda: dead_letters(http))
        retry = f"/api/v1/notifications/{note['id']}/retry"
        assert http.post(retry).status_code == 403, "retrying needs the admin role"
        server.start()
        try:
            answer = http.post(retry, headers=ADMIN)
            assert answer.status_code == 200
            assert answer.json()["state"] in ("pending", "sending", "sent")
            wait_for(lambda: mailbox.messages)
            (note,) = wait_for(lambda: [n for n in deliveries(http) if n["state"] == "sent"])
            assert http.post(retry, headers=ADMIN).status_code == 409
        finally:
            server.stop()
        entries = timeline(http, note["incident_id"], "notified", "notification_dead")
    assert len(mailbox.messages) == 1
    assert [a["outcome"] for a in note["attempts_log"]] == ["failed", "sent"]
    assert note["attempts"] == 2, "the count and the log agree after a retry"
    assert [(e["kind"], e["attempts"]) for e in entries] == [
        ("notification_dead", 1),
        ("notified", 2),
    ], "the letter died, then the retry reached the mail server"


def test_a_retried_dead_letter_gets_a_fresh_budget_and_keeps_counting_every_attempt(
    hub_factory,
):
    """A retry while the mail server is still down tries max_attempts times more, and
    ``attempts`` counts all of them, as many as the log lists."""
    hub = start_hub(hub_factory, receiver("ops", mail_url(free_port())), max_attempts=2)
    with hub.client(headers=WRITER) as http:
        fire(http, "checkout down")
        (note,) = wait_for(lambda: dead_letters(http))
        assert (note["attempts"], len(note["attempts_log"])) == (2, 2)
        answer = http.post(f"/api/v1/notifications/{note['id']}/retry", headers=ADMIN)
        assert answer.status_code == 200
        (note,) = wait_for(lambda: [n for n in dead_letters(http) if n["attempts"] == 4])
    assert [a["outcome"] for a in note["attempts_log"]] == ["failed"] * 4


def test_a_channel_that_never_answers_does_not_delay_email_to_another_receiver(
    hub_factory, smtp, silent_port
):
    mailbox, port = smtp
    receivers = receiver("slow", f"json://127.0.0.1:{silent_port}", timeout="2s")
    receivers += receiver("ops", mail_url(port))
    routes = route("slow", continue_=True) + route("ops")
    hub = start_hub(hub_factory, receivers, routes=routes, max_attempts=1)
    with hub.client(headers=WRITER) as http:
        fire(http, "checkout down")
        wait_for(lambda: mailbox.messages)
        (slow,) = wait_for(lambda: dead_letters(http))
        (email,) = deliveries(http, receiver="ops")
    (attempt,) = slow["attempts_log"]
    assert attempt["duration_ms"] >= 2000, "the slow channel waited for its read timeout"
    assert "timed out" in attempt["error"].lower() or "timeout" in attempt["error"].lower()
    slow_ended = when(attempt["started_at"]) + attempt["duration_ms"] / 1000
    assert when(email["sent_at"]) < slow_ended, "the email waited for the slow channel"


def test_a_notification_claimed_by_a_hub_killed_mid_send_is_delivered_after_restart(
    hub_factory, smtp, tmp_path
):
    mailbox, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)))
    with hub.client(headers=WRITER) as http:
        fire(http, "checkout down")
        wait_for(lambda: [n for n in deliveries(http) if n["state"] == "sent"])
    hub.stop()
    with sqlite3.connect(tmp_path / "hub.db") as db:  # as a claimer killed mid-send leaves it
        db.execute(
            "UPDATE notifications SET state = 'sending', claimed_until = ?, sent_at = NULL",
            (time.time() + 60,),
        )
        db.execute("DELETE FROM notification_attempts")
    mailbox.messages.clear()
    hub.start()
    wait_for(lambda: mailbox.messages)
    with hub.client(headers=WRITER) as http:  # the send is recorded once the server took it
        (note,) = wait_for(lambda: [n for n in deliveries(http) if n["state"] == "sent"])
    assert (note["state"], note["attempts"]) == ("sent", 2)
    assert [a["outcome"] for a in note["attempts_log"]] == ["sent"]


def test_a_silenced_alert_is_stored_and_counted_but_nobody_is_emailed(hub_factory, smtp):
    mailbox, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)))
    silence = {"matchers": ['service="checkout"'], "duration": "1h", "comment": "deploy 4.2"}
    with hub.client(headers=WRITER) as http:
        assert http.post("/api/v1/silences", json=silence).status_code == 201
        alert = fire(http, "checkout down")
        wait_for(lambda: suppressed(http))
        assert http.get(f"/api/v1/alerts/{alert['id']}").json()["status"] == "firing"
        fire(http, "search down", service="search")
        wait_for(lambda: mailbox.messages)
        assert deliveries(http, incident=alert["incident_id"]) == []
    assert mailbox.subjects() == [mailbox.subjects()[0]]
    assert "search down" in mailbox.subjects()[0]


def test_a_silenced_alert_is_counted_once_not_at_every_group_interval_it_stays_silenced(
    hub_factory, smtp
):
    """The dispatcher looks at a held-back incident every group_interval; those looks
    withhold nothing new. A new silenced alert, or one firing again, is a notification
    withheld and counts."""
    mailbox, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)), group_interval="100ms")
    silence = {"matchers": ['service="checkout"'], "duration": "1h", "comment": "deploy 4.2"}
    with hub.client(headers=WRITER) as http:
        assert http.post("/api/v1/silences", json=silence).status_code == 201
        fire(http, "checkout down")
        wait_for(lambda: suppressed(http) == 1)
        time.sleep(1.0)  # ten group_intervals of looks at the held-back incident
        assert suppressed(http) == 1
        fire(http, "checkout slow", alertname="CheckoutSlow")
        wait_for(lambda: suppressed(http) == 2)
        fire(http, "checkout down", status="resolved")
        time.sleep(0.3)
        assert suppressed(http) == 2
        fire(http, "checkout down")
        wait_for(lambda: suppressed(http) == 3)
        time.sleep(0.5)
        assert suppressed(http) == 3
    assert mailbox.messages == []


def test_silencing_a_notified_incident_sends_no_empty_resolution_at_its_next_repeat(
    hub_factory, smtp
):
    mailbox, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)), repeat_interval="500ms")
    silence = {"matchers": ['service="checkout"'], "duration": "1h", "comment": "deploy 4.2"}
    with hub.client(headers=WRITER) as http:
        fire(http, "checkout down")
        wait_for(lambda: mailbox.messages)
        assert http.post("/api/v1/silences", json=silence).status_code == 201
        wait_for(lambda: suppressed(http))
        time.sleep(0.6)  # past the next repeat, where an empty message would go out
        fire(http, "search down", service="search")
        wait_for(lambda: len(mailbox.messages) == 2)
    assert [s.split("] ")[0] for s in mailbox.subjects()] == ["[FIRING", "[FIRING"]
    assert "search down" in mailbox.subjects()[1]


def test_a_receiver_template_that_fails_on_a_real_alert_sends_the_default_message_marked(
    hub_factory, smtp, caplog
):
    """The template passed the config check's sample, which has a runbook; the real alert
    has none. People on call are paged anyway, with the default message, which says
    why; the delivery log, the log and /metrics name the error."""
    mailbox, port = smtp
    caplog.set_level(logging.INFO, logger="hub.outbox")
    body = "Runbook: {{ alerts[0].annotations.runbook.upper() }}"
    receivers = receiver("ops", mail_url(port), body=body)
    hub = start_hub(hub_factory, receivers)
    with hub.client(headers=WRITER) as http:
        alert = fire(http, "checkout down")
        wait_for(lambda: mailbox.messages)
        (note,) = wait_for(lambda: [n for n in deliveries(http) if n["state"] == "sent"])
        metrics = http.get("/metrics").text
    (attempt,) = note["attempts_log"]
    assert attempt["outcome"] == "sent"
    assert attempt["error"].startswith("template error in receiver 'ops': UndefinedError:")
    assert "runbook" in attempt["error"]
    assert note["last_error"] == attempt["error"]
    assert mailbox.subjects() == [f"[FIRING] #{alert['incident_id']} checkout down"]
    first_line = mailbox.text_of(0).strip().splitlines()[0]
    assert first_line == f"({attempt['error']}; default message sent)"
    assert metric(metrics, "hub_notification_template_errors_total", receiver="ops") == 1.0
    ops = {"receiver": "ops", "integration": "mailto"}
    assert metric(metrics, "hub_notifications_total", **ops, outcome="sent") == 1.0
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage().startswith(f"event=notification_sent id={note['id']} ")
    assert "runbook" in warning.getMessage()


def _attempt_starts(notes: list[dict]) -> list[float]:
    return sorted(when(note["attempts_log"][0]["started_at"]) for note in notes)


def test_notifier_concurrency_bounds_parallel_sends_and_a_reload_changes_it(
    hub_factory, silent_port
):
    """Three incidents, a channel that takes its full 1 s timeout: one at a time with
    ``concurrency = 1``, all three at once after a reload sets 3."""
    text = NOTIFY_CONFIG.replace("[notifier]\n", "[notifier]\nconcurrency = 1\n")
    receivers = receiver("ops", f"json://127.0.0.1:{silent_port}", timeout="1s")
    values = {**NOTIFY_DEFAULTS, "receivers": receivers, "max_attempts": 1}
    hub = hub_factory(text, **values)
    with hub.client(headers=WRITER) as http:
        for service in ("cart", "search", "payments"):
            fire(http, f"{service} down", service=service)
        serial = _attempt_starts(
            wait_for(lambda: len(dead_letters(http)) == 3 and dead_letters(http))
        )
        hub.config_path.write_text(
            hub.config_path.read_text().replace("concurrency = 1", "concurrency = 3")
        )
        assert http.post("/-/reload", headers=ADMIN).status_code == 200
        for service in ("mail", "login", "stock"):
            fire(http, f"{service} down", service=service)
        notes = wait_for(lambda: len(dead_letters(http)) == 6 and dead_letters(http))
    parallel = _attempt_starts([n for n in notes if n["incident_id"] > 3])
    assert all(later - earlier >= 0.9 for earlier, later in pairwise(serial)), serial
    assert parallel[-1] - parallel[0] < 0.9, parallel
