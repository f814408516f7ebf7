"""Notifications on a real server: the right people are told once, on time, through
email (a real SMTP server), Slack and Twilio (Apprise's own plugins, intercepted at
``requests``), and a link in the message acknowledges the incident."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from conftest import AUTH, WAIT_SECONDS, MovedClock, mail_url, wait_for
from console_support import csrf_in
from notify_support import (
    ACK_SECRET,
    WRITER,
    ack_link_in,
    deliveries,
    fire,
    mail_to,
    metric,
    receiver,
    route,
    start_hub,
    toml_table,
    when,
)
from test_snooze import after_a_worker_round

from hub import acklinks

SLACK_URL = "slack://T000/B000/XXXX/#alerts"
SLACK_HOOK = "https://hooks.slack.com/services/T000/B000/XXXX"
TWILIO_SID = "AC" + "0" * 32
TWILIO_URL = f"twilio://{TWILIO_SID}:TOKEN@+15551234567/+15557654321"
LABELS = {"service": "checkout"}
TWILIO_API = f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"


def counted_sent(receiver_name: str, integration: str) -> Callable[[str], bool]:
    """Whether /metrics counts one message sent to the receiver through the integration."""

    def check(metrics: str) -> bool:
        labels = {"receiver": receiver_name, "integration": integration, "outcome": "sent"}
        return metric(metrics, "hub_notifications_total", **labels) == 1.0

    return check


SENT = [counted_sent("chat", "slack"), counted_sent("pager", "twilio")]


def parts(message) -> tuple[str, str]:
    """The HTML and plain-text parts of an email."""
    return message.get_body(("html",)).get_content(), message.get_body(("plain",)).get_content()


def emailed_incident(hub_factory, smtp, title: str):
    """A hub mailing ``ops``, an incident fired on it, and the one email it sent."""
    mailbox, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)))
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, title)["incident_id"]
    wait_for(lambda: mailbox.messages)
    (message,) = mailbox.messages
    return hub, incident_id, message


def test_an_email_carries_both_links_in_both_parts_and_its_ack_link_acknowledges(hub_factory, smtp):
    hub, incident_id, message = emailed_incident(
        hub_factory, smtp, "checkout API error rate above 5%"
    )
    with hub.client(headers=WRITER) as http:
        assert message["Subject"] == f"[FIRING] #{incident_id} checkout API error rate above 5%"
        html, text = parts(message)
        ack_url = ack_link_in(text, hub.url)
        for part in (html, text):
            assert f"{hub.url}/incidents/{incident_id}" in part
            assert ack_url in part
            assert "checkout API error rate above 5%" in part

        with hub.client(follow_redirects=True) as browser:  # no session, no script
            shown = browser.get(ack_url)
            assert shown.status_code == 200
            assert "checkout API error rate above 5%" in shown.text
            assert f'<form method="post" action="{urlsplit(ack_url).path}"' in shown.text
            assert "hub cannot tell who opened it" in shown.text, "ops is a shared mailbox"
            assert http.get(f"/api/v1/incidents/{incident_id}").json()["status"] == "open"
            page = browser.post(ack_url)  # what the page's script submits at once
        assert page.status_code == 200
        assert page.url.path == "/login", "the incident page asks to sign in first"
        assert page.url.params["next"] == f"/incidents/{incident_id}?done=acked-by-shared-link"
        assert f"Incident #{incident_id} is acknowledged, recorded as ack-link" in page.text
        incident = http.get(f"/api/v1/incidents/{incident_id}").json()
    assert incident["status"] == "acknowledged"
    assert incident["acknowledged_by"] == "ack-link"
    acks = [t for t in incident["timeline"] if t["kind"] == "acknowledged"]
    assert [t["actor"] for t in acks] == ["ack-link"]


def test_an_emails_plain_text_part_reads_each_field_on_its_line_and_the_ack_link_alone(
    hub_factory, smtp
):
    """A text-only mail client or a pager gateway reads the text/plain part Apprise
    writes from the HTML: each field is "Label: value" on one line (a table made it all
    the headings, then all the values), the alerts a list, the ack link alone on a line."""
    mailbox, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)))
    events = [
        {"status": "firing", "summary": summary, "severity": severity, "labels": labels}
        for summary, severity, labels in (
            ("checkout 5xx", "critical", {**LABELS, "host": "web-1"}),
            ("checkout slow", "warning", {**LABELS, "host": "web-2"}),
        )
    ]
    with hub.client(headers=WRITER) as http:
        answer = http.post("/webhooks/shop", json=events, headers=AUTH)
        assert answer.status_code == 202, answer.text
        incident_id = answer.json()["alerts"][0]["incident_id"]
        wait_for(lambda: mailbox.messages)
    (message,) = mailbox.messages
    lines = parts(message)[1].splitlines()
    head = [f"Incident: #{incident_id}", "Status: firing", "Severity: critical"]
    assert lines[2:6] == [*head, "Alerts: 2 firing, 0 resolved"], lines
    ack_url = ack_link_in(parts(message)[1], hub.url)
    assert lines[lines.index("Acknowledge:") + 1] == ack_url
    first = lines.index("- checkout 5xx")
    assert lines[first + 1 : first + 4] == [
        "Status: firing",
        "Severity: critical",
        "Labels: host=web-1, service=checkout",
    ]
    assert lines[first + 4].startswith("Started: ")
    second = lines.index("- checkout slow")
    assert lines[second + 2 : second + 4] == [
        "Severity: warning",
        "Labels: host=web-2, service=checkout",
    ]


def test_the_open_incident_link_shows_the_incidents_console_page_in_a_browser(hub_factory, smtp):
    hub, incident_id, message = emailed_incident(hub_factory, smtp, "checkout down")
    html, text = parts(message)
    link = re.search(r'<b>Open incident:</b><br><a href="([^"]+)">', html).group(1)
    assert link == f"{hub.url}/incidents/{incident_id}"
    lines = text.splitlines()
    assert lines[lines.index("Open incident:") + 1] == link
    with hub.client(follow_redirects=True) as browser:  # no session yet
        form = browser.get(link)
        assert form.url.path == "/login", "the console asks to sign in, as for any page"
        assert form.url.params["next"] == f"/incidents/{incident_id}"
        data = {
            "token": "write-token",
            "_csrf": csrf_in(form.text),
            "next": f"/incidents/{incident_id}",
        }
        page = browser.post("/login", data=data)
        again = browser.get(link)
    for shown in (page, again):
        assert shown.status_code == 200
        assert str(shown.url) == link
        assert shown.headers["content-type"].startswith("text/html")
        assert f"<h1>#{incident_id} checkout down</h1>" in shown.text


def test_link_previews_and_mail_scanners_fetching_the_ack_link_change_nothing(hub_factory, smtp):
    hub, incident_id, message = emailed_incident(hub_factory, smtp, "checkout down")
    ack_url = ack_link_in(parts(message)[1], hub.url)
    with hub.client(headers=WRITER) as http:
        preview = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}
        with hub.client(headers=preview) as fetcher:
            shown, checked = fetcher.get(ack_url), fetcher.head(ack_url)
        assert (shown.status_code, checked.status_code) == (200, 200)
        assert checked.headers["content-type"] == shown.headers["content-type"]
        assert checked.content == b"", "HEAD is GET without the page"
        incident = http.get(f"/api/v1/incidents/{incident_id}").json()
        assert incident["status"] == "open"
        assert not [t for t in incident["timeline"] if t["kind"] == "acknowledged"]

        http.post(f"/api/v1/incidents/{incident_id}/ack").raise_for_status()
        with hub.client() as browser:
            page = browser.get(ack_url).text
        assert "It is already acknowledged" in page
        assert "data-auto-submit" not in page, "nothing left to submit"


def test_an_ack_link_to_an_incident_someone_acknowledged_names_them_and_changes_nothing(
    hub_factory, smtp
):
    hub, incident_id, message = emailed_incident(hub_factory, smtp, "checkout down")
    ack_url = ack_link_in(parts(message)[1], hub.url)
    with hub.client(headers=WRITER) as http:
        http.post(f"/api/v1/incidents/{incident_id}/ack", json={"comment": "mine"})
        with hub.client(follow_redirects=True) as browser:  # a second person clicks
            shown = browser.get(ack_url).text
            page = browser.post(ack_url)
        incident = http.get(f"/api/v1/incidents/{incident_id}").json()
    assert "It is already acknowledged by will: the link changes nothing." in shown
    assert page.url.params["next"] == f"/incidents/{incident_id}?done=already-acknowledged"
    assert f"Incident #{incident_id} was already acknowledged." in page.text
    assert incident["acknowledged_by"] == "will"
    acks = [t for t in incident["timeline"] if t["kind"] == "acknowledged"]
    assert [t["actor"] for t in acks] == ["will"]


def test_an_ack_link_acknowledges_only_the_episode_of_the_incident_it_was_sent_about(
    hub_factory, smtp
):
    """The incident resolves and reopens under the same id: yesterday's link must not
    take today's page, which its clicker may never have seen; the new page's link does."""
    mailbox, port = smtp
    reopening = toml_table("[incidents]", reopen_window="1h")
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)), tables=reopening)
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: len(mailbox.messages) == 1)
        fire(http, "checkout down", status="resolved")
        wait_for(lambda: len(mailbox.messages) == 2)
        assert fire(http, "checkout down")["incident_id"] == incident_id
        wait_for(lambda: len(mailbox.messages) == 3)
        first, again = (ack_link_in(parts(mailbox.messages[i])[1], hub.url) for i in (0, 2))
        with hub.client(follow_redirects=True) as browser:
            shown = browser.get(first)
            page = browser.post(first)
        incident = http.get(f"/api/v1/incidents/{incident_id}").json()
        assert (incident["status"], incident["episode"]) == ("open", 2)
        assert [t["kind"] for t in incident["timeline"]].count("acknowledged") == 0
        with hub.client() as browser:
            assert browser.post(again).headers["location"].endswith("?done=acked-by-shared-link")
        incident = http.get(f"/api/v1/incidents/{incident_id}").json()
    assert shown.status_code == 200
    assert (
        f"This link was sent about an earlier episode of incident #{incident_id}, which has"
        " reopened since and is open now: the link changes nothing."
    ) in shown.text
    assert f'<a href="/incidents/{incident_id}">Show the incident</a>' in shown.text
    assert "data-auto-submit" not in shown.text
    assert page.url.params["next"] == f"/incidents/{incident_id}?done=earlier-episode"
    assert (
        f"The link was for an earlier episode of incident #{incident_id}: it changed nothing."
    ) in page.text
    assert (incident["status"], incident["acknowledged_by"]) == ("acknowledged", "ack-link")


def test_a_forged_tampered_or_expired_ack_link_is_refused_and_changes_nothing(hub_factory, smtp):
    """Only an expired link, whose signature proves hub made it, names its incident: a
    forged or malformed one reveals nothing about any incident."""
    hub = start_hub(hub_factory, receiver("ops", mail_url(smtp[1])))
    later = datetime.now(UTC) + timedelta(hours=1)
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "checkout down")["incident_id"]
        other = acklinks.sign(ACK_SECRET.encode(), incident_id + 1, 1, later)
        valid = acklinks.sign(ACK_SECRET.encode(), incident_id, 1, later)
        refused = {
            "forged": acklinks.sign(b"not the hub's secret", incident_id, 1, later),
            "tampered": other.split(".")[0] + "." + valid.split(".")[1],
            "expired": acklinks.sign(
                ACK_SECRET.encode(), incident_id, 1, datetime.now(UTC) - timedelta(seconds=5)
            ),
            "malformed": "not-a-token",
        }
        with hub.client() as browser:
            for name, token in refused.items():
                for answer in (browser.get(f"/ack/{token}"), browser.post(f"/ack/{token}")):
                    assert answer.status_code == 403, name
                    assert answer.headers["content-type"].startswith("text/html")
                    assert "acknowledgement link" in answer.text, name
                    named = f'<a href="/incidents/{incident_id}">' in answer.text
                    assert named == (name == "expired"), name
                    assert (f"incident #{incident_id}" in answer.text) == (name == "expired"), name
                assert browser.head(f"/ack/{token}").status_code == 403, name
            expired = browser.get(f"/ack/{refused['expired']}").text
        incident = http.get(f"/api/v1/incidents/{incident_id}").json()
    assert (
        f"This acknowledgement link for incident #{incident_id} expired; a signed-in person"
        " can acknowledge the incident on its page."
    ) in expired
    assert f'<a href="/incidents/{incident_id}">Show incident #{incident_id}</a>' in expired
    assert incident["status"] == "open"
    assert incident["acknowledged_by"] is None
    assert not [t for t in incident["timeline"] if t["kind"] == "acknowledged"]


def test_slack_and_twilio_receivers_get_the_payloads_apprise_builds_with_the_ack_link(
    hub_factory,
):
    receivers = receiver("chat", SLACK_URL) + receiver("pager", TWILIO_URL)
    routes = route("chat", continue_=True) + route("pager")
    summary = "checkout API error rate above 5% " * 6
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")
        slack = mock.post(SLACK_HOOK, body="ok")
        twilio = mock.post(TWILIO_API, json={})
        hub = start_hub(hub_factory, receivers, root="chat", routes=routes)
        with hub.client(headers=WRITER) as http:
            incident_id = fire(http, summary.strip())["incident_id"]
            wait_for(lambda: all(sent_once(http.get("/metrics").text) for sent_once in SENT))

    payload = json.loads(slack.calls[0].request.body)
    assert payload["channel"] == "#alerts"
    (message,) = payload["attachments"]
    assert message["title"].startswith(f"[FIRING] #{incident_id} checkout API error rate")
    assert message["color"] == "#CACF29", "a firing warning is sent as Apprise's warning type"
    assert "checkout API error rate above 5%" in message["text"]
    ack_url = ack_link_in(message["text"], hub.url)
    assert f"<{ack_url}|Acknowledge>" in message["text"]

    form = {key: values[0] for key, values in parse_qs(twilio.calls[0].request.body).items()}
    assert (form["From"], form["To"]) == ("+15551234567", "+15557654321")
    assert len(form["Body"]) <= 160
    assert form["Body"].startswith(f"WARNING #{incident_id}: checkout API error rate")
    assert form["Body"].endswith(f" Ack: {ack_link_in(form['Body'], hub.url)}")


def test_a_burst_of_fifty_alerts_within_group_wait_is_one_notification_listing_them_all(
    hub_factory, smtp
):
    """group_wait is a minute on a moved clock: a loaded machine now and then took
    longer than the 1.5 s it was to post the burst."""
    mailbox, port = smtp
    clock = MovedClock()
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)), group_wait="1m", clock=clock)
    hosts = [f"db-{i}" for i in range(50)]
    with hub.client(headers=WRITER) as http:
        started = clock()
        for batch in range(0, 50, 5):  # ten deliveries of five, as a monitor sends them
            events = [
                {
                    "status": "firing",
                    "summary": f"disk full on {host}",
                    "labels": LABELS | {"host": host},
                }
                for host in hosts[batch : batch + 5]
            ]
            assert http.post("/webhooks/shop", json=events, headers=AUTH).status_code == 202
        assert clock() - started < 60, "the burst must fit in group_wait"
        clock.advance(60)
        wait_for(lambda: mailbox.messages)
        time.sleep(0.6)  # three group intervals: room for a wrongly split second message
        assert len(deliveries(http)) == 1
    (message,) = mailbox.messages
    assert message["Subject"].startswith("[FIRING:50] #")
    html, _ = parts(message)
    assert all(f"host={host}, service=checkout" in html for host in hosts)


def test_changes_within_group_interval_are_batched_into_one_notification(hub_factory, smtp):
    mailbox, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)), group_interval="1s")
    with hub.client(headers=WRITER) as http:
        fire(http, "checkout errors", host="web-1")
        wait_for(lambda: mailbox.messages)
        fire(http, "checkout errors", host="web-2")
        fire(http, "checkout errors", host="web-3")
        wait_for(lambda: len(mailbox.messages) == 2)
        first, second = deliveries(http)
    assert mailbox.messages[0]["Subject"].startswith("[FIRING] #")
    assert mailbox.messages[1]["Subject"].startswith("[FIRING:3] #"), "both changes in one"
    assert when(second["created_at"]) - when(first["created_at"]) >= 1.0


def test_the_title_follows_the_most_severe_oldest_firing_alert(hub_factory, smtp):
    """Messages lead with the most severe firing alert: one raising the severity takes
    the title, and no message leads with an alert that has resolved while others still
    fire; once all have resolved, the resolved message names the most severe alert the
    incident had, as its pages led with."""
    mailbox, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)))
    fired = [
        ("checkout errors", "warning"),
        ("checkout slow", "warning"),
        ("checkout pods restarting", "error"),
        ("checkout 5xx", "warning"),
    ]
    steps = [
        ("checkout errors", "[FIRING:3] #{} checkout pods restarting"),
        ("checkout pods restarting", "[FIRING:2] #{} checkout slow"),
        ("checkout slow", "[FIRING] #{} checkout 5xx"),
        ("checkout 5xx", "[RESOLVED] #{} checkout pods restarting"),  # the episode's worst
    ]
    with hub.client(headers=WRITER) as http:
        ids = {
            fire(http, summary, severity=severity, host=summary)["incident_id"]
            for summary, severity in fired
        }
        (incident_id,) = ids
        # the error joining the warnings raised the incident's severity: it leads
        headline = f"[FIRING:4] #{incident_id} checkout pods restarting"
        wait_for(lambda: headline in mailbox.subjects())
        titles = []
        for summary, subject in steps:
            severity = dict(fired)[summary]
            fire(http, summary, status="resolved", severity=severity, host=summary)
            wait_for(lambda s=subject: s.format(incident_id) in mailbox.subjects())
            titles.append(http.get(f"/api/v1/incidents/{incident_id}").json()["title"])
    assert titles == [
        "checkout pods restarting",
        "checkout slow",
        "checkout 5xx",
        "checkout pods restarting",
    ]


def test_a_resolved_incident_keeps_the_title_and_severity_it_paged_with(hub_factory, smtp):
    """The critical alert and an error one resolve in one batch: the error was the
    title last, yet the incident paged as critical is resolved as critical."""
    mailbox, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)))
    alerts = [
        ("checkout latency above 2s", "warning"),
        ("checkout API error rate above 5%", "critical"),
        ("checkout 5xx on eu-3", "error"),
    ]
    with hub.client(headers=WRITER) as http:
        for summary, severity in alerts:
            incident_id = fire(http, summary, severity=severity, host=summary)["incident_id"]
        paged = f"[FIRING:3] #{incident_id} checkout API error rate above 5%"
        wait_for(lambda: paged in mailbox.subjects())
        fire(http, "checkout latency above 2s", status="resolved", host="checkout latency above 2s")
        wait_for(
            lambda: (
                f"[FIRING:2] #{incident_id} checkout API error rate above 5%"
                in (mailbox.subjects())
            )
        )
        last = [
            {"status": "resolved", "summary": summary, "labels": {**LABELS, "host": summary}}
            for summary, _ in alerts[1:]
        ]
        assert http.post("/webhooks/shop", json=last, headers=AUTH).status_code == 202
        wait_for(lambda: mailbox.subjects()[-1].startswith("[RESOLVED]"))
        incident = http.get(f"/api/v1/incidents/{incident_id}").json()
        critical = http.get("/api/v1/incidents", params={"severity": "critical"}).json()
    assert mailbox.subjects()[-1] == f"[RESOLVED] #{incident_id} checkout API error rate above 5%"
    assert "Severity: critical" in parts(mailbox.messages[-1])[1].splitlines()
    assert (incident["status"], incident["severity"]) == ("resolved", "critical")
    assert incident["title"] == "checkout API error rate above 5%"
    assert [i["id"] for i in critical] == [incident_id]


def test_an_incident_reopened_by_another_alert_takes_its_title(hub_factory, smtp):
    mailbox, port = smtp
    reopening = toml_table("[incidents]", reopen_window="1h")
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)), tables=reopening)
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "checkout down", host="web-1")["incident_id"]
        wait_for(lambda: mailbox.messages)
        fire(http, "checkout down", status="resolved", host="web-1")
        wait_for(lambda: f"[RESOLVED] #{incident_id} checkout down" in mailbox.subjects())
        assert fire(http, "checkout slow", host="web-2")["incident_id"] == incident_id
        wait_for(lambda: f"[FIRING] #{incident_id} checkout slow" in mailbox.subjects())
        assert http.get(f"/api/v1/incidents/{incident_id}").json()["title"] == "checkout slow"


def test_a_reopened_incidents_messages_leave_out_alerts_that_resolved_before_it_reopened(
    hub_factory, smtp
):
    """Episode 2 paged "1 firing, 2 resolved", listing episode 1's alerts on every
    repeat. An alert of episode 1 firing again in episode 2 is of episode 2."""
    mailbox, port = smtp
    reopening = toml_table("[incidents]", reopen_window="1h")
    hub = start_hub(
        hub_factory, receiver("ops", mail_url(port)), tables=reopening, repeat_interval="700ms"
    )

    def texts_since(count: int) -> list[str]:
        return [" ".join(parts(m)[1].split()) for m in mailbox.messages[count:]]

    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "checkout down", host="web-1")["incident_id"]
        fire(http, "checkout slow", host="web-2")
        wait_for(lambda: f"[FIRING:2] #{incident_id} checkout down" in mailbox.subjects())
        fire(http, "checkout down", status="resolved", host="web-1")
        fire(http, "checkout slow", status="resolved", host="web-2")
        wait_for(lambda: any(s.startswith("[RESOLVED]") for s in mailbox.subjects()))
        episode_one = len(mailbox.messages)
        assert fire(http, "checkout 5xx", host="web-3")["incident_id"] == incident_id
        wait_for(lambda: len(mailbox.messages) >= episode_one + 2)  # a page and its repeat
        pages = texts_since(episode_one)
        fire(http, "checkout down", host="web-1")  # back in episode 2
        fire(http, "checkout down", status="resolved", host="web-1")
        fire(http, "checkout 5xx", status="resolved", host="web-3")
        wait_for(lambda: mailbox.subjects()[-1].startswith("[RESOLVED]"))
        resolved = texts_since(len(mailbox.messages) - 1)[0]
    for text in pages[:2]:
        assert "1 firing, 0 resolved" in text
        assert "checkout 5xx" in text
        assert "checkout down" not in text and "checkout slow" not in text
    assert "checkout 5xx" in resolved and "checkout down" in resolved
    assert "checkout slow" not in resolved, "it resolved in episode 1"


def test_an_alert_joining_an_acknowledged_incident_is_told_with_who_acknowledged_it(
    hub_factory, smtp
):
    mailbox, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)))
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "checkout errors", host="web-1")["incident_id"]
        wait_for(lambda: mailbox.messages)
        assert http.post(f"/api/v1/incidents/{incident_id}/ack").status_code == 200
        assert fire(http, "checkout errors", host="web-2")["incident_id"] == incident_id
        wait_for(lambda: len(mailbox.messages) == 2)
    html, text = parts(mailbox.messages[1])
    assert mailbox.messages[1]["Subject"] == f"[FIRING:2] #{incident_id} checkout errors"
    assert re.search(r"Acknowledged by will at \d{4}-\d\d-\d\d \d\d:\d\d UTC", text), text
    assert "/ack/" not in html + text, "no link to acknowledge what already is"


@pytest.mark.parametrize(
    ("action", "told"), [("ack", []), ("resolve", ["[RESOLVED] #{} checkout down"])]
)
def test_an_unchanged_firing_incident_is_repeated_until_a_person_acks_or_resolves_it(
    hub_factory, smtp, action, told
):
    """repeat_interval is an hour on a moved clock: with 600 ms, a loaded machine now
    and then repeated it a second time before the test had acted."""
    mailbox, port = smtp
    clock = MovedClock()
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)), repeat_interval="1h", clock=clock)
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: mailbox.messages)
        clock.advance(3600)
        wait_for(lambda: len(mailbox.messages) == 2)
        first, second = deliveries(http)
        assert when(second["created_at"]) - when(first["created_at"]) >= 3600
        assert http.post(f"/api/v1/incidents/{incident_id}/{action}").status_code == 200
        wait_for(lambda: len(deliveries(http)) == 2 + len(told))
        clock.advance(2 * 3600)  # two more repeat intervals
        after_a_worker_round()
        assert len(deliveries(http)) == 2 + len(told)
    expected = [f"[FIRING] #{incident_id} checkout down"] * 2
    assert mailbox.subjects() == expected + [s.format(incident_id) for s in told]


def ops_and_dev(hub_factory, port: int):
    """A hub telling every incident to ops (who wants resolutions) and dev (who does not)."""
    receivers = receiver("ops", mail_to(port, "ops@example.com"))
    receivers += receiver("dev", mail_to(port, "dev@example.com"), send_resolved=False)
    return start_hub(hub_factory, receivers, routes=route("ops", continue_=True) + route("dev"))


def resolved_by_a_person(http, mailbox) -> int:
    """An alert fires (ops and dev are paged), a person resolves its incident while it
    still fires, and ops, which wants resolutions, is told; the incident's id."""
    incident_id = fire(http, "checkout down")["incident_id"]
    wait_for(lambda: len(mailbox.messages) == 2)
    answer = http.post(f"/api/v1/incidents/{incident_id}/resolve", json={"comment": "fixed"})
    assert answer.status_code == 200
    wait_for(lambda: len(mailbox.messages) == 3)
    return incident_id


def test_a_person_resolving_a_firing_incident_tells_its_receivers_that_want_resolutions(
    hub_factory, smtp
):
    mailbox, port = smtp
    hub = ops_and_dev(hub_factory, port)
    with hub.client(headers=WRITER) as http:
        incident_id = resolved_by_a_person(http, mailbox)
        fire(http, "checkout down", status="resolved")  # the sender catches up
        time.sleep(0.6)  # three group intervals: room for a second resolution
        log = deliveries(http, incident=incident_id)
    told = sorted((m["To"], m["Subject"]) for m in mailbox.messages)
    assert told == [
        ("dev@example.com", f"[FIRING] #{incident_id} checkout down"),
        ("ops@example.com", f"[FIRING] #{incident_id} checkout down"),
        ("ops@example.com", f"[RESOLVED] #{incident_id} checkout down"),
    ]
    assert sorted((n["receiver"], n["kind"]) for n in log) == [
        ("dev", "firing"),
        ("ops", "firing"),
        ("ops", "resolved"),
    ]


def test_send_resolved_edited_by_hand_to_text_is_read_as_sqlite_reads_it(hub_factory, smtp):
    """Only a whole number other than 0 turns a receiver's resolutions on, as in every
    other flag column: text SQLite reads as no number (``"no"``) is off, and ``"1"`` on.
    Read by Python's truth, ``"no"`` told ops of the resolution as well."""
    mailbox, port = smtp
    hub = ops_and_dev(hub_factory, port)
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: len(mailbox.messages) == 2)
        with contextlib.closing(sqlite3.connect(hub.runtime.config.storage.path)) as db, db:
            for name, value in (("ops", "no"), ("dev", "1")):
                db.execute(
                    "UPDATE incident_receivers SET send_resolved = ? WHERE receiver = ?",
                    (value, name),
                )
        fire(http, "checkout down", status="resolved")
        wait_for(lambda: len(mailbox.messages) >= 3)
        time.sleep(0.6)  # three group intervals: room for a resolution to ops
        log = deliveries(http, incident=incident_id)
    assert sorted((m["To"], m["Subject"]) for m in mailbox.messages) == [
        ("dev@example.com", f"[FIRING] #{incident_id} checkout down"),
        ("dev@example.com", f"[RESOLVED] #{incident_id} checkout down"),
        ("ops@example.com", f"[FIRING] #{incident_id} checkout down"),
    ]
    assert sorted((n["receiver"], n["kind"]) for n in log) == [
        ("dev", "firing"),
        ("dev", "resolved"),
        ("ops", "firing"),
    ]


def test_an_alert_firing_on_through_a_persons_resolve_pages_nobody_when_its_wording_changes(
    hub_factory, smtp
):
    """The incident is over for its receivers while its alerts fire on: a re-send with
    a new summary or a higher severity (a value in the text, a threshold crossed) is
    the alert's history, not a new incident paging again."""
    mailbox, port = smtp
    hub = ops_and_dev(hub_factory, port)
    with hub.client(headers=WRITER) as http:
        incident_id = resolved_by_a_person(http, mailbox)
        again = fire(http, "checkout down: 93% errors", severity="critical")
        time.sleep(0.6)  # three group intervals: room for a page
        incidents = http.get("/api/v1/incidents").json()
        alert = http.get(f"/api/v1/alerts/{again['id']}").json()
    assert again["incident_id"] == incident_id
    assert [(i["id"], i["status"]) for i in incidents] == [(incident_id, "resolved")]
    assert (alert["status"], alert["summary"], alert["severity"]) == (
        "firing",
        "checkout down: 93% errors",
        "critical",
    )
    assert len(mailbox.messages) == 3, [m["Subject"] for m in mailbox.messages]


def test_a_resolution_by_a_person_says_who_in_email_chat_and_sms_and_counts_no_firing(
    hub_factory, smtp
):
    mailbox, port = smtp
    receivers = receiver("ops", mail_url(port)) + receiver("chat", SLACK_URL)
    receivers += receiver("pager", TWILIO_URL)
    routes = route("ops", continue_=True) + route("chat", continue_=True) + route("pager")
    events = [
        {"status": "firing", "summary": "checkout down", "labels": {**LABELS, "host": host}}
        for host in ("web-1", "web-2")
    ]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")
        slack = mock.post(SLACK_HOOK, body="ok")
        twilio = mock.post(TWILIO_API, json={})
        hub = start_hub(hub_factory, receivers, routes=routes)
        with hub.client(headers=WRITER) as http:
            answer = http.post("/webhooks/shop", json=events, headers=AUTH)
            incident_id = answer.json()["alerts"][0]["incident_id"]
            wait_for(
                lambda: (len(mailbox.messages), len(slack.calls), len(twilio.calls)) == (1,) * 3
            )
            http.post(f"/api/v1/incidents/{incident_id}/resolve", json={"comment": "rolled back"})
            wait_for(
                lambda: (len(mailbox.messages), len(slack.calls), len(twilio.calls)) == (2,) * 3
            )

    subject = f"[RESOLVED] #{incident_id} checkout down"
    assert mailbox.messages[1]["Subject"] == subject
    html, text = parts(mailbox.messages[1])
    still = "2 alerts still firing at their source"
    said = r"Resolved by will at \d{4}-\d\d-\d\d \d\d:\d\d UTC; " + still
    assert re.search(said, " ".join(text.split())), text
    assert "2 firing" not in text, "the incident is over: its alerts are not counted as firing"
    assert text.splitlines().count("Status: still firing") == 2
    (message,) = json.loads(slack.calls[1].request.body)["attachments"]
    assert message["title"] == subject
    assert f"Resolved by will; {still}" in message["text"]
    assert message["text"].count("- STILL FIRING (warning) *checkout down*") == 2
    assert "2 firing" not in message["text"] and "- FIRING" not in message["text"]
    form = {key: values[0] for key, values in parse_qs(twilio.calls[1].request.body).items()}
    resolved_sms = f"RESOLVED #{incident_id}: checkout down Resolved by will, 2 still firing"
    assert form["Body"] == resolved_sms
    assert "/ack/" not in html + text + message["text"] + form["Body"]


def test_continue_tells_two_receivers_and_only_the_one_wanting_resolutions_hears_of_them(
    hub_factory, smtp
):
    mailbox, port = smtp
    hub = ops_and_dev(hub_factory, port)
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: len(mailbox.messages) == 2)
        fire(http, "checkout down", status="resolved")
        wait_for(lambda: len(mailbox.messages) == 3)
        time.sleep(0.4)  # two group intervals: room for a wrong resolution to dev
        log = deliveries(http, incident=incident_id)
    told = sorted((m["To"], m["Subject"].split("]")[0]) for m in mailbox.messages)
    assert told == [
        ("dev@example.com", "[FIRING"),
        ("ops@example.com", "[FIRING"),
        ("ops@example.com", "[RESOLVED"),
    ]
    assert sorted((n["receiver"], n["kind"]) for n in log) == [
        ("dev", "firing"),
        ("ops", "firing"),
        ("ops", "resolved"),
    ]


def test_a_receiver_without_send_resolved_gets_the_shorter_list_of_firing_alerts(hub_factory, smtp):
    """One of two alerts resolves: ops (send_resolved) hears of the resolution, dev is
    told only what still fires, with nothing about the resolved alert."""
    mailbox, port = smtp
    hub = ops_and_dev(hub_factory, port)
    events = [
        {"status": "firing", "summary": summary, "labels": {**LABELS, "host": summary}}
        for summary in ("q1 failing", "q2 failing")
    ]
    with hub.client(headers=WRITER) as http:
        answer = http.post("/webhooks/shop", json=events, headers=AUTH)
        incident_id = answer.json()["alerts"][0]["incident_id"]
        wait_for(lambda: len(mailbox.messages) == 2)
        fire(http, "q1 failing", status="resolved", host="q1 failing")
        wait_for(lambda: len(mailbox.messages) == 4)
    by_address = {m["To"]: m for m in mailbox.messages[2:]}
    assert by_address["ops@example.com"]["Subject"] == f"[FIRING] #{incident_id} q2 failing"
    ops_text = parts(by_address["ops@example.com"])[1]
    assert "1 firing, 1 resolved" in " ".join(ops_text.split())
    dev = by_address["dev@example.com"]
    assert dev["Subject"] == f"[FIRING] #{incident_id} q2 failing"
    html, text = parts(dev)
    assert "1 firing, 0 resolved" in " ".join(text.split())
    assert "q2 failing" in text
    assert "q1 failing" not in html + text


def test_a_receiver_with_its_own_title_and_body_templates_gets_them(hub_factory, smtp):
    mailbox, port = smtp
    title = "{{ severity | upper }} on {{ common_labels.service }}: {{ title }}"
    body = '{% include "footer" %} for {{ receiver }}: {{ firing_count }} firing, {{ ack_url }}'
    receivers = receiver("ops", mail_to(port, "ops@example.com"), title=title, body=body)
    receivers += receiver("dev", mail_to(port, "dev@example.com"))
    routes = route("ops", continue_=True) + route("dev")
    tables = '[templates]\nfooter = "<p>Sent by <b>hub</b></p>"\n'
    hub = start_hub(hub_factory, receivers, routes=routes, tables=tables)
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "checkout <slow>")["incident_id"]
        wait_for(lambda: len(mailbox.messages) == 2)
    by_address = {m["To"]: m for m in mailbox.messages}
    own = by_address["ops@example.com"]
    assert own["Subject"] == "WARNING on checkout: checkout <slow>"
    html, text = parts(own)
    assert html.startswith("<p>Sent by <b>hub</b></p> for ops: 1 firing, http://127.0.0.1:")
    assert "Sent by hub for ops: 1 firing" in " ".join(text.split())
    assert by_address["dev@example.com"]["Subject"] == f"[FIRING] #{incident_id} checkout <slow>"


def test_event_latency_counts_from_the_change_through_group_wait_and_not_for_repeats(
    hub_factory, smtp
):
    """hub_notification_event_latency_seconds starts when hub received the change, so
    it includes group_wait (the queued-to-sent latency does not); a repeat reports no
    change and is not counted; a resolution counts from its own receipt. group_wait and
    repeat_interval are a minute and an hour on a moved clock: at 1 s and 1.5 s, what
    a loaded machine took to post or send was of their size, and bounds that told them
    apart by half a second failed now and then."""
    mailbox, port = smtp
    clock = MovedClock()
    hub = start_hub(
        hub_factory,
        receiver("ops", mail_url(port)),
        group_wait="1m",
        repeat_interval="1h",
        clock=clock,
    )

    def event_latency(http) -> tuple[float | None, float | None]:
        text = http.get("/metrics").text
        series = "hub_notification_event_latency_seconds"
        return metric(text, f"{series}_count", receiver="ops"), metric(
            text, f"{series}_sum", receiver="ops"
        )

    with hub.client(headers=WRITER) as http:
        fired = clock()
        fire(http, "checkout down")
        received = (fired, clock())
        clock.advance(60)  # group_wait ends
        wait_for(lambda: [n for n in deliveries(http) if n["state"] == "sent"])
        clock.advance(3600)  # a repeat is due, once the first message is counted as sent
        wait_for(lambda: len(mailbox.messages) == 2)
        first, repeat = deliveries(http)[:2]
        count, total = event_latency(http)
        queued = metric(http.get("/metrics").text, "hub_notification_delivery_seconds_sum")
        resolving = clock()
        fire(http, "checkout down", status="resolved")
        resolved = (resolving, clock())
        wait_for(lambda: any(s.startswith("[RESOLVED]") for s in mailbox.subjects()))
        resolution = next(n for n in deliveries(http) if n["kind"] == "resolved")
        wait_for(lambda: event_latency(http)[0] == 2.0)
    assert received[0] <= when(first["changed_at"]) <= received[1]
    assert when(first["created_at"]) - when(first["changed_at"]) >= 60, "group_wait"
    assert repeat["changed_at"] is None
    assert count == 1.0
    assert 60 <= total < 60 + WAIT_SECONDS
    assert queued < 60, "queued-to-sent leaves group_wait out"
    assert resolved[0] <= when(resolution["changed_at"]) <= resolved[1]


def test_the_message_after_a_silence_ends_counts_its_latency_from_then_not_from_the_firing(
    hub_factory, smtp
):
    """The alert fired under a silence: people are told once it ends, late because of
    the silence, which is no latency of hub's. The message reports a change, counted
    in hub_notification_event_latency_seconds from the look that found the silence
    over."""
    mailbox, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)), group_interval="200ms")
    silence = {"matchers": ['service="checkout"'], "duration": "1500ms", "comment": "deploy"}
    with hub.client(headers=WRITER) as http:
        created = http.post("/api/v1/silences", json=silence)
        assert created.status_code == 201, created.text
        fire(http, "checkout down")
        (note,) = wait_for(lambda: [n for n in deliveries(http) if n["state"] == "sent"])
        series = "hub_notification_event_latency_seconds_count"
        wait_for(lambda: metric(http.get("/metrics").text, series, receiver="ops") == 1.0)
    assert len(mailbox.messages) == 1
    assert note["changed_at"] is not None
    assert when(note["changed_at"]) >= when(created.json()["ends_at"])


def test_an_alert_firing_again_says_since_when_it_fires_now_and_a_resolved_one_when_it_ended(
    hub_factory, smtp
):
    """In email and in chat: a chat message said what fired but never since when, nor
    when a resolved alert ended."""
    mailbox, port = smtp
    receivers = receiver("ops", mail_url(port)) + receiver("chat", SLACK_URL)
    routes = route("ops", continue_=True) + route("chat")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    first, ended = now - timedelta(hours=3), now - timedelta(hours=2)
    again = now - timedelta(minutes=5)

    def post(status: str, at: datetime) -> dict:
        event = {"status": status, "summary": "disk full", "labels": LABELS, "dedup_key": "disk"}
        answer = hub.client().post(
            "/webhooks/shop", json={**event, "occurred_at": at.isoformat()}, headers=AUTH
        )
        assert answer.status_code == 202, answer.text
        return answer.json()["alerts"][0]

    def told(count: int) -> bool:
        return (len(mailbox.messages), len(slack.calls)) == (count, count)

    def shown(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%d %H:%M UTC")

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")
        slack = mock.post(SLACK_HOOK, body="ok")
        hub = start_hub(hub_factory, receivers, routes=routes, group_interval="1s")
        post("firing", first)
        wait_for(lambda: told(1))
        post("resolved", ended)
        wait_for(lambda: told(2))
        alert = post("firing", again)
        wait_for(lambda: told(3))
    fired, resolved, refired = (parts(message)[1].splitlines() for message in mailbox.messages)
    assert f"Started: {shown(first)}" in fired
    assert not any(line.startswith("Ended:") for line in fired + refired)
    assert f"Started: {shown(first)}" in resolved
    assert f"Ended: {shown(ended)}" in resolved
    assert f"Started: {shown(again)}" in refired, "the new firing's start, not the first"
    chat = [json.loads(call.request.body)["attachments"][0]["text"] for call in slack.calls]
    assert f"`service=checkout` · since {shown(first)}" in chat[0]
    assert f"`service=checkout` · {shown(first)} to {shown(ended)}" in chat[1]
    assert f"· since {shown(again)}" in chat[2]
    with hub.client(headers=WRITER) as http:
        stored = http.get(f"/api/v1/alerts/{alert['id']}").json()
    assert stored["fired_at"] == again.isoformat().replace("+00:00", "Z")
    assert stored["first_seen"] != stored["fired_at"]


def test_a_message_about_a_large_incident_lists_its_first_alerts_and_counts_them_all(
    hub_factory, smtp
):
    """Every message about an incident once carried all its alerts (6.8 MB for one of
    20,000): a message lists at most 100, the firing and most severe first, in the order
    hub knows them, and its counts and common labels still cover every alert."""
    mailbox, port = smtp
    receivers = receiver("ops", mail_url(port)) + receiver("hook", "json://consumer.example/h")
    critical = {10, 70, 140}
    events = [
        {
            "status": "firing",
            "summary": f"disk full on h{n}",
            "severity": "critical" if n in critical else "warning",
            "labels": {"service": "checkout", "host": f"h{n}", "zone": "us" if n == 149 else "eu"},
        }
        for n in range(150)
    ]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")
        hook = mock.post("http://consumer.example/h")
        routes = route("hook", continue_=True) + route("ops")
        hub = start_hub(hub_factory, receivers, routes=routes)
        with hub.client(headers=WRITER) as http:
            answer = http.post("/webhooks/shop", json=events, headers=AUTH)
            assert answer.status_code == 202, answer.text
            wait_for(lambda: hook.calls and mailbox.messages)

    context = json.loads(json.loads(hook.calls[0].request.body)["message"])
    listed = [alert["labels"]["host"] for alert in context["alerts"]]
    # the three critical ones, then the warnings hub has known longest
    assert listed == [f"h{n}" for n in range(99)] + ["h140"]
    assert (context["firing_count"], context["resolved_count"]) == (150, 0)
    assert context["truncated_alerts"] == 50
    assert context["common_labels"] == {"service": "checkout"}, "h149's zone is not eu"
    (message,) = mailbox.messages
    assert message["Subject"].startswith("[FIRING:150] ")
    html, _ = parts(message)
    assert html.count("<li") == 100
    assert "... and 50 more alerts" in html
