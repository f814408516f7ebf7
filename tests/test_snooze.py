"""Snoozes and acknowledgement timeouts on a real server with real email: an ack that
lapses opens the incident again, pages its receivers with a fresh page (ack link
included) and starts its escalation over; resolving, unacknowledging or a plain ack
ends a snooze; a snooze outlives a restart; a bad duration changes nothing.

A snooze lasts at least a minute, so these tests move the hub's clock forward
(``MovedClock``) instead of waiting, and so does the test of an ``ack_timeout``."""

from __future__ import annotations

import re
import time
from datetime import datetime

import pytest
from conftest import BASE_CONFIG, MovedClock, render_config, wait_for
from console_support import sign_in
from test_escalation import WRITE, escalated_steps, first_paged, recipients, step_count

from hub import config
from hub.errors import ConfigError
from hub.worker import IDLE_POLL_SECONDS

ADMIN = {"Authorization": "Bearer admin-token"}


def snooze(http, incident_id: int, duration: object = "1m", **body: object):
    return http.post(f"/api/v1/incidents/{incident_id}/snooze", json={"duration": duration, **body})


def shown(http, incident_id: int) -> dict:
    answer = http.get(f"/api/v1/incidents/{incident_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def unsent(incident: dict) -> list[dict]:
    """Its timeline but for the messages that went out: one in flight when a test
    reads the timeline records itself as it is sent, a moment later."""
    return [t for t in incident["timeline"] if t["kind"] != "notified"]


def entries(incident: dict, kind: str) -> list[dict]:
    return [t for t in incident["timeline"] if t["kind"] == kind]


def pages_to(mailbox, address: str) -> list[int]:
    """The positions of the messages sent to ``address`` in the mailbox."""
    return [i for i, m in enumerate(mailbox.messages) if str(m["To"]).startswith(address + "@")]


def pages(mailbox) -> list[str]:
    """Who was sent a firing message (a page), in order; resolved messages left out."""
    return [
        str(m["To"]).split("@")[0]
        for m in mailbox.messages
        if not str(m["Subject"]).startswith("[RESOLVED")
    ]


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def stamp(text: str) -> str:
    """An API time as a 409's detail names it, to the second."""
    return f"{datetime.fromisoformat(text):%Y-%m-%dT%H:%M:%SZ}"


def texts_to(mailbox, address: str) -> list[str]:
    """The text of every message sent to ``address``, in order."""
    return [mailbox.text_of(i) for i in pages_to(mailbox, address)]


def escalation_fact(page: str) -> str:
    """What an incident page's "Escalation" fact says, its whitespace collapsed."""
    found = re.search(r"<dt>Escalation</dt><dd>(.*?)</dd>", page, re.DOTALL)
    assert found, "the page shows no escalation"
    return " ".join(found.group(1).split())


def after_a_worker_round() -> None:
    """Long enough for the escalator to have looked at the moved clock: nothing pokes it
    when the clock moves, and it looks at least this often."""
    time.sleep(IDLE_POLL_SECONDS + 0.3)


def test_a_snooze_that_ends_pages_again_as_if_nobody_had_acknowledged(hub_factory, smtp):
    clock = MovedClock()
    with first_paged(hub_factory, smtp, second_after="1h", clock=clock) as (
        mailbox,
        hub,
        http,
        incident,
    ):
        wait_for(lambda: sorted(recipients(mailbox)) == ["first", "ops"])
        answer = snooze(http, incident["id"], "1m", comment="after the deploy")
        assert answer.status_code == 200, answer.text
        snoozed = answer.json()
        assert (snoozed["status"], snoozed["acknowledged_by"]) == ("acknowledged", "will")
        assert epoch(snoozed["snoozed_until"]) == pytest.approx(
            epoch(snoozed["acknowledged_at"]) + 60, abs=0.01
        )
        assert snoozed["snooze_reason"] == "snooze"
        detail = shown(http, incident["id"])
        assert detail["snoozed_until"] == snoozed["snoozed_until"]
        assert entries(detail, "snoozed")[0]["detail"]["comment"] == "after the deploy"

        clock.advance(61)
        wait_for(lambda: sorted(recipients(mailbox)) == ["first", "first", "ops", "ops"])
        woken = shown(http, incident["id"])
        assert (woken["status"], woken["acknowledged_by"], woken["snoozed_until"]) == (
            "open",
            None,
            None,
        )
        (ended,) = entries(woken, "snooze_ended")
        assert ended["actor"] == "hub"
        assert ended["detail"]["acknowledged_by"] == "will"
        assert escalated_steps(http, incident["id"]) == [(1, 1), (1, 1)], "started over"
        restarts = [
            e["detail"].get("restarted_by")
            for e in entries(shown(http, incident["id"]), "escalated")
        ]
        assert restarts == [None, "snooze_ended"], "the second run 1 step 1 says why"
        assert step_count(http, "snooze_ended") == 1
        with hub.client() as browser:
            sign_in(browser, "write-token")
            page = browser.get(f"/incidents/{incident['id']}").text
        assert "step 1 (run 1, chain started over: snooze ended)" in page
        for address in ("ops", "first"):
            before, again = texts_to(mailbox, address)
            assert "/ack/" in again and "Acknowledged by" not in again, "a fresh page"
            assert "The acknowledgement by will lapsed: the snooze ended." in again
            assert "lapsed" not in before
        assert (woken["lapsed_by"], woken["lapse_reason"]) == ("will", "snooze")
        taken = http.post(f"/api/v1/incidents/{incident['id']}/ack", json={}).json()
        assert (taken["lapsed_by"], taken["lapse_reason"]) == (None, None), "taken again"


@pytest.mark.parametrize(
    ("action", "status"),
    [("resolve", "resolved"), ("unack", "open"), ("ack", "acknowledged")],
)
def test_resolving_unacknowledging_or_a_plain_ack_ends_a_snooze(hub_factory, smtp, action, status):
    clock = MovedClock()
    with first_paged(hub_factory, smtp, second_after="1h", clock=clock) as (
        mailbox,
        _,
        http,
        incident,
    ):
        assert snooze(http, incident["id"]).status_code == 200
        ended = http.post(f"/api/v1/incidents/{incident['id']}/{action}", json={})
        assert ended.status_code == 200, ended.text
        assert (ended.json()["status"], ended.json()["snoozed_until"]) == (status, None)
        clock.advance(61)
        after_a_worker_round()
        assert shown(http, incident["id"])["status"] == status
        assert entries(shown(http, incident["id"]), "snooze_ended") == []
        assert step_count(http, "snooze_ended") == 0
        assert sorted(pages(mailbox)) == ["first", "ops"], "nothing paged again"


def test_an_acknowledgement_lapses_after_the_policys_ack_timeout(hub_factory, smtp):
    """The timeout is a minute on a moved clock: with 500 ms, a loaded machine now and
    then let the first ack lapse before the second one, which then acknowledged anew."""
    clock = MovedClock()
    extra = 'ack_timeout = "1m"\n'
    with first_paged(hub_factory, smtp, second_after="1h", extra=extra, clock=clock) as (
        mailbox,
        _,
        http,
        incident,
    ):
        acked = http.post(f"/api/v1/incidents/{incident['id']}/ack", json={"comment": "on it"})
        assert acked.status_code == 200, acked.text
        assert acked.json()["snooze_reason"] == "ack_timeout"
        assert epoch(acked.json()["snoozed_until"]) == pytest.approx(
            epoch(acked.json()["acknowledged_at"]) + 60, abs=0.01
        )
        again = http.post(f"/api/v1/incidents/{incident['id']}/ack", json={"comment": "twice"})
        assert again.status_code == 200, again.text
        assert again.json()["snoozed_until"] == acked.json()["snoozed_until"]
        clock.advance(60)
        wait_for(lambda: recipients(mailbox).count("first") == 2)
        lapsed = shown(http, incident["id"])
        assert (lapsed["status"], lapsed["acknowledged_by"]) == ("open", None)
        why = "The acknowledgement by will lapsed: not resolved within the policy's ack_timeout."
        assert why in texts_to(mailbox, "first")[-1]
        (entry,) = entries(lapsed, "ack_timed_out")
        assert (entry["actor"], entry["detail"]["acknowledged_by"]) == ("hub", "will")
        assert [e["detail"]["comment"] for e in entries(lapsed, "acknowledged")] == ["on it"]
        assert escalated_steps(http, incident["id"]) == [(1, 1), (1, 1)]
        restarts = [e["detail"].get("restarted_by") for e in entries(lapsed, "escalated")]
        assert restarts == [None, "ack_timed_out"]
        assert step_count(http, "ack_timed_out") == 1
        assert step_count(http, "snooze_ended") == 0


def test_a_snooze_of_the_holder_outlasts_the_ack_timeout(hub_factory, smtp):
    """The person chose how long: their snooze, not the policy's timeout, decides."""
    with first_paged(hub_factory, smtp, second_after="1h", extra='ack_timeout = "300ms"\n') as (
        mailbox,
        _,
        http,
        incident,
    ):
        answer = snooze(http, incident["id"], "1h")
        assert answer.json()["snooze_reason"] == "snooze"
        after_a_worker_round()
        assert shown(http, incident["id"])["status"] == "acknowledged"
        assert recipients(mailbox).count("first") == 1


@pytest.mark.parametrize("while_down", [True, False], ids=["ended-while-down", "ends-after-start"])
def test_a_snooze_outlives_a_restart(hub_factory, smtp, while_down):
    clock = MovedClock()
    with first_paged(hub_factory, smtp, second_after="1h", clock=clock) as (
        mailbox,
        hub,
        http,
        incident,
    ):
        until = snooze(http, incident["id"]).json()["snoozed_until"]
    hub.stop()
    if while_down:
        clock.advance(61)
    hub.start()
    with hub.client(headers=WRITE) as http:
        if not while_down:
            after_a_worker_round()
            kept = shown(http, incident["id"])
            assert (kept["status"], kept["snoozed_until"]) == ("acknowledged", until)
            clock.advance(61)
        wait_for(lambda: recipients(mailbox).count("first") == 2)
        assert shown(http, incident["id"])["status"] == "open"
        assert step_count(http, "snooze_ended") == 1


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        ({"duration": "soon"}, 422, "expected a duration like"),
        ({"duration": "30s"}, 422, "must be from 1m to 7d, got '30s'"),
        ({"duration": "8d"}, 422, "must be from 1m to 7d, got '8d'"),
        ({"duration": ""}, 422, "expected a duration like"),
        ({"comment": "how long?"}, 400, "invalid body: missing field $.duration"),
        ({"duration": 3600}, 400, "invalid body: $.duration: expected `str`, got `int`"),
        ({"duraton": "4h"}, 400, "invalid body: unknown field $.duraton"),
        (None, 400, "invalid body: missing field $.duration (no body was sent)"),
    ],
    ids=[
        "not-a-duration",
        "too-short",
        "too-long",
        "empty",
        "missing",
        "a-number",
        "a-typo",
        "no-body",
    ],
)
def test_a_bad_snooze_duration_is_refused_naming_it_and_changes_nothing(
    hub_factory, smtp, body, code, named
):
    with first_paged(hub_factory, smtp, second_after="1h") as (_, __, http, incident):
        before = shown(http, incident["id"])
        answer = http.post(f"/api/v1/incidents/{incident['id']}/snooze", json=body)
        assert answer.status_code == code, answer.text
        problem = answer.json()
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert named in problem["detail"]
        assert "{'" not in problem["detail"], "no Python repr reaches a client"
        if code == 422:
            assert problem["field"] == "$.duration"
        after = shown(http, incident["id"])
        assert (after["status"], after["acknowledged_at"], after["snoozed_until"]) == (
            "open",
            None,
            None,
        )
        assert unsent(after) == unsent(before)


@pytest.mark.parametrize("action", ["ack", "unack", "resolve"])
def test_a_typo_in_an_action_body_is_a_400_naming_the_field_and_changes_nothing(
    hub_factory, smtp, action
):
    """``{"coment": ...}`` is refused in the words of hub's other 400s, naming the field
    as a 422 names one, and not as a Python repr of Litestar's validation errors."""
    with first_paged(hub_factory, smtp, second_after="1h") as (_, __, http, incident):
        before = shown(http, incident["id"])
        answer = http.post(f"/api/v1/incidents/{incident['id']}/{action}", json={"coment": "x"})
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json() == {
            "type": "about:blank",
            "status": 400,
            "title": "Bad request",
            "detail": "invalid body: unknown field $.coment",
        }
        assert unsent(shown(http, incident["id"])) == unsent(before)


def test_snoozing_an_incident_someone_else_holds_is_a_conflict_naming_when_it_was_taken(
    hub_factory, smtp
):
    """The holder snoozing again moves when the ack lapses, not when they took it."""
    clock = MovedClock()
    with first_paged(hub_factory, smtp, second_after="1h", clock=clock) as (_, __, http, incident):
        acked = http.post(f"/api/v1/incidents/{incident['id']}/ack", json={})
        assert acked.status_code == 200
        taken = acked.json()["acknowledged_at"]
        clock.advance(120)
        snoozed = snooze(http, incident["id"], "4h").json()
        until = snoozed["snoozed_until"]
        assert until is not None, "the holder snoozes their own ack"
        assert snoozed["acknowledged_at"] == taken
        refused = http.post(
            f"/api/v1/incidents/{incident['id']}/snooze", json={"duration": "1h"}, headers=ADMIN
        )
        assert refused.status_code == 409
        assert refused.json()["detail"] == (
            f"incident {incident['id']} is already acknowledged by will"
            f" at {stamp(taken)} until {stamp(until)}"
        )
        held = {"acknowledged_by": "will", "acknowledged_at": taken, "acknowledged_until": until}
        assert held.items() <= refused.json().items(), "the same facts, for a script"
        assert shown(http, incident["id"])["snoozed_until"] == until


@pytest.mark.parametrize(
    ("extra", "how", "resumes"),
    [("", "ack", False), ("", "snooze", True), ('ack_timeout = "1h"\n', "ack", True)],
    ids=["plain-ack", "snooze", "ack-timeout"],
)
def test_the_incident_page_shows_escalation_paused_while_acknowledged_and_when_it_resumes(
    hub_factory, smtp, extra, how, resumes
):
    """Step two is still due on the escalation row while the incident is acknowledged,
    but it will be skipped: the page must not read as if the next page were coming."""
    with first_paged(hub_factory, smtp, second_after="1h", extra=extra) as (_, hub, http, incident):
        with hub.client() as browser:
            sign_in(browser, "write-token")
            page = f"/incidents/{incident['id']}"
            assert escalation_fact(browser.get(page).text).startswith("page: step 2 due ")
            body = {"duration": "4h"} if how == "snooze" else {}
            taken = http.post(f"/api/v1/incidents/{incident['id']}/{how}", json=body)
            assert taken.status_code == 200, taken.text
            fact = escalation_fact(browser.get(page).text)
    assert "due" not in fact
    if resumes:
        until = datetime.fromisoformat(taken.json()["snoozed_until"])
        assert re.fullmatch(
            r"page: paused while acknowledged; resumes <time[^>]*>"
            rf"(?:{until:%Y-%m-%d} )?{until:%H:%M} UTC</time>"  # the date, on another day
            r" \(in [^)]+\) if still unresolved",
            fact,
        ), fact
    else:
        assert fact == "page: paused while acknowledged"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"0s"', "escalations[0] (page).ack_timeout: must be longer than 0s, got '0s'"),
        (
            '"soon"',
            "escalations[0] (page).ack_timeout: expected a duration like '30s', '5m' or '4h',"
            " got 'soon'",
        ),
    ],
)
def test_an_ack_timeout_that_is_no_positive_duration_is_refused_naming_it(value, problem):
    text = render_config(
        BASE_CONFIG
        + '[[escalations]]\nname = "page"\nsteps = [{{ notify = ["ops"] }}]\n'
        + f"ack_timeout = {value}\n",
        port=8080,
        db="hub.db",
        mail_url="logfile://x.log",
    )
    with pytest.raises(ConfigError) as raised:
        config.parse(text, {})
    assert raised.value.problems == [problem]
