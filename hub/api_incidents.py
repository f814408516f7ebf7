"""Incidents, their actions (ack, snooze, unack, resolve), the delivery log with its
dead letters' actions (retry, dismiss), and the signed one-click acknowledgement link
carried in every notification.

An action is recorded as taken by the token's name, or, when the token speaks for
others (a chat bot's, a portal's), by the person its body names as ``by``, with the
token as the timeline entry's ``via`` (``access.Caller.naming``, as silences do)."""

from __future__ import annotations

import functools
import logging
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromQuery, JSONBody, QueryParameter

from hub import access, dispatch, logs, matchers, outbox, paging, snoozes
from hub.access import BEARER, PERSON_MAX, require
from hub.api import (
    ROW_ID_MAX,
    RowId,
    equalities,
    mute_moment,
    muted_incidents,
    muted_only,
    present,
    with_mutes,
)
from hub.api_params import COMMENT_MAX, Since, check_comment, query_matchers, since_timestamp
from hub.correlate import Acted, act
from hub.errors import Conflict, NotFound
from hub.events import Severity
from hub.problems import read_refusals, refusal, refusals
from hub.store import ID_ORDER, INCIDENT_ORDER, Store

log = logging.getLogger("hub.incidents")
INCIDENTS = paging.Listing("incidents", INCIDENT_ORDER)
NOTIFICATIONS = paging.Listing("notifications", ID_ORDER)
IncidentStatus = Literal["open", "acknowledged", "resolved"]
NotificationState = Literal["pending", "sending", "sent", "dead", "dismissed"]


Comment = Annotated[
    str,
    msgspec.Meta(
        max_length=COMMENT_MAX,
        description="why; recorded on the incident's timeline with who acted",
    ),
]
By = Annotated[
    str | None,
    msgspec.Meta(
        description="who acts: the token's name (the default), or, with a token that speaks"
        " for others, the person it acts for, recorded with the token as via; at most"
        f" {PERSON_MAX} characters on one line"
    ),
]
ACTED = "an action is recorded as taken by the token that asks for it"
"""What the 403 for a ``by`` naming someone else says the token alone is recorded as."""


class ActionBody(msgspec.Struct, forbid_unknown_fields=True):
    """Why, and who acts; recorded on the incident's timeline."""

    comment: Comment = ""
    by: By = None


class SnoozeBody(msgspec.Struct, forbid_unknown_fields=True):
    """How long the acknowledgement lasts, and why (recorded as for an ack)."""

    duration: Annotated[
        str,
        msgspec.Meta(
            description='hub\'s duration format, from "1m" to "7d": "30m", "4h"', examples=["4h"]
        ),
    ]
    comment: Comment = ""
    by: By = None


NAMING_REFUSALS = {
    403: refusal(
        "The token's role is too low, or by names someone else and the token does not"
        " speak for others"
    ),
    422: refusal(
        f"by is blank, over {PERSON_MAX} characters or holds control characters; field is $.by"
    ),
}
"""The refusals of an action whose body may name who acts (``by``)."""
RESOLVE_REFUSALS = {
    **refusals(401, 404, 413, 503),
    **NAMING_REFUSALS,
    400: refusal('An unknown query parameter, or a body that is not {"comment": text, "by": text}'),
}
"""Litestar checks the body, so a wrong shape is a 400, not a 422. A resolve is never
a 409: a resolved incident is answered as stored, with nothing recorded."""
ACTION_REFUSALS = {
    **RESOLVE_REFUSALS,
    409: refusal(
        "The incident is resolved, acknowledged by someone else (ack), or not"
        " acknowledged (unack); incident_status gives its status, and a refused ack"
        " acknowledged_by, acknowledged_at and acknowledged_until (null: until resolved)"
    ),
}
"""Ack and unack: 409 when the incident is resolved already, acknowledged by someone
else (ack), or not acknowledged (unack), with the state it hit as members."""
SNOOZE_REFUSALS = {
    **ACTION_REFUSALS,
    400: refusal(
        "An unknown query parameter, or a body that is not"
        ' {"duration": text, "comment": text, "by": text}'
    ),
    422: refusal(
        "duration is not a duration from 1m to 7d, or by is not a name (as for an ack);"
        " field names which"
    ),
}


def _present_incident(row: dict[str, Any]) -> dict[str, Any]:
    return present(row)


@get(
    "/api/v1/incidents",
    summary="List incidents",
    guards=[require("read")],
    security=BEARER,
    responses=read_refusals(400, 401),
    response_headers=[paging.NEXT_LINK],
)
async def list_incidents(
    request: Request,
    status: FromQuery[IncidentStatus | None] = None,
    severity: FromQuery[Severity | None] = None,
    label: Annotated[
        list[str] | None,
        QueryParameter(description='matchers on the incident\'s group labels, e.g. service="api"'),
    ] = None,
    since: Since = None,
    muted: Annotated[
        bool | None,
        QueryParameter(
            description="true: only the incidents whose every firing alert a mute holds back"
            " now (the console's muted ones); false: only the others; absent: both"
        ),
    ] = None,
    limit: paging.Limit = 100,
    cursor: paging.Cursor = None,
) -> Response[list[dict[str, Any]]]:
    """Most recently changed first, a page at a time (``Link: rel="next"``)."""
    wanted = query_matchers("label", label)
    after = None if since is None else since_timestamp(since)
    hub = request.app.state.hub

    def listed() -> tuple[list[dict[str, Any]], str | None]:
        only = muted_only(hub, muted, muted_incidents, mute_moment(hub))
        found = find(hub.store, wanted, status, severity, after, limit, cursor, only)
        return [_present_incident(row) for row in found.rows], found.next

    return paging.respond(request, *await hub.store.read_aside(listed))


def find(
    store: Store,
    wanted: list[matchers.Matcher],
    status: str | None = None,
    severity: str | None = None,
    since: float | None = None,
    limit: int = 100,
    cursor: str | None = None,
    only: tuple[str, dict[str, str]] = ("1", {}),
) -> paging.Page:
    """A page of incidents by status, severity and matchers on their group labels, most
    recently changed first, ``only`` those a further condition keeps (``hub.api.muted_only``):
    the API's list and the console's tabs."""
    where, params = equalities({"status": status, "severity": severity})
    if since is not None:
        where += " AND updated_at >= :since"
        params["since"] = since
    where, params = f"{where} AND {only[0]}", params | only[1]
    return INCIDENTS.page(
        functools.partial(store.incidents, where, params),
        cursor,
        limit,
        functools.partial(_grouped_by, wanted) if wanted else None,
    )


def _grouped_by(wanted: list[matchers.Matcher], incident: dict[str, Any]) -> bool:
    return matchers.matches_all(wanted, incident["labels"])


@get(
    "/api/v1/incidents/{incident_id:str}",
    summary="One incident: alerts, timeline, deliveries",
    guards=[require("read")],
    security=BEARER,
    responses=read_refusals(400, 401, 404),
)
async def get_incident(request: Request, incident_id: RowId) -> dict[str, Any]:
    hub = request.app.state.hub
    return await hub.store.read_aside(lambda: _incident(hub, incident_id))


def _incident(hub: Any, incident_id: int) -> dict[str, Any]:
    """One incident in full: it may hold thousands of alerts, each with its mutes, so it
    is read aside (``Store.read_aside``)."""
    store = hub.store
    incident = store.incident(incident_id)
    if incident is None:
        raise NotFound(f"no incident with id {incident_id}")
    deliveries = store.notifications({"incident_id": incident_id}, limit=1000)
    return {
        **_present_incident(incident),
        "alerts": [
            present(a)
            for a in with_mutes(hub, store.incident_alerts(incident_id), mute_moment(hub))
        ],
        "timeline": [present(t) for t in store.timeline(incident_id)],
        "notifications": [_present_notification(store, n) for n in deliveries],
        "escalation_state": _present_escalation(store.escalation(incident_id)),
    }


def _present_escalation(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """The incident's copy of its policy: steps, the next one (counting across
    repeats, from 0) and when it is due (null: paused by an ack, or finished), and
    since when a mute holds it (null: not held; ``due_at`` is then the next look)."""
    if row is None:
        return None
    keys = ("policy", "plan", "next_step", "due_at", "held_at")
    return present({key: row[key] for key in keys})


async def _act(
    request: Request,
    incident_id: int,
    action: str,
    data: ActionBody | SnoozeBody | None,
    snooze: float | None = None,
):
    body = data or ActionBody()
    actor, token = acting(request, body.by)
    hub = request.app.state.hub
    done = await perform(
        hub, incident_id, action, actor, body.comment, snooze=snooze, via="api", token=token
    )
    return _present_incident(done.incident)


def acting(request: Request, by: str | None) -> tuple[str, str | None]:
    """Who takes an action asked through the API, and the token that named them (None:
    the token itself): 403 for a ``by`` naming someone else unless the token speaks for
    others, 422 for one no person is called."""
    return access.caller(request).naming(by, "by", ACTED)


async def perform(
    hub: Any,
    incident_id: int,
    action: str,
    actor: str,
    comment: str,
    episode: int | None = None,
    snooze: float | None = None,
    *,
    via: str,
    token: str | None = None,
) -> Acted:
    """Acknowledge (for ``snooze`` seconds with action ``snooze``), unacknowledge or
    resolve, and wake the workers: what the API, the console and the ack link all do
    (the link only in the episode it was sent about), ``via`` naming which for the log,
    ``token`` the one that named ``actor`` (``acting``), if one did. An action that
    changed nothing (a repeated resolve, the holder's repeated ack) wakes and logs
    nothing."""
    check_comment(comment)
    now = hub.clock()
    done = await hub.store.write(
        lambda tx: act(tx, incident_id, action, actor, comment, now, episode, snooze, token)
    )
    if done.changed:
        hub.changed()
        _log_action(action, done.incident, actor, via, token)
    return done


def _log_action(action: str, incident: dict, actor: str, via: str, token: str | None) -> None:
    """One line per action taken: who took or let go of an incident, and how."""
    until = incident["snoozed_until"] if action == "snooze" else None
    log.info(
        "event=%s incident=%d by=%s via=%s%s%s",
        _LOGGED[action],
        incident["id"],
        logs.value(actor),
        via,
        logs.vouched(token),
        "" if until is None else f" until={snoozes.stamp(until)}",
    )


_LOGGED = {
    "ack": "incident_acknowledged",
    "snooze": "incident_snoozed",
    "unack": "incident_unacknowledged",
    "resolve": "incident_resolved",
}
"""The event each action logs."""


@post(
    "/api/v1/incidents/{incident_id:str}/ack",
    status_code=200,
    summary="Acknowledge",
    guards=[require("write")],
    security=BEARER,
    responses=ACTION_REFUSALS,
)
async def ack_incident(
    request: Request, incident_id: RowId, data: JSONBody[ActionBody | None] = None
) -> dict[str, Any]:
    return await _act(request, incident_id, "ack", data)


@post(
    "/api/v1/incidents/{incident_id:str}/snooze",
    status_code=200,
    summary="Acknowledge for a while (snooze)",
    guards=[require("write")],
    security=BEARER,
    responses=SNOOZE_REFUSALS,
)
async def snooze_incident(
    request: Request, incident_id: RowId, data: JSONBody[SnoozeBody]
) -> dict[str, Any]:
    """Acknowledged by the caller until ``duration`` has passed (``snoozed_until``); then,
    unless resolved or unacknowledged meanwhile, it is open again, its receivers are
    paged and its escalation starts over. The holder may snooze again or end the snooze
    with a plain ack; 409 as for an ack."""
    seconds = snoozes.length(data.duration)
    return await _act(request, incident_id, "snooze", data, seconds)


@post(
    "/api/v1/incidents/{incident_id:str}/unack",
    status_code=200,
    summary="Unacknowledge",
    guards=[require("write")],
    security=BEARER,
    responses=ACTION_REFUSALS,
)
async def unack_incident(
    request: Request, incident_id: RowId, data: JSONBody[ActionBody | None] = None
) -> dict[str, Any]:
    return await _act(request, incident_id, "unack", data)


@post(
    "/api/v1/incidents/{incident_id:str}/resolve",
    status_code=200,
    summary="Resolve",
    guards=[require("write")],
    security=BEARER,
    responses=RESOLVE_REFUSALS,
)
async def resolve_incident(
    request: Request, incident_id: RowId, data: JSONBody[ActionBody | None] = None
) -> dict[str, Any]:
    """200 with the incident; one already resolved is answered as stored, by whoever
    resolved it, and nothing is recorded: a retried resolve is no conflict."""
    return await _act(request, incident_id, "resolve", data)


HIDDEN_COLUMNS = ("payload", "retried_attempts", "url_keys")
"""The body (its title is shown), the count the retry budget starts from, and the
digests of its receiver's URLs (``channel`` says which it was queued for)."""


def _present_notification(store, row: dict[str, Any]) -> dict[str, Any]:
    shown = {key: value for key, value in row.items() if key not in HIDDEN_COLUMNS}
    shown["receiver"] = logs.text(row["receiver"])  # a string, as the schema says
    payload = row["payload"]
    shown["title"] = payload.get("title") if isinstance(payload, dict) else None
    shown["attempts_log"] = [present(a) for a in store.notification_attempts(row["id"])]
    return present(shown)


@get(
    "/api/v1/notifications",
    summary="The delivery log",
    guards=[require("read")],
    security=BEARER,
    responses=refusals(400, 401),
    response_headers=[paging.NEXT_LINK],
)
async def list_notifications(
    request: Request,
    incident: Annotated[int | None, QueryParameter(ge=1, le=ROW_ID_MAX)] = None,
    receiver: FromQuery[str | None] = None,
    wanted: Annotated[NotificationState | None, QueryParameter(name="state")] = None,
    limit: paging.Limit = 100,
    cursor: paging.Cursor = None,
) -> Response[list[dict[str, Any]]]:
    """Every notification with its attempts, newest first, a page at a time (``Link:
    rel="next"``): who was told what, when, and did it arrive."""
    filters = {
        column: value
        for column, value in (("incident_id", incident), ("receiver", receiver), ("state", wanted))
        if value is not None
    }
    store = request.app.state.hub.store
    found = NOTIFICATIONS.page(functools.partial(store.notifications, filters), cursor, limit)
    return paging.respond(
        request, [_present_notification(store, row) for row in found.rows], found.next
    )


@post(
    "/api/v1/notifications/{notification_id:str}/retry",
    status_code=200,
    summary="Send a dead letter again",
    guards=[require("admin")],
    security=BEARER,
    responses={
        **refusals(400, 401, 403, 404, 503),
        409: refusal(
            "Not dead-lettered, a reload removed its receiver or URL, or its message cannot be read"
        ),
    },
)
async def retry_notification(request: Request, notification_id: RowId) -> dict[str, Any]:
    hub = request.app.state.hub
    await retry(hub, notification_id, access.actor(request) or "api", via="api")
    return _present_notification(hub.store, hub.store.notification(notification_id))


async def retry(hub: Any, notification_id: int, by: str, *, via: str) -> None:
    """Give a dead letter a fresh attempt budget and wake the sender (one for a
    receiver the config lacked goes to each of its URLs: ``dispatch.retry``); 404
    unknown, 409 not dead, or for a receiver or URL a reload removed, or a stored row
    that cannot be read until it is repaired (``outbox.readable``; each would only die
    again at once). Shared by the API and the console's retry button."""
    row = _notification(hub, notification_id)
    found = outbox.readable(hub.config, row, outbox.reachable)
    if isinstance(found, str):
        raise Conflict(f"notification {notification_id} cannot be sent again: {found}")
    _, receiver = found
    now = hub.clock()
    if not await hub.store.write(lambda tx: dispatch.retry(tx, row, receiver, now)):
        raise Conflict(f"notification {notification_id} is not dead-lettered")
    hub.sender.poke()
    log.info("event=notification_retried id=%d by=%s via=%s", notification_id, logs.value(by), via)


@post(
    "/api/v1/notifications/{notification_id:str}/dismiss",
    status_code=200,
    summary="Set a dead letter aside: nobody needs it sent",
    guards=[require("admin")],
    security=BEARER,
    responses={
        **refusals(400, 401, 404, 503),
        **NAMING_REFUSALS,
        409: refusal("Not dead-lettered"),
    },
)
async def dismiss_notification(
    request: Request, notification_id: RowId, data: JSONBody[ActionBody | None] = None
) -> dict[str, Any]:
    hub = request.app.state.hub
    body = data or ActionBody()
    by, token = acting(request, body.by)
    await dismiss(hub, notification_id, by, body.comment, via="api", token=token)
    return _present_notification(hub.store, hub.store.notification(notification_id))


async def dismiss(
    hub: Any, notification_id: int, by: str, comment: str, *, via: str, token: str | None = None
) -> None:
    """Set a dead letter aside (``outbox.dismiss``), so it no longer counts as waiting
    for someone to act; 404 unknown, 409 not dead. Shared by the API and the console;
    ``token`` is the one that named ``by``, as for an incident's action."""
    check_comment(comment)
    row = _notification(hub, notification_id)
    now = hub.clock()
    if not await hub.store.write(lambda tx: outbox.dismiss(tx, row, by, comment, now, token)):
        raise Conflict(f"notification {notification_id} is not dead-lettered")
    log.info(
        "event=notification_dismissed id=%d by=%s via=%s%s",
        notification_id,
        logs.value(by),
        via,
        logs.vouched(token),
    )


def _notification(hub: Any, notification_id: int) -> dict:
    row = hub.store.notification(notification_id)
    if row is None:
        raise NotFound(f"no notification with id {notification_id}")
    return row


HANDLERS = [
    list_incidents,
    get_incident,
    ack_incident,
    snooze_incident,
    unack_incident,
    resolve_incident,
    list_notifications,
    retry_notification,
    dismiss_notification,
]
