"""Who an ack link records, on a real server with real email: a page to the on-call
person carries a link that acknowledges as them; a shared channel's link records the
signed-in console viewer, else ``ack-link``; a link whose person was altered is
refused and changes nothing; links made before links named anyone still work."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import mail_url, wait_for
from console_support import sign_in
from notify_support import (
    ACK_SECRET,
    WRITER,
    ack_link_in,
    fire,
    mail_to,
    receiver,
    route,
    start_hub,
)

from hub import acklinks

ON_CALL = """
[[schedules]]
name = "primary"
people = [{ name = "alice", urls = ["ALICE_URL"] }]
rotations = [{ participants = ["alice"], length = "1w", handoff = "09:00", start = 2020-01-06 }]

[[escalations]]
name = "page"
steps = [{ after = "0s", notify = ["schedule:primary"] }]
"""


@pytest.fixture
def paged(hub_factory, smtp):
    """A hub whose first alert mailed the shared ``ops`` mailbox and paged alice, on
    call on ``primary``: the mailbox, the hub, the incident id and the ack link each
    of them was sent."""
    mailbox, port = smtp
    hub = start_hub(
        hub_factory,
        receiver("ops", mail_url(port)),
        routes=route("ops", escalation="page"),
        tables=ON_CALL.replace("ALICE_URL", mail_to(port, "alice@example.com")),
    )
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "checkout down")["incident_id"]
    wait_for(lambda: len(mailbox.messages) == 2)
    links = {
        str(message["To"]).split("@")[0]: ack_link_in(mailbox.text_of(i), hub.url)
        for i, message in enumerate(mailbox.messages)
    }
    return mailbox, hub, incident_id, links


def acks(http: httpx.Client, incident_id: int) -> tuple[str | None, list[str]]:
    """Who the API says holds the incident, and the actor of each acknowledgement on
    its timeline."""
    incident = http.get(f"/api/v1/incidents/{incident_id}").json()
    timeline = [t["actor"] for t in incident["timeline"] if t["kind"] == "acknowledged"]
    return incident["acknowledged_by"], timeline


def test_the_on_call_persons_link_acknowledges_as_them_and_later_messages_name_them(paged):
    mailbox, hub, incident_id, links = paged
    assert links["alice"].endswith("?by=alice")
    assert "?" not in links["ops"], "a shared mailbox's link names nobody"
    with hub.client() as browser:  # no console session: the link alone says who
        shown = browser.get(links["alice"]).text
        clicked = browser.post(links["alice"])
        again = browser.post(links["alice"])  # she clicks twice: told she holds it
    with hub.client(headers=WRITER) as http:
        assert acks(http, incident_id) == ("alice", ["alice"])
        fire(http, "checkout slow", alertname="Latency")  # joins the incident
        wait_for(lambda: len(mailbox.messages) == 3)
    with hub.client() as console:
        sign_in(console, "write-token")
        page = console.get(f"/incidents/{incident_id}").text
    assert "Acknowledges as alice." in shown
    assert f'action="{urlsplit(links["alice"]).path}?by=alice"' in shown
    assert [answer.status_code for answer in (clicked, again)] == [303, 303]
    assert clicked.headers["location"] == f"/incidents/{incident_id}?done=acked-by-link"
    assert again.headers["location"] == f"/incidents/{incident_id}?done=already-yours"
    assert re.search(r"<dt>Acknowledged</dt><dd>.*? by alice</dd>", page)
    assert "<strong>acknowledged</strong> by alice" in page
    assert str(mailbox.messages[2]["To"]) == "ops@example.com"
    assert "Acknowledged by alice" in mailbox.text_of(2)


def test_anyone_elses_link_after_the_persons_ack_names_who_holds_it(paged):
    _, hub, incident_id, links = paged
    later = datetime.now(UTC) + timedelta(hours=1)
    bob = acklinks.path(acklinks.sign(ACK_SECRET.encode(), incident_id, 1, later, "bob"), "bob")
    with hub.client() as browser:
        assert browser.post(links["alice"]).status_code == 303
        for link in (bob, links["ops"]):
            shown = browser.get(link).text
            answer = browser.post(link)
            assert "It is already acknowledged by alice: the link changes nothing." in shown
            assert "data-auto-submit" not in shown
            assert answer.headers["location"].endswith("?done=already-acknowledged")
    with hub.client(headers=WRITER) as http:
        assert acks(http, incident_id) == ("alice", ["alice"])


def test_the_holders_own_link_leaves_their_snooze_and_the_timeline_as_they_were(paged):
    """Will snoozed the incident for 4h, then opened his own link: it turned the snooze
    into a plain acknowledgement and added an entry, where the link is to change
    nothing for its holder. The page says he holds it and until when."""
    _, hub, incident_id, _ = paged
    later = datetime.now(UTC) + timedelta(hours=1)
    will = acklinks.path(acklinks.sign(ACK_SECRET.encode(), incident_id, 1, later, "will"), "will")
    with hub.client(headers=WRITER) as http:
        snooze = {"duration": "4h", "comment": "deploy running"}
        assert http.post(f"/api/v1/incidents/{incident_id}/snooze", json=snooze).is_success
        snoozed = http.get(f"/api/v1/incidents/{incident_id}").json()
        with hub.client() as browser:
            shown = html.unescape(browser.get(will).text)
            answer = browser.post(will)
            sign_in(browser, "write-token")
            banner = html.unescape(browser.get(answer.headers["location"]).text)
        after = http.get(f"/api/v1/incidents/{incident_id}").json()
    until = datetime.fromisoformat(snoozed["snoozed_until"])
    on_another_day = f"(?:{until:%Y-%m-%d} )?"  # the console dates a time not today
    said = "already acknowledged by you, snoozed until <time[^>]*>"
    said += rf"{on_another_day}{until:%H:%M} UTC"
    assert re.search(said, shown)
    assert "data-auto-submit" not in shown
    assert answer.headers["location"] == f"/incidents/{incident_id}?done=already-yours"
    assert f"Incident #{incident_id} was already acknowledged by you" in banner
    assert (after["snoozed_until"], after["snooze_reason"]) == (snoozed["snoozed_until"], "snooze")
    sent = ("notified",)  # messages in flight at the snooze record themselves as they go
    assert [t for t in after["timeline"] if t["kind"] not in sent] == [
        t for t in snoozed["timeline"] if t["kind"] not in sent
    ], "no new entry"


def test_a_link_whose_person_was_altered_is_refused_and_changes_nothing(paged):
    _, hub, incident_id, links = paged
    altered = {
        "another person": links["alice"].replace("?by=alice", "?by=bob"),
        "person removed": links["alice"].removesuffix("?by=alice"),
        "person added": links["ops"] + "?by=alice",
    }
    with hub.client() as browser:
        for name, link in altered.items():
            for answer in (browser.get(link), browser.post(link)):
                assert answer.status_code == 403, name
                assert answer.headers["content-type"].startswith("text/html")
                assert "acknowledgement link has a bad signature" in answer.text, name
                assert f"/incidents/{incident_id}" not in answer.text, name
                assert f"incident #{incident_id}" not in answer.text, name
    with hub.client(headers=WRITER) as http:
        incident = http.get(f"/api/v1/incidents/{incident_id}").json()
        assert incident["status"] == "open"
        assert acks(http, incident_id) == (None, [])


@pytest.mark.parametrize(
    ("token", "page_says", "actor", "done"),
    [
        (None, "hub cannot tell who opened it", "ack-link", "acked-by-shared-link"),
        ("write-token", "Acknowledges as will.", "will", "acked-by-link"),
    ],
    ids=["nobody signed in", "signed in to the console"],
)
def test_a_shared_channels_link_records_the_signed_in_viewer_else_ack_link(
    hub_factory, smtp, token, page_says, actor, done
):
    mailbox, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)))
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: mailbox.messages)
        link = ack_link_in(mailbox.text_of(0), hub.url)
        with hub.client() as browser:
            if token:
                sign_in(browser, token)
            shown = browser.get(link).text
            answer = browser.post(link)
        assert acks(http, incident_id) == (actor, [actor])
    assert page_says in shown
    assert answer.headers["location"] == f"/incidents/{incident_id}?done={done}"


def test_with_no_api_tokens_a_shared_link_does_not_send_its_clicker_to_sign_in(hub_factory, smtp):
    """The example config has no ``[api] tokens``, so nobody can sign in: the link's page
    and the banner after the click say the acknowledgement is ``ack-link``, without
    telling a first-time user to sign in first, which leads nowhere there."""
    mailbox, port = smtp
    hub = hub_factory(mail_url=mail_url(port))
    with hub.client() as http:
        incident_id = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: mailbox.messages)
        link = ack_link_in(mailbox.text_of(0), hub.url)
        with hub.client() as browser:
            shown = html.unescape(browser.get(link).text)
            clicked = browser.post(link, follow_redirects=True)
        assert acks(http, incident_id) == ("ack-link", ["ack-link"])
    assert "this hub has no [api] tokens to sign in with" in shown
    assert "signed in" not in shown
    assert clicked.url.params["done"] == "acked-by-shared-link-open"
    banner = html.unescape(clicked.text)
    assert f"Incident #{incident_id} is acknowledged, recorded as ack-link" in banner
    assert "this hub has no [api] tokens to sign in with" in banner
    assert "Sign in" not in banner


def test_a_link_made_before_links_named_a_person_still_acknowledges(hub_factory, smtp):
    """Made by the earlier code with the tests' secret for episode 1 of incident 1,
    valid until 2100: it names nobody, so it records ``ack-link`` as it always did."""
    old = "/ack/AAAAAAAAAAH0hlcAAAAAAQ.Qyr8PR6F_w69w3MawKB5Mw"
    hub = start_hub(hub_factory, receiver("ops", mail_url(smtp[1])))
    with hub.client(headers=WRITER) as http:
        assert fire(http, "checkout down")["incident_id"] == 1
        with hub.client() as browser:
            answer = browser.post(old)
        assert answer.headers["location"] == "/incidents/1?done=acked-by-shared-link"
        assert acks(http, 1) == ("ack-link", ["ack-link"])
