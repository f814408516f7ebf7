"""Incident actions and dead-letter dismissals through a token that speaks for others:
a chat bot's or a portal's one token names the person who clicked (``by``), who is
recorded as acting, with the token beside them (``via``) in the timeline, the console
and the log; any other token may name only itself, and the console only its viewer."""

from __future__ import annotations

import html
import json
import logging
import re
import sqlite3
from urllib.parse import parse_qs

import httpx
import pytest
import responses
from conftest import AUTH, BASE_CONFIG, TLS_CONTEXT, MovedClock, free_port, mail_url, wait_for
from console_support import csrf_in, fire, sign_in
from logfmt_support import events
from test_dismiss import dead_letters
from test_escalation import REOPEN
from test_snooze import entries

TOKENS = """
[api]
tokens = [
  {{ name = "will", token = "write-token", role = "write" }},
  {{ name = "ada", token = "admin-token", role = "admin" }},
  {{ name = "chatbot", token = "chatbot-token", role = "admin", speaks_for_others = true }},
]
"""
BOT = {"Authorization": "Bearer chatbot-token"}
WRITER = {"Authorization": "Bearer write-token"}
ADMIN = {"Authorization": "Bearer admin-token"}
SECRETS = ("chatbot-token", "write-token", "admin-token")


@pytest.fixture
def hub(hub_factory):
    """A hub whose receiver is down (its message dead-letters at once), with one open
    incident for the checkout service; its clock moves (a snooze lapses at once) and a
    resolved incident reopens within the hour."""
    config = BASE_CONFIG + TOKENS + REOPEN
    mail = mail_url(free_port())
    running = hub_factory(config, mail_url=mail, max_attempts=1, clock=MovedClock())
    fire(running.url, "checkout down")
    return running


def incident_id(http: httpx.Client) -> int:
    return http.get("/api/v1/incidents", headers=WRITER).json()[0]["id"]


def timeline_rows(hub, kind: str) -> list[tuple[str, dict]]:
    """The stored timeline entries of ``kind``: their actor and detail."""
    with sqlite3.connect(hub.config_path.parent / "hub.db") as conn:
        query = "SELECT actor, detail FROM timeline WHERE kind = ? ORDER BY id"
        rows = conn.execute(query, (kind,)).fetchall()
    return [(actor, json.loads(detail)) for actor, detail in rows]


def logged(caplog, event: str) -> list[dict[str, str]]:
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert not any(secret in text for secret in SECRETS)
    return events(text, event)


def test_the_person_a_token_names_acts_with_the_token_beside_them(hub, caplog):
    """alice acks through the chat bot and holds the incident as herself: bob, through
    the same bot, is refused as anyone else would be; the bot acting as itself names
    no one beside it."""
    with caplog.at_level(logging.INFO, logger="hub.incidents"), hub.client(headers=BOT) as http:
        number = incident_id(http)
        path = f"/api/v1/incidents/{number}"
        acked = http.post(f"{path}/ack", json={"by": "alice", "comment": "on it"})
        taken = http.post(f"{path}/ack", json={"by": "bob"})
        snoozed = http.post(f"{path}/snooze", json={"by": "alice", "duration": "1h"})
        unacked = http.post(f"{path}/unack", json={"by": "bob", "comment": "mine now"})
        resolved = http.post(f"{path}/resolve", json={"comment": "fixed"})
        shown = http.get(path).json()
    assert (acked.status_code, acked.json()["acknowledged_by"]) == (200, "alice")
    assert (taken.status_code, taken.json()["acknowledged_by"]) == (409, "alice")
    assert (snoozed.status_code, snoozed.json()["acknowledged_by"]) == (200, "alice")
    assert unacked.json()["status"] == "open"
    assert resolved.json()["resolved_by"] == "chatbot"
    said = [(t["kind"], t["actor"], t["detail"].get("via")) for t in shown["timeline"]]
    assert [entry for entry in said if entry[1] not in (None, "hub")] == [
        ("acknowledged", "alice", "chatbot"),
        ("snoozed", "alice", "chatbot"),
        ("unacknowledged", "bob", "chatbot"),
        ("resolved", "chatbot", None),
    ]
    assert timeline_rows(hub, "acknowledged") == [("alice", {"comment": "on it", "via": "chatbot"})]
    assert timeline_rows(hub, "resolved") == [("chatbot", {"comment": "fixed"})]
    lines = [
        (line["event"], line["by"], line["via"], line.get("token"))
        for event in ("incident_acknowledged", "incident_unacknowledged", "incident_resolved")
        for line in logged(caplog, event)
    ]
    assert lines == [
        ("incident_acknowledged", "alice", "api", "chatbot"),
        ("incident_unacknowledged", "bob", "api", "chatbot"),
        ("incident_resolved", "chatbot", "api", None),
    ]


def test_a_token_that_speaks_for_nobody_may_name_only_itself(hub):
    with hub.client(headers=WRITER) as http:
        path = f"/api/v1/incidents/{incident_id(http)}"
        refused = http.post(f"{path}/ack", json={"by": "alice"})
        itself = http.post(f"{path}/ack", json={"by": "will"})
        shown = http.get(path).json()
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"].startswith('by "alice" is not this token\'s name "will"')
    assert "set speaks_for_others = true on its token in [api] tokens" in refused.json()["detail"]
    assert (itself.status_code, itself.json()["acknowledged_by"]) == (200, "will")
    acks = entries(shown, "acknowledged")
    assert [(t["actor"], t["detail"]) for t in acks] == [("will", {"comment": ""})]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        (" ", "by: name the person it is for, or leave it out"),
        ("a" * 201, "by: at most 200 characters; this one has 201"),
        ("alice\nroot", "by: a name on one line, without control characters"),
        ("alice\u202eecila", "by: a name on one line, without control characters"),
    ],
)
@pytest.mark.parametrize("headers", [BOT, WRITER])
def test_a_name_no_person_has_is_refused_naming_the_field(hub, name, says, headers):
    """Refused before the token's right to name anyone is looked at, so no refusal
    repeats it; nothing is recorded."""
    with hub.client(headers=headers) as http:
        path = f"/api/v1/incidents/{incident_id(http)}"
        answers = [
            http.post(f"{path}/ack", json={"by": name}),
            http.post(f"{path}/snooze", json={"by": name, "duration": "1h"}),
        ]
        shown = http.get(path).json()
    for answer in answers:
        assert (answer.status_code, answer.json()["field"]) == (422, "$.by"), answer.text
        assert answer.json()["detail"] == says
    assert shown["status"] == "open" and not entries(shown, "acknowledged")


def test_a_dismissal_through_the_bot_is_the_persons_and_shows_the_bot(hub, caplog):
    with hub.client(headers=BOT) as http:
        (letter,) = wait_for(lambda: dead_letters(http))
        path = f"/api/v1/notifications/{letter['id']}/dismiss"
        refused = http.post(path, headers=ADMIN, json={"by": "alice"})
        with caplog.at_level(logging.INFO, logger="hub.incidents"):
            dismissed = http.post(path, json={"by": "alice", "comment": "told by phone"})
    with hub.client() as http:
        sign_in(http, "admin-token")
        page = html.unescape(http.get("/notifications?state=dismissed").text)
    assert refused.status_code == 403
    assert dismissed.json()["state"] == "dismissed"
    assert timeline_rows(hub, "dead_letter_dismissed") == [
        (
            "alice",
            {
                "notification": letter["id"],
                "receiver": "ops",
                "comment": "told by phone",
                "via": "chatbot",
            },
        )
    ]
    (line,) = logged(caplog, "notification_dismissed")
    assert (line["by"], line["via"], line["token"]) == ("alice", "api", "chatbot")
    assert "by alice via chatbot" in page


def test_the_console_shows_the_bot_beside_the_person_and_lets_no_one_name_another(hub):
    """A console form's ``by`` is no claim: its viewer acts, even signed in with the bot's
    token, which speaks for others only through the API."""
    with hub.client(headers=BOT) as bot, hub.client() as http:
        number = incident_id(bot)
        bot.post(f"/api/v1/incidents/{number}/ack", json={"by": "alice"})
        sign_in(http, "chatbot-token")
        held = html.unescape(http.get(f"/incidents/{number}").text)
        listed = html.unescape(http.get("/?status=acknowledged").text)
        bot.post(f"/api/v1/incidents/{number}/unack", json={"by": "alice"})
        form = http.get(f"/incidents/{number}").text
        posted = http.post(
            f"/incidents/{number}/ack", data={"_csrf": csrf_in(form), "by": "mallory"}
        )
        page = html.unescape(http.get(f"/incidents/{number}").text)
    assert re.search(
        r"<dt>Acknowledged</dt><dd><time [^>]*>[^<]*</time> by alice via chatbot<", held
    )
    assert "acknowledged by alice via chatbot" in listed
    assert posted.status_code == 303
    assert re.search(r"<dt>Acknowledged</dt><dd><time [^>]*>[^<]*</time> by chatbot<", page)
    assert "acknowledged</strong> by alice via chatbot" in page
    assert "unacknowledged</strong> by alice via chatbot" in page
    assert "mallory" not in page
    assert [actor for actor, _ in timeline_rows(hub, "acknowledged")] == ["alice", "chatbot"]
    assert not any(secret in page for secret in SECRETS)


def vouched(hub, http: httpx.Client, number: int) -> tuple[str | None, ...]:
    """Who acknowledged and resolved the incident and the token beside each, as the API
    answers, after checking the stored row says the same."""
    names = ("acknowledged_by", "acknowledged_via", "resolved_by", "resolved_via")
    with sqlite3.connect(hub.config_path.parent / "hub.db") as conn:
        query = f"SELECT {', '.join(names)} FROM incidents WHERE id = ?"
        stored = conn.execute(query, (number,)).fetchone()
    shown = http.get(f"/api/v1/incidents/{number}").json()
    assert tuple(shown[name] for name in names) == stored
    return stored


def send(hub, status: str) -> None:
    """The checkout alert as its source sends it again: firing, or resolved."""
    event = {"status": status, "summary": "checkout down", "labels": {"service": "checkout"}}
    assert (
        httpx.post(
            f"{hub.url}/webhooks/shop", json=event, headers=AUTH, verify=TLS_CONTEXT
        ).status_code
        == 202
    )


def test_the_incident_keeps_the_token_beside_the_person_only_while_they_hold_it(hub):
    """The token is stored with the person and goes with them: an unack, a snooze that
    lapses and a reopening leave no token naming someone no longer there, and a resolve
    by the alerts is hub's own, with no token beside it."""
    with hub.client(headers=BOT) as http:
        number = incident_id(http)
        path = f"/api/v1/incidents/{number}"
        acked = http.post(f"{path}/ack", json={"by": "alice"}).json()
        after_ack = vouched(hub, http, number)
        http.post(f"{path}/unack", json={"by": "alice"})
        after_unack = vouched(hub, http, number)
        http.post(f"{path}/snooze", json={"by": "alice", "duration": "1m"})
        hub.clock.advance(60)
        wait_for(lambda: http.get(path).json()["status"] == "open")
        after_lapse = vouched(hub, http, number)
        http.post(f"{path}/ack", json={"by": "alice"})
        resolved = http.post(f"{path}/resolve", json={"by": "bob"}).json()
        after_resolve = vouched(hub, http, number)
        send(hub, "resolved")
        send(hub, "firing")
        after_reopen = vouched(hub, http, number)
        http.post(f"{path}/ack", json={"by": "alice"})
        send(hub, "resolved")
        after_alerts_resolved = vouched(hub, http, number)
    assert (acked["acknowledged_by"], acked["acknowledged_via"]) == ("alice", "chatbot")
    assert after_ack == ("alice", "chatbot", None, None)
    assert after_unack == after_lapse == (None, None, None, None)
    assert (resolved["resolved_by"], resolved["resolved_via"]) == ("bob", "chatbot")
    assert after_resolve == ("alice", "chatbot", "bob", "chatbot")
    assert after_reopen == (None, None, None, None)
    assert after_alerts_resolved == ("alice", "chatbot", "hub", None)


def test_a_token_acting_as_itself_has_no_token_beside_it(hub):
    with hub.client(headers=BOT) as http:
        number = incident_id(http)
        http.post(f"/api/v1/incidents/{number}/ack", json={"by": "chatbot"})
        assert vouched(hub, http, number) == ("chatbot", None, None, None)


def test_a_resolution_through_the_bot_tells_the_receivers_whom_and_which_token(hub_factory, smtp):
    """The alert still fires, so the message names who resolved it: with the token
    beside them, as the console does."""
    mailbox, port = smtp
    running = hub_factory(BASE_CONFIG + TOKENS, mail_url=mail_url(port))
    fire(running.url, "checkout down")
    wait_for(lambda: len(mailbox.messages) == 1)
    with running.client(headers=BOT) as http:
        http.post(f"/api/v1/incidents/{incident_id(http)}/resolve", json={"by": "bob"})
    wait_for(lambda: len(mailbox.messages) == 2)
    assert "Resolved by bob via chatbot at " in mailbox.text_of(1)


TWILIO_SID = "AC" + "0" * 32
TWILIO_URL = f"twilio://{TWILIO_SID}:TOKEN@+15551234567/+15557654321"
TWILIO_API = f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"


def test_an_sms_names_the_token_beside_whoever_acknowledged_or_resolved(hub_factory):
    """Apprise's Twilio plugin, intercepted at ``requests``, sends what chat and email
    say: an alert joining the incident alice holds through the bot, then bob's
    resolution through it."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")
        twilio = mock.post(TWILIO_API, json={})
        running = hub_factory(BASE_CONFIG + TOKENS, mail_url=TWILIO_URL)
        fire(running.url, "checkout down")
        wait_for(lambda: len(twilio.calls) == 1)
        with running.client(headers=BOT) as http:
            path = f"/api/v1/incidents/{incident_id(http)}"
            http.post(f"{path}/ack", json={"by": "alice"})
            fire(running.url, "checkout slow", host="web-2")
            wait_for(lambda: len(twilio.calls) == 2)
            http.post(f"{path}/resolve", json={"by": "bob"})
            wait_for(lambda: len(twilio.calls) == 3)
    texts = [parse_qs(call.request.body)["Body"][0] for call in twilio.calls]
    assert texts[1].endswith(" Acknowledged by alice via chatbot")
    assert texts[2].endswith(" Resolved by bob via chatbot, 2 still firing")
