"""What an escalation step's page says, on a real server through real email and
Apprise's own Slack and Twilio plugins (intercepted at ``requests``): a page past the
first says it is an escalation, of which policy and step, and how long nobody has
acknowledged (since the chain started, or since a person unacknowledged it); the first
page and the route's own messages do not. The clock is moved, so the 15 minutes of the
policy pass at once."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from urllib.parse import parse_qs

import responses
from conftest import MovedClock, wait_for
from notify_support import WRITER, ack_link_in, fire, mail_to, receiver, route, start_hub
from test_snooze import texts_to

SLACK_URL = "slack://T000/B000/XXXX/#alerts"
SLACK_HOOK = "https://hooks.slack.com/services/T000/B000/XXXX"
TWILIO_SID = "AC" + "0" * 32
TWILIO_URL = f"twilio://{TWILIO_SID}:TOKEN@+15551234567/+15557654321"
TWILIO_API = f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
POLICY = """
[[escalations]]
name = "db-oncall"
steps = [
  { after = "0s", notify = ["lead"] },
  { after = "15m", notify = ["manager"] },
]
"""
FIFTEEN_MINUTES = r"15m(?: \d+s)?"
"""The step runs at the first worker round after it fell due, a second or so late."""
SAID = re.compile(
    rf"Escalated: step 2 of policy db-oncall; not acknowledged for {FIFTEEN_MINUTES}\."
)
SMS_SAID = re.compile(rf" Escalated: step 2 of db-oncall, unacked {FIFTEEN_MINUTES}\. Ack: ")


def start(hub_factory, smtp_port: int, clock: MovedClock):
    """``ops`` is the route's receiver; the policy pages ``lead`` at once and
    ``manager`` (email, Slack and SMS) after 15 minutes."""
    receivers = receiver("ops", mail_to(smtp_port, "ops@example.com"))
    receivers += receiver("lead", mail_to(smtp_port, "lead@example.com"))
    manager = mail_to(smtp_port, "manager@example.com")
    receivers += receiver("manager", manager, SLACK_URL, TWILIO_URL)
    routes = route("ops", 'service="checkout"', escalation="db-oncall")
    return start_hub(hub_factory, receivers, routes=routes, tables=POLICY, clock=clock)


@contextlib.contextmanager
def slack_and_twilio() -> Iterator[tuple[responses.BaseResponse, responses.BaseResponse]]:
    """Slack's and Twilio's APIs intercepted where Apprise calls them: nothing leaves
    the machine, and the payloads Apprise built are there to read."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")
        yield mock.post(SLACK_HOOK, body="ok"), mock.post(TWILIO_API, json={})


def test_a_later_steps_page_says_it_escalated_and_the_first_page_and_the_routes_do_not(
    hub_factory, smtp
):
    mailbox, smtp_port = smtp
    clock = MovedClock()
    with slack_and_twilio() as (slack, twilio):
        hub = start(hub_factory, smtp_port, clock)
        with hub.client(headers=WRITER) as http:
            incident_id = fire(http, "orders database down")["incident_id"]
            wait_for(lambda: texts_to(mailbox, "ops") and texts_to(mailbox, "lead"))
            clock.advance(900)
            wait_for(lambda: texts_to(mailbox, "manager") and slack.calls and twilio.calls)

    (route_message,) = texts_to(mailbox, "ops")
    (first_page,) = texts_to(mailbox, "lead")
    (escalated,) = texts_to(mailbox, "manager")
    assert "Escalated" not in route_message + first_page
    assert "/ack/" in first_page, "a page all the same"
    assert SAID.search(" ".join(escalated.split())), escalated
    (message,) = json.loads(slack.calls[0].request.body)["attachments"]
    assert message["title"] == f"[FIRING] #{incident_id} orders database down"
    assert SAID.search(message["text"]), message["text"]
    sms = parse_qs(twilio.calls[0].request.body)["Body"][0]
    assert len(sms) <= 160
    assert sms.startswith(f"WARNING #{incident_id}: orders")
    assert SMS_SAID.search(sms), sms
    assert sms.endswith(f" Ack: {ack_link_in(sms, hub.url)}")


def test_after_a_lapse_the_time_unacknowledged_counts_from_the_lapse(hub_factory, smtp):
    """Someone held the incident until their snooze ended: the chain starts over, and
    its step 2 says 15 minutes, not the half hour since the incident opened."""
    mailbox, smtp_port = smtp
    clock = MovedClock()
    with slack_and_twilio(), start(hub_factory, smtp_port, clock).client(headers=WRITER) as http:
        incident_id = fire(http, "orders database down")["incident_id"]
        wait_for(lambda: texts_to(mailbox, "lead"))
        clock.advance(900)
        wait_for(lambda: texts_to(mailbox, "manager"))
        snoozed = http.post(f"/api/v1/incidents/{incident_id}/snooze", json={"duration": "1m"})
        assert snoozed.status_code == 200, snoozed.text
        clock.advance(61)
        wait_for(lambda: len(texts_to(mailbox, "lead")) == 2 and len(texts_to(mailbox, "ops")) == 2)
        clock.advance(900)
        wait_for(lambda: len(texts_to(mailbox, "manager")) == 2)

    _, route_again = texts_to(mailbox, "ops")
    _, lead_again = texts_to(mailbox, "lead")
    for page in (route_again, lead_again):
        assert "The acknowledgement by will lapsed: the snooze ended." in page
        assert "Escalated" not in page, "the chain's first step again: no escalation"
    _, manager_again = (" ".join(text.split()) for text in texts_to(mailbox, "manager"))
    assert SAID.search(manager_again), manager_again
    assert "The acknowledgement by will lapsed: the snooze ended." in manager_again


def test_after_an_unack_the_time_unacknowledged_counts_from_the_unack(hub_factory, smtp):
    """Someone held the incident from its first minute to its fifth, then gave it back:
    the unack resumes the chain, whose step 2 still pages at 15 minutes, and it says
    10 minutes, the time since the unack, not the 15 since the chain started."""
    mailbox, smtp_port = smtp
    clock = MovedClock()
    with slack_and_twilio(), start(hub_factory, smtp_port, clock).client(headers=WRITER) as http:
        incident = f"/api/v1/incidents/{fire(http, 'orders database down')['incident_id']}"
        wait_for(lambda: texts_to(mailbox, "lead"))
        clock.advance(60)
        acked = http.post(f"{incident}/ack", json={"comment": "looking"})
        assert acked.status_code == 200, acked.text
        clock.advance(240)
        unacked = http.post(f"{incident}/unack", json={"comment": "not mine after all"})
        assert unacked.status_code == 200, unacked.text
        clock.advance(600)
        wait_for(lambda: texts_to(mailbox, "manager"))

    (page,) = (" ".join(text.split()) for text in texts_to(mailbox, "manager"))
    ten_minutes = r"10m(?: \d+s)?"
    said = rf"Escalated: step 2 of policy db-oncall; not acknowledged for {ten_minutes}\."
    assert re.search(said, page), page
