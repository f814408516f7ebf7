"""Heartbeat pings (``/ping/{name}``, ``/fail``, ``/start``) and ``/api/v1/heartbeats``.

A heartbeat without a ``token`` takes pings from anyone who knows its name, as with
healthchecks.io: cron jobs call them with nothing but curl. Names are no secret
(``/metrics`` shows them), so a heartbeat reachable from untrusted networks should
have a token: its pings then carry it as ``Authorization: Bearer`` or ``?token=``,
or get 401 and change nothing. An unknown name gets 404. A ping may be a GET, a POST
or a HEAD, as healthchecks.io takes them (uptime tools and ``curl -I`` send HEAD): a
HEAD counts as the same ping and gets the same answer without its body, which the
server drops, as for ``HEAD /ack/{token}``. The management API is
guarded like the rest of ``/api/v1``; it shows whether a heartbeat has a token,
never the token. ``pause`` and ``resume`` record who asked as incident actions do
(``by``, ``access.Caller.naming``).
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any, Literal

import msgspec
from litestar import MediaType, Request, delete, get, post, route
from litestar.openapi.spec import OpenAPI, SecurityRequirement, SecurityScheme
from litestar.params import FromPath, JSONBody

from hub import access, api, heartbeats, logs, stored
from hub.access import BEARER, require
from hub.api import iso
from hub.api_incidents import ACTED, NAMING_REFUSALS, By
from hub.api_params import COMMENT_MAX
from hub.config import Heartbeat
from hub.decoders.common import parse_json
from hub.durations import Duration
from hub.errors import AuthError, InvalidPayload, NotFound
from hub.events import Severity
from hub.problems import refusal, refusals

log = logging.getLogger("hub.heartbeats")
_PING_METHODS = ["GET", "HEAD", "POST"]
_SHOWN_TIMES = ("created_at", "last_ping", "started_at", "deadline", "paused_at", "resumed_at")
HeartbeatState = Literal["new", "up", "started", "down", "paused"]

SECURITY_SCHEMES = {
    "heartbeatBearer": SecurityScheme(
        type="http",
        scheme="bearer",
        description="The heartbeat's own token, for a heartbeat that has one (not an API token)",
    ),
    "heartbeatQuery": SecurityScheme(
        type="apiKey",
        name="token",
        security_scheme_in="query",
        description="The heartbeat's own token as ?token=, for a client that cannot set headers",
    ),
}
_PING_SECURITY: list[SecurityRequirement] = [{}, {"heartbeatBearer": []}, {"heartbeatQuery": []}]
"""A ping needs a token only when its heartbeat has one: ``{}`` says none will do."""
_PING_REFUSALS = {
    401: refusal("The heartbeat has a token and the ping did not carry it, or a wrong one"),
    **refusals(404, 503),
}


class NewHeartbeat(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The body of ``POST /api/v1/heartbeats``: the keys of ``[[heartbeats]]``."""

    name: str
    period: Annotated[str, msgspec.Meta(description='how often it pings: "5m", "1d"')]
    grace: Annotated[str, msgspec.Meta(description="how late a ping may be")] = "60s"
    labels: Annotated[dict[str, str], msgspec.Meta(description="its alert's labels")] = {}
    severity: Severity = "critical"
    summary: Annotated[
        str, msgspec.Meta(description='its alert\'s; default "heartbeat NAME is down"')
    ] = ""
    token: Annotated[
        str | None, msgspec.Meta(description="a token its pings must carry (never shown)")
    ] = None


class PauseBody(msgspec.Struct, forbid_unknown_fields=True):
    """Why the heartbeat is paused, and who pauses it."""

    reason: Annotated[
        str,
        msgspec.Meta(
            max_length=COMMENT_MAX,
            description="why: a job decommissioned, a host in maintenance; shown as pause_reason",
        ),
    ] = ""
    by: By = None


class ResumeBody(msgspec.Struct, forbid_unknown_fields=True):
    """Who resumes the heartbeat (logged)."""

    by: By = None


_PAUSE_REFUSALS = {
    **refusals(401, 404, 413, 503),
    **NAMING_REFUSALS,
    400: refusal('An unknown query parameter, or a body that is not {"reason": text, "by": text}'),
}
_RESUME_REFUSALS = {
    **_PAUSE_REFUSALS,
    400: refusal('An unknown query parameter, or a body that is not {"by": text}'),
    409: refusal("The heartbeat is not paused"),
}


async def _ping(request: Request, name: str, kind: heartbeats.Ping) -> str:
    hub = request.app.state.hub
    now, rules, tokens = hub.clock(), hub.current_rules(), _given_tokens(request)
    try:
        row = await hub.store.write(lambda tx: heartbeats.ping(tx, name, kind, now, rules, tokens))
    except AuthError as e:
        # A job whose token was rotated goes quiet here, and its heartbeat fires later.
        log.warning(
            "event=heartbeat_ping_refused name=%s status=%d reason=%s",
            logs.value(name),
            e.status,
            e.reason,
        )
        raise
    hub.show_heartbeats([row])
    return "OK\n"


def _given_tokens(request: Request) -> list[str]:
    """What a ping may carry as its token: ``Authorization: Bearer`` and ``?token=``."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    given = [value.strip()] if scheme.lower() == "bearer" else []
    given.append(request.query_params.get("token", ""))
    return [token for token in given if token]


def _ping_route(path: str, summary: str) -> route:
    """GET, HEAD and POST answered ``200 OK`` in plain text, and described so: a route
    that takes POST would otherwise be documented as 201 JSON."""
    return route(
        path,
        http_method=_PING_METHODS,
        status_code=200,
        media_type=MediaType.TEXT,
        summary=summary,
        security=_PING_SECURITY,
        responses=_PING_REFUSALS,
    )


@_ping_route("/ping/{name:str}", "Heartbeat: the job ran")
async def ping_success(request: Request, name: FromPath[str]) -> str:
    return await _ping(request, name, "success")


@_ping_route("/ping/{name:str}/fail", "Heartbeat: the job failed")
async def ping_fail(request: Request, name: FromPath[str]) -> str:
    return await _ping(request, name, "fail")


@_ping_route("/ping/{name:str}/start", "Heartbeat: a run started")
async def ping_start(request: Request, name: FromPath[str]) -> str:
    return await _ping(request, name, "start")


@get(
    "/api/v1/heartbeats",
    summary="List heartbeats",
    guards=[require("read")],
    security=BEARER,
    responses=refusals(400, 401),
)
async def list_heartbeats(request: Request) -> list[dict[str, Any]]:
    return [present(row) for row in request.app.state.hub.store.heartbeats()]


@get(
    "/api/v1/heartbeats/{name:str}",
    summary="One heartbeat",
    guards=[require("read")],
    security=BEARER,
    responses=refusals(400, 401, 404),
)
async def get_heartbeat(request: Request, name: FromPath[str]) -> dict[str, Any]:
    row = request.app.state.hub.store.heartbeat(name)
    if row is None:
        raise NotFound(f"no heartbeat named {name!r}")
    return present(row)


@post(
    "/api/v1/heartbeats",
    summary="Create a heartbeat",
    guards=[require("write")],
    security=BEARER,
    responses=refusals(400, 401, 403, 409, 413, 422, 503),
)
async def create_heartbeat(request: Request) -> dict[str, Any]:
    """201 with the heartbeat; 409 when the name is taken, 422 naming a bad field."""
    hub = request.app.state.hub
    definition = _definition(parse_json(await request.body(), NewHeartbeat))
    now = hub.clock()
    row = await hub.store.write(lambda tx: heartbeats.create(tx, definition, now))
    hub.show_heartbeats([row])
    _log_change("heartbeat_created", row, request)
    return present(row)


@delete(
    "/api/v1/heartbeats/{name:str}",
    summary="Delete a heartbeat made through the API",
    status_code=200,
    guards=[require("write")],
    security=BEARER,
    responses=refusals(400, 401, 403, 404, 409, 503),
)
async def delete_heartbeat(request: Request, name: FromPath[str]) -> dict[str, Any]:
    """404 unknown, 409 from the config file; an open alert of the heartbeat resolves."""
    hub = request.app.state.hub
    now, rules = hub.clock(), hub.current_rules()
    row = await hub.store.write(lambda tx: heartbeats.delete(tx, name, now, rules))
    hub.forget_heartbeat(name)
    _log_change("heartbeat_deleted", row, request)
    return present(row)


@post(
    "/api/v1/heartbeats/{name:str}/pause",
    summary="Pause a heartbeat",
    status_code=200,
    guards=[require("write")],
    security=BEARER,
    responses=_PAUSE_REFUSALS,
)
async def pause_heartbeat(
    request: Request, name: FromPath[str], data: JSONBody[PauseBody | None] = None
) -> dict[str, Any]:
    """No deadline and no alert until a ping or a resume; an open alert of the heartbeat
    resolves. One paused already is answered as it is (its first pause stands)."""
    body = data or PauseBody()
    row = await pause(request.app.state.hub, name, _who(request, body.by), body.reason)
    return present(row)


@post(
    "/api/v1/heartbeats/{name:str}/resume",
    summary="Resume a paused heartbeat",
    status_code=200,
    guards=[require("write")],
    security=BEARER,
    responses=_RESUME_REFUSALS,
)
async def resume_heartbeat(
    request: Request, name: FromPath[str], data: JSONBody[ResumeBody | None] = None
) -> dict[str, Any]:
    """Its next deadline a period and grace from now (a ping resumes it too); 409 for
    one not paused."""
    row = await resume(request.app.state.hub, name, _who(request, (data or ResumeBody()).by))
    return present(row)


async def pause(hub: Any, name: str, who: heartbeats.Who, reason: str) -> dict[str, Any]:
    """Pause the heartbeat and bring its gauges up to date: what the API and the
    console both do, ``who`` saying which."""
    now, rules = hub.clock(), hub.current_rules()
    row = await hub.store.write(lambda tx: heartbeats.pause(tx, name, now, rules, who, reason))
    hub.show_heartbeats([row])
    return row


async def resume(hub: Any, name: str, who: heartbeats.Who) -> dict[str, Any]:
    """Resume the heartbeat and bring its gauges up to date (the API's and the console's)."""
    now = hub.clock()
    row = await hub.store.write(lambda tx: heartbeats.resume(tx, name, now, who))
    hub.show_heartbeats([row])
    return row


def _who(request: Request, by: str | None) -> heartbeats.Who:
    """Who pauses or resumes: the token, or the person a token that speaks for others
    names (403 for anyone else, as for an incident's action)."""
    return heartbeats.Who(*access.caller(request).naming(by, "by", ACTED))


def _log_change(event: str, row: dict[str, Any], request: Request) -> None:
    """Who made or removed a heartbeat: one nobody pings any more fires, one deleted
    stops watching a job."""
    log.info(
        "event=%s name=%s by=%s",
        event,
        logs.value(row["name"]),
        logs.value(access.actor(request) or ""),
    )


def _definition(body: NewHeartbeat) -> Heartbeat:
    durations = {}
    for key in ("period", "grace"):
        try:
            durations[key] = Duration.parse(getattr(body, key))
        except ValueError as e:
            raise InvalidPayload(str(e), field=f"$.{key}") from e
    fields = msgspec.structs.asdict(body) | durations
    definition = Heartbeat(**fields)
    found = heartbeats.definition_problems(definition)
    if found:
        raise InvalidPayload("; ".join(found), field="$." + found[0].split(":", 1)[0])
    return definition


def present(row: dict[str, Any]) -> dict[str, Any]:
    """A heartbeat as the API shows it: times in RFC 3339, ``period`` and ``grace`` as
    the file and ``POST`` write them ("5m", the shortest exact text), so that a client
    can post back what it read, its ``state``, and the summary its alert will carry
    (the default for one without its own)."""
    shown = {
        key: iso(value) if key in _SHOWN_TIMES else api.shown(value)
        for key, value in row.items()
        if key != "token_sha256"
    }
    has_token = row["token_sha256"] is not None
    return {
        **shown,
        "period": _duration(row["period"]),
        "grace": _duration(row["grace"]),
        "summary": api.shown(heartbeats.summary(row)),
        "overdue": stored.flag(row, "overdue"),
        "state": _state(row),
        "token_required": has_token,
    }


def _duration(stored: object) -> str:
    """A period or grace as the file writes it; one that is no number of seconds (a hand
    edit) as its text, as ``iso`` shows such a time."""
    if isinstance(stored, int | float) and math.isfinite(stored):
        return Duration(stored).text()
    return logs.text(stored)


def _state(row: dict[str, Any]) -> HeartbeatState:
    """``paused`` until a ping or a resume, ``down`` while overdue (a run that overran
    its grace too), ``started`` while a run that sent ``/start`` has not finished, else
    ``up`` once pinged, or ``new``."""
    if row["paused_at"] is not None:
        return "paused"
    if stored.flag(row, "overdue"):
        return "down"
    if row["started_at"] is not None:
        return "started"
    return "up" if row["last_ping"] is not None else "new"


def document(openapi: OpenAPI) -> None:
    """Take the 400 out of the pings' description: Litestar gives one to every operation
    with a parameter, but a ping's only parameter is its name, which any text is."""
    for path, item in (openapi.paths or {}).items():
        if path.startswith("/ping/"):
            for operation in (item.get, item.head, item.post):
                if operation is not None and operation.responses is not None:
                    operation.responses.pop("400", None)


HANDLERS = [
    ping_success,
    ping_fail,
    ping_start,
    list_heartbeats,
    get_heartbeat,
    create_heartbeat,
    delete_heartbeat,
    pause_heartbeat,
    resume_heartbeat,
]
