"""``/api/v1/silences``: list, create, change and expire silences over HTTP.

Silences made here are rows in the store. Static ones come from the running config
(``[[silences]]`` and ``[[maintenance]]``): they are listed with ``"static": true``
beside the others, so one list answers "what is muted", and are changed only in
the file. The rules for a valid silence are ``hub.silences.problems``, shared with
the config check, plus what only makes sense for one made or changed now (an end in
the future, a comment saying why). A change keeps the silence's id, which tickets and
timelines cite, and its creator. Each is recorded as made or changed by the token's
name, or, when the token speaks for others (``[api] tokens``), by the person its tool
names, with the token's name beside them (``created_via``, ``updated_via``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post, put
from litestar.params import FromPath, QueryParameter

from hub import escalation, logs, silences
from hub.access import BEARER, Caller, actor, caller, require
from hub.api_params import COMMENT_MAX, query_matchers
from hub.config import Timestamp
from hub.decoders.common import parse_json
from hub.durations import Duration
from hub.errors import Conflict, InvalidPayload, NotFound
from hub.matchers import Matcher
from hub.problems import read_refusals, refusals
from hub.silences import Shown, Silence, UnreadableSilence
from hub.store import Tx

log = logging.getLogger("hub.silences")


class NewSilence(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The body of ``POST /api/v1/silences`` and ``PUT /api/v1/silences/{id}``; give
    ``ends_at`` or ``duration``.

    ``created_by`` may only repeat the token's name (a new silence) or the creator's (a
    changed one), which is recorded either way; a token that speaks for others names
    there the person who makes it, or who changes it.
    """

    matchers: Annotated[
        list[str],
        msgspec.Meta(
            description="Alertmanager matchers, all of which must match; at least one must"
            " not match the empty string"
        ),
    ]
    comment: Annotated[str, msgspec.Meta(description="why the alerts are silenced")]
    starts_at: Annotated[
        Timestamp | None,
        msgspec.Meta(description="default: now, or for a change the silence's start"),
    ] = None
    ends_at: Annotated[Timestamp | None, msgspec.Meta(description="or give duration")] = None
    duration: Annotated[
        str | None, msgspec.Meta(description='from starts_at, in hub\'s format: "30m", "2h"')
    ] = None
    created_by: Annotated[
        str | None,
        msgspec.Meta(
            description="the token's name (the default); with a token that speaks for others,"
            " the person it acts for: who makes the silence, or who changes it"
        ),
    ] = None


@get(
    "/api/v1/silences",
    summary="List silences, the config's static ones included",
    guards=[require("read")],
    security=BEARER,
    responses=read_refusals(400, 401),
)
async def list_silences(
    request: Request,
    wanted: Annotated[Shown | None, QueryParameter(name="state")] = None,
    matcher: Annotated[
        list[str] | None,
        QueryParameter(
            description="only silences having this matcher among theirs (same label, operator"
            ' and value, as amtool silence query finds them), e.g. alertname="DiskFull";'
            " repeat for several"
        ),
    ] = None,
) -> list[dict[str, Any]]:
    """Silences made through the API (newest first), then the config's static ones.
    Read aside (``Store.read_aside``): expired ones are kept for months, and thousands
    of them took half a second to list on the event loop."""
    having = query_matchers("matcher", matcher)
    hub = request.app.state.hub
    return await hub.store.read_aside(lambda: listed(hub, wanted, having))


@get(
    "/api/v1/silences/{silence_id:str}",
    summary="One silence, the config's static ones included",
    guards=[require("read")],
    security=BEARER,
    responses=read_refusals(400, 401, 404),
)
async def get_silence(request: Request, silence_id: FromPath[str]) -> dict[str, Any]:
    """404 for an id no silence has; looked up aside, as the list is read."""
    hub = request.app.state.hub
    return await hub.store.read_aside(lambda: _one(hub, silence_id))


def _one(hub: Any, silence_id: str) -> dict[str, Any]:
    found = one(hub, silence_id)
    if found is None:
        raise NotFound(f"no silence with id {silence_id}")
    silence, static = found
    return present(silence, current_time(hub), static)


@post(
    "/api/v1/silences",
    summary="Create a silence",
    status_code=201,
    guards=[require("write")],
    security=BEARER,
    responses=refusals(400, 401, 403, 409, 413, 422, 503),
)
async def create_silence(request: Request) -> dict[str, Any]:
    """201 with the stored silence; 422 naming the field when it is not a valid one,
    403 when ``created_by`` names someone other than a token that speaks for nobody,
    409 when ``[server] max_silences`` are pending or active."""
    hub = request.app.state.hub
    body = parse_json(await request.body(), NewSilence)
    return await create(hub, body, caller(request))


@put(
    "/api/v1/silences/{silence_id:str}",
    summary="Change a silence in place",
    guards=[require("write")],
    security=BEARER,
    responses=refusals(400, 401, 403, 404, 409, 413, 422, 503),
)
async def update_silence(request: Request, silence_id: FromPath[str]) -> dict[str, Any]:
    """200 with the silence as stored, same id and creator; the body is a whole silence,
    as for create. 404 unknown, 409 static or expired, 422 naming the bad field."""
    body = parse_json(await request.body(), NewSilence)
    return await update(request.app.state.hub, silence_id, body, caller(request))


@delete(
    "/api/v1/silences/{silence_id:str}",
    summary="Expire a silence now",
    status_code=200,
    guards=[require("write")],
    security=BEARER,
    responses=refusals(400, 401, 403, 404, 409, 503),
)
async def expire_silence(request: Request, silence_id: FromPath[str]) -> dict[str, Any]:
    """End a silence early; 404 unknown, 409 static or already expired."""
    return await expire(request.app.state.hub, silence_id, actor(request))


def listed(
    hub: Any, wanted: Shown | None = None, having: Sequence[Matcher] = ()
) -> list[dict[str, Any]]:
    """Every silence as the API shows it, optionally only those in state ``wanted``
    and those with each of ``having`` among their matchers (``silences.includes``; an
    unreadable one has none)."""
    now = current_time(hub)
    shown = [
        present(s, now, static)
        for s, static in every(hub)
        if not having or (isinstance(s, Silence) and silences.includes(s, having))
    ]
    return [s for s in shown if wanted is None or s["state"] == wanted]


def every(hub: Any) -> list[tuple[Silence | UnreadableSilence, bool]]:
    """Every silence with whether it is static: the API's (newest first), then the
    config's."""
    return [(s, False) for s in hub.store.silences()] + [(s, True) for s in hub.static_silences]


def one(hub: Any, silence_id: str) -> tuple[Silence | UnreadableSilence, bool] | None:
    """The silence ``every`` lists with ``silence_id``, with whether it is static; looked
    up by its id, not among every silence."""
    stored = hub.store.silence(silence_id)
    if stored is not None:
        return stored, False
    static = next((s for s in hub.static_silences if s.id == silence_id), None)
    return None if static is None else (static, True)


async def create(hub: Any, body: NewSilence, asking: Caller) -> dict[str, Any]:
    """Validate and store a new silence (the API's and the console's way to make one)."""
    now = current_time(hub)
    silence = build(body, now, asking)
    limit = hub.config.server.max_silences
    await hub.store.write(lambda tx: _insert(tx, silence, limit, now))
    log.info(
        "event=silence_created id=%s by=%s%s matchers=%s",
        silence.id,
        logs.value(silence.created_by),
        logs.vouched(silence.created_via),
        logs.listed(silence.matchers),
    )
    return present(silence, now, static=False)


async def update(hub: Any, silence_id: str, body: NewSilence, asking: Caller) -> dict[str, Any]:
    """Change a pending or active silence in place (the API's and the console's way).
    Like expiring, it may narrow or shorten what the silence mutes, so what it held is
    looked at again at once; a widened one holds what it now catches from the next look."""
    now = current_time(hub)
    _refuse_static(hub, silence_id)
    changed = await hub.store.write(lambda tx: _update(tx, silence_id, body, asking, now))
    _look_again(hub)
    log.info(
        "event=silence_updated id=%s by=%s%s matchers=%s",
        changed.id,
        logs.value(changed.updated_by or asking.name),
        logs.vouched(changed.updated_via),
        logs.listed(changed.matchers),
    )
    return present(changed, now, static=False)


async def expire(hub: Any, silence_id: str, by: str | None) -> dict[str, Any]:
    """End a silence now; static ones live in the config file and are refused."""
    now = current_time(hub)
    _refuse_static(hub, silence_id)
    expired = await hub.store.write(lambda tx: _expire(tx, silence_id, now))
    _look_again(hub)
    removed = " removed=unreadable" if isinstance(expired, UnreadableSilence) else ""
    log.info(
        "event=silence_expired id=%s by=%s%s", logs.value(silence_id), logs.value(by or ""), removed
    )
    return present(expired, now, static=False)


def _insert(tx: Tx, silence: Silence, limit: int, now: datetime) -> None:
    """Store a new silence unless ``limit`` silences are pending or active: Conflict,
    naming the key. Each one in force is read at every dispatcher round and mute
    check; 5,000 held the event loop for a tenth of a second at each round."""
    held = tx.unexpired_silences(now.timestamp())
    if held >= limit:
        raise Conflict(
            f"there are {held} pending or active silences, as many as [server] max_silences"
            f" allows ({limit}): expire one, or raise the limit"
        )
    tx.insert_silence(silence)


def _refuse_static(hub: Any, silence_id: str) -> None:
    if any(s.id == silence_id for s in hub.static_silences):
        raise Conflict(f"silence {silence_id} comes from the config file; change it there")


def _look_again(hub: Any) -> None:
    """After a silence ended or changed (its write called ``escalation.unhold``): the
    escalation steps and notifications it may have held are looked at now, not at
    their next look."""
    hub.escalator.poke()
    hub.dispatcher.poke()


def build(body: NewSilence, now: datetime, asking: Caller) -> Silence:
    """A new silence from a request body, or InvalidPayload naming the first bad field
    (Forbidden first when the body names another author than the token allows)."""
    created_by, created_via = _author(body.created_by, asking)
    starts_at = body.starts_at or now
    return Silence(
        id=str(uuid.uuid4()),
        matchers=body.matchers,
        starts_at=starts_at,
        ends_at=_checked_end(body, starts_at, now),
        created_by=created_by,
        created_via=created_via,
        comment=body.comment,
        created_at=now,
    )


def revise(silence: Silence, body: NewSilence, now: datetime, asking: Caller) -> Silence:
    """``silence`` changed as a request body says, by ``asking`` at ``now``, or
    InvalidPayload naming the first bad field, as for a new one. Without ``starts_at``
    it starts when it did, so a pending one stays pending and a duration counts from
    its start (as ``amtool silence update --duration`` does)."""
    updated_by, updated_via = _changer(silence, body.created_by, asking)
    starts_at = body.starts_at or silence.starts_at or now
    return msgspec.structs.replace(
        silence,
        matchers=body.matchers,
        starts_at=starts_at,
        ends_at=_checked_end(body, starts_at, now),
        comment=body.comment,
        updated_by=updated_by,
        updated_via=updated_via,
        updated_at=now,
    )


def _changer(silence: Silence, given: str | None, asking: Caller) -> tuple[str, str | None]:
    """Who changes a silence, and the token that vouched for them. The creator's name is
    the silence sent back whole (amtool and Grafana's edit form do so), not a claim about
    who changes it: the token is recorded. Another name is, from a token that speaks for
    others, the person changing it (Alertmanager would record them as the author)."""
    if given is None or given == silence.created_by:
        return asking.name, None
    if not asking.speaks_for_others:
        raise InvalidPayload(
            f'created_by: silence {silence.id} was created by "{silence.created_by}", which'
            " a change keeps (who changed it is recorded as updated_by); leave created_by out,"
            " or let the token name who changes it: speaks_for_others in [api] tokens",
            field="$.created_by",
        )
    return _author(given, asking)


def _checked_end(body: NewSilence, starts_at: datetime, now: datetime) -> datetime:
    """The end of a silence made or changed at ``now`` from ``body``, once the whole body
    is a valid silence; else InvalidPayload naming the first bad field."""
    ends_at = _ends_at(body, starts_at)
    found = silences.problems(body.matchers, starts_at, ends_at)
    if ends_at <= now:
        found.append("ends_at: must be in the future")
    if not body.comment.strip():
        found.append("comment: say why the alerts are silenced")
    elif len(body.comment) > COMMENT_MAX:
        found.append(f"comment: at most {COMMENT_MAX} characters; this one has {len(body.comment)}")
    if found:
        raise InvalidPayload("; ".join(found), field="$." + found[0].split(":", 1)[0])
    return ends_at


def _author(given: str | None, asking: Caller) -> tuple[str, str | None]:
    """Who made or changes the silence, and the token that vouched for them (None: the
    token itself, as acks record it): Grafana and karma name the person signed in to
    them (``Caller.naming``)."""
    return asking.naming(
        given, "created_by", "a silence is recorded as made by the token that creates it"
    )


def _ends_at(body: NewSilence, starts_at: datetime) -> datetime:
    """API silences always end: at ``ends_at``, or ``duration`` after they start. A
    duration of nothing is refused as such, not as an end that is not after the start."""
    if body.duration is None:
        if body.ends_at is None:
            raise InvalidPayload("give ends_at or duration", field="$.ends_at")
        return body.ends_at
    if body.ends_at is not None:
        raise InvalidPayload("give ends_at or duration, not both", field="$.duration")
    try:
        seconds = Duration.parse(body.duration)
    except ValueError as e:
        raise InvalidPayload(f"duration: {e}", field="$.duration") from e
    if seconds <= 0:
        raise InvalidPayload(
            f"duration: must be positive, got {body.duration!r}", field="$.duration"
        )
    try:
        return starts_at + timedelta(seconds=seconds)
    except OverflowError:  # past the year 9999, or more days than a timedelta holds
        raise InvalidPayload(
            f"duration: {body.duration!r} from starts_at ends after the year 9999",
            field="$.duration",
        ) from None


def changeable(hub: Any, silence_id: str) -> Silence:
    """The silence ``update`` would change now (what the console's edit form shows), or
    the refusal ``update`` would answer: Conflict for a static, expired or unreadable
    one, NotFound."""
    _refuse_static(hub, silence_id)
    stored = hub.store.silence(silence_id)
    return _readable(_unexpired(stored, silence_id, current_time(hub)))


def _update(tx: Tx, silence_id: str, body: NewSilence, asking: Caller, now: datetime) -> Silence:
    silence = _readable(_unexpired(tx.get_silence(silence_id), silence_id, now))
    changed = revise(silence, body, now, asking)
    tx.update_silence(changed)
    escalation.unhold(tx, now.timestamp())
    return changed


def _expire(tx: Tx, silence_id: str, now: datetime) -> Silence | UnreadableSilence:
    """End the silence now; one that cannot be read has no window to end (nor, its
    values being suspect, a record worth keeping): it is removed."""
    silence = _unexpired(tx.get_silence(silence_id), silence_id, now)
    if isinstance(silence, UnreadableSilence):
        tx.remove_silence(silence)
        return silence
    expired = silences.expire(silence, now)
    tx.expire_silence(expired, now)
    escalation.unhold(tx, now.timestamp())
    return expired


def _unexpired(
    stored: Silence | UnreadableSilence | None, silence_id: str, now: datetime
) -> Silence | UnreadableSilence:
    """The silence stored as ``silence_id`` (None: none is), or NotFound; Conflict once
    it has expired: ended, it can be neither ended nor changed (make a new one)."""
    if stored is None:
        raise NotFound(f"no silence with id {silence_id}")
    if isinstance(stored, Silence) and silences.state(stored, now) == "expired":
        raise Conflict(f"silence {silence_id} has already expired")
    return stored


def _readable(stored: Silence | UnreadableSilence) -> Silence:
    """``stored``, or Conflict when it cannot be read: there is nothing to change."""
    if isinstance(stored, UnreadableSilence):
        regex = ", or a regex RE2 refuses" if stored.column == "matchers" else ""
        raise Conflict(
            f"silence {stored.id} cannot be read (its {stored.column}: edited by hand{regex})"
            " and is not in force; expire it and make a new one"
        )
    return stored


def present(silence: Silence | UnreadableSilence, now: datetime, static: bool) -> dict[str, Any]:
    """A silence as the API shows it: its fields, its state now, and where it lives."""
    if isinstance(silence, UnreadableSilence):
        return _present_unreadable(silence)
    fields = msgspec.structs.asdict(silence)
    shown = {
        key: _iso(value) if isinstance(value, datetime) else value for key, value in fields.items()
    }
    return {**shown, "state": silences.state(silence, now), "static": static}


def _present_unreadable(silence: UnreadableSilence) -> dict[str, Any]:
    """A silence that cannot be read, its stored values shown as text (``api.iso`` and
    ``api.shown``, as every read shows a hand-edited row), its state ``unreadable``."""
    from hub import api  # api lists this module's handlers: imported at the top, a cycle

    stored = silence.stored
    fields = {key: api.shown(stored[key]) for key in _TEXTS}
    times = {key: api.iso(stored[key]) for key in _TIMES}
    return {
        **fields,
        **times,
        "id": silence.id,
        "matchers": _stored_matchers(stored["matchers"]),
        "state": "unreadable",
        "static": False,
    }


_TEXTS = ("created_by", "created_via", "comment", "updated_by", "updated_via")
_TIMES = ("starts_at", "ends_at", "created_at", "updated_at")


def _stored_matchers(stored: object) -> list[str]:
    """Stored matchers as a list of texts: the JSON list's items, or the whole value."""
    try:
        texts = msgspec.json.decode(stored, type=list[str])  # type: ignore[call-overload]
    except (msgspec.DecodeError, TypeError):
        return [logs.text(stored)]
    return texts


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def current_time(hub: Any) -> datetime:
    """hub's clock now, as the time silences are compared with."""
    return datetime.fromtimestamp(hub.clock(), UTC)


HANDLERS = [list_silences, get_silence, create_silence, update_silence, expire_silence]
