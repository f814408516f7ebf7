"""The read API, config reload, health, readiness and metrics endpoints."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
from litestar import Request, Response, get, post, route
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, Parameter, QueryParameter
from prometheus_client import CONTENT_TYPE_LATEST

from hub import access, dispatch, logs, matchers, mute, paging, silencing, stored
from hub.access import BEARER, require
from hub.alerts import AlertStatus, matchable
from hub.api_params import Since, query_matchers, since_timestamp
from hub.errors import NotFound
from hub.events import Severity
from hub.problems import problem, read_refusals, refusal, refusals
from hub.rules import Rules
from hub.silences import Silence
from hub.store import ALERT_ORDER, ROW_ID_MAX

ALERTS = paging.Listing("alerts", ALERT_ORDER)
RowId = Annotated[int, Parameter(ge=1, le=ROW_ID_MAX, description="a row id")]
"""A path id: SQLite's integers end at 2**63 - 1, so a larger one is a 400, not a 500.
Routes take it as ``{name:str}`` and this type reads it, so that ``abc`` is the same
400 naming the parameter, where Litestar's ``:int`` answers a bare 404."""

_TIME_FIELDS = (
    "first_seen",
    "last_seen",
    "last_change",
    "resolved_at",
    "fired_at",
    "at",
    "recorded_at",
    "created_at",
    "changed_at",
    "due_at",
    "sent_at",
    "started_at",
    "claimed_until",
    "opened_at",
    "updated_at",
    "acknowledged_at",
    "snoozed_until",
    "held_at",
    "last_notified_at",
    "ends_at",
    "received_at",
    "occurred_at",
)


def iso(value: object) -> str | None:
    """Epoch seconds as RFC 3339 UTC, the form every API response uses. A value that is
    no time (text or bytes a hand edit left in a time column, a number past the year
    9999) is shown as its text (``logs.text``): a read must not fail on the row it shows,
    nor hide the value an operator has to repair."""
    if value is None:
        return None
    if isinstance(value, int | float):
        with contextlib.suppress(OverflowError, OSError, ValueError):
            return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")
    return logs.text(value)


def equalities(filters: dict[str, object]) -> tuple[str, dict[str, object]]:
    """A WHERE clause of ``column = value`` for the filters given (None: not given)."""
    given = {column: value for column, value in filters.items() if value is not None}
    where = " AND ".join(f"{column} = :{column}" for column in given) or "1"
    return where, given


_WHOLE_FIELDS = (
    "duplicates",
    "incident_id",
    "alert_id",
    "event_id",
    "channel",
    "attempts",
    "active_alerts",
    "episode",
    "title_alert_id",
    "next_step",
    "status_code",
    "replay_of",
)
"""Whole-number columns that are not keys, which a hand edit may leave holding text."""
_FLAG_FIELDS = ("applied",)
"""0/1 columns the API shows as 0 or 1 (an alert's ``flapping`` is read by the store)."""
_NUMBER_FIELDS = ("duration_ms",)
"""Columns of any number, fractions included."""


def present(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its times in RFC 3339, an alert's recent ``changes`` (kept as epoch
    seconds for flapping) too, numbers and flags read by ``stored``'s rule, and bytes
    as text (``shown``)."""
    return {key: _shown(row, key) for key in row}


def _shown(row: dict[str, Any], key: str) -> Any:
    value = row[key]
    if key in _TIME_FIELDS:
        return iso(value)
    if key in _WHOLE_FIELDS:
        return stored.number(row, key)
    if key in _FLAG_FIELDS:
        return int(stored.flag(row, key))
    if key in _NUMBER_FIELDS:
        return stored.number(row, key, float)
    if key == "changes":
        return [iso(moment) for moment in value]
    return shown(value)


def shown(value: Any) -> Any:
    """A stored value as the API shows it: bytes a hand edit or a fault left in a text
    column as text (``logs.text``), where JSON would show them as base64 no one reads
    as the value it is; any other value as it is."""
    return logs.text(value) if isinstance(value, bytes) else value


class MuteMoment(NamedTuple):
    """What decides mutes at one moment, read once: the rules in force, the time and the
    silences active then. A read run aside (``Store.read_aside``) runs in a thread while
    the loop reloads the config and creates and expires silences; taking these once, it
    never shows mutes of two configs, nor an alert held by a silence its answer does
    not list as active."""

    rules: Rules
    now: float
    silences: list[Silence]


def mute_moment(hub: Any) -> MuteMoment:
    """The rules, the time and the active silences now, for one read's mutes."""
    rules, now = hub.rules, hub.clock()
    return MuteMoment(rules, now, hub.active_silences(datetime.fromtimestamp(now, UTC)))


def with_mutes(hub: Any, alerts: list[dict[str, Any]], at: MuteMoment) -> list[dict[str, Any]]:
    """Each alert with ``mutes``: what holds it back from notifications ``at`` that
    moment (silences, maintenance, inhibition, flapping; none once resolved), as the
    dispatcher would decide. Mutes are decided at send time and never stored, so they
    are worked out here, reading the firing alerts once for the whole list."""
    if not any(alert["status"] == "firing" for alert in alerts):
        return [{**alert, "mutes": []} for alert in alerts]
    muter = _muter(at, dispatch.firing_labels(hub.store.reading(), at.rules))
    return [{**alert, "mutes": msgspec.to_builtins(muter.mutes(alert))} for alert in alerts]


def _muter(at: MuteMoment, firing_labels: list[dict[str, str]]) -> mute.Muter:
    """The dispatcher's mute stage ``at`` that moment, inhibiting by ``firing_labels``."""
    return dispatch.muter(at.rules, at.now, at.silences, firing_labels)


def muted_only(
    hub: Any,
    muted: bool | None,
    held: Callable[[list[dict[str, Any]]], Collection[int]],
    at: MuteMoment,
) -> tuple[str, dict[str, str]]:
    """A list's ``muted`` filter as a WHERE condition: the rows whose ids ``held`` picks
    from the firing alerts, each marked with whether a mute holds it ``at`` that moment
    (``True``), the others (``False``), or every row (None). Mutes are not stored, so
    they are worked out for every firing alert (only a firing alert is ever muted: as
    many as fire at once, read through the status index, however many resolved ones the
    store holds), from one narrow read that also feeds inhibition, stopping at each
    alert's first mute. The filter is SQL, not a look at the rows read, so a page is
    full while matching rows remain; the ids go in as one JSON array, as there may be
    more than SQLite takes parameters."""
    if muted is None:
        return "1", {}
    firing = hub.store.firing_alerts()
    labels = [matchable(alert) for alert in firing] if at.rules.inhibit_rules else []
    reasons = _muter(at, labels).reasons(firing)
    marked = [{**alert, "mutes": alert["fingerprint"] in reasons} for alert in firing]
    ids = sorted(held(marked))
    negation = "" if muted else "NOT "
    return f"id {negation}IN (SELECT value FROM json_each(:held))", {"held": json.dumps(ids)}


def muted_alerts(alerts: list[dict[str, Any]]) -> set[int]:
    """The ids of the alerts (with their ``mutes``, a list or a flag) that a mute holds
    back."""
    return {alert["id"] for alert in alerts if alert["mutes"]}


def muted_incidents(alerts: list[dict[str, Any]]) -> set[int]:
    """The incidents of these firing alerts (with their ``mutes``, a list or a flag)
    whose every firing alert is muted: only those count as muted, so that a list of
    silenced test incidents does not hide the one live incident among them. An alert
    that fired on after retention pruned its incident belongs to none."""
    firing = {alert["incident_id"] for alert in alerts if alert["incident_id"] is not None}
    heard = {alert["incident_id"] for alert in alerts if not alert["mutes"]}
    return firing - heard


@get(
    "/api/v1/alerts",
    summary="List alerts",
    guards=[require("read")],
    security=BEARER,
    responses=read_refusals(400, 401),
    response_headers=[paging.NEXT_LINK],
)
async def list_alerts(
    request: Request,
    status: FromQuery[AlertStatus | None] = None,
    severity: FromQuery[Severity | None] = None,
    source: FromQuery[str | None] = None,
    label: Annotated[
        list[str] | None,
        QueryParameter(description='label matchers, e.g. service="checkout" or env!~"dev|test"'),
    ] = None,
    since: Since = None,
    muted: Annotated[
        bool | None,
        QueryParameter(
            description="true: only the alerts a mute holds back now; false: only the others"
            " (resolved ones included); absent: both"
        ),
    ] = None,
    limit: paging.Limit = 100,
    cursor: paging.Cursor = None,
) -> Response[list[dict[str, Any]]]:
    """Newest change first, a page at a time (``Link: rel="next"``); ``label`` takes
    Alertmanager matchers and may repeat; ``since`` keeps the alerts changed (their
    ``last_change``) at or after a time; ``muted`` keeps those with mutes, or without."""
    wanted = query_matchers("label", label)
    where, params = equalities({"status": status, "severity": severity, "source": source})
    if since is not None:
        where += " AND last_change >= :since"
        params["since"] = since_timestamp(since)
    hub = request.app.state.hub

    def listed() -> tuple[list[dict[str, Any]], str | None]:
        at = mute_moment(hub)
        condition, more = muted_only(hub, muted, muted_alerts, at)
        found = ALERTS.page(
            functools.partial(hub.store.alerts, f"{where} AND {condition}", params | more),
            cursor,
            limit,
            functools.partial(_labelled, wanted) if wanted else None,
        )
        return [present(row) for row in with_mutes(hub, found.rows, at)], found.next

    return paging.respond(request, *await hub.store.read_aside(listed))


def _labelled(wanted: list[matchers.Matcher], alert: dict[str, Any]) -> bool:
    return matchers.matches_all(wanted, matchable(alert))


@get(
    "/api/v1/alerts/{alert_id:str}",
    summary="One alert with its history",
    guards=[require("read")],
    security=BEARER,
    responses=read_refusals(400, 401, 404),
)
async def get_alert(request: Request, alert_id: RowId) -> dict[str, Any]:
    hub = request.app.state.hub
    return await hub.store.read_aside(lambda: _alert(hub, alert_id))


def _alert(hub: Any, alert_id: int) -> dict[str, Any]:
    """One alert with its history; its mutes read every firing alert's labels when
    inhibit rules are configured, so it is read aside (``Store.read_aside``)."""
    alert = hub.store.alert(alert_id)
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}")
    history = [present(row) for row in hub.store.alert_history(alert_id)]
    return {**present(with_mutes(hub, [alert], mute_moment(hub))[0]), "history": history}


@post(
    "/-/reload",
    summary="Reload the config file",
    status_code=200,
    guards=[require("admin")],
    security=BEARER,
    responses={
        400: refusal("The config file has problems, listed; the old config keeps running"),
        **refusals(401, 403),
        409: refusal("The hub was started without a config file"),
    },
)
async def reload_config(request: Request) -> Response:
    """200 once the new config runs, naming the changed settings that wait for a restart
    and the new config's warnings; 400 listing every problem, the old config still
    running."""
    problems, needs_restart, warnings = request.app.state.hub.reload(access.actor(request) or "")
    if problems:
        detail = f"{len(problems)} problem(s) in the config file; the running config is unchanged"
        return problem(400, "Invalid configuration", detail, problems=problems)
    return Response({"status": "reloaded", "needs_restart": needs_restart, "warnings": warnings})


PROBE_METHODS = ["GET", "HEAD"]
"""Probes answer HEAD too, as load balancers and ``curl -I`` send it: the same status,
without the body, which the server drops."""


@route("/healthz", http_method=PROBE_METHODS, summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


class Readiness(msgspec.Struct):
    """``/readyz``'s answer, ready or not: a probe reads the status code, a person the checks."""

    status: Literal["ready", "not ready"]
    checks: dict[str, bool]


@route(
    "/readyz",
    http_method=PROBE_METHODS,
    summary="Readiness: store writable, scheduler and sender running",
    responses={
        503: ResponseSpec(
            Readiness, description="Not ready: checks says which failed", generate_examples=False
        )
    },
)
async def readyz(request: Request) -> Response[Readiness]:
    checks = await request.app.state.hub.ready()
    ready = all(checks.values())
    return Response(
        Readiness("ready" if ready else "not ready", checks),
        status_code=200 if ready else 503,
    )


@get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The exposition, built off the event loop (``hub.metrics.Exposition``), typed
    exactly as the client library names it: given as the media type, Litestar added a
    second ``charset``, which Prometheus 3 cannot parse and so refuses the scrape."""
    body = await request.app.state.hub.exposition.latest()
    return Response(body, headers={"content-type": CONTENT_TYPE_LATEST})


HANDLERS = [
    *silencing.HANDLERS,
    list_alerts,
    get_alert,
    reload_config,
    healthz,
    readyz,
    metrics,
]
