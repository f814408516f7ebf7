"""The outbox: notifications are retried with growing delays, then dead-lettered,
with every attempt and Apprise's own error text kept."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller
from conftest import (
    AUTH,
    BASE_CONFIG,
    Mailbox,
    MovedClock,
    free_port,
    mail_url,
    render_config,
    wait_for,
)
from notify_support import mail_to
from test_store import migrated_again, paged_incidents

from hub import config
from hub.decoders.common import Decoded
from hub.dispatch import Links, enqueue
from hub.events import Event
from hub.ingest import Delivery, apply_delivery
from hub.metrics import Metrics
from hub.outbox import NO_INTEGRATION, Sender, backoff_delay, destination
from hub.rules import Rules
from hub.store import Store, Target, Tx, opened


def test_a_channel_that_fails_is_retried_then_dead_lettered_with_its_error(hub_factory):
    closed_port = free_port()
    hub = hub_factory(mail_url=mail_url(closed_port), max_attempts=3)
    event = {"status": "firing", "summary": "payment gateway timeouts"}
    with hub.client(headers=AUTH) as http:
        incident_id = http.post("/webhooks/shop", json=event).json()["alerts"][0]["incident_id"]

        def dead_notification():
            notes = http.get("/api/v1/notifications", params={"incident": incident_id}).json()
            return notes if notes and notes[0]["state"] == "dead" else None

        note = wait_for(dead_notification)[0]
        ops = 'integration="mailto",outcome="{}",receiver="ops"'
        dead = "hub_notifications_total{" + ops.format("dead") + "} 1.0"

        def counted_dead() -> str | None:  # counted just after the commit the API shows
            text = http.get("/metrics").text
            return text if dead in text else None

        metrics = wait_for(counted_dead)
    assert note["attempts"] == 3
    log = note["attempts_log"]
    assert [a["outcome"] for a in log] == ["failed", "failed", "failed"]
    assert all(a["error"] and "failed" not in a["error"].lower()[:6] for a in log)
    assert any("connect" in a["error"].lower() or "refused" in a["error"].lower() for a in log)
    assert note["last_error"] == log[-1]["error"]
    assert "hub_notifications_total{" + ops.format("failed") + "} 2.0" in metrics
    assert 'hub_notification_attempt_duration_seconds_count{integration="mailto"} 3.0' in metrics
    assert 'hub_outbox_notifications{state="dead"} 1.0' in metrics


def test_backoff_grows_exponentially_within_its_cap_and_jitter():
    delays = [backoff_delay(n, 2.0, 60.0, lambda: 1.0) for n in range(1, 8)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert backoff_delay(3, 2.0, 60.0, lambda: 0.0) == 4.0


def one_message_to_mail(path: str, port: int) -> tuple[Rules, Callable[[Tx], None]]:
    """The rules of a hub mailing ``ops`` at ``port``, and a write that opens an incident
    and queues its firing message there, as grouping would."""
    text = render_config(BASE_CONFIG, port=8080, db=path, mail_url=mail_url(port))
    ruleset = Rules.from_config(config.parse(text, {}))
    event = Event(fingerprint="db", status="firing", summary="db is down")
    delivery = Delivery("shop", None, time.time(), {}, b"{}")
    links = Links("http://hub.example", b"secret", 3600)

    def incident_with_a_message(tx: Tx) -> None:
        answer = apply_delivery(tx, delivery, Decoded([event]), ruleset)
        incident = tx.incident(answer.body["alerts"][0]["incident_id"])
        enqueue(tx, incident, "ops", tx.episode_alerts(incident["id"]), time.time(), ruleset, links)

    return ruleset, incident_with_a_message


def test_a_claim_committed_after_shutdown_began_sends_nothing_and_is_freed_on_restart(tmp_path):
    """The sender's round may be waiting for its claim to commit when the hub stops;
    sending then could outlive the store and send the row again after the restart."""
    text = render_config(
        BASE_CONFIG, port=8080, db=(tmp_path / "hub.db").as_posix(), mail_url=mail_url(free_port())
    )
    ruleset = Rules.from_config(config.parse(text, {}))
    event = Event(fingerprint="db", status="firing", summary="db is down")
    delivery = Delivery("shop", None, time.time(), {}, b"{}")

    def incident_with_a_due_notification(tx: Tx) -> None:
        answer = apply_delivery(tx, delivery, Decoded([event]), ruleset)
        incident = answer.body["alerts"][0]["incident_id"]
        tx.enqueue_notification(incident, Target("ops", 0, "mailto"), "firing", b"{}", 0)

    def notifications(store: Store) -> list[tuple[str, int]]:
        """Each notification's state and how many sends were tried (the attempts log)."""
        rows = store.query(
            "SELECT state, (SELECT COUNT(*) FROM notification_attempts"
            " WHERE notification_id = notifications.id) AS tried FROM notifications"
        )
        return [(row["state"], row["tried"]) for row in rows]

    async def stop_while_claiming(store: Store) -> tuple[bool, list, list]:
        await store.write(incident_with_a_due_notification)
        metrics = Metrics({}, ["ops"], "test")
        sender = Sender(store, lambda: ruleset, metrics)
        claiming = asyncio.create_task(sender.round())
        await asyncio.sleep(0)  # the claim waits for its commit
        await sender.shutdown()
        sent_something = await claiming
        at_stop = notifications(store)
        await Sender(store, lambda: ruleset, metrics).recover()  # the next start
        return sent_something, at_stop, notifications(store)

    with opened((tmp_path / "hub.db").as_posix()) as store:
        sent_something, at_stop, after_restart = asyncio.run(stop_while_claiming(store))
    assert sent_something is False
    assert at_stop == [("sending", 0)]  # claimed, never tried
    assert after_restart == [("pending", 0)]


class LockingMailbox(Mailbox):
    """A mail server that, as it accepts a message, has another connection take the
    store's write lock (a backup, an operator's shell): the send succeeds, and then
    the store refuses to record it until the lock is released."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.holder = sqlite3.connect(path, check_same_thread=False, isolation_level=None)

    async def handle_DATA(self, server, session, envelope) -> str:
        self.holder.execute("BEGIN IMMEDIATE")
        return await super().handle_DATA(server, session, envelope)


def test_a_send_the_store_could_not_record_at_once_is_recorded_once_it_can(tmp_path):
    """The message went out; recording it waited longer than the store's lock wait and
    was refused. The outcome is recorded once the store takes writes again: the row
    is sent, its attempt logged, and nothing is sent twice when its claim runs out."""
    path = (tmp_path / "hub.db").as_posix()
    mailbox, port = LockingMailbox(path), free_port()
    ruleset, incident_with_a_message = one_message_to_mail(path, port)

    async def send_while_locked(store: Store) -> dict:
        await store.write(incident_with_a_message)
        sender = Sender(store, lambda: ruleset, Metrics({}, ["ops"], "test"), lease=60)
        sending = asyncio.create_task(sender.run())
        while not mailbox.messages:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # longer than the lock wait: recording it was refused
        mailbox.holder.rollback()
        for _ in range(250):
            (row,) = store.notifications({}, 10)
            if row["state"] != "sending":
                break
            await asyncio.sleep(0.02)
        await sender.shutdown()
        sending.cancel()
        return {
            "state": row["state"],
            "tried": [a["outcome"] for a in store.notification_attempts(row["id"])],
            "messages": len(mailbox.messages),
        }

    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        with opened(path, lock_wait=0.2) as store:
            found = asyncio.run(send_while_locked(store))
    finally:
        smtp.stop()
        mailbox.holder.close()
    assert found == {"state": "sent", "tried": ["sent"], "messages": 1}


class SlowMailbox(Mailbox):
    """A mail server that takes a while to accept each message, within the timeout."""

    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(1.5)
        return await super().handle_DATA(server, session, envelope)


def sent_once(tmp_path, mailbox: Mailbox, **sender_options: Any) -> dict:
    """Queue one message to ``mailbox``, run a sender (with ``sender_options``) until
    it is sent and two seconds more, in which a second send, had the row been claimed
    again, ends; the row's state and attempts, and the messages the server took."""
    path = (tmp_path / "hub.db").as_posix()
    port = free_port()
    ruleset, incident_with_a_message = one_message_to_mail(path, port)

    async def send(store: Store) -> dict:
        await store.write(incident_with_a_message)
        metrics = Metrics({}, ["ops"], "test")
        sender = Sender(store, lambda: ruleset, metrics, **sender_options)
        sending = asyncio.create_task(sender.run())
        for _ in range(250):
            (row,) = store.notifications({}, 10)
            if row["state"] == "sent":
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(2)
        await sender.shutdown()
        sending.cancel()
        await store.write(lambda tx: None)  # the writes the sender left commit first
        (row,) = store.notifications({}, 10)
        return {
            "state": row["state"],
            "attempts": row["attempts"],
            "messages": len(mailbox.messages),
        }

    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        with opened(path) as store:
            return asyncio.run(send(store))
    finally:
        smtp.stop()


def test_a_send_slower_than_the_claim_lease_is_not_claimed_and_sent_again_meanwhile(tmp_path):
    """A claim lasts as long as a send may take (twice the receiver's timeout and a
    margin), whatever lease the sender was given: a row whose send is still in flight
    is not taken as abandoned by a dead claimer, so one message arrives, not two."""
    found = sent_once(tmp_path, SlowMailbox(), lease=0.5)
    assert found == {"state": "sent", "attempts": 1, "messages": 1}


class ClockSteppingMailbox(SlowMailbox):
    """A slow mail server during whose acceptance the wall clock steps an hour forward
    (an NTP correction, a virtual machine resumed): every lease in the store runs out."""

    def __init__(self, clock: MovedClock) -> None:
        super().__init__()
        self.clock = clock

    async def handle_DATA(self, server, session, envelope) -> str:
        self.clock.advance(3600)
        return await super().handle_DATA(server, session, envelope)


def test_a_send_in_flight_when_the_clock_steps_forward_is_not_claimed_and_sent_again(tmp_path):
    """A lease that ran out on the clock while this hub is still sending the row is no
    dead claimer's: only one process sends, so the row is not claimed again."""
    clock = MovedClock()
    found = sent_once(tmp_path, ClockSteppingMailbox(clock), clock=clock, lease=60)
    assert found == {"state": "sent", "attempts": 1, "messages": 1}


def test_messages_an_older_hub_queued_keep_the_url_at_their_position_at_the_upgrade(tmp_path):
    """An older hub named a message's URL by its position alone. The first start binds
    each that may still be sent to the URL at its position then, so that a later
    reload reordering the URLs sends it where it was queued for. One whose position is
    gone, and a letter to a receiver the config lacked (no URL), name none."""
    path = (tmp_path / "hub.db").as_posix()
    first, second = mail_url(free_port()), mail_to(free_port(), "pager@example.com")
    text = render_config(BASE_CONFIG, port=8080, db=path, mail_url=first)
    both = text.replace(f'"{first}"', f'"{first}", "{second}"')
    swapped = config.parse(text.replace(f'"{first}"', f'"{second}", "{first}"'), {})
    stored = [
        ("pending", Target("ops", 1, "mailto")),
        ("dead", Target("ops", 0, "mailto")),
        ("pending", Target("ops", 2, "mailto")),
        ("dead", Target("pager", 0, NO_INTEGRATION)),
    ]

    def write(tx: Tx) -> None:
        paged_incidents(tx)
        for state, target in stored:
            row = tx.enqueue_notification(1, target, "firing", b"{}", 1.0)
            tx.conn.execute("UPDATE notifications SET state = ? WHERE id = ?", (state, row))

    undo = "ALTER TABLE notifications DROP COLUMN url_keys"
    store = migrated_again(path, write, "m029_notification_urls", undo)
    try:
        ruleset = Rules.from_config(config.parse(both, {}))
        asyncio.run(Sender(store, lambda: ruleset, Metrics({}, ["ops"], "test")).recover())
        found = [destination(swapped, store.notification(i)) for i in range(1, 5)]  # type: ignore[arg-type]
    finally:
        store.close()
    assert [None if f is None else f[1] for f in found] == [second, first, None, None]
