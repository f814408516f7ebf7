"""One broken item does not stop a worker for every other one: on a real server with
real email, a row a fault left malformed (a truncated JSON column, edited in the
SQLite file while hub runs) is logged, counted and set aside, the other incidents
and heartbeats are notified and paged in the same round, and once the row is
repaired the item goes through at its next try: a minute later the first time, twice
as long after each failure in a row."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from conftest import MovedClock, mail_url, wait_for
from console_support import sign_in
from notify_support import deliveries, fire, metric, receiver
from notify_support import start_hub as start_notifying_hub
from test_escalation import ADMIN, WRITE, escalated_steps, open_incident, recipients, step_count
from test_escalation import start_hub as start_escalating_hub
from test_expiry import alert, ended_total, post, status_of
from test_expiry import start as start_expiring_hub
from test_heartbeats import start_hub as start_heartbeat_hub
from test_snooze import after_a_worker_round, snooze

from hub.worker import LATE_SECONDS, RETRY_SECONDS

SECOND_HEARTBEAT = """
[[heartbeats]]
name = "hourly-sync"
period = "1h"
grace = "300ms"
"""


def edit(hub, sql: str, *params: object) -> None:
    """Change the store's file behind hub's back, as a hand edit or a fault would."""
    with contextlib.closing(sqlite3.connect(hub.runtime.config.storage.path)) as db, db:
        db.execute(sql, params)


def stored(hub, sql: str, *params: object) -> object:
    with contextlib.closing(sqlite3.connect(hub.runtime.config.storage.path)) as db:
        return db.execute(sql, params).fetchone()[0]


def set_aside(http, worker: str) -> float | None:
    return metric(http.get("/metrics").text, "hub_worker_item_failures_total", worker=worker)


def failing(http, worker: str) -> float | None:
    return metric(http.get("/metrics").text, "hub_worker_items_failing", worker=worker)


def failure_lines(caplog, worker: str) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.name == "hub.worker"]
    return [line for line in lines if line.startswith(f"event=worker_item_failed worker={worker} ")]


def heartbeat_alerts(http) -> list[dict]:
    return http.get("/api/v1/alerts", params={"source": "heartbeat"}).json()


@contextlib.contextmanager
def two_chains(hub_factory, smtp, caplog):
    """A hub on a moved clock whose chains page ``first`` and, an hour on, ``alice``: two
    incidents with step one done, the one to break and the other, and the plan of the
    first as stored."""
    caplog.set_level(logging.ERROR, logger="hub.worker")
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start_escalating_hub(
        hub_factory, smtp_port, second_after="1h", clock=clock, route='group_by = ["service"]\n'
    )
    with hub.client(headers=WRITE) as http:
        broken = open_incident(http)["id"]
        other = fire(http, "payments down", service="payments")["incident_id"]
        wait_for(lambda: recipients(mailbox).count("first") == 2)  # step one of each
        plan = stored(hub, "SELECT plan FROM escalations WHERE id = ?", broken)
        yield mailbox, hub, clock, http, broken, other, plan


def test_an_escalation_chain_left_malformed_is_set_aside_and_other_incidents_are_paged(
    hub_factory, smtp, caplog
):
    with two_chains(hub_factory, smtp, caplog) as (mailbox, hub, clock, http, broken, other, plan):
        edit(hub, "UPDATE escalations SET plan = ? WHERE id = ?", plan[:-1], broken)

        clock.advance(3600)  # step two of both chains falls due
        wait_for(lambda: "alice" in recipients(mailbox))
        assert escalated_steps(http, other) == [(1, 1), (1, 2)]
        wait_for(lambda: set_aside(http, "escalator") == 1)
        (line,) = failure_lines(caplog, "escalator")
        assert line.startswith(f"event=worker_item_failed worker=escalator incident={broken} ")
        assert "error=" in line and "retry_in=60" in line
        assert recipients(mailbox).count("alice") == 1

        edit(hub, "UPDATE escalations SET plan = ? WHERE id = ?", plan, broken)
        clock.advance(RETRY_SECONDS)
        wait_for(lambda: recipients(mailbox).count("alice") == 2)
        assert escalated_steps(http, broken) == [(1, 1), (1, 2)]
        assert set_aside(http, "escalator") == 1


def test_a_lapsed_acknowledgement_of_a_malformed_chain_is_set_aside_and_others_are_paged(
    hub_factory, smtp, caplog
):
    """Waking an incident whose snooze ended starts its chain over, reading the chain:
    one left malformed failed the escalator's every round, steps of other incidents
    included."""
    with two_chains(hub_factory, smtp, caplog) as (mailbox, hub, clock, http, broken, other, plan):
        assert snooze(http, broken, "1m").status_code == 200
        edit(hub, "UPDATE escalations SET plan = ? WHERE id = ?", plan[:-1], broken)

        clock.advance(3600)  # the snooze ended, and step two of both chains is due
        wait_for(lambda: "alice" in recipients(mailbox))
        assert escalated_steps(http, other) == [(1, 1), (1, 2)]
        wait_for(lambda: set_aside(http, "escalator") == 2)  # the wake-up, then the step
        lines = failure_lines(caplog, "escalator")
        assert [line.split()[2] for line in lines] == [f"incident={broken}"] * 2
        assert step_count(http, "snooze_ended") == 0

        edit(hub, "UPDATE escalations SET plan = ? WHERE id = ?", plan, broken)
        clock.advance(RETRY_SECONDS)
        wait_for(lambda: recipients(mailbox).count("first") == 3)  # its chain started over
        assert step_count(http, "snooze_ended") == 1
        assert set_aside(http, "escalator") == 2


def notifying_ops(hub_factory, smtp, caplog) -> tuple[Any, Any, MovedClock]:
    """A hub on a moved clock emailing receiver ``ops``, the worker's failures captured."""
    caplog.set_level(logging.ERROR, logger="hub.worker")
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start_notifying_hub(hub_factory, receiver("ops", mail_url(smtp_port)), clock=clock)
    return mailbox, hub, clock


def test_a_receiver_row_left_malformed_is_set_aside_and_other_incidents_are_told(
    hub_factory, smtp, caplog
):
    mailbox, hub, clock = notifying_ops(hub_factory, smtp, caplog)
    with hub.client(headers=WRITE) as http:
        broken = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: len(mailbox.messages) == 1)
        edit(hub, "UPDATE incident_receivers SET muted = '[' WHERE incident_id = ?", broken)
        fire(http, "checkout slow", alertname="Slow")  # joins it: its receiver is due
        other = fire(http, "payments down", service="payments")["incident_id"]

        wait_for(lambda: [d["state"] for d in deliveries(http, incident=other)] == ["sent"])
        wait_for(lambda: set_aside(http, "dispatcher") == 1)
        (line,) = failure_lines(caplog, "dispatcher")
        expected = f"event=worker_item_failed worker=dispatcher incident={broken} receiver=ops "
        assert line.startswith(expected)
        assert len(deliveries(http, incident=broken)) == 1

        edit(hub, "UPDATE incident_receivers SET muted = '[]' WHERE incident_id = ?", broken)
        clock.advance(RETRY_SECONDS)
        wait_for(lambda: [d["state"] for d in deliveries(http, incident=broken)] == ["sent"] * 2)
        assert "checkout slow" in mailbox.text_of(-1)
        assert set_aside(http, "dispatcher") == 1


def requeue_edited(
    hub, incident_id: int, column: str, change: Callable[[Any], Any], stored_as: str = "?"
) -> tuple:
    """Queue the incident's message, sent, again with ``column`` changed by ``change``
    (and stored as the SQL expression ``stored_as`` of it), while hub is stopped, as an
    older hub, a hand edit or a fault leaves a row: the sender claims due rows in one
    write. Returns the row's id and the column as it was."""
    hub.stop()
    queued = stored(hub, "SELECT id FROM notifications WHERE incident_id = ?", incident_id)
    value = stored(hub, f"SELECT {column} FROM notifications WHERE id = ?", queued)
    queued_again = "UPDATE notifications SET state = 'pending', due_at = 0"
    edit(hub, f"{queued_again}, {column} = {stored_as} WHERE id = ?", change(value), queued)
    hub.start()
    return queued, value


def test_a_queued_message_left_malformed_is_set_aside_and_other_messages_are_sent(
    hub_factory, smtp, caplog, no_cyclic_collection
):
    """Its receiver's name no longer UTF-8 text, as a fault may leave a page of the
    file: reading the claimed row failed every claim. And once it failed, the error's
    traceback kept the statement reading it open on hub's write connection, with the
    snapshot it read: after the operator's repair from another connection, every
    write hub began was refused (SQLITE_BUSY_SNAPSHOT, "database is locked") until a
    collection freed it, so no event was stored and nobody told."""
    mailbox, hub, clock = notifying_ops(hub_factory, smtp, caplog)
    with hub.client(headers=WRITE) as http:
        broken = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: [d["state"] for d in deliveries(http, incident=broken)] == ["sent"])
    queued, receiver = requeue_edited(hub, broken, "receiver", lambda _: b"\xff", "CAST(? AS TEXT)")
    with hub.client(headers=WRITE) as http:
        other = fire(http, "payments down", service="payments")["incident_id"]
        wait_for(lambda: [d["state"] for d in deliveries(http, incident=other)] == ["sent"])
        wait_for(lambda: set_aside(http, "outbox") == 1)
        (line,) = failure_lines(caplog, "outbox")
        assert line.split()[2] == f"notification={queued}"
        assert len(mailbox.messages) == 2

        edit(hub, "UPDATE notifications SET receiver = ? WHERE id = ?", receiver, queued)
        clock.advance(RETRY_SECONDS)
        wait_for(lambda: len(mailbox.messages) == 3)
        assert "checkout down" in mailbox.subjects()[-1]
        assert set_aside(http, "outbox") == 1
    assert not [r for r in caplog.records if "store_commit_failed" in r.getMessage()]


def sent_then_requeued(hub_factory, smtp, caplog, column: str, change: Callable) -> tuple:
    """A hub emailing ``ops`` whose first message went out and was queued again with
    ``column`` changed (``requeue_edited``), warnings captured; the hub, its incident
    and the message's id."""
    _, hub, _ = notifying_ops(hub_factory, smtp, caplog)
    caplog.set_level(logging.WARNING)
    with hub.client(headers=WRITE) as http:
        incident = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: [d["state"] for d in deliveries(http, incident=incident)] == ["sent"])
    queued, _ = requeue_edited(hub, incident, column, change)
    return hub, incident, queued


def logged(caplog, start: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(start)]


def test_a_message_whose_receiver_is_bytes_is_shown_and_counted_as_its_log_line_names_it(
    hub_factory, smtp, caplog
):
    """A receiver a hand edit left as a BLOB is dead-lettered (``outbox.readable``).
    The API showed it as base64 and the dead letters of hub_notifications_total left it
    out; both name it now as its log line does, UTF-8 with U+FFFD for a byte that is
    not, and the first count under a label that was not text is logged once."""
    hub, incident, queued = sent_then_requeued(
        hub_factory, smtp, caplog, "receiver", lambda name: name.encode() + b"\xff"
    )
    with hub.client(headers=WRITE) as http:
        wait_for(lambda: [d["state"] for d in deliveries(http, incident=incident)] == ["dead"])
        assert [d["receiver"] for d in deliveries(http, incident=incident)] == ["ops\ufffd"]
        dead = {"receiver": "ops\ufffd", "integration": "mailto", "outcome": "dead"}
        assert metric(http.get("/metrics").text, "hub_notifications_total", **dead) == 1
    (line,) = logged(caplog, f"event=notification_dead id={queued} ")
    assert ' receiver="ops\\ufffd" ' in line
    assert logged(caplog, "event=metric_label_not_text") == [
        'event=metric_label_not_text label="ops\\ufffd" stored_as=bytes'
    ]


def test_a_sent_message_whose_queued_time_is_not_a_number_is_counted_not_crashed(
    hub_factory, smtp, caplog
):
    """Counting a committed outcome raised on a time a hand edit left as text: the send
    task died after the commit, its latency unobserved and the sender not woken."""
    hub, _, queued = sent_then_requeued(
        hub_factory, smtp, caplog, "created_at", lambda _: "yesterday"
    )
    with hub.client(headers=WRITE) as http:
        sent = {"receiver": "ops", "integration": "mailto", "outcome": "sent"}
        wait_for(lambda: metric(http.get("/metrics").text, "hub_notifications_total", **sent) == 1)
        gc.collect()  # a task that died says so when it is collected
    assert stored(hub, "SELECT state FROM notifications WHERE id = ?", queued) == "sent"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_dead_letter_whose_outcome_cannot_be_written_is_tried_again_a_minute_later(
    hub_factory, smtp, caplog
):
    """Its message cannot be read, and writing it off raised too (where its retry budget
    starts stored as text, which no check foresees): the send task died, and the row,
    left claimed, was tried again at every lease with nothing logged or counted. Its
    outcome is one item of the outbox's now: logged, counted and put back for the
    item's next try, a minute later, other messages sent meanwhile."""
    mailbox, hub, clock = notifying_ops(hub_factory, smtp, caplog)
    with hub.client(headers=ADMIN) as http:
        broken = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: [d["state"] for d in deliveries(http, incident=broken)] == ["sent"])
        queued = stored(hub, "SELECT id FROM notifications WHERE incident_id = ?", broken)
        payload = stored(hub, "SELECT payload FROM notifications WHERE id = ?", queued)
        requeued = "UPDATE notifications SET state = 'pending', due_at = 0, payload = '{'"
        edit(hub, f"{requeued}, retried_attempts = 'none' WHERE id = ?", queued)

        wait_for(lambda: set_aside(http, "outbox") == 1)
        (line,) = failure_lines(caplog, "outbox")
        assert line.split()[2] == f"notification={queued}"
        assert 'error="TypeError: ' in line and "retry_in=60" in line
        assert stored(hub, "SELECT state FROM notifications WHERE id = ?", queued) == "pending"
        other = fire(http, "payments down", service="payments")["incident_id"]
        wait_for(lambda: [d["state"] for d in deliveries(http, incident=other)] == ["sent"])

        edit(hub, "UPDATE notifications SET retried_attempts = 0 WHERE id = ?", queued)
        clock.advance(RETRY_SECONDS)
        wait_for(lambda: [d["state"] for d in deliveries(http, incident=broken)] == ["dead"])
        assert len(failure_lines(caplog, "outbox")) == 1
        assert failing(http, "outbox") == 0
        edit(hub, "UPDATE notifications SET payload = ? WHERE id = ?", payload, queued)
        assert http.post(f"/api/v1/notifications/{queued}/retry").status_code == 200
        wait_for(lambda: len(mailbox.messages) == 3)
        assert "checkout down" in mailbox.subjects()[-1]


def test_a_notification_whose_outcome_keeps_failing_is_tried_less_often(hub_factory, smtp, caplog):
    """Its claim, which goes through, is no end of the item's failures in a row: the
    claim reset them, so a row whose outcome can never be written (a message sent,
    then sent again at each try) was tried every minute for ever, not 1, 2, 4 ..."""
    _, hub, clock = notifying_ops(hub_factory, smtp, caplog)
    with hub.client(headers=ADMIN) as http:
        broken = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: [d["state"] for d in deliveries(http, incident=broken)] == ["sent"])
        queued = stored(hub, "SELECT id FROM notifications WHERE incident_id = ?", broken)
        requeued = "UPDATE notifications SET state = 'pending', due_at = 0, payload = '{'"
        edit(hub, f"{requeued}, retried_attempts = 'none' WHERE id = ?", queued)

        for failures, delay in [(1, 60), (2, 120), (3, 240)]:
            wait_for(lambda n=failures: set_aside(http, "outbox") == n)
            line = failure_lines(caplog, "outbox")[-1]
            assert line.endswith(f" failures={failures} retry_in={delay}")
            due = stored(hub, "SELECT due_at FROM notifications WHERE id = ?", queued)
            assert due == pytest.approx(clock() + delay, abs=5)
            assert failing(http, "outbox") == 1
            clock.advance(delay)


def without_alerts(payload: bytes) -> str:
    return json.dumps({k: v for k, v in json.loads(payload).items() if k != "alerts"})


def numbered_title(payload: bytes) -> str:
    return json.dumps({**json.loads(payload), "title": 5})


def nested_keys(url_keys: str) -> str:
    return json.dumps({"keys": json.loads(url_keys)})


MESSAGE = "its stored message could not be read"
URL_KEYS = "its stored URL digests (url_keys) could not be read"
UNFORESEEN = "reading it or finding its URL failed"
BYTES = "TypeError: startswith first arg must be bytes or a tuple of bytes, not str"


@pytest.mark.parametrize(
    ("column", "change", "stored_as", "problem"),
    [
        (
            "payload",
            lambda payload: payload[:-1],
            "?",
            f"{MESSAGE}: not JSON (Input data was truncated)",
        ),
        ("payload", without_alerts, "?", f"{MESSAGE}: Object missing required field `alerts`"),
        ("payload", numbered_title, "?", f"{MESSAGE}: Expected `str`, got `int` - at `$.title`"),
        (
            "url_keys",
            lambda keys: keys[:-1],
            "?",
            f"{URL_KEYS}: not JSON (Input data was truncated)",
        ),
        ("url_keys", nested_keys, "?", f"{URL_KEYS}: Expected `array`, got `object`"),
        ("channel", lambda channel: 3, "?", f"{URL_KEYS}: it has 1, none at channel 3"),
        ("receiver", lambda name: name, "CAST(? AS BLOB)", f"{UNFORESEEN}: {BYTES}"),
    ],
    ids=[
        "message not JSON",
        "message missing a field",
        "message with a field of another type",
        "URL digests not JSON",
        "URL digests of another shape",
        "no URL digest at its channel",
        "receiver stored as bytes",
    ],
)
def test_a_queued_message_that_cannot_be_read_is_a_dead_letter_sent_once_repaired(
    hub_factory, smtp, caplog, column, change, stored_as, problem
):
    """Such a row fails the same way at every try: it was claimed again after every lease
    (or, not JSON, set aside every minute), neither sent nor dead, and nobody saw why."""
    caplog.set_level(logging.WARNING, logger="hub.outbox")
    mailbox, smtp_port = smtp
    hub = start_notifying_hub(hub_factory, receiver("ops", mail_url(smtp_port)))
    with hub.client(headers=ADMIN) as http:
        broken = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: [d["state"] for d in deliveries(http, incident=broken)] == ["sent"])
    queued, value = requeue_edited(hub, broken, column, change, stored_as)
    with hub.client(headers=ADMIN) as http:
        other = fire(http, "payments down", service="payments")["incident_id"]
        wait_for(lambda: [d["state"] for d in deliveries(http, incident=other)] == ["sent"])
        wait_for(lambda: [d["id"] for d in deliveries(http, state="dead")] == [queued])
        (letter,) = deliveries(http, state="dead")
        assert letter["last_error"] == problem
        assert letter["attempts_log"][-1]["error"] == letter["last_error"]
        metrics = http.get("/metrics").text
        assert metric(metrics, "hub_outbox_notifications", state="dead") == 1
        # a receiver stored as bytes counts as its log line names it (``Sender._count``)
        assert metric(metrics, "hub_notifications_total", receiver="ops", outcome="dead") == 1
        assert set_aside(http, "outbox") == 0
        lines = [r.getMessage() for r in caplog.records if r.name == "hub.outbox"]
        assert any(line.startswith(f"event=notification_dead id={queued} ") for line in lines)
        timeline = http.get(f"/api/v1/incidents/{broken}").json()["timeline"]
        (died,) = [entry for entry in timeline if entry["kind"] == "notification_dead"]
        assert died["detail"]["error"].startswith(problem.split(":")[0])

        with hub.client() as console:
            sign_in(console, "admin-token")
            listed = console.get("/notifications?state=dead")
            assert f'data-notification="{queued}"' in listed.text
            assert console.get(f"/incidents/{broken}").status_code == 200

        refused = http.post(f"/api/v1/notifications/{queued}/retry")
        assert refused.status_code == 409
        assert refused.json()["detail"].endswith(f"cannot be sent again: {problem}")
        edit(hub, f"UPDATE notifications SET {column} = ? WHERE id = ?", value, queued)
        assert http.post(f"/api/v1/notifications/{queued}/retry").status_code == 200
        wait_for(lambda: len(mailbox.messages) == 3)
        assert "checkout down" in mailbox.subjects()[-1]
        assert len(mailbox.messages) == 3


def test_a_heartbeat_left_malformed_is_set_aside_and_other_heartbeats_go_down(
    hub_factory, smtp, caplog
):
    caplog.set_level(logging.ERROR, logger="hub.worker")
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start_heartbeat_hub(hub_factory, smtp_port, more=SECOND_HEARTBEAT, clock=clock)
    with hub.client(headers=WRITE) as http:
        labels = stored(hub, "SELECT labels FROM heartbeats WHERE name = 'nightly-backup'")
        edit(hub, "UPDATE heartbeats SET labels = '{' WHERE name = 'nightly-backup'")

        clock.advance(3601)  # past both deadlines
        wait_for(lambda: any("hourly-sync is down" in s for s in mailbox.subjects()))
        wait_for(lambda: set_aside(http, "watchdog") == 1)
        (line,) = failure_lines(caplog, "watchdog")
        assert line.startswith("event=worker_item_failed worker=watchdog heartbeat=nightly-backup ")
        assert [a["labels"]["heartbeat"] for a in heartbeat_alerts(http)] == ["hourly-sync"]

        edit(hub, "UPDATE heartbeats SET labels = ? WHERE name = 'nightly-backup'", labels)
        clock.advance(RETRY_SECONDS)
        wait_for(
            lambda: len(http.get("/api/v1/alerts", params={"source": "heartbeat"}).json()) == 2
        )
        wait_for(lambda: "nightly backup did not report" in mailbox.text_of(-1))
        assert set_aside(http, "watchdog") == 1


@pytest.mark.parametrize("stop", ["pause", "delete"])
def test_a_set_aside_heartbeat_paused_or_deleted_is_no_longer_counted_failing(
    hub_factory, smtp, stop
):
    """An operator pauses (or deletes) a heartbeat whose alert cannot be raised, so
    that the watchdog stops trying: it is never tried again, so nothing told the
    watchdog it went through, and ``hub_worker_items_failing`` (``HubWorkerItemsFailing``,
    critical) held at 1 for two hours after the pause."""
    _, smtp_port = smtp
    clock = MovedClock()
    hub = start_heartbeat_hub(hub_factory, smtp_port, clock=clock)
    with hub.client(headers=WRITE) as http:
        http.post("/api/v1/heartbeats", json={"name": "etl", "period": "1h"}).raise_for_status()
        edit(hub, "UPDATE heartbeats SET labels = '[1]' WHERE name = 'etl'")  # no mapping
        clock.advance(3661)
        wait_for(lambda: failing(http, "watchdog") == 1)
        if stop == "pause":
            assert http.post("/api/v1/heartbeats/etl/pause").json()["state"] == "paused"
        else:
            assert http.delete("/api/v1/heartbeats/etl").status_code == 200
        assert failing(http, "watchdog") == 0
        clock.advance(RETRY_SECONDS)
        after_a_worker_round()
        assert (failing(http, "watchdog"), set_aside(http, "watchdog")) == (0, 1)


def test_an_alert_left_malformed_is_set_aside_and_other_alerts_end(hub_factory, smtp, caplog):
    """The expirer resolved every alert whose end passed as one delivery: one broken
    alert failed it every second, and no alert ended anywhere."""
    caplog.set_level(logging.ERROR, logger="hub.worker")
    _, smtp_port = smtp
    clock = MovedClock()
    hub = start_expiring_hub(hub_factory, smtp_port, clock)
    with hub.client() as http:
        post(http, alert("db1", ends_in=9, clock=clock), alert("db2", ends_in=9, clock=clock))
        broken, other = status_of(http, "db1")["id"], status_of(http, "db2")["id"]
        labels = stored(hub, "SELECT labels FROM alerts WHERE id = ?", broken)
        edit(hub, "UPDATE alerts SET labels = '{' WHERE id = ?", broken)

        clock.advance(10)  # past both ends
        wait_for(lambda: stored(hub, "SELECT status FROM alerts WHERE id = ?", other) == "resolved")
        wait_for(lambda: set_aside(http, "expirer") == 1)
        (line,) = failure_lines(caplog, "expirer")
        assert line.startswith(f"event=worker_item_failed worker=expirer alert={broken} ")
        assert stored(hub, "SELECT status FROM alerts WHERE id = ?", broken) == "firing"
        assert ended_total(http) == 1

        edit(hub, "UPDATE alerts SET labels = ? WHERE id = ?", labels, broken)
        clock.advance(RETRY_SECONDS)
        wait_for(lambda: status_of(http, "db1")["status"] == "resolved")
        assert ended_total(http) == 2
        assert set_aside(http, "expirer") == 1


def end_check(hub, alert_id: int) -> float:
    return stored(hub, "SELECT end_check_at FROM alerts WHERE id = ?", alert_id)


def expiring_one_broken_alert(hub_factory, smtp, caplog) -> tuple[Any, MovedClock, int, str]:
    """An expiring hub on a moved clock with alert ``db1`` firing, due to end in 9 s, its
    labels left malformed; its id and its labels as they were."""
    caplog.set_level(logging.ERROR, logger="hub.worker")
    _, smtp_port = smtp
    clock = MovedClock()
    hub = start_expiring_hub(hub_factory, smtp_port, clock)
    with hub.client() as http:
        post(http, alert("db1", ends_in=9, clock=clock))
        broken = status_of(http, "db1")["id"]
    labels = stored(hub, "SELECT labels FROM alerts WHERE id = ?", broken)
    edit(hub, "UPDATE alerts SET labels = '{' WHERE id = ?", broken)
    return hub, clock, broken, labels


def test_an_item_that_stays_broken_is_tried_less_often_until_it_goes_through(
    hub_factory, smtp, caplog
):
    """A row that stayed broken ran its failing code and logged an error every minute
    for days: each failure in a row now doubles the wait (a minute, 2, 4 ...), stored
    as the item's due time and said in the log, and gauged while its last try failed;
    once the item goes through, its next failure waits a minute again."""
    hub, clock, broken, labels = expiring_one_broken_alert(hub_factory, smtp, caplog)
    with hub.client() as http:
        clock.advance(10)  # past its end
        for failures, delay in [(1, 60), (2, 120), (3, 240)]:
            wait_for(lambda n=failures: set_aside(http, "expirer") == n)
            line = failure_lines(caplog, "expirer")[-1]
            assert line.endswith(f" failures={failures} retry_in={delay}")
            assert end_check(hub, broken) == pytest.approx(clock() + delay, abs=5)
            assert failing(http, "expirer") == 1  # what an alert rule can tell from
            clock.advance(delay)

        edit(hub, "UPDATE alerts SET labels = ? WHERE id = ?", labels, broken)
        wait_for(lambda: status_of(http, "db1")["status"] == "resolved")
        assert set_aside(http, "expirer") == 3
        assert failing(http, "expirer") == 0

        post(http, alert("db1", ends_in=9, clock=clock))  # firing again, broken again
        assert status_of(http, "db1")["id"] == broken
        edit(hub, "UPDATE alerts SET labels = '{' WHERE id = ?", broken)
        clock.advance(10)
        wait_for(lambda: set_aside(http, "expirer") == 4)
        assert failure_lines(caplog, "expirer")[-1].endswith(" failures=1 retry_in=60")


def test_an_item_gone_while_set_aside_is_no_longer_gauged_failing(hub_factory, smtp, caplog):
    """An alert set aside at its end, then re-sent (its labels repaired meanwhile): the
    expirer has nothing to try any more, so no try goes through to clear its failures.
    They were kept two hours, and HubWorkerItemsFailing paged for a fault long gone;
    an item not tried again within minutes of its retry is forgotten."""
    hub, clock, broken, labels = expiring_one_broken_alert(hub_factory, smtp, caplog)
    with hub.client() as http:
        clock.advance(10)  # past its end
        wait_for(lambda: failing(http, "expirer") == 1)

        edit(hub, "UPDATE alerts SET labels = ? WHERE id = ?", labels, broken)
        post(http, alert("db1", ends_in=4 * 3600, clock=clock))
        clock.advance(RETRY_SECONDS + LATE_SECONDS + 1)
        wait_for(lambda: failing(http, "expirer") == 0)
        assert status_of(http, "db1")["status"] == "firing"
        assert set_aside(http, "expirer") == 1
