"""A reload that moves a receiver's URLs while messages wait in the outbox: each goes
to the URL it was queued for, never to another URL of the receiver. A message whose
URL the reload removed is dead-lettered saying so. A real hub, two real mail servers:
one down until the reload is done, so its message waits in the outbox meanwhile."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from conftest import Mailbox, free_port, wait_for
from notify_support import ADMIN, WRITER, deliveries, fire, mail_to, receiver, start_hub

FIRST, SECOND = "first@example.com", "second@example.com"
WAITING = {"max_attempts": 1000, "backoff": "100ms", "max_backoff": "200ms"}
"""A failing send is tried again every 0.1 to 0.2 s, for longer than a test runs."""


class LateServer:
    """A mail server on a port nobody listens on until ``start``: a send to it fails
    (connection refused) and waits in the outbox for its next attempt."""

    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()


@pytest.fixture
def late() -> Iterator[LateServer]:
    server = LateServer()
    yield server
    if server.controller._thread is not None:
        server.controller.stop()


def to(mailbox: Mailbox) -> list[str]:
    """The address each message a mail server took was sent to, in order."""
    return [str(message["To"]) for message in mailbox.messages]


def reload_with(hub, old: str, new: str) -> None:
    hub.config_path.write_text(hub.config_path.read_text().replace(old, new))
    with hub.client(headers=ADMIN) as http:
        answer = http.post("/-/reload")
    assert answer.status_code == 200, answer.text


def waiting_for_first(http) -> list[dict]:
    """The message to the first URL, once a failed attempt put it back in the queue."""
    return [
        row
        for row in deliveries(http, receiver="ops")
        if row["channel"] == 0 and row["state"] == "pending" and row["attempts"] >= 1
    ]


def test_a_reload_swapping_a_receivers_urls_sends_each_waiting_message_to_its_own_url(
    hub_factory, smtp, late
):
    """A message named its URL by position: the one waiting for the first URL went to
    the second after a reload swapped them, which got it twice, and the first never."""
    up, up_port = smtp
    first, second = mail_to(late.port, FIRST), mail_to(up_port, SECOND)
    hub = start_hub(hub_factory, receiver("ops", first, second), **WAITING)
    with hub.client(headers=WRITER) as http:
        fire(http, "checkout down", service="checkout")
        wait_for(lambda: to(up) == [SECOND])
        (waiting,) = wait_for(lambda: waiting_for_first(http))
        reload_with(hub, receiver("ops", first, second), receiver("ops", second, first))
        late.start()
        wait_for(lambda: to(late.mailbox) == [FIRST])
        fire(http, "cart down", service="cart")  # queued under the new order
        wait_for(lambda: len(late.mailbox.messages) == 2 and len(up.messages) == 2)
        time.sleep(0.5)  # a message sent twice would arrive by now
        rows = {row["id"]: row for row in deliveries(http, receiver="ops")}
    assert to(late.mailbox) == [FIRST, FIRST]
    assert to(up) == [SECOND, SECOND]
    assert "checkout down" in late.mailbox.messages[0]["Subject"]
    assert "cart down" in late.mailbox.messages[1]["Subject"]
    assert rows[waiting["id"]]["state"] == "sent"
    assert rows[waiting["id"]]["attempts"] > 1
    assert [row["state"] for row in rows.values()] == ["sent"] * 4


def test_a_message_waiting_for_a_url_a_reload_removed_is_dead_lettered_saying_so(
    hub_factory, smtp, late
):
    """It went to the receiver's other URL, which had its own copy already: that one was
    told twice. It dies instead, and its retry is refused, as a removed receiver's is."""
    up, up_port = smtp
    first, second = mail_to(late.port, FIRST), mail_to(up_port, SECOND)
    hub = start_hub(hub_factory, receiver("ops", first, second), **WAITING)
    with hub.client(headers=WRITER) as http:
        incident = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: to(up) == [SECOND])
        (waiting,) = wait_for(lambda: waiting_for_first(http))
        reload_with(hub, receiver("ops", first, second), receiver("ops", second))
        (dead,) = wait_for(lambda: [r for r in deliveries(http) if r["state"] == "dead"])
        time.sleep(0.5)
        timeline = http.get(f"/api/v1/incidents/{incident}").json()["timeline"]
    with hub.client(headers=ADMIN) as http:
        retried = http.post(f"/api/v1/notifications/{dead['id']}/retry")
    why = "receiver 'ops' no longer has the URL this message was queued for"
    assert (dead["id"], dead["last_error"]) == (waiting["id"], why)
    assert to(up) == [SECOND]
    (entry,) = [t["detail"] for t in timeline if t["kind"] == "notification_dead"]
    assert (entry["notification"], entry["error"]) == (dead["id"], why)
    assert retried.status_code == 409
    assert retried.json()["detail"] == f"notification {dead['id']} cannot be sent again: {why}"


def test_a_message_waiting_for_a_url_a_reload_edited_in_place_goes_to_the_new_url(
    hub_factory, smtp, late
):
    """A typo fixed or a token rotated puts a URL new to the receiver where the old one
    was: its waiting messages go there, as the fix was meant to make them."""
    up, up_port = smtp
    first, second = mail_to(late.port, FIRST), mail_to(up_port, SECOND)
    hub = start_hub(hub_factory, receiver("ops", first, second), **WAITING)
    with hub.client(headers=WRITER) as http:
        fire(http, "checkout down")
        wait_for(lambda: to(up) == [SECOND])
        (waiting,) = wait_for(lambda: waiting_for_first(http))
        fixed = mail_to(up_port, FIRST)
        reload_with(hub, receiver("ops", first, second), receiver("ops", fixed, second))
        wait_for(lambda: to(up) == [SECOND, FIRST])
        time.sleep(0.5)
        (sent,) = [row for row in deliveries(http) if row["id"] == waiting["id"]]
    assert to(up) == [SECOND, FIRST]
    assert late.mailbox.messages == []
    assert sent["state"] == "sent"
