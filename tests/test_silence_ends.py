"""A silence ending tells what it held back at once, on a real server with real email:
an alert that fired under it is notified when it is expired early, when a reload
removes it and when it reaches its end, not at grouping's next look a group_interval
(here an hour) later; an alert another silence still mutes stays untold."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import WAIT_SECONDS, MovedClock, mail_url, wait_for
from notify_support import ADMIN, WRITER, deliveries, fire, metric, receiver, start_hub, when
from test_snooze import after_a_worker_round

from hub import silencing
from hub.worker import Worker

HOUR = "1h"
AT_ONCE = "told once the silence let it go, not at grouping's next look an hour later"
"""Said by the checks that a message went out within the suite's wait (seconds) of a
silence letting its alert go: the hour they tell it from stays far off, while a bound
of a fraction of a second failed on a loaded machine, whose dispatcher wakes late."""
DEPLOY = {"matchers": ['service="checkout"'], "comment": "deploy 4.2"}
STATIC = """
[[silences]]
matchers = ['service="checkout"']
comment = "checkout is being moved"
"""


def silenced_hub(hub_factory, smtp, **values):
    """A hub mailing ``ops`` the first message at once and changes at most hourly."""
    _, port = smtp
    return start_hub(hub_factory, receiver("ops", mail_url(port)), group_interval=HOUR, **values)


def silence(http, duration: str, **matchers: str) -> dict:
    body = {**DEPLOY, "duration": duration}
    if matchers:
        body["matchers"] = [f'{name}="{value}"' for name, value in matchers.items()]
    answer = http.post("/api/v1/silences", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def held_back(http) -> float | None:
    """Alerts grouping found silenced (counted once each, when it first held them)."""
    text = http.get("/metrics").text
    return metric(text, "hub_notifications_suppressed_total", reason="silence")


def sent(http) -> list[dict]:
    return [n for n in deliveries(http) if n["state"] == "sent"]


def test_an_alert_fired_under_a_silence_is_told_as_soon_as_the_silence_is_expired(
    hub_factory, smtp
):
    """It was told at grouping's next look, a group_interval after the alert fired."""
    mailbox, _ = smtp
    hub = silenced_hub(hub_factory, smtp)
    with hub.client(headers=WRITER) as http:
        silence_id = silence(http, "2h")["id"]
        fire(http, "checkout down")
        wait_for(lambda: held_back(http) == 1.0)
        assert mailbox.messages == []
        expired = http.delete(f"/api/v1/silences/{silence_id}")
        assert expired.status_code == 200, expired.text
        (note,) = wait_for(lambda: sent(http))
    ended = when(expired.json()["ends_at"])
    assert ended <= when(note["created_at"]) < ended + WAIT_SECONDS, AT_ONCE
    assert when(note["changed_at"]) >= ended, "the time under the silence is no latency"
    assert len(mailbox.messages) == 1
    assert "checkout down" in mailbox.messages[0]["Subject"]


def test_an_alert_fired_under_a_silence_is_told_when_the_silence_reaches_its_end(hub_factory, smtp):
    clock = MovedClock()
    hub = silenced_hub(hub_factory, smtp, clock=clock)
    with hub.client(headers=WRITER) as http:
        ends_at = when(silence(http, "10m")["ends_at"])
        fire(http, "checkout down")
        wait_for(lambda: held_back(http) == 1.0)
        clock.advance(599)  # a second before the end: the dispatcher's wait ends there
        (note,) = wait_for(lambda: sent(http))
    assert ends_at <= when(note["created_at"]) < ends_at + WAIT_SECONDS, AT_ONCE


async def expire_during_a_round(runtime: Any, worker: Worker, silence_id: str) -> None:
    """Expire the silence while ``worker`` is in a round: the expiry's write is queued
    first, and the round starts before that write is applied."""
    expiring = asyncio.ensure_future(silencing.expire(runtime, silence_id, "will"))
    await asyncio.sleep(0)  # the expiry's write is queued, not yet applied
    await worker.round()
    await expiring


def test_a_silence_expired_while_the_dispatcher_looks_is_told_at_once(hub_factory, smtp):
    """The dispatcher read the silences before its round's write, so a silence the write
    queued ahead expired still held the alert that write had just let go: it was told
    at grouping's next look, an hour later."""
    hub = silenced_hub(hub_factory, smtp)
    with hub.client(headers=WRITER) as http:
        silence_id = silence(http, "2h")["id"]
        fire(http, "checkout down")
        wait_for(lambda: held_back(http) == 1.0)
        hub.run(expire_during_a_round(hub.runtime, hub.runtime.dispatcher, silence_id))
        assert wait_for(lambda: sent(http))


def test_a_reload_removing_a_static_silence_tells_what_it_held_back_at_once(hub_factory, smtp):
    hub = silenced_hub(hub_factory, smtp, tables=STATIC)
    with hub.client(headers=WRITER) as http:
        fire(http, "checkout down")
        wait_for(lambda: held_back(http) == 1.0)
        hub.config_path.write_text(hub.config_path.read_text().replace(STATIC, ""))
        reloaded = http.post("/-/reload", headers=ADMIN)
        assert reloaded.status_code == 200, reloaded.text
        assert wait_for(lambda: sent(http), timeout=5)


@pytest.mark.parametrize("ends", ["expired", "reaches its end"])
def test_an_alert_another_silence_still_mutes_stays_untold_and_counted_once(
    hub_factory, smtp, ends
):
    """Looking again when one silence ends finds the alert still held by the other."""
    mailbox, _ = smtp
    clock = MovedClock()
    hub = silenced_hub(hub_factory, smtp, clock=clock)
    with hub.client(headers=WRITER) as http:
        short = silence(http, "10m")
        silence(http, "2h", alertname="Down")
        fire(http, "checkout down", alertname="Down")
        wait_for(lambda: held_back(http) == 1.0)
        if ends == "expired":
            assert http.delete(f"/api/v1/silences/{short['id']}").status_code == 200
        else:
            clock.advance(600)
        after_a_worker_round()
        assert sent(http) == []
        assert held_back(http) == 1.0
    assert mailbox.messages == []
