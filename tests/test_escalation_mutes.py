"""Escalation under a mute, on a real server with real email: a step due while every
firing alert of its incident is silenced waits, says so on the timeline and the
console, and pages once the silence ends; the chain is not used up by the silence."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from conftest import WAIT_SECONDS, MovedClock, wait_for
from console_support import sign_in
from test_escalation import (
    ADMIN,
    SECOND,
    WRITE,
    escalated_steps,
    first_paged,
    open_incident,
    recipients,
    sent_times,
    start_hub,
    step_count,
)
from test_silence_ends import expire_during_a_round
from test_snooze import after_a_worker_round, epoch, escalation_fact, shown

DEPLOY = {"matchers": ['service="checkout"'], "comment": "deploy 4.2"}


def held_entries(http, incident_id: int) -> list[dict]:
    timeline = shown(http, incident_id)["timeline"]
    return [t["detail"] for t in timeline if t["kind"] == "escalation_held"]


def silence(http, duration: str) -> dict:
    answer = http.post("/api/v1/silences", json={**DEPLOY, "duration": duration})
    assert answer.status_code == 201, answer.text
    return answer.json()


@contextmanager
def second_step_held(hub_factory, smtp, silence_for: str) -> Iterator[tuple]:
    """Step one paged, then a silence of ``silence_for`` made, and step two, due a
    minute after the first page on a moved clock, held by it: the mailbox, the hub, an
    API client, the incident, the silence and the clock."""
    clock = MovedClock()
    with first_paged(hub_factory, smtp, second_after="1m", clock=clock) as (
        mailbox,
        hub,
        http,
        incident,
    ):
        made = silence(http, silence_for)
        clock.advance(60)  # step two falls due under the silence, however slow the start
        wait_for(lambda: step_count(http, "held_muted") == 1)
        yield mailbox, hub, http, incident, made, clock


def test_a_step_due_under_a_silence_waits_and_pages_once_the_silence_ends(hub_factory, smtp):
    """Each step due under the silence was skipped: once it ended, the chain was past its
    end and nobody was ever paged for an incident that still fired unacknowledged."""
    clock = MovedClock()
    with first_paged(hub_factory, smtp, second_after="1s", clock=clock) as (
        mailbox,
        hub,
        http,
        incident,
    ):
        silence(http, "5m")
        wait_for(lambda: step_count(http, "held_muted") == 1)
        held = shown(http, incident["id"])["escalation_state"]
        assert held["next_step"] == 1
        assert epoch(held["due_at"]) == pytest.approx(epoch(held["held_at"]) + 60, abs=0.01)
        with hub.client() as browser:
            sign_in(browser, "write-token")
            fact = escalation_fact(browser.get(f"/incidents/{incident['id']}").text)
        assert fact.startswith("page: step 2 held since ")
        assert "every firing alert is muted; looked at again" in fact

        for _ in range(2):  # looked at again within each minute, still silenced
            clock.advance(61)
            after_a_worker_round()
        assert "alice" not in recipients(mailbox)
        assert held_entries(http, incident["id"]) == [
            {"step": 2, "run": 1, "policy": "page", "mutes": ["silence"]}
        ]
        assert step_count(http, "held_muted") == 1, "once per hold, not per look"

        clock.advance(300)  # the silence is over
        wait_for(lambda: "alice" in recipients(mailbox))
        assert escalated_steps(http, incident["id"]) == [(1, 1), (1, 2)]
        ran = shown(http, incident["id"])["escalation_state"]
        assert (ran["next_step"], ran["due_at"], ran["held_at"]) == (2, None, None)
        assert step_count(http, "notified") == 2
        assert step_count(http, "held_muted") == 1


def test_a_held_step_is_looked_at_again_when_the_silence_ends(hub_factory, smtp):
    """Not a minute later: the silence's end is known."""
    with second_step_held(hub_factory, smtp, "90s") as (mailbox, _, http, incident, made, clock):
        ends_at = epoch(made["ends_at"])
        held = shown(http, incident["id"])["escalation_state"]
        assert epoch(held["due_at"]) == pytest.approx(ends_at, abs=0.01)
        clock.advance(max(0.0, ends_at - clock() - 1))  # a second before the end
        wait_for(lambda: sent_times(http, SECOND))
        assert ends_at <= sent_times(http, SECOND, "created_at")[0] < ends_at + WAIT_SECONDS
        assert recipients(mailbox).count("alice") == 1


def test_a_held_step_pages_at_once_when_its_silence_is_ended_early(hub_factory, smtp):
    """Expiring the silence left the step to the minute's look: paged ~47 s late, while
    a silence that ended by itself woke it at once."""
    with second_step_held(hub_factory, smtp, "1h") as (mailbox, _, http, incident, made, _):
        expired = http.delete(f"/api/v1/silences/{made['id']}")
        assert expired.status_code == 200, expired.text
        ended = epoch(expired.json()["ends_at"])
        wait_for(lambda: sent_times(http, SECOND))
        assert ended <= sent_times(http, SECOND, "created_at")[0] < ended + WAIT_SECONDS
        assert escalated_steps(http, incident["id"]) == [(1, 1), (1, 2)]
        assert recipients(mailbox).count("alice") == 1


def test_a_silence_expired_while_the_escalator_looks_pages_at_once(hub_factory, smtp):
    """The escalator read the silences before its round's write, so a silence the write
    queued ahead expired still held the step that write had just let go: paged at the
    minute's look."""
    with second_step_held(hub_factory, smtp, "1h") as (mailbox, hub, http, _, made, _):
        hub.run(expire_during_a_round(hub.runtime, hub.runtime.escalator, made["id"]))
        wait_for(lambda: sent_times(http, SECOND))
        assert recipients(mailbox).count("alice") == 1


WINDOW = """
[[maintenance]]
name = "deploy"
starts_at = 2020-01-01T00:00:00Z
ends_at = 2099-01-01T00:00:00Z
matchers = ['service="checkout"']
"""


def test_a_held_step_pages_at_once_when_a_reload_removes_its_window(hub_factory, smtp):
    """The window a reload removed no longer muted the alert, yet the step waited for
    the minute's look."""
    mailbox, smtp_port = smtp
    hub = start_hub(hub_factory, smtp_port, second_after="1h", extra=WINDOW)
    with hub.client(headers=WRITE) as http:
        incident = open_incident(http)
        wait_for(lambda: step_count(http, "held_muted") == 1)
        assert held_entries(http, incident["id"])[0]["mutes"] == ["maintenance"]
        hub.config_path.write_text(hub.config_path.read_text().replace(WINDOW, ""))
        reloaded = http.post("/-/reload", headers=ADMIN)
        assert reloaded.status_code == 200, reloaded.text
        wait_for(lambda: "first" in recipients(mailbox), timeout=5)
        assert escalated_steps(http, incident["id"]) == [(1, 1)]
