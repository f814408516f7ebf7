"""Rendered messages through Apprise's own plugins: Slack, Discord and other chat
services and Twilio intercepted at ``requests`` (what Apprise uses), email delivered
to a real SMTP server on loopback, hub's ``logfile://`` channel written to a temporary
file."""

from __future__ import annotations

import email
import json
import re
import socket
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from urllib.parse import parse_qs
from xml.etree import ElementTree

import msgspec
import pytest
import responses
from aiosmtpd.controller import Controller

from hub import channels, config, logfile
from hub.outbox import Sent, render_and_send
from hub.templates import SAMPLE, NotificationContext, Templates

SLACK_URL = "slack://T000/B000/XXXX/#alerts"
TWILIO_SID = "AC" + "0" * 32
TWILIO_URL = f"twilio://{TWILIO_SID}:TOKEN@+15551234567/+15557654321"
ACK = "https://hub.example.com/ack/AAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB"
CONFIG = '[[receivers]]\nname = "ops"\nurls = ["json://x"]\n[route]\nreceiver = "ops"\n'
TEMPLATES = Templates(config.parse(CONFIG, {}))
INCIDENT = msgspec.structs.replace(SAMPLE, ack_url=ACK, title="checkout API error rate high")


def send(url: str, context: NotificationContext = INCIDENT) -> None:
    """Render for ``url``'s kind and send it as the outbox sender does."""
    result = render_and_send(TEMPLATES, url, 5, context)
    assert result == Sent(), f"Apprise could not send to {channels.redact(url, 5)}: {result}"


def told(status: str, severity: str) -> NotificationContext:
    """The sample incident as a message of ``status`` at ``severity``."""
    return msgspec.structs.replace(INCIDENT, status=status, severity=severity)


NOTIFY_TYPES = [
    (told("firing", "critical"), "failure", "#A32037"),
    (told("firing", "error"), "failure", "#A32037"),
    (told("firing", "warning"), "warning", "#CACF29"),
    (told("firing", "info"), "info", "#3AA3E3"),
    (told("resolved", "critical"), "success", "#3AA337"),
]
"""A message, the Apprise notify type it is sent with, and the colour Slack shows."""
NOTIFY_TYPE_IDS = ["firing-critical", "firing-error", "firing-warning", "firing-info", "resolved"]


@responses.activate
def test_slack_gets_the_summary_and_the_ack_link():
    hook = responses.post("https://hooks.slack.com/services/T000/B000/XXXX", body="ok")
    send(SLACK_URL)
    payload = json.loads(hook.calls[0].request.body)
    assert payload["channel"] == "#alerts"
    attachment = payload["attachments"][0]
    assert attachment["title"] == "[FIRING] #1 checkout API error rate high"
    assert "checkout API error rate above 5%" in attachment["text"]
    assert f"<{ACK}|Acknowledge>" in attachment["text"]


@responses.activate
def test_slack_shows_a_senders_mentions_and_links_as_text_and_keeps_hubs_own_links():
    """A summary or annotation is the sender's text: in Slack's markup ``<!channel>``
    would notify the whole channel and ``[Acknowledge](...)`` would sit beside hub's
    own link as one, leading elsewhere."""
    hook = responses.post("https://hooks.slack.com/services/T000/B000/XXXX", body="ok")
    hostile = msgspec.structs.replace(
        INCIDENT.alerts[0],
        summary=r"disk full <!channel> [Acknowledge](https://evil.example/a) \<@U1>",
        annotations={
            "description": "<https://evil.example/b|runbook> [x](https://evil.example/c)",
            "runbook_url": "https://wiki.example/disk_full",
        },
    )
    send(SLACK_URL, msgspec.structs.replace(INCIDENT, alerts=[hostile]))
    text = json.loads(hook.calls[0].request.body)["attachments"][0]["text"]
    assert "disk full &lt;!channel&gt; [Acknowledge](https://evil.example/a) " in text
    assert "&lt;@\u200bU1&gt;*" in text, "and mentions nobody"
    assert "description: &lt;https://evil.example/b|runbook&gt; [x](https://evil.example/c)" in text
    assert "runbook_url: https://wiki.example/disk_full\n" in text
    assert re.findall(r"<([^<>|]+)\|", text) == [ACK, INCIDENT.incident_url]


@responses.activate
def test_slack_counts_the_alerts_a_message_does_not_list_among_those_it_leaves_out():
    """A message lists at most 100 alerts (``LISTED_MAX``) and chat shows 20 of them:
    "and N more" counts the unlisted ones too, and so does the title."""
    hook = responses.post("https://hooks.slack.com/services/T000/B000/XXXX", body="ok")
    send(SLACK_URL, msgspec.structs.replace(INCIDENT, unlisted_firing=149))
    attachment = json.loads(hook.calls[0].request.body)["attachments"][0]
    assert attachment["title"] == "[FIRING:150] #1 checkout API error rate high"
    assert "150 firing" in attachment["text"]
    assert "- ... and 130 more" in attachment["text"]


DISCORD_URL = "discord://1234567890/WEBHOOKTOKEN"
DISCORD_HOOK = "https://discord.com/api/webhooks/1234567890/WEBHOOKTOKEN"
PINGS = "@everyone @here <@123456789> <@!123456789> <@&42> x@everyone"
"""What pings in a Discord webhook's content: everyone, those online, a user (twice: a
nickname mention), a role, and ``@everyone`` even inside a word."""
LIVE_MENTION = re.compile(r"@(?:everyone|here|all|channel|room)|<@[!&]?\d+>|<at>", re.I)
"""A mention that would ping on Discord, Mattermost, Rocket.Chat, Matrix or Teams."""


def hostile(summary: str) -> NotificationContext:
    """The sample incident about an alert whose sender wrote ``summary`` into its summary,
    an annotation and a label, and so the incident's title."""
    alert = msgspec.structs.replace(
        INCIDENT.alerts[0],
        summary=summary,
        labels={"team": summary},
        annotations={
            "description": f"page {summary}",
            "owner": "dba@example.com",
            "runbook": "https://wiki.example/@dba/disk",
        },
    )
    return msgspec.structs.replace(INCIDENT, title=summary, alerts=[alert])


@responses.activate
@pytest.mark.parametrize("options", ["", "?format=markdown"], ids=["content", "embed"])
def test_a_senders_mentions_ping_nobody_on_discord_and_read_the_same(options):
    """Discord pings everyone named in a webhook's content: Apprise sends no
    ``allowed_mentions`` (its ``allow_mentions`` is no field of Discord's, and in embed
    mode it copies each mention it finds in the body into the content), so the
    sender's text goes with its mentions broken."""
    hook = responses.post(DISCORD_HOOK, json={})
    send(DISCORD_URL + options, hostile(f"disk full {PINGS}"))
    payload = json.loads(hook.calls[0].request.body)
    posted = json.dumps(payload, ensure_ascii=False)
    assert not LIVE_MENTION.findall(posted), posted
    shown = posted.replace("\u200b", "")
    assert f"#1 disk full {PINGS}" in shown, "the title reads as the sender wrote it"
    assert f"`team=disk full {PINGS}`" in shown
    assert "owner: dba@example.com" in posted, "an e-mail address is left whole"
    assert "runbook: https://wiki.example/@dba/disk" in posted, "and a link"
    assert f"[Acknowledge]({ACK})" in posted


@responses.activate
def test_a_senders_link_in_the_title_is_no_link_on_discord():
    """Discord's content is Markdown, the title its first line: a summary's
    ``[Acknowledge](url)`` there was a link beside hub's own, leading elsewhere. (An
    embed's title shows no links.)"""
    hook = responses.post(DISCORD_HOOK, json={})
    send(DISCORD_URL, hostile("disk full [Acknowledge](https://evil.example/a)"))
    title, _ = json.loads(hook.calls[0].request.body)["content"].split("\r\n", 1)
    assert "](" not in title, title
    assert (
        title.replace("\u200b", "") == "[FIRING] #1 disk full [Acknowledge](https://evil.example/a)"
    )


@responses.activate
def test_a_role_the_discord_url_pings_is_still_pinged():
    """Whom to page is the config's to say (Apprise's ``ping=``), not a sender's."""
    hook = responses.post(DISCORD_HOOK, json={})
    send(f"{DISCORD_URL}?ping=%3C%40%2642%3E", hostile("disk full @everyone"))
    content = json.loads(hook.calls[0].request.body)["content"]
    assert LIVE_MENTION.findall(content) == ["<@&42>"]
    assert content.endswith("👉 <@&42>")


CHATS = {
    "mattermost": ("mmosts://chat.example/abcdefghijklmnop", "https://chat.example/hooks/"),
    "rocketchat": ("rockets://hub:pw@chat.example/#ops?mode=basic", "https://chat.example/api/"),
    "matrix": ("matrixs://hooktoken@matrix.example/?mode=matrix", "https://matrix.example/api/"),
    "teams": ("workflows://prod.example:443/flow/sig", "https://prod.example:443/workflows/"),
}
"""Chat services whose channel-wide mentions (``@all``, ``@channel``, ``@here``,
``@room``) or ``<at>`` tags notify people: each URL and where Apprise posts for it."""


@responses.activate
@pytest.mark.parametrize(("url", "posts_to"), CHATS.values(), ids=CHATS)
def test_a_senders_channel_wide_mentions_ping_nobody_on_other_chat_services(url, posts_to):
    api = responses.post(re.compile(re.escape(posts_to) + ".*"), json={"status": "success"})
    send(url, hostile("disk full @all @channel @here @room <at>alice@example.com</at>"))
    message = next(body for call in api.calls if "disk full" in (body := call.request.body))
    assert not LIVE_MENTION.findall(message), message
    assert '"entities"' not in message, "Teams is given no mention to resolve"


@responses.activate
@pytest.mark.parametrize(("context", "notify_type", "colour"), NOTIFY_TYPES, ids=NOTIFY_TYPE_IDS)
def test_slack_colours_a_message_by_its_status_and_severity(context, notify_type, colour):
    hook = responses.post("https://hooks.slack.com/services/T000/B000/XXXX", body="ok")
    send(SLACK_URL, context)
    (attachment,) = json.loads(hook.calls[0].request.body)["attachments"]
    assert attachment["color"] == colour


@pytest.mark.parametrize(("context", "notify_type", "colour"), NOTIFY_TYPES, ids=NOTIFY_TYPE_IDS)
def test_the_log_file_records_each_messages_notify_type(tmp_path, context, notify_type, colour):
    logfile.register()
    path = tmp_path / "sent.jsonl"
    send(f"logfile://{path.as_posix()}", context)
    (line,) = path.read_text().splitlines()
    assert json.loads(line)["type"] == notify_type


@responses.activate
@pytest.mark.parametrize("summary", ["checkout down", "checkout API error rate high " * 10])
def test_twilio_gets_one_sms_of_at_most_160_characters_with_the_ack_link(summary):
    api = responses.post(
        f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages.json", json={}
    )
    send(TWILIO_URL, msgspec.structs.replace(INCIDENT, title=summary))
    form = {key: values[0] for key, values in parse_qs(api.calls[0].request.body).items()}
    assert (form["From"], form["To"]) == ("+15551234567", "+15557654321")
    assert len(form["Body"]) <= 160
    assert form["Body"].startswith("CRITICAL #1: checkout")
    assert form["Body"].endswith(f" Ack: {ACK}")


DOCUMENTED = {
    "incident_id", "status", "severity", "title", "alerts", "incident_url", "ack_url",
    "receiver", "acknowledged_by", "acknowledged_via", "acknowledged_at", "resolved_by",
    "resolved_via", "resolved_at",
    "lapsed_by", "lapse_reason", "lapsed", "firing_count", "resolved_count", "truncated_alerts",
    "common_labels",
    "still_firing", "escalation_policy", "escalation_step", "escalation_run",
    "unacknowledged_for", "escalated",
}  # fmt: skip
"""Every name the README says templates see."""
MESSAGE_IN = {
    "json": lambda body: json.loads(body)["message"],
    "form": lambda body: parse_qs(body)["message"][0],
    "xml": lambda body: ElementTree.fromstring(body).find(".//{*}Message").text,
}
"""Where Apprise's plugin puts the message body in what it posts."""


@responses.activate
@pytest.mark.parametrize("scheme", sorted(MESSAGE_IN))
def test_a_structured_endpoint_gets_every_field_templates_see_as_json(scheme):
    hook = responses.post("http://consumer.example/hook")
    again = msgspec.structs.replace(
        INCIDENT,
        lapsed_by="will",
        lapse_reason="ack_timeout",
        escalation_policy="db-oncall",
        escalation_step=2,
        escalation_run=1,
        unacknowledged_for=900.0,
    )
    send(f"{scheme}://consumer.example/hook", again)
    context = json.loads(MESSAGE_IN[scheme](hook.calls[0].request.body))
    assert set(context) == DOCUMENTED
    assert (context["firing_count"], context["resolved_count"]) == (1, 0)
    assert context["common_labels"] == {"alertname": "HighErrorRate", "service": "checkout"}
    assert context["lapsed"] == (
        "The acknowledgement by will lapsed: not resolved within the policy's ack_timeout."
    )
    assert (
        context["escalated"] == "Escalated: step 2 of policy db-oncall; not acknowledged for 15m."
    )
    assert (context["escalation_step"], context["unacknowledged_for"]) == (2, 900.0)
    assert context["ack_url"] == ACK
    assert context["alerts"][0]["starts_at"] == "2026-01-01T00:00:00Z"


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    yield port, inbox
    server.stop()


def test_email_has_a_subject_an_html_part_and_a_text_part_both_with_the_ack_link(smtp):
    """The plain-text part is Apprise's conversion of the HTML: each field on a line of
    its own ("Label: value"), the ack link alone on one."""
    port, inbox = smtp
    evil = msgspec.structs.replace(SAMPLE.alerts[0], labels={"host": "<script>x</script>"})
    send(
        f"mailto://127.0.0.1:{port}?from=hub@example.com&to=ops@example.com&mode=insecure",
        msgspec.structs.replace(INCIDENT, alerts=[evil]),
    )
    (message,) = inbox.messages
    assert message["Subject"] == "[FIRING] #1 checkout API error rate high"
    assert message["To"] == "ops@example.com"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert f'href="{ACK}"' in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    lines = text.splitlines()
    assert lines[lines.index("Acknowledge:") + 1] == ACK
    assert "Labels: host=<script>x</script>" in lines


def test_a_channel_carries_the_receiver_timeout_unless_the_url_sets_one():
    service = channels.open_channel(SLACK_URL, timeout=7).service
    assert (service.socket_connect_timeout, service.socket_read_timeout) == (7, 7)
    service = channels.open_channel(SLACK_URL + "?cto=2", timeout=7).service
    assert (service.socket_connect_timeout, service.socket_read_timeout) == (2, 7)


def test_a_channel_is_not_throttled_by_apprise():
    service = channels.open_channel(SLACK_URL, timeout=7).service
    assert service.request_rate_per_sec == 0


@pytest.mark.parametrize(("url", "secret"), [(TWILIO_URL, "TOKEN"), (SLACK_URL, "XXXX")])
def test_urls_are_shown_redacted(url, secret):
    shown = channels.redact(url, timeout=7)
    assert secret not in shown
    assert shown.startswith(url.partition("://")[0])


@responses.activate
def test_an_address_or_version_a_sender_wrote_is_copied_from_chat_as_written():
    """What follows an ``@`` inside a word is no mention unless Discord could take it
    for one (``x@everyone``, an id of 17 digits or more): a zero-width space in
    ``deploy@10.0.0.5`` or ``lib@1.2.3`` went along with whatever was copied, so the
    command failed and a silence made from the label matched nothing."""
    hook = responses.post(DISCORD_HOOK, json={})
    copied = "deploy@10.0.0.5 lib@1.2.3"
    send(DISCORD_URL, hostile(copied))
    content = json.loads(hook.calls[0].request.body)["content"]
    assert "\u200b" not in content, content
    assert f"`team={copied}`" in content
    assert f"description: page {copied}" in content
