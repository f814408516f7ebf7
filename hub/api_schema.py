"""The API's answers and the bodies it reads, as types: the schemas of the OpenAPI document.

Handlers answer with dicts built from store rows (``hub.api.present`` and its kin), and
the silence and heartbeat handlers read their bodies themselves (so that a bad field is
a 422 naming it), so Litestar sees neither shape. They are declared here instead and
``document`` puts them in: msgspec writes the JSON Schema of each type. Where hub
encodes an answer from a Struct already (a routing decision, a mute, an escalation plan),
the schema is that Struct's own. The tests hold real answers of a populated hub to these
schemas, so a field added, dropped or retyped on one side only fails there.

Every object here is closed (``additionalProperties: false``): an answer has exactly the
fields listed. Labels, annotations and headers are open maps of strings, and a timeline
entry's ``detail`` and a delivery's ``answer`` are whatever JSON they hold.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Parameter,
    RequestBody,
    Schema,
)

from hub import problems, silences
from hub.alertmanager_shapes import (
    AmAlert,
    AmAlertGroup,
    AmPostableSilence,
    AmReceiver,
    AmSilence,
    AmSilenceCreated,
    AmStatus,
)
from hub.alerts import AlertStatus, Outcome
from hub.api_heartbeats import HeartbeatState, NewHeartbeat
from hub.api_incidents import IncidentStatus, NotificationState
from hub.config import Mode
from hub.decision import EventDecision
from hub.decoders.pagerduty import PagerDutyAccepted
from hub.escalation import Plan
from hub.events import Severity, Status
from hub.grouping import Timing
from hub.mute import Mute
from hub.silencing import NewSilence
from hub.store import ROW_ID_MAX

Time = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        description="RFC 3339, UTC; a time stored as something else (a row edited by hand)"
        " is shown as its stored text",
    ),
]
"""An RFC 3339 time in UTC, as every answer gives times. ``format`` is an annotation in
OpenAPI 3.1's JSON Schema, so the stored text ``api.iso`` shows for a time a hand edit
broke is still a string the schema allows; the description says when to expect one."""
LapseReason = Literal["snooze", "ack_timeout"]
_AS_STORED = "a value stored as something else (a row edited by hand) is shown as its stored text"
Whole = Annotated[int | str, msgspec.Meta(description="a whole number; " + _AS_STORED)]
"""A whole-number column: text a hand edit left there that holds no whole number is
shown as that text (``stored.number``), so the schema allows a string, as ``Time``
does; a typed client reads a number, or the text to repair."""


def whole(description: str) -> Any:
    """``Whole``, or null as ``description`` says."""
    return Annotated[int | str | None, msgspec.Meta(description=f"{description}; {_AS_STORED}")]


class Alert(msgspec.Struct, kw_only=True):
    """An alert: one fingerprint's current state, and what holds back its notifications
    now (``mutes``: none once it is resolved)."""

    id: int
    fingerprint: str
    source: str
    status: AlertStatus
    severity: Severity
    summary: str
    labels: dict[str, str]
    annotations: dict[str, str]
    first_seen: Time
    last_seen: Time
    last_change: Time
    duplicates: Whole
    resolved_at: Time | None
    incident_id: whole("null: in no incident")
    changes: Annotated[
        list[Time], msgspec.Meta(description="its recent status changes, counted for flapping")
    ]
    flapping: bool
    ends_at: Annotated[
        Time | None, msgspec.Meta(description="when it resolves unless sent again (endsAt)")
    ]
    fired_at: Annotated[
        Time | None, msgspec.Meta(description="when its current firing began; null if never")
    ]
    mutes: list[Mute]


class HistoryEntry(msgspec.Struct, kw_only=True):
    """One event an alert was sent, as it was recorded."""

    at: Time
    recorded_at: Time
    status: Status
    severity: Severity
    summary: str
    applied: Annotated[
        Literal[0, 1], msgspec.Meta(description="0: older than the alert's last change")
    ]
    event_id: whole("null once retention pruned it")


class AlertDetail(Alert, kw_only=True):
    history: list[HistoryEntry]


class Incident(msgspec.Struct, kw_only=True):
    """An incident: alerts grouped by a route, who holds it, and when its acknowledgement
    lapses (``snoozed_until``) or lapsed (``lapsed_by``, ``lapse_reason``)."""

    id: int
    group_key: str
    route_id: str
    status: IncidentStatus
    severity: Severity
    title: str
    labels: Annotated[dict[str, str], msgspec.Meta(description="the group's labels")]
    receivers: list[str]
    timing: Timing
    escalation: Annotated[str | None, msgspec.Meta(description="its escalation policy")]
    opened_at: Time
    updated_at: Time
    acknowledged_at: Time | None
    acknowledged_by: str | None
    acknowledged_via: Annotated[
        str | None,
        msgspec.Meta(
            description="the token that spoke for acknowledged_by (speaks_for_others); null:"
            " the person acted themselves"
        ),
    ]
    resolved_at: Time | None
    resolved_by: str | None
    resolved_via: Annotated[
        str | None, msgspec.Meta(description="the token that spoke for resolved_by, as above")
    ]
    active_alerts: Whole
    episode: Annotated[
        int | str, msgspec.Meta(description=f"1, then one more at each reopen; {_AS_STORED}")
    ]
    snoozed_until: Time | None
    snooze_reason: LapseReason | None
    title_alert_id: whole("the alert its title is from")
    lapsed_by: str | None
    lapse_reason: LapseReason | None


class TimelineEntry(msgspec.Struct, kw_only=True):
    at: Time
    kind: Annotated[str, msgspec.Meta(examples=["opened", "acknowledged", "escalated"])]
    actor: str | None
    detail: dict[str, Any]


class Attempt(msgspec.Struct, kw_only=True):
    started_at: Time
    duration_ms: Annotated[float | str, msgspec.Meta(description=_AS_STORED)]
    outcome: Literal["sent", "failed"]
    error: str | None


class Notification(msgspec.Struct, kw_only=True):
    """One message to one URL of a receiver, with every attempt to send it."""

    id: int
    alert_id: whole("the alert it is about")
    receiver: str
    channel: Annotated[
        int | str,
        msgspec.Meta(
            description="which of the receiver's urls it was queued for, from 0: its position"
            f" then; it goes to that URL wherever a reload moves it; {_AS_STORED}"
        ),
    ]
    integration: str
    kind: Literal["firing", "resolved"]
    state: NotificationState
    created_at: Time
    due_at: Time
    claimed_until: Time | None
    attempts: Whole
    last_error: str | None
    sent_at: Time | None
    incident_id: whole("null: in no incident")
    changed_at: Time | None
    title: str | None
    attempts_log: list[Attempt]


class EscalationState(msgspec.Struct, kw_only=True):
    """The incident's copy of its policy, the next step (counting across repeats, from
    0) and when it is due (null: finished, or paused by an acknowledgement once that
    step fell due), and since when a mute holds that step (null: not held; ``due_at``
    is then when it is looked at again)."""

    policy: str
    plan: Plan
    next_step: Whole
    due_at: Time | None
    held_at: Time | None


class IncidentDetail(Incident, kw_only=True):
    alerts: list[Alert]
    timeline: list[TimelineEntry]
    notifications: list[Notification]
    escalation_state: EscalationState | None


class Delivery(msgspec.Struct, kw_only=True):
    """A webhook delivery as the audit log keeps it: headers without credentials, and
    the status and answer the sender was given."""

    id: int
    source: str
    delivery_key: str | None
    received_at: Time
    headers: dict[str, str]
    status_code: Whole
    answer: Any
    mode: Mode
    replay_of: whole("the delivery it replays; null: none")


class DeliveryEvent(msgspec.Struct, kw_only=True):
    id: int
    alert_id: int
    fingerprint: str
    status: Status
    severity: Severity
    occurred_at: Time
    outcome: Outcome


class DeliveryDetail(Delivery, kw_only=True):
    body: Annotated[str, msgspec.Meta(description="as sent when UTF-8 JSON, else base64")]
    body_base64: bool
    events: list[DeliveryEvent]
    decision: Annotated[
        list[EventDecision] | None, msgspec.Meta(description="a test-mode delivery's")
    ]


ReplayOf = Annotated[
    int, msgspec.Meta(description="On a replay's answer only: the delivery it replays")
]


class IngestedAlert(msgspec.Struct, kw_only=True):
    """An event's alert as it is now; all null but the fingerprint for an ignored one."""

    id: int | None
    fingerprint: str
    status: AlertStatus | None
    incident_id: int | None


class Ingested(msgspec.Struct, kw_only=True):
    """hub's answer to a live delivery."""

    accepted: int
    duplicates: int
    stale: int
    alerts: list[IngestedAlert]
    delivery_id: int
    ignored: int | msgspec.UnsetType = msgspec.UNSET
    rejected: list[str] | msgspec.UnsetType = msgspec.UNSET
    replay_of: ReplayOf | msgspec.UnsetType = msgspec.UNSET


class Rehearsed(msgspec.Struct, kw_only=True):
    """hub's answer to a delivery to a test-mode source: the decision, nothing done."""

    mode: Literal["test"]
    accepted: int
    decision: list[EventDecision]
    rejected: list[str] | msgspec.UnsetType = msgspec.UNSET
    delivery_id: int
    replay_of: ReplayOf | msgspec.UnsetType = msgspec.UNSET


WEBHOOK_ANSWERS = (Ingested, Rehearsed, PagerDutyAccepted)
"""A webhook's 202 answers: hub's own for a live or a test-mode source, PagerDuty's for
its format. Its 200 has no schema: a repeat gets the first answer again, and a source
of format prometheus answers with an empty body, as Alertmanager does, which no
content a document names could say (``hub.webhooks_openapi``)."""


class DryRun(msgspec.Struct, kw_only=True):
    """What replaying a delivery would do now; nothing is changed."""

    dry_run: Literal[True]
    replay_of: int
    source: str
    mode: Mode
    accepted: int
    decision: list[EventDecision]
    rejected: list[str] | msgspec.UnsetType = msgspec.UNSET


class Silence(msgspec.Struct, kw_only=True):
    """A silence, from the API or (``static``) the config file; null bounds are open."""

    id: str
    matchers: list[str]
    starts_at: Time | None
    ends_at: Time | None
    created_by: Annotated[
        str, msgspec.Meta(description="who made it: the token's name, or the person it named")
    ]
    created_via: Annotated[
        str | None,
        msgspec.Meta(
            description="the token that spoke for created_by (speaks_for_others); null: the"
            " token is created_by"
        ),
    ]
    comment: str
    created_at: Time
    updated_by: Annotated[
        str | None, msgspec.Meta(description="who last changed it in place; null: never")
    ]
    updated_via: Annotated[
        str | None, msgspec.Meta(description="the token that spoke for updated_by, as created_via")
    ]
    updated_at: Time | None
    state: Annotated[
        silences.Shown,
        msgspec.Meta(
            description="unreadable: a hand edit left a value hub cannot read (shown as"
            " stored); it is not in force, and expiring it removes it"
        ),
    ]
    static: bool


_AS_POSTED = 'hub\'s duration format, the shortest exact text ("1d", "90m"), as POST takes it'


class Heartbeat(msgspec.Struct, kw_only=True):
    """A heartbeat; ``period`` and ``grace`` in hub's duration format, as a ``POST``
    takes them. Its token is never shown."""

    name: str
    origin: Literal["config", "api"]
    period: Annotated[str, msgspec.Meta(description=_AS_POSTED, examples=["1d"])]
    grace: Annotated[str, msgspec.Meta(description=_AS_POSTED, examples=["90s"])]
    labels: dict[str, str]
    severity: Severity
    summary: str
    created_at: Time
    last_ping: Time | None
    started_at: Annotated[Time | None, msgspec.Meta(description="a run that sent /start")]
    deadline: Time | None
    overdue: bool
    state: HeartbeatState
    token_required: bool
    paused_at: Annotated[Time | None, msgspec.Meta(description="null: not paused")]
    paused_by: Annotated[
        str | None, msgspec.Meta(description="the token's name, or the person it named")
    ]
    paused_via: Annotated[
        str | None,
        msgspec.Meta(description="the token that spoke for paused_by (speaks_for_others)"),
    ]
    pause_reason: str | None
    resumed_at: Annotated[
        Time | None,
        msgspec.Meta(
            description="its last resume, by a ping or the API: its deadline counts from then"
        ),
    ]


class OnCall(msgspec.Struct, kw_only=True):
    """Who is on call at ``at``, until when (null: no handoff ahead), and who follows."""

    schedule: str
    at: Time
    person: str | None
    until: Time | None
    next: str | None


class Schedule(msgspec.Struct, kw_only=True):
    name: str
    time_zone: str
    people: list[str]
    on_call: OnCall


class Reloaded(msgspec.Struct, kw_only=True):
    status: Literal["reloaded"]
    needs_restart: Annotated[
        list[str], msgspec.Meta(description="changed settings that wait for a restart")
    ]
    warnings: Annotated[
        list[str],
        msgspec.Meta(
            description="legal but risky settings of the config now running, as"
            " `hub check-config` prints them (an unauthenticated source, no API tokens)"
        ),
    ]


class Health(msgspec.Struct):
    status: Literal["ok"]


class Body(NamedTuple):
    """A request body the handler reads itself, and an example a client can send."""

    shape: type
    example: dict[str, Any]


ANSWERS: dict[tuple[str, str], dict[int, Any]] = {
    ("get", "/api/v1/alerts"): {200: list[Alert]},
    ("get", "/api/v1/alerts/{alert_id}"): {200: AlertDetail},
    ("get", "/api/v1/incidents"): {200: list[Incident]},
    ("get", "/api/v1/incidents/{incident_id}"): {200: IncidentDetail},
    ("post", "/api/v1/incidents/{incident_id}/ack"): {200: Incident},
    ("post", "/api/v1/incidents/{incident_id}/snooze"): {200: Incident},
    ("post", "/api/v1/incidents/{incident_id}/unack"): {200: Incident},
    ("post", "/api/v1/incidents/{incident_id}/resolve"): {200: Incident},
    ("get", "/api/v1/notifications"): {200: list[Notification]},
    ("post", "/api/v1/notifications/{notification_id}/retry"): {200: Notification},
    ("post", "/api/v1/notifications/{notification_id}/dismiss"): {200: Notification},
    ("get", "/api/v1/events"): {200: list[Delivery]},
    ("get", "/api/v1/events/{delivery_id}"): {200: DeliveryDetail},
    ("post", "/api/v1/events/{delivery_id}/replay"): {200: DryRun, 202: (Ingested, Rehearsed)},
    ("post", "/webhooks/{source}"): {202: WEBHOOK_ANSWERS},
    ("get", "/api/v1/silences"): {200: list[Silence]},
    ("get", "/api/v1/silences/{silence_id}"): {200: Silence},
    ("post", "/api/v1/silences"): {201: Silence},
    ("put", "/api/v1/silences/{silence_id}"): {200: Silence},
    ("delete", "/api/v1/silences/{silence_id}"): {200: Silence},
    ("get", "/api/v1/heartbeats"): {200: list[Heartbeat]},
    ("get", "/api/v1/heartbeats/{name}"): {200: Heartbeat},
    ("post", "/api/v1/heartbeats"): {201: Heartbeat},
    ("delete", "/api/v1/heartbeats/{name}"): {200: Heartbeat},
    ("post", "/api/v1/heartbeats/{name}/pause"): {200: Heartbeat},
    ("post", "/api/v1/heartbeats/{name}/resume"): {200: Heartbeat},
    ("get", "/api/v1/schedules"): {200: list[Schedule]},
    ("get", "/api/v1/schedules/{name}/oncall"): {200: OnCall},
    ("post", "/-/reload"): {200: Reloaded},
    ("get", "/healthz"): {200: Health},
    ("get", "/api/v2/status"): {200: AmStatus},
    ("get", "/api/v2/receivers"): {200: list[AmReceiver]},
    ("get", "/api/v2/alerts"): {200: list[AmAlert]},
    ("get", "/api/v2/alerts/groups"): {200: list[AmAlertGroup]},
    ("get", "/api/v2/silences"): {200: list[AmSilence]},
    ("get", "/api/v2/silence/{silence_id}"): {200: AmSilence},
    ("post", "/api/v2/silences"): {200: AmSilenceCreated},
    ("head", "/healthz"): {200: Health},
}
"""The JSON each operation answers, by status; a tuple's types are each a possible answer
(a replay answers as the webhook would: live, or test mode)."""

EMPTY_ANSWERS = {("delete", "/api/v2/silence/{silence_id}"): 200}
"""The operations whose success has no body, by status (Alertmanager's expiry)."""

SILENCE_EXAMPLE = {
    "matchers": ['service="checkout"', 'env=~"prod|staging"'],
    "duration": "2h",
    "comment": "checkout deploy 4.2",
}
BODIES: dict[tuple[str, str], Body] = {
    ("post", "/api/v1/silences"): Body(NewSilence, SILENCE_EXAMPLE),
    ("put", "/api/v1/silences/{silence_id}"): Body(
        NewSilence,
        {**SILENCE_EXAMPLE, "duration": "4h", "comment": "checkout deploy 4.2 runs late"},
    ),
    ("post", "/api/v2/silences"): Body(
        AmPostableSilence,
        {
            "matchers": [{"name": "service", "value": "checkout", "isRegex": False}],
            "startsAt": "2026-11-28T12:00:00Z",
            "endsAt": "2026-11-28T14:00:00Z",
            "createdBy": "alice",
            "comment": "checkout deploy 4.2",
        },
    ),
    ("post", "/api/v1/heartbeats"): Body(
        NewHeartbeat,
        {"name": "nightly-backup", "period": "1d", "grace": "30m", "labels": {"team": "ops"}},
    ),
}
"""The bodies read by handlers that answer a bad field with a 422 naming it."""

_REF = "#/components/schemas/{name}"


def document(openapi: OpenAPI) -> None:
    """Put ``ANSWERS`` and ``BODIES`` into ``openapi``: their schemas as components, and
    each operation's answers and body referring to them; ``EMPTY_ANSWERS`` get none. A
    path or status missing from the document, or a component name Litestar took
    already, is a mistake here: it raises, so the app is not built."""
    answers = [
        (key, status, kinds if isinstance(kinds, tuple) else (kinds,))
        for key, by_status in ANSWERS.items()
        for status, kinds in by_status.items()
    ]
    types = [kind for *_, kinds in answers for kind in kinds]
    types += [body.shape for body in BODIES.values()]
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    schema_of = dict(zip(types, refs, strict=True))
    _add_components(openapi, components)
    for key, status, kinds in answers:
        schemas = [schema_of[kind] for kind in kinds]
        schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
        response = (_operation(openapi, key).responses or {})[str(status)]
        response.content = {"application/json": OpenAPIMediaType(schema=schema)}
    for key, status in EMPTY_ANSWERS.items():
        (_operation(openapi, key).responses or {})[str(status)].content = None
    for key, body in BODIES.items():
        media = OpenAPIMediaType(schema=schema_of[body.shape], example=body.example)
        _operation(openapi, key).request_body = RequestBody(
            content={"application/json": media}, required=True
        )
    _integer_bounds(openapi)
    _optional_bodies(openapi)


def _optional_bodies(openapi: OpenAPI) -> None:
    """Say a body its handler does without (``data: JSONBody[X | None] = None``: pause,
    resume, an incident's ack) is optional. Litestar marks every body required, so a
    client generated from the document would send one where hub asks for none."""
    for item in (openapi.paths or {}).values():
        for operation in problems.operations(item):
            body = operation.request_body
            if isinstance(body, RequestBody) and _admits_null(body):
                body.required = False


def _admits_null(body: RequestBody) -> bool:
    """Whether the body's JSON schema lets it be ``null``, Litestar's word for ``None``."""
    media = (body.content or {}).get("application/json")
    schema = media.schema if media is not None else None
    return isinstance(schema, Schema) and any(
        isinstance(option, Schema) and option.type == OpenAPIType.NULL
        for option in schema.one_of or ()
    )


def _integer_bounds(openapi: OpenAPI) -> None:
    """Write the parameters' bounds as the integers they are. Litestar writes them as
    floats, and the float of a path id's 2**63 - 1 is 2**63: a client or validator
    reading the document would take an id hub refuses with 400 for a valid one."""
    for item in (openapi.paths or {}).values():
        for operation in problems.operations(item):
            for parameter in operation.parameters or ():
                if isinstance(parameter, Parameter) and parameter.schema is not None:
                    schema = parameter.schema
                    schema.minimum = _integer(schema.minimum)
                    schema.maximum = _integer(schema.maximum)


def _integer(bound: Any) -> Any:
    """A float bound as its integer: ``ROW_ID_MAX`` for its rounded float, which no
    other bound of hub's is."""
    if not isinstance(bound, float) or not bound.is_integer():
        return bound
    return ROW_ID_MAX if bound == float(ROW_ID_MAX) else int(bound)


def _add_components(openapi: OpenAPI, components: dict[str, dict[str, Any]]) -> None:
    """Add msgspec's schemas as written (Litestar serializes plain dicts as they are),
    each object closed: answers have exactly their fields, and msgspec encodes the
    Structs and dataclasses they reuse with exactly theirs."""
    if openapi.components is None:
        openapi.components = Components()
    schemas = dict(openapi.components.schemas or {})
    for name, schema in components.items():
        if name in schemas:
            raise ValueError(f"two schemas are named {name}")
        if "properties" in schema:
            schema.setdefault("additionalProperties", False)
        schemas[name] = schema
    openapi.components.schemas = schemas


def _operation(openapi: OpenAPI, key: tuple[str, str]) -> Operation:
    method, path = key
    operation = getattr((openapi.paths or {})[path], method)
    if operation is None:
        raise KeyError(key)
    return operation
