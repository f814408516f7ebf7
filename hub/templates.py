"""Notification messages: one default per channel kind, overridable per receiver.

- ``sms``: one line that fits the service's limit (160 characters): severity,
  incident id, summary and the ack link (or who acknowledged the incident). The
  summary is cut, never the link.
- ``chat``: Markdown, which Apprise turns into each chat service's own dialect.
- ``email``: HTML, each field a "Label: value" line and the alerts a list. Apprise's
  email plugin sends HTML as multipart/alternative with a plain-text part converted
  from the HTML, which puts every table cell on a line of its own (a table read as
  all its headings, then all its values) and drops ``href``s: so no table, each
  field on one line (``<br>``), every link also written out as visible text, the ack
  link on a line of its own, and both parts read alike.
- ``structured`` (json/form/xml endpoints): as JSON, for machines, every name a
  template sees (the counts and common labels too, not only the stored fields).

Templates are Jinja2 in a sandbox (receivers' templates come from the config
file, not from code); HTML is autoescaped, so a label value like ``<script>``
arrives as text; Markdown is not, so the chat message passes a sender's text through
the ``md`` filter (labels are code spans), which also keeps it from pinging anyone
(``@everyone``), as the chat title does with the summary it shows. ``[templates]``
holds named snippets that receivers' ``title``/``body`` may ``include`` or ``import``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any, Literal, NoReturn

import jinja2
import msgspec
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from hub.channels import SMS_LIMIT, Kind
from hub.config import Config, Receiver, did_you_mean, entry
from hub.spans import span

BodyFormat = Literal["text", "markdown", "html"]
NotifyType = Literal["info", "success", "warning", "failure"]
"""Apprise's notify types: chat services colour a message by them (Slack's bar, a
Discord or Teams card), and machine endpoints receive them as ``type``."""
FIRING_TYPES: dict[str, NotifyType] = {
    "critical": "failure",
    "error": "failure",
    "warning": "warning",
}
"""A firing message's notify type by its incident's severity; any other is ``info``."""
ACKER_ROOM = 40
"""Characters of an acknowledger's name an SMS keeps."""
VIA_ROOM = 20
"""Characters an SMS keeps of the name of the token that spoke for them."""
POLICY_ROOM = 20
"""Characters of an escalation policy's name an SMS keeps."""
LapseReason = Literal["snooze", "ack_timeout"]
LAPSES: dict[LapseReason, tuple[str, str]] = {
    "snooze": ("the snooze ended", "snooze ended"),
    "ack_timeout": ("not resolved within the policy's ack_timeout", "timed out"),
}
"""Why an acknowledgement lapsed, as a message paging again says it: in full, and
short for an SMS."""
SMS_TEMPLATE_ERROR = "(template error) "
"""What heads a default SMS sent because the receiver's own template failed."""

FORMATS: dict[Kind, BodyFormat] = {
    "sms": "text",
    "chat": "markdown",
    "email": "html",
    "structured": "text",
}


LISTED_MAX = 100
"""The most alerts one message lists: the default email shows 100 and a chat message
20, and every message about an incident once carried all its alerts: 6.8 MB for one
of 20,000, written to the outbox and read back for each URL."""


def common_labels(labels: list[dict[str, str]]) -> dict[str, str]:
    """The name-value pairs every one of ``labels`` has."""
    if not labels:
        return {}
    first, *rest = labels
    return {k: v for k, v in first.items() if all(other.get(k) == v for other in rest)}


class AlertContext(msgspec.Struct, frozen=True, kw_only=True):
    """One alert as a message shows it. ``starts_at`` is when its current firing began
    (Alertmanager's ``startsAt``), not its first sighting: an alert firing again says
    since when it fires now. ``ends_at`` is when it resolved, None while it fires (and
    in outbox rows written before it existed)."""

    fingerprint: str
    status: Literal["firing", "resolved"]
    severity: str
    summary: str
    starts_at: datetime
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    ends_at: datetime | None = None


class NotificationContext(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a message may show about one incident, for one receiver.

    ``title`` is the incident's summary (or, when a mute leaves its alert out of the
    message, the most severe listed alert's: ``dispatch._title``); ``ack_url`` may be
    empty (no link is shown then). ``acknowledged_by`` and ``acknowledged_at`` say who acknowledged
    the incident and when (both None until someone does), so a message about an
    incident already in hand says so rather than paging afresh. ``resolved_by`` and
    ``resolved_at`` say who resolved it and when when a person did (None when its
    alerts resolved), as the alerts listed may still fire. ``acknowledged_via`` and
    ``resolved_via`` name the token that spoke for that person (``speaks_for_others``),
    None when they acted themselves. ``lapsed_by`` and
    ``lapse_reason`` say, on a firing message about an incident open again because an
    acknowledgement lapsed, whose it was and why (``snooze`` or ``ack_timeout``), so
    the person paged again knows why. ``escalation_policy``, ``escalation_step`` and
    ``escalation_run`` say, on a firing message an escalation step sent, which step of
    which run of the policy it was (as its timeline entry ``escalated`` counts them),
    and ``unacknowledged_for`` how many seconds the incident had then gone
    unacknowledged, since it last became so: as its chain started (the route's
    ``group_wait`` ending after the incident opened, its first page; its reopening;
    an acknowledgement lapsing) or as a person unacknowledged it, whichever came
    last. The time before was someone's, and the steps' ``after`` counts from the
    chain's start, so step 2 after 15m says 15m when nobody acknowledged meanwhile.
    All twelve default to None so outbox rows written before they existed still decode.

    ``alerts`` lists at most ``LISTED_MAX`` of the alerts the message tells of;
    ``unlisted_firing`` and ``unlisted_resolved`` count the others, which the counts
    include, and ``shared_labels`` are the labels all of them share, listed or not (None
    when every alert is listed). Templates see each other field, plus ``firing_count``,
    ``resolved_count``, ``truncated_alerts``, ``common_labels``, ``still_firing``,
    ``lapsed`` and ``escalated``, as top-level names.
    """

    incident_id: int
    status: Literal["firing", "resolved"]
    severity: str
    title: str
    alerts: list[AlertContext]
    incident_url: str
    ack_url: str
    receiver: str
    acknowledged_by: str | None = None
    acknowledged_via: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_via: str | None = None
    resolved_at: datetime | None = None
    lapsed_by: str | None = None
    lapse_reason: LapseReason | None = None
    escalation_policy: str | None = None
    escalation_step: int | None = None
    escalation_run: int | None = None
    unacknowledged_for: float | None = None
    unlisted_firing: int = 0
    unlisted_resolved: int = 0
    shared_labels: dict[str, str] | None = None

    @property
    def firing_count(self) -> int:
        return sum(alert.status == "firing" for alert in self.alerts) + self.unlisted_firing

    @property
    def resolved_count(self) -> int:
        listed = sum(alert.status == "resolved" for alert in self.alerts)
        return listed + self.unlisted_resolved

    @property
    def truncated_alerts(self) -> int:
        """Alerts the message tells of but does not list (Alertmanager's
        ``truncatedAlerts``)."""
        return self.unlisted_firing + self.unlisted_resolved

    @property
    def common_labels(self) -> dict[str, str]:
        """Labels every alert shares: what the incident is about."""
        if self.shared_labels is not None:
            return self.shared_labels
        return common_labels([alert.labels for alert in self.alerts])

    @property
    def still_firing(self) -> str:
        """On a resolved message about an incident a person resolved, how many of its
        alerts still fire at their source, as the default messages say it ("2 alerts
        still firing at their source"): the incident is over, so they are not counted
        as firing. Empty on firing messages and when none still fires."""
        count = self.firing_count if self.status == "resolved" else 0
        if count == 0:
            return ""
        if count == 1:
            return "1 alert still firing at its source"
        return f"{count} alerts still firing at their source"

    @property
    def lapsed(self) -> str:
        """Why this message pages again: whose acknowledgement lapsed and why, as a
        sentence; empty when none did."""
        if self.lapsed_by is None or self.lapse_reason is None:
            return ""
        why = LAPSES[self.lapse_reason][0]
        return f"The acknowledgement by {self.lapsed_by} lapsed: {why}."

    @property
    def escalated(self) -> str:
        """That this message is an escalation, as a sentence: which step of which policy
        paged, and how long nobody has acknowledged, so a person paged at a later step
        (a manager, the secondary) sees at once it is no first page. Empty on the first
        step of the first run, which is the first page, and on every other message."""
        if not _escalation(self):
            return ""
        return (
            f"Escalated: {_step_of(self)} of policy {self.escalation_policy};"
            f" not acknowledged for {_unacked_span(self)}."
        )


class Rendered(msgspec.Struct, frozen=True):
    """Apprise's ``notify(title=, body=, body_format=, notify_type=)`` arguments, and
    ``template_error``: why the receiver's own template gave way to the default message
    (None when it did not)."""

    title: str
    body: str
    body_format: BodyFormat
    notify_type: NotifyType
    template_error: str | None = None


def notify_type(context: NotificationContext) -> NotifyType:
    """How alarming a message looks: a resolution is good news whatever the severity,
    a firing incident as alarming as its severity."""
    if context.status == "resolved":
        return "success"
    return FIRING_TYPES.get(context.severity, "info")


DEFAULT_TITLE = (
    "[{{ status | upper }}{% if status == 'firing' and firing_count > 1 %}:{{ firing_count }}"
    "{% endif %}] "
    "#{{ incident_id }} {{ title }}"
)

CHAT_BODY = """
{% set over = status == "resolved" %}
{% if template_error %}
({{ template_error }}; default message sent)

{% endif %}
**{{ severity | upper }}** · incident #{{ incident_id }} ·
{%- if not over %} {{ firing_count }} firing
{{- (", %d resolved" % resolved_count) if resolved_count }}
{% else %} resolved
{% endif %}

{% for alert in alerts[:20] %}
- {{ ("still firing" if over and alert.status == "firing" else alert.status) | upper }}
  {{- " (" ~ alert.severity ~ ")" }} **{{ alert.summary | md }}**
  {%- set labels = alert.labels | pairs %}
  {{- (" " ~ labels[:50] | map("truncate", 200) | map("code") | join(" ")) if labels }}
  {{- " +%d more" % (labels | length - 50) if labels | length > 50 }}
  {%- if alert.ends_at %} · {{ alert.starts_at | utc }} to {{ alert.ends_at | utc }}
  {%- else %} · since {{ alert.starts_at | utc }}{% endif %}

{% for name, value in (alert.annotations | dictsort)[:20] if value != alert.summary %}
  - {{ name | md }}: {{ value | truncate(500) | md }}
{% endfor %}
{% endfor %}
{% if alerts | length + truncated_alerts > 20 %}
- ... and {{ alerts | length + truncated_alerts - 20 }} more
{% endif %}

{% if escalated %}
{{ escalated }}

{% endif %}
{% if lapsed %}
{{ lapsed }}

{% endif %}
{% if status == "firing" and acknowledged_by %}
Acknowledged by {{ acknowledged_by }}
{{- " via " ~ acknowledged_via if acknowledged_via }} · {% elif status == "firing" and ack_url %}
[Acknowledge]({{ ack_url }}) · {% elif resolved_by %}
Resolved by {{ resolved_by }}{{ " via " ~ resolved_via if resolved_via }}
{{- "; " ~ still_firing if still_firing }} · {% endif -%}
[Open incident #{{ incident_id }}]({{ incident_url }})
"""

EMAIL_BODY = """\
{% set over = status == "resolved" %}
{% macro fields(pairs) %}
{% for label, value in pairs if value %}
{% if not loop.first %}<br>{% endif %}<b>{{ label }}:</b> {{ value }}
{%- endfor %}
{% endmacro %}
<html><body style="font-family: sans-serif">
{% if template_error %}
<p><i>({{ template_error }}; default message sent)</i></p>
{% endif %}
<h2>[{{ status | upper }}] {{ title }}</h2>
{% set counts = none if over else "%d firing, %d resolved" % (firing_count, resolved_count) %}
<p>{{ fields([("Incident", "#%d" % incident_id), ("Status", status), ("Severity", severity),
  ("Alerts", counts)]) }}</p>
{% if escalated %}
<p>{{ escalated }}</p>
{% endif %}
{% if lapsed %}
<p>{{ lapsed }}</p>
{% endif %}
{% if status == "firing" and acknowledged_by %}
<p>Acknowledged by {{ acknowledged_by }}{{ " via " ~ acknowledged_via if acknowledged_via }}
{{- " at " ~ acknowledged_at | utc }}</p>
{% elif status == "firing" and ack_url %}
<p><b>Acknowledge:</b><br><a href="{{ ack_url }}">{{ ack_url }}</a></p>
{% elif resolved_by %}
<p>Resolved by {{ resolved_by }}{{ " via " ~ resolved_via if resolved_via }}
{{- " at " ~ resolved_at | utc }}
{{- "; " ~ still_firing if still_firing }}</p>
{% endif %}
<p><b>Open incident:</b><br><a href="{{ incident_url }}">{{ incident_url }}</a></p>
<h3>Alerts</h3>
<ul>
{% for alert in alerts[:100] %}
{% set shown = "still firing" if over and alert.status == "firing" else alert.status %}
{% set labels = alert.labels | pairs %}
{% set more = ", +%d more" % (labels | length - 50) if labels | length > 50 else "" %}
{% set details = [("Status", shown), ("Severity", alert.severity),
  ("Labels", labels[:50] | map("truncate", 200) | join(", ") ~ more),
  ("Started", alert.starts_at | utc),
  ("Ended", alert.ends_at | utc if alert.ends_at else none)] %}
<li style="margin-bottom: 0.5em"><b>{{ alert.summary }}</b><br>{{ fields(details) }}
{%- for name, value in (alert.annotations | dictsort)[:20] %}
<br><b>{{ name }}:</b> {{ value | truncate(2000) | urlize }}
{%- endfor %}
</li>
{% endfor %}
</ul>
{% if alerts | length + truncated_alerts > 100 %}
<p>... and {{ alerts | length + truncated_alerts - 100 }} more alerts</p>
{% endif %}
</body></html>
"""


SAMPLE = NotificationContext(
    incident_id=1,
    status="firing",
    severity="critical",
    title="checkout API error rate above 5%",
    alerts=[
        AlertContext(
            fingerprint="0123456789abcdef",
            status="firing",
            severity="critical",
            summary="checkout API error rate above 5%",
            starts_at=datetime(2026, 1, 1, tzinfo=UTC),
            labels={"alertname": "HighErrorRate", "service": "checkout"},
            annotations={"runbook": "https://wiki.example/runbooks/checkout"},
        )
    ],
    incident_url="https://hub.example/incidents/1",
    ack_url="https://hub.example/ack/token",
    receiver="sample",
    acknowledged_by=None,
    acknowledged_at=None,
    resolved_by=None,
    resolved_at=None,
)
TEST_PATH = "/notify-test"
"""Where the links of a ``hub notify-test`` message lead: a console page saying it
was a test, never an incident (ids start at 1; the test's incident is #0)."""
_NOON = datetime(2026, 1, 1, 12, tzinfo=UTC)
SAMPLES = (
    SAMPLE,
    msgspec.structs.replace(
        SAMPLE,
        ack_url="",
        acknowledged_by="alice",
        acknowledged_via="chatbot",
        acknowledged_at=_NOON,
    ),
    msgspec.structs.replace(SAMPLE, lapsed_by="alice", lapse_reason="snooze"),
    msgspec.structs.replace(
        SAMPLE,
        escalation_policy="page-oncall",
        escalation_step=2,
        escalation_run=1,
        unacknowledged_for=600.0,
    ),
    msgspec.structs.replace(
        SAMPLE,
        status="resolved",
        ack_url="",
        alerts=[
            msgspec.structs.replace(SAMPLE.alerts[0], status="resolved", ends_at=_NOON),
            msgspec.structs.replace(SAMPLE.alerts[0], fingerprint="fedcba9876543210"),
        ],
        resolved_by="alice",
        resolved_at=_NOON,
    ),
)
"""What the config check renders each template against: a fresh page, an incident
already acknowledged, one paging again after a lapse, a page from an escalation's
second step and one a person resolved (one of its alerts resolved, one still firing
at its source), so a template's branches about each are checked too."""


def _unless_missing_key(method: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(self: jinja2.Undefined, *args: Any) -> Any:
        if not isinstance(self._undefined_obj, Mapping):
            self._fail_with_undefined_error()
        return method(self, *args)

    return guarded


class UnknownField(jinja2.UndefinedError):
    """A field or item a value lacks (``alerts[0].sumary``, ``alerts[3]``), kept with
    the value and the name so the config check can say it in the template's terms."""

    def __init__(self, owner: Any, name: Any) -> None:
        super().__init__(f"has no field {name!r}")
        self.owner = owner
        self.name = name

    def describe(self, expression: str | None) -> str:
        """``alerts[0] has no field 'sumary' (fields: fingerprint, status, ...)``."""
        what = expression or "a value"
        if isinstance(self.name, int):
            return f"{what} has no item {self.name} (the sample incidents have 1 or 2 alerts)"
        fields = getattr(type(self.owner), "__struct_fields__", ())
        listed = f" (fields: {', '.join(fields)})" if fields else ""
        return f"{what} has no field {self.name!r}{did_you_mean(self.name, fields)}{listed}"


class UnknownName(jinja2.UndefinedError):
    """A name no template sees (``sevrity``), kept so the config check can suggest the
    closest one it does."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} is undefined")
        self.name = name


class TypoUndefined(jinja2.Undefined):
    """An unknown name as the config check sees it: a typo (``sevrity``,
    ``alerts[0].sumary``) fails like ``StrictUndefined`` once used, since it would
    render as nothing in every message; a key a mapping lacks (a label or annotation
    some alerts do not carry) is empty, as when sent."""

    __slots__ = ()
    __str__ = _unless_missing_key(jinja2.Undefined.__str__)
    __iter__ = _unless_missing_key(jinja2.Undefined.__iter__)
    __len__ = _unless_missing_key(jinja2.Undefined.__len__)
    __bool__ = _unless_missing_key(jinja2.Undefined.__bool__)
    __eq__ = _unless_missing_key(jinja2.Undefined.__eq__)
    __ne__ = _unless_missing_key(jinja2.Undefined.__ne__)
    __hash__ = _unless_missing_key(jinja2.Undefined.__hash__)

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        """A missing field or item of a value raises UnknownField; an unknown name
        UnknownName, worded as Jinja words it (``'sevrity' is undefined``)."""
        owner = self._undefined_obj
        if self._undefined_hint is None and owner is not jinja2.utils.missing:
            raise UnknownField(owner, self._undefined_name)
        if self._undefined_hint is None and isinstance(self._undefined_name, str):
            raise UnknownName(self._undefined_name)
        super()._fail_with_undefined_error(*args, **kwargs)


class Templates:
    """The compiled templates of one config: defaults, shared snippets, receivers' own."""

    def __init__(self, config: Config) -> None:
        self._text = _environment(config.templates, html=False)
        self._html = _environment(config.templates, html=True)
        self._overrides = {
            (receiver.name, field, html): _compiled(env, source)
            for receiver in config.receivers
            for field, source in _own_templates(receiver)
            for html, env in ((False, self._text), (True, self._html))
        }
        self._defaults = {
            "title": _compiled(self._text, DEFAULT_TITLE),
            "chat": _compiled(self._text, CHAT_BODY),
            "email": _compiled(self._html, EMAIL_BODY),
        }

    def render(self, context: NotificationContext, kind: Kind, limit: int = SMS_LIMIT) -> Rendered:
        """The message for one channel kind.

        ``limit`` caps the default SMS body; a receiver's own body is sent as written.
        A receiver's own title or body that raises on this incident (it passed the
        config check's samples, so the fault is in the data: an alert without the
        label it reads, a division by zero) gives way to the default message, marked
        with the error: people on call are paged anyway, and ``template_error`` tells
        the delivery log why the message looks different.
        """
        try:
            title = self._own_render(context, "title", html=False)
            body = self._own_render(context, "body", html=kind == "email")
        except Exception as e:  # a template raises whatever its expressions raise
            error = f"template error in receiver {context.receiver!r}: {type(e).__name__}: {e}"
            return self._default(context, kind, limit, error)
        return Rendered(
            title=self._default_title(context, kind) if title is None else title,
            body=self._default_body(context, kind, limit) if body is None else body,
            body_format=FORMATS[kind],
            notify_type=notify_type(context),
        )

    def _own_render(self, context: NotificationContext, field: str, html: bool) -> str | None:
        """The receiver's own ``field`` rendered; None when it has none."""
        template = self._overrides.get((context.receiver, field, html))
        return None if template is None else _render(template, context)

    def _default(
        self, context: NotificationContext, kind: Kind, limit: int, error: str
    ) -> Rendered:
        """The default message in place of the receiver's own, its body saying why."""
        return Rendered(
            title=self._default_title(context, kind),
            body=self._default_body(context, kind, limit, error),
            body_format=FORMATS[kind],
            notify_type=notify_type(context),
            template_error=error,
        )

    def _default_title(self, context: NotificationContext, kind: Kind) -> str:
        """Plain text everywhere (an email subject is not HTML); none for an SMS, where
        Apprise would spend the 160 characters on it. The incident's title is a
        sender's summary: in chat it mentions nobody and links nowhere, as Discord puts
        the title in the message's Markdown content, where a mention pings and a
        ``[text](url)`` is a link (``_unlink``; an escape would show in Slack's title)."""
        if kind == "sms":
            return ""
        extra = {"title": _unlink(_unmention(context.title))} if kind == "chat" else {}
        return _render(self._defaults["title"], context, extra)

    def _default_body(
        self, context: NotificationContext, kind: Kind, limit: int, error: str | None = None
    ) -> str:
        """The channel's default body; ``error``, the receiver's template error it
        replaces, heads it (a short mark in an SMS, a field for machines)."""
        if kind == "sms":
            mark = SMS_TEMPLATE_ERROR if error else ""
            return mark + sms(context, limit - len(mark))
        extra = {"template_error": error} if error else {}
        if kind == "structured":
            return msgspec.json.encode(_variables(context) | extra).decode()
        return _render(self._defaults[kind], context, extra)


def check(config: Config) -> list[str]:
    """Template faults at config load, naming the key: syntax errors, and whatever a
    render of the sample incidents raises (an unknown filter, a missing include, an
    unknown name or field). Real sends render an unknown name as empty instead, so a
    branch no sample takes prints nothing rather than failing the message."""
    env = _environment(config.templates, html=False, undefined=TypoUndefined)
    attempts = [(f"templates.{name}", partial(env.get_template, name)) for name in config.templates]
    attempts += [
        (f"{entry(f'receivers[{i}]', receiver.name)}.{field}", partial(_trial, env, source))
        for i, receiver in enumerate(config.receivers)
        for field, source in _own_templates(receiver)
    ]
    sources = [source for receiver in config.receivers for _, source in _own_templates(receiver)]
    sources += config.templates.values()
    return [
        f"{key}: {_describe(error, env, sources)}"
        for key, attempt in attempts
        if (error := _fault(attempt))
    ]


def _trial(env: SandboxedEnvironment, source: str) -> None:
    template = _compiled(env, source)
    for sample in SAMPLES:
        _render(template, sample)


def templated(config: Config) -> set[str]:
    """The receivers with a title or body of their own: only theirs can fail to render."""
    return {receiver.name for receiver in config.receivers if _own_templates(receiver)}


def _own_templates(receiver: Receiver) -> list[tuple[str, str]]:
    fields = (("title", receiver.title), ("body", receiver.body))
    return [(field, source) for field, source in fields if source is not None]


def _fault(attempt: Callable[[], object]) -> Exception | None:
    try:
        attempt()
    except Exception as e:  # any fault a template can raise is a config problem to report
        return e
    return None


def _describe(error: Exception, env: SandboxedEnvironment, sources: list[str]) -> str:
    if isinstance(error, jinja2.TemplateSyntaxError):
        return f"template syntax error at line {error.lineno}: {error.message}"
    if isinstance(error, UnknownField):
        expression = next(filter(None, (_owner(env, s, error.name) for s in sources)), None)
        return f"template fails on a sample incident: {error.describe(expression)}"
    if isinstance(error, UnknownName):
        names = [*_variables(SAMPLES[0]), *env.globals]
        return f"template fails on a sample incident: {error}{did_you_mean(error.name, names)}"
    if isinstance(error, jinja2.UndefinedError):
        return f"template fails on a sample incident: {error}"
    return f"template fails on a sample incident: {type(error).__name__}: {error}"


def _owner(env: SandboxedEnvironment, source: str, name: Any) -> str | None:
    """How ``source`` writes the value whose field or item ``name`` it reads
    (``alerts[0]`` for ``alerts[0].sumary``); None when it reads no such name."""
    for node in env.parse(source).find_all((nodes.Getattr, nodes.Getitem)):
        key = node.attr if isinstance(node, nodes.Getattr) else _constant(node.arg)
        if key == name:
            return _written(node.node)
    return None


def _written(node: nodes.Node) -> str | None:
    """A name, field or constant-index chain as written; None for anything else."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        owner = _written(node.node)
        return owner and f"{owner}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        owner = _written(node.node)
        return owner and f"{owner}[{node.arg.value!r}]"
    return None


def _constant(node: nodes.Node) -> Any:
    return node.value if isinstance(node, nodes.Const) else None


def sms(context: NotificationContext, limit: int = SMS_LIMIT) -> str:
    """``CRITICAL #42 x3: summary... Ack: <link>`` within ``limit`` characters (paging
    again, ``... Ack by <name> lapsed (snooze ended). Ack: <link>``; from a later
    escalation step, ``... Escalated: step 2 of <policy>, unacked 15m. Ack: <link>``); once
    acknowledged, ``... Acknowledged by <name>`` instead of the link; resolved by a
    person, ``RESOLVED #42: summary... Resolved by <name>`` (``, 2 still firing``
    while its alerts still fire at their source). A name a token spoke for has the
    token beside it: ``Acknowledged by <name> via <token>``."""
    firing = context.status == "firing"
    state = context.severity.upper() if firing else "RESOLVED"
    count = f" x{context.firing_count}" if firing and context.firing_count > 1 else ""
    head = f"{state} #{context.incident_id}{count}: "
    tail = _sms_tail(context)
    return head + _shorten(" ".join(context.title.split()), limit - len(head) - len(tail)) + tail


def _sms_tail(context: NotificationContext) -> str:
    """What an SMS ends with: who has the incident, else the link to take it (after
    why it pages, ``_sms_why``); who resolved it, when a person did."""
    if context.status != "firing":
        who = context.resolved_by
        if who is None:
            return ""
        firing = f", {context.firing_count} still firing" if context.firing_count else ""
        return f" Resolved by {_sms_who(who, context.resolved_via)}{firing}"
    if context.acknowledged_by:
        return f" Acknowledged by {_sms_who(context.acknowledged_by, context.acknowledged_via)}"
    link = f" Ack: {context.ack_url}" if context.ack_url else ""
    return _sms_why(context) + link


def _sms_who(name: str, via: str | None) -> str:
    """Who acted, and the token that spoke for them, as the other messages say it
    ("alice via chatops"), each cut to its room so the summary keeps some."""
    vouched = f" via {_shorten(via, VIA_ROOM)}" if via else ""
    return _shorten(name, ACKER_ROOM) + vouched


def _sms_why(context: NotificationContext) -> str:
    """Why an SMS pages, when it is no first page: the escalation step that sent it,
    else whose acknowledgement lapsed. An SMS has room for one of them beside the
    summary, and the step tells the person it pages why it is them (chat and email
    say both). Names are cut to ACKER_ROOM and POLICY_ROOM, so the summary always
    keeps room."""
    if _escalation(context):
        policy = _shorten(context.escalation_policy or "", POLICY_ROOM)
        unacked = _unacked_span(context, short=True)
        return f" Escalated: {_step_of(context)} of {policy}, unacked {unacked}."
    if context.lapsed_by is None or context.lapse_reason is None:
        return ""
    why = LAPSES[context.lapse_reason][1]
    return f" Ack by {_shorten(context.lapsed_by, ACKER_ROOM)} lapsed ({why})."


def _escalation(context: NotificationContext) -> bool:
    """Whether an escalation step past the first page sent the message."""
    step, run = context.escalation_step, context.escalation_run
    told = (context.escalation_policy, context.unacknowledged_for)
    return None not in (step, run, *told) and (step, run) != (1, 1)


def _unacked_span(context: NotificationContext, short: bool = False) -> str:
    """How long nobody has acknowledged: "under a minute" (SMS: "<1m") rather than
    "0s" when a step that fell due while a person held the incident pages at their
    unack."""
    seconds = context.unacknowledged_for or 0
    if seconds >= 60:
        return span(seconds)
    return "<1m" if short else "under a minute"


def _step_of(context: NotificationContext) -> str:
    """``step 2``, and ``step 1, run 2`` when the policy runs again (``repeat``)."""
    run = f", run {context.escalation_run}" if context.escalation_run != 1 else ""
    return f"step {context.escalation_step}{run}"


def _shorten(text: str, room: int) -> str:
    """Cut to ``room`` characters with ASCII "..." (any other mark forces UCS-2 SMS)."""
    if len(text) <= room:
        return text
    if room < 4:
        return ""
    return text[: room - 3].rstrip() + "..."


def _render(
    template: jinja2.Template, context: NotificationContext, extra: Mapping[str, str] = {}
) -> str:
    return template.render(_variables(context) | dict(extra)).strip()


_UNSHOWN = frozenset({"unlisted_firing", "unlisted_resolved", "shared_labels"})
"""Fields templates see through the counts, ``truncated_alerts`` and ``common_labels``."""


def _variables(context: NotificationContext) -> dict[str, Any]:
    """Every name a template sees; a structured endpoint is sent the same."""
    fields = msgspec.structs.asdict(context)
    return {
        **{name: value for name, value in fields.items() if name not in _UNSHOWN},
        "firing_count": context.firing_count,
        "resolved_count": context.resolved_count,
        "truncated_alerts": context.truncated_alerts,
        "common_labels": context.common_labels,
        "still_firing": context.still_firing,
        "lapsed": context.lapsed,
        "escalated": context.escalated,
    }


def _environment(
    shared: Mapping[str, str], html: bool, undefined: type[jinja2.Undefined] = jinja2.Undefined
) -> SandboxedEnvironment:
    return _shared_environment(tuple(shared.items()), html, undefined)


@lru_cache(maxsize=16)
def _shared_environment(
    shared: tuple[tuple[str, str], ...], html: bool, undefined: type[jinja2.Undefined]
) -> SandboxedEnvironment:
    """One environment per set of snippets, kept across loads: a reload, a restart in
    the same process and the config check that precedes them compile the same
    templates again, and compiling is most of a config's load (``_compiled``)."""
    env = SandboxedEnvironment(
        loader=jinja2.DictLoader(dict(shared)),
        undefined=undefined,
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_blank,
    )
    env.filters["utc"] = _utc
    env.filters["pairs"] = _pairs
    env.filters["code"] = _code
    env.filters["md"] = _md
    return env


@lru_cache(maxsize=256)
def _compiled(env: SandboxedEnvironment, source: str) -> jinja2.Template:
    """``source`` compiled once per environment: a Jinja compile (parse, generate,
    ``compile``) costs tens of milliseconds, a render of the result far less."""
    return env.from_string(source)


def _blank(value: Any) -> Any:
    """What ``{{ ... }}`` prints: nothing for None (``acknowledged_by`` before anyone
    acknowledged), which Jinja would print as "None"."""
    return "" if value is None else value


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _pairs(labels: Mapping[str, str]) -> list[str]:
    return [f"{name}={value}" for name, value in sorted(labels.items())]


_MARKUP = re.compile(r"\\(?=[!-/:-@\[-`{-~])|[<>\[\]]")
"""What ``_md`` escapes: the brackets of links, mentions and raw HTML, and a backslash
that would escape the character after it."""
_MENTION = re.compile(
    r"(?<![\w/])@(?=[\w&!])|@(?=everyone|here|[&!]|\d{17})|<(?=at>)", re.IGNORECASE
)
"""What starts a mention: an ``@`` before a word (``@everyone``, ``@here``, ``@channel``,
``@all``, ``@room``, ``@alice``, ``<@123>``, ``<@&42>``), or inside one before what
Discord, and Apprise's Discord plugin looking for pings in the body, take for one
anyway (``x@everyone``, ``x@&42``, a user's id: 17 digits or more); and the ``<`` of a
Teams ``<at>`` tag, which Apprise's Teams plugin turns into a mention. An e-mail
address, a link to a ``/@team`` page, and ``deploy@10.0.0.5`` or ``lib@1.2.3``, which
people copy into a shell or a silence, are left whole."""
ZERO_WIDTH_SPACE = "\u200b"


def _md(text: str) -> str:
    """A sender's text (a summary, an annotation) as text in Markdown: its ``<!channel>``
    is no Slack mention, its ``@everyone`` no Discord ping (``_unmention``) and its
    ``[Acknowledge](url)`` no link beside hub's own. Emphasis and bare URLs are left
    alone, so a runbook address stays whole and clickable."""
    return _MARKUP.sub(lambda found: "\\" + found.group(), _unmention(text))


def _unmention(text: str) -> str:
    """A sender's text that pings nobody in chat and reads the same: a zero-width space
    after what would start a mention. Discord pings on ``@everyone``, ``@here``,
    ``<@id>`` and ``<@&role>`` anywhere in a webhook's content (Apprise sends no
    ``allowed_mentions``, and in Markdown embed mode copies each one it finds in the
    body into a ping); Mattermost and Rocket.Chat on ``@all``, ``@channel`` and
    ``@here``; Matrix on ``@room``; Teams on ``<at>name</at>``, even in a code span."""
    return _MENTION.sub(r"\g<0>" + ZERO_WIDTH_SPACE, text)


def _unlink(text: str) -> str:
    """Text whose ``[text](url)`` is no Markdown link and reads the same: a zero-width
    space between the brackets and the parenthesis."""
    return text.replace("](", "]" + ZERO_WIDTH_SPACE + "(")


def _code(text: str) -> str:
    """A Markdown code span, so label values show literally in chat, mentioning nobody
    (Apprise's Discord plugin finds pings inside code too)."""
    return "`{}`".format(_unmention(text).replace("`", "'"))
