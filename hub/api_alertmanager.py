"""``/api/v2/...``: the part of Alertmanager's API v2 that amtool, karma and Grafana's
Alertmanager data source read, and the silence calls amtool makes, on hub's own
alerts, mutes and silences (``hub.alertmanager_shapes`` gives the shapes).

It sits at the root, as Alertmanager's does, so ``amtool --alertmanager.url`` takes
hub's address as it is. Prometheus' ``POST /webhooks/{source}/api/v2/alerts`` is a
door of its own (``hub.webhooks``); this API is not per source. Tokens and roles are
the API's (``read`` to read, ``write`` for silences), and silences are made, changed
and expired by ``hub.silencing``, with its rules. The errors Alertmanager answers
with a text (a bad filter or silence: 400; an unknown silence: 404; a failure of
hub's own: 500) come as that text, a JSON string, which amtool prints; so does a 409
(a static silence, or one already expired). Refusals of the rest of hub (401, 403,
413, 503) stay problem documents.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter
from litestar.types import ExceptionHandler

from hub import api, matchers, silencing
from hub.access import BEARER, actor, caller, require
from hub.alertmanager_shapes import (
    AlertFilter,
    AmCluster,
    AmConfig,
    AmPostableSilence,
    AmStatus,
    AmVersion,
    am_alert,
    am_groups,
    am_silence,
    hub_matcher,
    silence_matches,
    silence_order,
)
from hub.api_params import TAKES_ANY_QUERY
from hub.decoders.common import parse_json
from hub.errors import HubError, InvalidPayload, NotFound
from hub.problems import (
    READS_BUSY,
    REFUSALS,
    Problem,
    alertmanager_body,
    handle_http_exception,
    handle_hub_error,
    handle_recursion,
    handle_unexpected,
    http_exception_headers,
    http_exception_words,
    problem,
)
from hub.silences import Silence
from hub.silencing import NewSilence
from hub.webhooks import ALERTMANAGER_API_FORMAT

PREFIX = "/api/v2"
V1_ALERTS = "/api/v1/alerts"
"""hub's own alert list, where Alertmanager's API v1 took alerts: an old Prometheus
(``api_version: v1``) or amtool posts there."""
MISDIRECTED = re.compile(rf"(?P<base>/webhooks/[^/]+|{PREFIX}){PREFIX}/.+")
"""This API asked for under a URL that is not hub's root: a source's door, which
README's ``amtool alert add`` takes as amtool's URL, or ``/api/v2`` given as part of it."""
AS_TEXT = {400: 400, 404: 404, 409: 409, 422: 400}
"""hub's refusals Alertmanager answers as a text, by status: Alertmanager's 400 covers
a silence of the wrong shape (hub's 422)."""

Filter = Annotated[
    list[str] | None,
    QueryParameter(
        name="filter", description='label matchers, all of which must match: alertname="Foo"'
    ),
]
Shown = Annotated[bool, QueryParameter(description="false leaves these out")]


def _refused(*statuses: int, meanings: dict[int, str] = REFUSALS) -> dict[int, ResponseSpec]:
    """hub's refusals, as problem documents typed as plain JSON (``_in_its_form``)."""
    return {
        status: ResponseSpec(
            Problem,
            description=meanings[status],
            media_type="application/json",
            generate_examples=False,
        )
        for status in statuses
    }


READ_REFUSALS = {**_refused(401), **_refused(503, meanings={503: READS_BUSY})}
"""The refusals of a list read aside (``_aside``)."""


def _texts(*statuses: int) -> dict[int, ResponseSpec]:
    """Alertmanager's error answers: a JSON string saying what was wrong."""
    return {
        status: ResponseSpec(str, description=_TEXT_MEANINGS[status], generate_examples=False)
        for status in statuses
    }


_TEXT_MEANINGS = {
    400: "A bad filter, receiver or silence: what was wrong, as a JSON string",
    404: "No silence has this id (a JSON string)",
    409: "The silence comes from the config file, or has expired (a JSON string)",
    500: "hub failed to handle the request (its log says why): a JSON string saying so",
}


@get(
    f"{PREFIX}/status",
    summary="Alertmanager API: status",
    guards=[require("read")],
    security=BEARER,
    responses={**_refused(401), **_texts(400, 500)},
)
async def status(request: Request) -> dict[str, Any]:
    """What amtool and Grafana's health check read: a one-member cluster that is
    ready, hub's version and start, and as ``config.original`` a sketch of hub's
    receivers (hub's config is TOML, not Alertmanager's YAML)."""
    hub = request.app.state.hub
    shown = AmStatus(
        cluster=AmCluster(name="hub", status="ready", peers=[]),
        version_info=AmVersion(
            version=hub.version,
            revision="",
            branch="",
            build_user="",
            build_date="",
            go_version=f"none (hub runs on Python {platform.python_version()})",
        ),
        config=AmConfig(sketch(hub.config)),
        uptime=datetime.fromtimestamp(hub.started_at, UTC),
    )
    return msgspec.to_builtins(shown)


def sketch(config: Any) -> str:
    """Alertmanager-shaped YAML naming hub's root receiver and its receivers, for the
    tools that show or parse ``config.original``; names are JSON strings, valid YAML."""
    lines = [
        "# hub is configured in TOML (alerts.toml); this sketch only names its receivers.",
        "route:",
        f"  receiver: {json.dumps(config.route.receiver)}",
        "receivers:",
        *(f"  - name: {json.dumps(receiver.name)}" for receiver in config.receivers),
    ]
    return "\n".join(lines) + "\n"


@get(
    f"{PREFIX}/receivers",
    summary="Alertmanager API: receivers",
    guards=[require("read")],
    security=BEARER,
    responses={**_refused(401), **_texts(400, 500)},
)
async def receivers(request: Request) -> list[dict[str, str]]:
    return [{"name": receiver.name} for receiver in request.app.state.hub.config.receivers]


@get(
    f"{PREFIX}/alerts",
    summary="Alertmanager API: firing alerts",
    guards=[require("read")],
    security=BEARER,
    responses={**READ_REFUSALS, **_texts(400, 500)},
)
async def alerts(
    request: Request,
    active: Shown = True,
    silenced: Shown = True,
    inhibited: Shown = True,
    unprocessed: Annotated[
        bool, QueryParameter(description="taken for amtool; hub has no unprocessed alerts")
    ] = True,
    filters: Filter = None,
    receiver: Annotated[
        str | None, QueryParameter(description="a regex one of its receivers must match")
    ] = None,
) -> Response[list[dict[str, Any]]]:
    """Every firing alert (there are no pages), by fingerprint, as Alertmanager lists
    them: ``suppressed`` while a mute holds it back (``silencedBy`` the silences and
    maintenance windows, ``inhibitedBy`` the inhibit rules)."""
    del unprocessed  # every hub alert is processed: the flag leaves none out
    wanted = AlertFilter(
        active=active,
        silenced=silenced,
        inhibited=inhibited,
        labels=_matchers(filters),
        receiver=_regex(receiver),
    )
    hub = request.app.state.hub
    return await _aside(hub, lambda: _alerts_kept(hub, wanted))


def _alerts_kept(hub: Any, wanted: AlertFilter) -> list[dict[str, Any]]:
    rows, silence_ids = _firing(hub)
    shown = sorted((am_alert(row, silence_ids) for row in rows), key=lambda a: a.fingerprint)
    return [msgspec.to_builtins(alert) for alert in shown if wanted.keeps(alert)]


async def _aside(hub: Any, answer: Callable[[], list[dict[str, Any]]]) -> Response:
    """``answer``, a list over every firing alert, worked out and encoded in a read
    thread (``Store.read_aside``): at tens of thousands of alerts it takes a second or
    more, which on the event loop would hold up every webhook meanwhile."""
    body = await hub.store.read_aside(lambda: msgspec.json.encode(answer()))
    return Response(body, media_type="application/json")


def _firing(hub: Any) -> tuple[list[dict[str, Any]], set[str]]:
    """Every firing alert with its ``mutes``, and the ids of the silences active at that
    moment (the one its mutes were worked out at), which tell the silences among its
    mutes from the muting time intervals."""
    at = api.mute_moment(hub)
    return api.with_mutes(hub, hub.store.firing_alerts_in_full(), at), {s.id for s in at.silences}


@get(
    f"{PREFIX}/alerts/groups",
    summary="Alertmanager API: firing alerts in their groups",
    guards=[require("read")],
    security=BEARER,
    responses={**READ_REFUSALS, **_texts(400, 500)},
)
async def alert_groups(
    request: Request,
    active: Shown = True,
    silenced: Shown = True,
    inhibited: Shown = True,
    filters: Filter = None,
    receiver: Annotated[
        str | None, QueryParameter(description="a regex the group's receiver must match")
    ] = None,
) -> Response[list[dict[str, Any]]]:
    """What karma and Grafana list: one group per incident and receiver it tells,
    labelled by the incident's group labels, holding the alerts the filters keep
    (a group left with none is not listed)."""
    wanted = AlertFilter(
        active=active, silenced=silenced, inhibited=inhibited, labels=_matchers(filters)
    )
    regex, hub = _regex(receiver), request.app.state.hub
    return await _aside(hub, lambda: _groups_kept(hub, wanted, regex))


def _groups_kept(
    hub: Any, wanted: AlertFilter, receiver: re.Pattern[str] | None
) -> list[dict[str, Any]]:
    rows, silence_ids = _firing(hub)
    return [msgspec.to_builtins(group) for group in am_groups(rows, silence_ids, wanted, receiver)]


def _matchers(texts: list[str] | None) -> list[matchers.Matcher]:
    try:
        return matchers.parse_all(texts or [])
    except ValueError as e:
        raise InvalidPayload(f"bad filter: {e}", field="filter") from e


def _regex(text: str | None) -> matchers.Regex | None:
    try:
        return None if text is None else matchers.compile_pattern(text)
    except ValueError as e:
        raise InvalidPayload(f"bad receiver: {e}", field="receiver") from e


@get(
    f"{PREFIX}/silences",
    summary="Alertmanager API: silences",
    guards=[require("read")],
    security=BEARER,
    responses={**READ_REFUSALS, **_texts(400, 500)},
)
async def list_silences(request: Request, filters: Filter = None) -> Response[list[dict[str, Any]]]:
    """Every silence, the config's static ones included, in Alertmanager's order
    (active, pending, expired); ``filter`` matches each silence's matchers as labels.
    Worked out aside (``_aside``): expired ones are kept for months, and 5,000 silences
    held the event loop for half a second."""
    hub, wanted = request.app.state.hub, _matchers(filters)
    return await _aside(hub, lambda: _silences_kept(hub, wanted))


def _silences_kept(hub: Any, wanted: list[matchers.Matcher]) -> list[dict[str, Any]]:
    now = silencing.current_time(hub)
    shown = [
        am_silence(silence, now) for silence in _readable(hub) if silence_matches(silence, wanted)
    ]
    return [msgspec.to_builtins(s) for s in sorted(shown, key=silence_order)]


@get(
    f"{PREFIX}/silence/{{silence_id:str}}",
    summary="Alertmanager API: one silence",
    guards=[require("read")],
    security=BEARER,
    responses={**READ_REFUSALS, **_texts(400, 404, 500)},
)
async def get_silence(request: Request, silence_id: FromPath[str]) -> dict[str, Any]:
    """Looked up aside, as the list is read."""
    hub = request.app.state.hub
    return await hub.store.read_aside(lambda: _silence(hub, silence_id))


def _silence(hub: Any, silence_id: str) -> dict[str, Any]:
    found = silencing.one(hub, silence_id)
    if found is None or not isinstance(found[0], Silence):  # unreadable: not in the list
        raise NotFound(f"silence {silence_id} not found")
    return msgspec.to_builtins(am_silence(found[0], silencing.current_time(hub)))


def _readable(hub: Any) -> list[Silence]:
    """Every silence hub can read: Alertmanager's schema gives each real times and
    matchers, which one a hand edit broke lacks (hub's own list shows it, unreadable)."""
    return [silence for silence, _ in silencing.every(hub) if isinstance(silence, Silence)]


@post(
    f"{PREFIX}/silences",
    summary="Alertmanager API: create a silence, or with an id change it",
    status_code=200,
    guards=[require("write")],
    security=BEARER,
    responses={**_refused(401, 403, 413, 503), **_texts(400, 404, 409, 500)},
)
async def post_silence(request: Request) -> dict[str, str]:
    """``{"silenceID": ...}``; with an ``id`` the silence changes in place, keeping it.
    ``createdBy`` is as ``created_by`` in hub's own silences: the token's name, or the
    person a token that speaks for others names (Grafana's and karma's users)."""
    hub = request.app.state.hub
    given = parse_json(await request.body(), AmPostableSilence)
    body = _as_hub(given)
    asking = caller(request)
    if given.id is None:
        made = await silencing.create(hub, body, asking)
    else:
        made = await silencing.update(hub, given.id, body, asking)
    return {"silenceID": made["id"]}


def _as_hub(given: AmPostableSilence) -> NewSilence:
    """The body as hub's own API takes it: hub's checks of a silence, a bad regex
    refused naming the matcher among them, follow (``silencing.create``)."""
    return NewSilence(
        matchers=[hub_matcher(matcher) for matcher in given.matchers],
        comment=given.comment,
        starts_at=given.starts_at,
        ends_at=given.ends_at,
        created_by=given.created_by,
    )


@delete(
    f"{PREFIX}/silence/{{silence_id:str}}",
    summary="Alertmanager API: expire a silence",
    status_code=200,
    guards=[require("write")],
    security=BEARER,
    responses={**_refused(401, 403, 503), **_texts(400, 404, 409, 500)},
)
async def expire_silence(request: Request, silence_id: FromPath[str]) -> Response:
    """200 with no body, as Alertmanager answers."""
    await silencing.expire(request.app.state.hub, silence_id, actor(request))
    return Response(b"", status_code=200, media_type="application/json")


def as_text(request: Request, exc: HubError) -> Response:
    """A refusal Alertmanager answers with a text, as that text (a JSON string, which
    amtool prints); the others as the rest of hub's API answers them."""
    status = AS_TEXT.get(exc.status)
    if status is None:
        return _in_its_form(handle_hub_error(request, exc))
    return _text(status, exc.detail)


def owns(path: str) -> bool:
    """Whether a path is this API's: its errors take this API's forms even where no
    route took the request (a wrong method, or the API asked for under another URL),
    so amtool can read them."""
    return path.startswith(f"{PREFIX}/") or MISDIRECTED.fullmatch(path) is not None


def http_as_text(request: Request, exc: HTTPException) -> Response:
    """Litestar's own 400 (a flag that is not true or false) and 405 as a text too;
    amtool fails on any other type ("no consumer") instead of saying what was wrong.
    A wrong URL is a 400 saying which to use: the only refusal Alertmanager's API
    gives these operations a text for, so the only one amtool prints."""
    misdirected = MISDIRECTED.fullmatch(request.url.path)
    if misdirected is not None:
        return _text(400, _to_root(request, misdirected["base"]))
    if exc.status_code == 405 and request.url.path == f"{PREFIX}/alerts":
        return _text(400, _to_doors(request))
    if exc.status_code not in (400, 405):
        return _in_its_form(handle_http_exception(request, exc))
    answer = _text(exc.status_code, http_exception_words(request, exc)[1])
    answer.headers.update(http_exception_headers(request, exc))
    return answer


def posts_v1_alerts(request: Request, exc: HTTPException) -> bool:
    """Alerts posted as Alertmanager's API v1 took them, to hub's read-only alert list."""
    return (exc.status_code, request.method, request.url.path) == (405, "POST", V1_ALERTS)


def v1_alerts_refused(request: Request, exc: HTTPException) -> Response:
    """hub's 405 for the post, in hub's own API's form, naming the doors that take
    alerts (as the root's refusal does): a plain 405 said nothing of where they go."""
    title, detail = http_exception_words(request, exc)
    detail = f"{detail} (hub's alert list); {_to_doors(request)}, with api_version: v2"
    return problem(405, title, detail, headers=http_exception_headers(request, exc))


def _to_root(request: Request, base: str) -> str:
    """Where this API is, for a request under a source's door or a doubled prefix."""
    root = str(request.base_url)
    if base == PREFIX:
        return f"hub's Alertmanager API is at its root: --alertmanager.url={root}, without {PREFIX}"
    return (
        f"{root.rstrip('/')}{base} is a source's door, which only takes alerts (amtool alert"
        f" add, Prometheus); hub's Alertmanager API is at its root: --alertmanager.url={root}"
    )


def _to_doors(request: Request) -> str:
    """Where alerts posted at the root go: the doors of the sources that take them."""
    root = str(request.base_url).rstrip("/")
    config = request.app.state.hub.config
    names = [s.name for s in config.sources if s.format == ALERTMANAGER_API_FORMAT]
    if not names:
        return (
            "alerts are not posted to hub's root, and no source takes them: add a"
            f' [[sources]] entry of format "{ALERTMANAGER_API_FORMAT}" and post to'
            " its door, /webhooks/{source}"
        )
    doors = " or ".join(f"{root}/webhooks/{name}" for name in names)
    return (
        f"alerts are not posted to hub's root but to a source's door: --alertmanager.url="
        f"{doors} (Prometheus: path_prefix: /webhooks/{{source}})"
    )


def _in_its_form(answer: Response) -> Response:
    """hub's problem answer as Alertmanager's API gives it (``alertmanager_body``, as
    at a source's door), with its status and headers."""
    body = alertmanager_body(answer.status_code, answer.content)
    return Response(
        body, status_code=answer.status_code, media_type="application/json", headers=answer.headers
    )


def _answered_in_its_form(handler: ExceptionHandler) -> ExceptionHandler:
    """The app's handler of an error, its answer in this API's form: hub's own failure
    (logged as elsewhere) a 500 text, a body nested too deeply a 400 text."""

    def answer(request: Request, exc: Exception) -> Response:
        return _in_its_form(handler(request, exc))

    return answer


def _text(status: int, detail: str) -> Response:
    """Encoded here: Litestar sends a ``str`` as it is, which is not JSON."""
    return Response(msgspec.json.encode(detail), status_code=status, media_type="application/json")


def router() -> Router:
    """The API, with its refusals in Alertmanager's words; a query parameter an
    operation does not take is passed over, as Alertmanager does: Grafana asks for
    silences with ``ruleMetadata`` and ``accesscontrol``, which only its own
    Alertmanager reads."""
    return Router(
        "/",
        route_handlers=[
            status,
            receivers,
            alerts,
            alert_groups,
            list_silences,
            get_silence,
            post_silence,
            expire_silence,
        ],
        exception_handlers={
            HubError: as_text,
            HTTPException: http_as_text,
            RecursionError: _answered_in_its_form(handle_recursion),
            Exception: _answered_in_its_form(handle_unexpected),
        },
        opt={TAKES_ANY_QUERY: True},
    )
