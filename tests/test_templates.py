from __future__ import annotations

import re
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape

from hub import channels, config, templates
from hub.errors import ConfigError
from hub.templates import SAMPLE, Templates

ROUTE = '[route]\nreceiver = "ops"\n'


def parsed(receivers: str = '[[receivers]]\nname = "ops"\nurls = ["json://x"]\n', extra=""):
    return config.parse(receivers + extra + ROUTE, {})


def context(**changes) -> templates.NotificationContext:
    return msgspec.structs.replace(SAMPLE, **changes)


def alert(**changes) -> templates.AlertContext:
    return msgspec.structs.replace(SAMPLE.alerts[0], **changes)


def listed_statuses(email: str) -> list[str]:
    """The status each alert of an email's list says (its first field, after its summary)."""
    return re.findall(r"<li[^>]*><b>[^<]*</b><br><b>Status:</b> ([^<]+)<br>", email)


LONG = "checkout API error rate above 5% on every node of the eu-west cluster " * 5
ACK = "https://hub.example.com/ack/AAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB"


@pytest.mark.parametrize("summary", ["short", LONG, "x" * 159, "word " * 80])
@pytest.mark.parametrize("limit", [160, 140])
def test_an_sms_fits_its_limit_and_keeps_the_whole_ack_link(summary, limit):
    message = Templates(parsed()).render(context(title=summary, ack_url=ACK), "sms", limit)
    assert len(message.body) <= limit
    assert message.body.endswith(f" Ack: {ACK}")
    assert message.title == ""


def test_an_sms_cuts_the_summary_with_ascii_dots():
    body = templates.sms(context(title=LONG, ack_url=ACK))
    assert body.startswith("CRITICAL #1: checkout API err")
    assert "..." in body
    assert body.isascii()


def test_a_resolved_sms_says_so_without_an_ack_link():
    resolved = context(status="resolved", alerts=[alert(status="resolved")])
    assert templates.sms(resolved) == "RESOLVED #1: checkout API error rate above 5%"


def test_an_sms_counts_firing_alerts():
    many = context(alerts=[alert(fingerprint=str(i)) for i in range(3)])
    assert templates.sms(many).startswith("CRITICAL #1 x3: ")


def test_email_escapes_html_in_label_values_and_summaries():
    evil = alert(summary="<img src=x onerror=alert(1)>", labels={"host": "<script>x</script>"})
    body = Templates(parsed()).render(context(alerts=[evil]), "email").body
    assert "<script>" not in body
    assert "<img" not in body
    assert "&lt;script&gt;x&lt;/script&gt;" in body


def test_email_shows_links_as_visible_text_for_the_plain_text_part():
    body = Templates(parsed()).render(context(), "email").body
    ack, incident = SAMPLE.ack_url, SAMPLE.incident_url
    assert f'<b>Acknowledge:</b><br><a href="{ack}">{ack}</a>' in body
    assert f'<b>Open incident:</b><br><a href="{incident}">{incident}</a>' in body


def test_chat_lists_each_alerts_annotations_except_the_one_that_is_its_summary():
    """A paged person needs the runbook and the description in the message itself."""
    annotated = alert(
        summary="disk full",
        annotations={
            "summary": "disk full",
            "description": "d" * 600,
            "runbook_url": "https://wiki.example/disk",
        },
    )
    body = Templates(parsed()).render(context(alerts=[annotated]), "chat").body
    assert "- FIRING (critical) **disk full**" in body
    assert "\n  - runbook_url: https://wiki.example/disk\n" in body
    assert "\n  - description: " + "d" * 497 + "...\n" in body
    assert "summary: disk full" not in body


def test_chat_is_markdown_with_each_alert_and_the_links():
    rendered = Templates(parsed()).render(context(), "chat")
    assert rendered.body_format == "markdown"
    assert rendered.title == "[FIRING] #1 checkout API error rate above 5%"
    assert (
        "- FIRING (critical) **checkout API error rate above 5%** `alertname=HighErrorRate`"
        in rendered.body
    )
    assert f"[Acknowledge]({SAMPLE.ack_url})" in rendered.body


def test_chat_gives_each_alerts_own_severity():
    """An incident's severity is its most severe alert's: the others say their own."""
    mixed = [alert(summary="5xx", severity="critical"), alert(summary="slow", severity="warning")]
    body = Templates(parsed()).render(context(alerts=mixed), "chat").body
    assert "- FIRING (critical) **5xx**" in body
    assert "- FIRING (warning) **slow**" in body


@pytest.mark.parametrize("kind", ["chat", "email"])
def test_a_name_that_is_none_prints_nothing_in_a_receivers_own_template(kind):
    """``acknowledged_by`` outside an ``if`` printed "None" on every fresh page."""
    body = "taken by {{ acknowledged_by }}, resolved at {{ resolved_at }}."
    rendered = Templates(parsed(own("body", body))).render(context(receiver="ops"), kind)
    assert rendered.body == "taken by , resolved at ."


@pytest.mark.parametrize(
    ("firing", "said"),
    [(1, "1 alert still firing at its source"), (3, "3 alerts still firing at their source")],
)
def test_a_resolution_by_a_person_says_how_many_alerts_still_fire_and_counts_none_firing(
    firing, said
):
    resolved = context(
        status="resolved",
        ack_url="",
        alerts=[alert(fingerprint=str(i)) for i in range(firing)],
        resolved_by="bob",
        resolved_at=datetime(2026, 1, 1, 12, tzinfo=UTC),
    )
    rendered = Templates(parsed())
    chat, email = (rendered.render(resolved, kind).body for kind in ("chat", "email"))
    assert chat.startswith("**CRITICAL** · incident #1 · resolved\n")
    assert chat.count("- STILL FIRING (critical) **") == firing
    assert f"Resolved by bob; {said} · [Open incident #1]" in chat
    assert "<b>Status:</b> resolved<br><b>Severity:</b> critical</p>" in email
    assert f"<p>Resolved by bob at 2026-01-01 12:00 UTC; {said}</p>" in email
    assert listed_statuses(email) == ["still firing"] * firing
    assert "firing," not in chat + email
    assert templates.sms(resolved).endswith(f" Resolved by bob, {firing} still firing")


def test_a_resolution_by_its_alerts_lists_them_resolved_and_says_nothing_still_fires():
    resolved = context(status="resolved", ack_url="", alerts=[alert(status="resolved")])
    rendered = Templates(parsed())
    chat, email = (rendered.render(resolved, kind).body for kind in ("chat", "email"))
    assert "- RESOLVED (critical) **" in chat
    assert listed_statuses(email) == ["resolved"]
    assert "still firing" not in chat + email


def test_a_resolved_message_offers_no_ack_link():
    resolved = context(status="resolved", alerts=[alert(status="resolved")])
    for kind in ("chat", "email"):
        assert SAMPLE.ack_url not in Templates(parsed()).render(resolved, kind).body


ACKED = {"acknowledged_by": "will", "acknowledged_at": datetime(2026, 1, 1, 0, 5, tzinfo=UTC)}


VOUCHED = pytest.mark.parametrize(
    ("via", "who"), [(None, "will"), ("chatbot", "will via chatbot")], ids=["self", "via"]
)
"""Acknowledged by will, or by will through a token that speaks for others."""


@VOUCHED
def test_chat_about_an_acknowledged_incident_says_who_took_it_instead_of_offering_the_link(
    via, who
):
    body = Templates(parsed()).render(context(**ACKED, acknowledged_via=via), "chat").body
    assert body.endswith(
        f"Acknowledged by {who} · [Open incident #1](https://hub.example/incidents/1)"
    )
    assert SAMPLE.ack_url not in body


@VOUCHED
def test_email_about_an_acknowledged_incident_says_who_took_it_and_when_without_the_link(via, who):
    body = Templates(parsed()).render(context(**ACKED, acknowledged_via=via), "email").body
    assert f"<p>Acknowledged by {who} at 2026-01-01 00:05 UTC</p>" in body
    assert SAMPLE.ack_url not in body and "Acknowledge:" not in body


@pytest.mark.parametrize("summary", ["short", LONG])
def test_an_sms_about_an_acknowledged_incident_names_who_took_it_instead_of_the_link(summary):
    body = templates.sms(context(title=summary, ack_url=ACK, **ACKED))
    assert len(body) <= 160
    assert body.endswith(" Acknowledged by will")
    assert ACK not in body


@VOUCHED
def test_an_sms_names_who_acknowledged_or_resolved_with_the_token_that_spoke_for_them(via, who):
    acked = templates.sms(context(**ACKED, acknowledged_via=via))
    resolved = templates.sms(
        context(status="resolved", ack_url="", resolved_by="will", resolved_via=via)
    )
    assert acked == f"CRITICAL #1: checkout API error rate above 5% Acknowledged by {who}"
    assert (
        resolved
        == f"RESOLVED #1: checkout API error rate above 5% Resolved by {who}, 1 still firing"
    )


def test_an_sms_cuts_long_names_of_whoever_acted_and_their_token_never_the_summary_away():
    long = {"acknowledged_by": "x" * 300, "acknowledged_via": "y" * 300}
    body = templates.sms(context(title=LONG, acknowledged_at=ACKED["acknowledged_at"], **long))
    assert len(body) <= 160
    assert re.fullmatch(
        r"CRITICAL #1: checkout API .+\.\.\. Acknowledged by x+\.\.\. via y+\.\.\.", body
    )


def test_an_sms_cuts_a_long_acknowledger_name_never_the_summary_away():
    body = templates.sms(
        context(acknowledged_by="x" * 300, acknowledged_at=ACKED["acknowledged_at"])
    )
    assert len(body) <= 160
    assert body.startswith("CRITICAL #1: checkout API error rate above 5% Acknowledged by xxx")


@pytest.mark.parametrize(
    ("reason", "said", "short"),
    [
        ("snooze", "the snooze ended", "snooze ended"),
        ("ack_timeout", "not resolved within the policy's ack_timeout", "timed out"),
    ],
)
def test_a_page_sent_again_after_an_ack_lapsed_says_whose_and_why_on_every_channel(
    reason, said, short
):
    again = context(ack_url=ACK, lapsed_by="will", lapse_reason=reason)
    rendered = Templates(parsed())
    sentence = f"The acknowledgement by will lapsed: {said}."
    for kind, shown in (("chat", sentence), ("email", f"<p>{escape(sentence)}</p>")):
        body = rendered.render(again, kind).body
        assert shown in body
        assert ACK in body, "with the link to take it again"
    body = templates.sms(again)
    assert body.endswith(f" Ack by will lapsed ({short}). Ack: {ACK}")
    assert body.startswith("CRITICAL #1: checkout API error rate above 5%")


@pytest.mark.parametrize("summary", ["short", LONG])
def test_an_sms_paging_again_fits_and_keeps_the_link_and_some_summary(summary):
    again = context(title=summary, ack_url=ACK, lapsed_by="x" * 300, lapse_reason="ack_timeout")
    body = templates.sms(again)
    assert len(body) <= 160
    assert body.startswith("CRITICAL #1: " + summary[:3])
    assert body.endswith(f" lapsed (timed out). Ack: {ACK}")


def step(number: int, run: int = 1, policy: str = "db-oncall", unacked: float = 900.0) -> dict:
    """The context fields of a page that step ``number`` of ``run`` of a policy sent."""
    return {
        "escalation_policy": policy,
        "escalation_step": number,
        "escalation_run": run,
        "unacknowledged_for": unacked,
    }


@pytest.mark.parametrize(
    ("fields", "sentence", "short"),
    [
        (
            step(2),
            "Escalated: step 2 of policy db-oncall; not acknowledged for 15m.",
            "Escalated: step 2 of db-oncall, unacked 15m.",
        ),
        (
            step(1, run=2, unacked=5460),
            "Escalated: step 1, run 2 of policy db-oncall; not acknowledged for 1h 31m.",
            "Escalated: step 1, run 2 of db-oncall, unacked 1h 31m.",
        ),
        (
            step(3, unacked=0.4),
            "Escalated: step 3 of policy db-oncall; not acknowledged for under a minute.",
            "Escalated: step 3 of db-oncall, unacked <1m.",
        ),
    ],
)
def test_a_page_from_a_later_escalation_step_says_so_on_every_channel(fields, sentence, short):
    page = context(ack_url=ACK, **fields)
    rendered = Templates(parsed())
    for kind, shown in (("chat", sentence), ("email", f"<p>{escape(sentence)}</p>")):
        body = rendered.render(page, kind).body
        assert shown in body
        assert ACK in body
    body = templates.sms(page)
    assert len(body) <= 160
    assert body.startswith("CRITICAL #1: checkout API err")
    assert body.endswith(f" {short} Ack: {ACK}")


def test_the_first_step_of_the_first_run_is_the_first_page_not_an_escalation():
    first = context(ack_url=ACK, **step(1, unacked=0.2))
    assert first.escalated == ""
    for kind in ("chat", "email", "sms"):
        assert "Escalated" not in Templates(parsed()).render(first, kind).body


@pytest.mark.parametrize("summary", ["short", LONG])
def test_an_escalated_sms_fits_and_keeps_the_link_and_some_summary(summary):
    """With a long policy name, and after a lapse too: an SMS says the step, not both."""
    page = context(
        title=summary,
        ack_url=ACK,
        lapsed_by="x" * 300,
        lapse_reason="ack_timeout",
        **step(12, run=3, policy="p" * 300, unacked=3 * 86400 + 5 * 3600),
    )
    body = templates.sms(page)
    assert len(body) <= 160
    assert body.startswith("CRITICAL #1: " + summary[:3])
    assert body.endswith(
        f" Escalated: step 12, run 3 of ppppppppppppppppp..., unacked 3d 5h. Ack: {ACK}"
    )
    assert "lapsed" not in body


def test_after_a_lapse_chat_and_email_say_both_why_it_pages_again_and_that_it_escalated():
    page = context(ack_url=ACK, lapsed_by="will", lapse_reason="snooze", **step(2))
    for kind in ("chat", "email"):
        body = Templates(parsed()).render(page, kind).body
        assert "Escalated: step 2 of policy db-oncall" in body
        assert "The acknowledgement by will lapsed: the snooze ended." in body


def test_a_first_page_says_nothing_of_a_lapse():
    for kind in ("chat", "email", "sms"):
        assert "lapsed" not in Templates(parsed()).render(context(), kind).body


def test_structured_endpoints_get_the_context_as_json_with_what_templates_derive():
    rendered = Templates(parsed()).render(context(), "structured")
    assert msgspec.json.decode(rendered.body, type=templates.NotificationContext) == SAMPLE
    derived = msgspec.json.decode(rendered.body)
    assert (derived["firing_count"], derived["resolved_count"], derived["lapsed"]) == (1, 0, "")
    assert derived["common_labels"] == SAMPLE.common_labels


OWN = """
[templates]
footer = "-- {{ receiver }}"

[[receivers]]
name = "ops"
urls = ["json://x"]
title = "{{ severity }}: {{ title }}"
body = "{{ alerts[0].labels.service }} {% include 'footer' %}"
"""


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("chat", "<b>checkout</b> -- ops"),
        ("email", "&lt;b&gt;checkout&lt;/b&gt; -- ops"),
        ("sms", "<b>checkout</b> -- ops"),
    ],
)
def test_a_receiver_can_bring_its_own_templates(kind, body):
    labelled = context(receiver="ops", alerts=[alert(labels={"service": "<b>checkout</b>"})])
    rendered = Templates(config.parse(OWN + ROUTE, {})).render(labelled, kind)
    assert (rendered.title, rendered.body) == ("critical: checkout API error rate above 5%", body)


@pytest.mark.parametrize(
    ("receivers", "extra", "problem"),
    [
        (
            '[[receivers]]\nname = "ops"\nurls = ["json://x"]\nbody = "{% if %}"\n',
            "",
            "receivers[0] (ops).body: template syntax error at line 1",
        ),
        (
            '[[receivers]]\nname = "ops"\nurls = ["json://x"]\ntitle = "{{ x | nope }}"\n',
            "",
            "receivers[0] (ops).title: template syntax error at line 1: No filter named 'nope'",
        ),
        (
            '[[receivers]]\nname = "ops"\nurls = ["json://x"]\nbody = "{% include \'gone\' %}"\n',
            "",
            "receivers[0] (ops).body: template fails on a sample incident: TemplateNotFound",
        ),
        (
            '[[receivers]]\nname = "ops"\nurls = ["json://x"]\n',
            '[templates]\nbroken = "{{ unclosed"\n',
            "templates.broken: template syntax error",
        ),
        (
            '[[receivers]]\nname = "ops"\nurls = ["json://x", "nosuchscheme://secret@host"]\n',
            "",
            "receivers[0] (ops).urls[1]: Apprise cannot load this 'nosuchscheme' URL",
        ),
    ],
)
def test_config_check_names_the_bad_template_or_url(receivers, extra, problem):
    with pytest.raises(ConfigError) as raised:
        parsed(receivers, extra)
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems
    assert not any("secret" in p for p in raised.value.problems)


def own(field: str, source: str) -> str:
    """A receiver ``ops`` with its own ``field`` template."""
    return f'[[receivers]]\nname = "ops"\nurls = ["json://x"]\n{field} = {source!r}\n'


ALERT_FIELDS = "fingerprint, status, severity, summary, starts_at, labels, annotations, ends_at"


@pytest.mark.parametrize(
    ("field", "source", "said"),
    [
        (
            "title",
            "{{ sevrity | upper }} {{ title }}",
            "'sevrity' is undefined; did you mean \"severity\"?",
        ),
        (
            "title",
            "{% if titel %}x{% endif %}",
            "'titel' is undefined; did you mean \"title\"?",
        ),
        (
            "body",
            "{{ alerts[0].sumary }}",
            f"alerts[0] has no field 'sumary'; did you mean \"summary\"? (fields: {ALERT_FIELDS})",
        ),
        (
            "body",
            "{% for a in alerts %}{{ a.sevrity }}{% endfor %}",
            f"a has no field 'sevrity'; did you mean \"severity\"? (fields: {ALERT_FIELDS})",
        ),
        (
            "body",
            "{{ alerts[0]['sumary'] }}",
            f"alerts[0] has no field 'sumary'; did you mean \"summary\"? (fields: {ALERT_FIELDS})",
        ),
        (
            "body",
            "{% if status == 'resolved' %}{{ resolvd_by }}{% endif %}",
            "'resolvd_by' is undefined; did you mean \"resolved_by\"?",
        ),
        (
            "body",
            "{% if acknowledged_by %}{{ acknowledged_at.huor }}{% endif %}",
            "acknowledged_at has no field 'huor'",
        ),
        (
            "body",
            "{% if escalated %}{{ escalaton_step }}{% endif %}",
            "'escalaton_step' is undefined; did you mean \"escalation_step\"?",
        ),
        (
            "body",
            "{{ alerts[2].summary }}",
            "alerts has no item 2 (the sample incidents have 1 or 2 alerts)",
        ),
    ],
)
def test_config_check_names_a_misspelled_variable_or_field(field, source, said):
    """A typo would otherwise render as nothing in every message ("No message body");
    branches about resolved and acknowledged incidents are checked too. The problem
    says it as the template writes it, with the fields the value has."""
    with pytest.raises(ConfigError) as raised:
        parsed(own(field, source))
    assert raised.value.problems == [
        f"receivers[0] (ops).{field}: template fails on a sample incident: {said}"
    ]


def test_config_check_reports_every_failing_template_not_only_the_first():
    text = (
        '[templates]\nfooter = "{{ alerts[0].runbok }}"\n'
        + own("title", "{{ sevrity }}")
        + 'body = "{{ alerts[0].labls }}"\n'
        + own("body", "{% include 'footer' %}").replace('"ops"', '"dev"')
    )
    with pytest.raises(ConfigError) as raised:
        parsed(text)
    assert raised.value.problems == [
        "receivers[0] (ops).title: template fails on a sample incident: 'sevrity' is undefined;"
        ' did you mean "severity"?',
        "receivers[0] (ops).body: template fails on a sample incident: alerts[0] has no field "
        f"'labls'; did you mean \"labels\"? (fields: {ALERT_FIELDS})",
        "receivers[1] (dev).body: template fails on a sample incident: alerts[0] has no field "
        f"'runbok' (fields: {ALERT_FIELDS})",
    ]


@pytest.mark.parametrize(
    "source",
    [
        "{{ common_labels.team }}{{ alerts[0].labels.zone }}{{ alerts[0].annotations.owner }}",
        "{{ titel | default('untitled') }}{% if sevrity is defined %}{{ sevrity }}{% endif %}",
    ],
)
def test_a_label_or_annotation_some_alerts_lack_passes_the_check_and_renders_empty(source):
    rendered = Templates(parsed(own("body", source))).render(context(receiver="ops"), "chat")
    assert rendered.body in ("", "untitled")


def test_a_typo_in_a_branch_no_sample_takes_passes_the_check_and_renders_empty_when_sent():
    """Real sends render an unknown name as empty, as before: a message is never lost
    to what the check let through."""
    source = "{% if alerts | length > 5 %}{{ sumary }}{% endif %}six or more"
    many = context(receiver="ops", alerts=[alert(fingerprint=str(i)) for i in range(6)])
    assert Templates(parsed(own("body", source))).render(many, "chat").body == "six or more"


FAILS_ON_DATA = own("title", "{{ 100 // (common_labels | length) }}% of them")
"""A title that passes the check (the sample's alerts share labels) and fails on alerts
sharing none."""


@pytest.mark.parametrize("kind", ["chat", "email", "sms", "structured"])
def test_a_receivers_template_failing_on_real_alerts_gives_way_to_the_marked_default(kind):
    """On call is paged anyway: the default message for the channel, saying why."""
    apart = context(receiver="ops", alerts=[alert(labels={}), alert(labels={"zone": "b"})])
    rendered = Templates(parsed(FAILS_ON_DATA)).render(apart, kind)
    error = "template error in receiver 'ops': ZeroDivisionError: integer division or modulo"
    error += " by zero"
    assert rendered.template_error == error
    default = Templates(parsed()).render(msgspec.structs.replace(apart, receiver="x"), kind)
    assert rendered.title == default.title
    if kind == "sms":
        assert rendered.body == "(template error) " + templates.sms(apart, 160 - 17)
    elif kind == "structured":
        assert msgspec.json.decode(rendered.body)["template_error"] == error
    else:
        mark = f"({error}; default message sent)"
        if kind == "email":  # after the <html><body> line, as HTML
            assert rendered.body.splitlines()[1] == f"<p><i>{escape(mark)}</i></p>"
        else:
            assert rendered.body.splitlines()[0] == mark
        assert default.body.splitlines()[-1] == rendered.body.splitlines()[-1]


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("mailto://user:pass@example.com", "email"),
        ("mailtos://user:pass@example.com", "email"),
        ("twilio://SID:TOKEN@+15551234567/+15557654321", "sms"),
        ("NEXMO://key:secret@15551234567/15557654321", "sms"),
        ("d7sms://token@15551234567", "sms"),
        ("json://localhost/hook", "structured"),
        ("xmls://localhost/hook", "structured"),
        ("slack://T000/B000/XXXX", "chat"),
        ("discord://id/token", "chat"),
        ("tgram://bot/chat", "chat"),
    ],
)
def test_the_channel_kind_comes_from_the_url_schema(url, kind):
    assert channels.kind(url) == kind


@given(summary=st.text(max_size=400), firing=st.integers(min_value=1, max_value=50))
def test_any_sms_fits_160_characters_and_ends_with_the_ack_link(summary, firing):
    alerts = [alert(fingerprint=str(i)) for i in range(firing)]
    body = templates.sms(context(title=summary, ack_url=ACK, alerts=alerts))
    assert len(body) <= 160
    assert body.endswith(f" Ack: {ACK}")
