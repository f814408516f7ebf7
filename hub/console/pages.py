"""The console's pages: what an operator watches. Every page reads through the same
store queries and API helpers as ``/api/v1``, so both always agree."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, get_args

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template

from hub import (
    api_events,
    api_heartbeats,
    api_incidents,
    api_oncall,
    api_replay,
    matchers,
    paging,
    silencing,
)
from hub import heartbeats as heartbeat_checks
from hub.alerts import matchable
from hub.api import RowId, mute_moment, muted_incidents, muted_only, with_mutes
from hub.console.render import page, rendered
from hub.console.viewer import Viewer, identify
from hub.durations import Duration
from hub.errors import NotFound
from hub.silences import Silence
from hub.store import ROW_ID_MAX
from hub.templates import TEST_PATH

TABS = ("open", "acknowledged", "resolved")
MUTED_CHOICES = {"": "all", "false": "not muted", "true": "muted only"}
"""The ``muted`` filter's values, as the API's, and the words of their links."""
SHOWN = 100
DELIVERIES_PER_SOURCE = 15
Repeated = Annotated[list[str] | None, QueryParameter(name="matcher")]


@get("/", name="console:incidents")
async def incidents(
    request: Request,
    viewer: NamedDependency[Viewer],
    status: FromQuery[str] = "open",
    label: FromQuery[str] = "",
    muted: FromQuery[str] = "",
    cursor: FromQuery[str | None] = None,
) -> Response:
    """Incidents by tab, newest change first, a page at a time as ``/api/v1/incidents``
    pages them; ``label`` filters on group labels, ``muted`` keeps the muted incidents
    (``true``) or the others (``false``), the tab counts too. An unknown tab or filter
    is a 400 that says so, never a list that looks like the answer. Worked out and
    rendered in a read thread (``Store.read_aside``): mutes and counts go over every
    firing alert."""
    return await request.app.state.hub.store.read_aside(
        lambda: rendered(request, _incidents_page(request, viewer, status, label, muted, cursor))
    )


def _incidents_page(
    request: Request, viewer: Viewer, status: str, label: str, muted: str, cursor: str | None
) -> Template:
    hub = request.app.state.hub
    at = mute_moment(hub)  # one config and set of silences for the list, tabs and marks
    store, group_by = hub.store, at.rules.config.route.group_by or []
    wanted, error = _matchers(label)
    shown_muted, muted_error = _muted(muted)
    error = error or muted_error
    only = muted_only(hub, shown_muted, muted_incidents, at)
    found = (
        paging.Page([], None)
        if error
        else api_incidents.find(
            store, wanted, status=_tab(status), limit=SHOWN, cursor=cursor, only=only
        )
    )
    here = None
    if status not in TABS and not error:
        error = f"There is no tab {status!r}: the tabs are {', '.join(TABS)}. Showing open."
        here = "/"  # what it shows, and what its refresh asks for
    counts: dict[str, int] = dict.fromkeys(TABS, 0)
    for (_, state), n in store.incident_counts(*only).items():
        counts[state] += n
    ids = [row["id"] for row in found.rows]
    return page(
        request,
        viewer,
        "incidents.html",
        live="incidents_table.html",
        status=400 if error else 200,
        tab=_tab(status),
        tabs=TABS,
        counts=counts,
        label=label,
        muted="" if muted_error else muted,
        muted_choices=MUTED_CHOICES,
        error=error,
        incidents=found.rows,
        cursor=cursor,
        older=found.next,
        alert_counts=store.incident_alert_counts(ids),
        muted_ids=muted_incidents(with_mutes(hub, store.firing_alerts_of(ids), at)),
        group_by=group_by,
        filter_example=filter_example(group_by),
        here=here,
    )


def filter_example(group_by: list[str]) -> str:
    """The filter box's placeholder, in the labels incidents are grouped by here."""
    shown = [label for label in group_by if label.isidentifier()][:2]
    if not shown:
        return 'service="checkout", env=~"prod|staging"'
    return ", ".join(f'{label}="..."' for label in shown)


def _tab(status: str) -> str:
    return status if status in TABS else "open"


def _muted(text: str) -> tuple[bool | None, str]:
    """The ``muted`` filter as the API takes it, from the values the page's links give."""
    if text in MUTED_CHOICES:
        return (text == "true" if text else None), ""
    choices = " or ".join(f"{value} ({words})" for value, words in MUTED_CHOICES.items() if value)
    return None, f"There is no muted filter {text!r}: give {choices}, or none for all."


def _matchers(text: str) -> tuple[list[matchers.Matcher], str]:
    if not text.strip():
        return [], ""
    try:
        return matchers.parse(text), ""
    except ValueError as e:
        return [], f"Filter: {e}"


@get("/incidents/{incident_id:str}", name="console:incident")
async def incident(
    request: Request, viewer: NamedDependency[Viewer], incident_id: RowId
) -> Response:
    """Read and rendered aside (``Store.read_aside``): an incident may hold thousands of
    alerts."""
    return await request.app.state.hub.store.read_aside(
        lambda: rendered(request, incident_page(request, viewer, incident_id))
    )


def incident_page(
    request: Request,
    viewer: NamedDependency[Viewer],
    incident_id: int,
    error: str = "",
    status: int = 200,
) -> Template:
    """One incident, each alert with what holds it back now; actions that failed come
    back here with their error."""
    hub = request.app.state.hub
    store = hub.store
    found = store.incident(incident_id)
    if found is None:
        raise NotFound(f"no incident with id {incident_id}")
    timeline = store.timeline(incident_id)
    sent = store.notifications({"incident_id": incident_id}, limit=SHOWN)
    return page(
        request,
        viewer,
        "incident.html",
        live="incident_live.html",
        status=status,
        error=error,
        incident=found,
        alerts=with_mutes(hub, store.incident_alerts(incident_id), mute_moment(hub)),
        timeline=timeline,
        notifications=sent,
        dismissals=dismissals(store, sent),
        escalation=store.escalation(incident_id),
        unheard=unheard_step(timeline),
    )


def unheard_step(timeline: list[dict]) -> dict | None:
    """The last escalation step's timeline detail when it paged nobody (its schedules
    had nobody on call): a finished escalation whose last step reached no one must say
    so where it says it finished, not only deep in the timeline."""
    steps = [t["detail"] for t in timeline if t["kind"] == "escalated"]
    last = steps[-1] if steps else {}
    reached = last.get("notified") or last.get("via_route")
    return last if last.get("nobody_on_call") and not reached else None


@get("/silences", name="console:silences")
async def silences(request: Request, viewer: NamedDependency[Viewer]) -> Response:
    """Read and rendered aside (``Store.read_aside``): expired silences are kept for
    months."""
    return await request.app.state.hub.store.read_aside(
        lambda: rendered(request, silences_page(request, viewer))
    )


def silences_page(
    request: Request, viewer: NamedDependency[Viewer], error: str = "", status: int = 200
) -> Template:
    listed = silencing.listed(request.app.state.hub)
    return page(request, viewer, "silences.html", status=status, error=error, silences=listed)


@get("/silences/new", name="console:new-silence")
async def new_silence(
    request: Request,
    viewer: NamedDependency[Viewer],
    matcher: Repeated = None,
    incident: Annotated[int | None, QueryParameter(ge=1, le=ROW_ID_MAX)] = None,
) -> Template:
    """The silence form; opened from an incident ("silence alerts like this": its id and
    no ``matcher``), filled with the incident's group labels as matchers. The link names
    only the incident: group labels of hundreds of kilobytes made a link no browser or
    server takes (hub answers a request line over 64 KiB with 431)."""
    if matcher is None and incident is not None:
        matcher = like_this(request.app.state.hub.store.incident(incident))
    return silence_form(
        request, viewer, {"matchers": "\n".join(matcher or []), "incident": incident}
    )


def like_this(incident: dict[str, Any] | None) -> list[str]:
    """Matchers for an incident's group labels (none for no incident)."""
    labels = incident["labels"] if incident else {}
    return [str(matchers.Matcher(k, "=", v)) for k, v in sorted(labels.items())]


@get("/silences/{silence_id:str}/edit", name="console:edit-silence")
async def edit_silence(
    request: Request, viewer: NamedDependency[Viewer], silence_id: FromPath[str]
) -> Template:
    """The silence form filled with a pending or active silence, to change it in place;
    the duration counts from its start. A static or expired one is refused (409) as the
    API refuses to change it."""
    editing = silencing.changeable(request.app.state.hub, silence_id)
    values = {
        "matchers": "\n".join(editing.matchers),
        "duration": _length(editing),
        "comment": editing.comment,
    }
    return silence_form(request, viewer, values, editing=editing)


def _length(silence: Silence) -> str:
    """How long a silence lasts, from its start, in the form's words ("2h", "90m"); an
    API silence has both bounds."""
    if silence.starts_at is None or silence.ends_at is None:
        return ""
    return Duration(round((silence.ends_at - silence.starts_at).total_seconds())).text()


def silence_form(
    request: Request,
    viewer: NamedDependency[Viewer],
    values: dict[str, Any],
    error: str = "",
    status: int = 200,
    editing: Silence | None = None,
) -> Template:
    """The silence form, for a new silence or the one ``editing``; from an incident,
    with which of its alerts the matchers catch."""
    form = {"duration": "2h", "comment": "", "matchers": "", "incident": None} | values
    incident = str(form["incident"] or "")
    alerts = (
        request.app.state.hub.store.incident_alerts(int(incident)) if incident.isdigit() else []
    )
    texts = [line.strip() for line in form["matchers"].splitlines() if line.strip()]
    marks = caught(texts, [matchable(a) for a in alerts])
    return page(
        request,
        viewer,
        "silence_form.html",
        status=status,
        error=error,
        form=form,
        editing=editing,
        alerts=list(zip(alerts, marks, strict=True)),
    )


def caught(texts: list[str], labelsets: list[dict[str, str]]) -> list[bool]:
    """Whether matchers (as typed; none if one does not parse) catch each label set."""
    try:
        wanted = matchers.parse_all(texts)
    except ValueError:
        return [False] * len(labelsets)
    return [bool(wanted) and matchers.matches_all(wanted, labels) for labels in labelsets]


@get("/heartbeats", name="console:heartbeats")
async def heartbeats(request: Request, viewer: NamedDependency[Viewer]) -> Template:
    return heartbeats_page(request, viewer)


def heartbeats_page(
    request: Request, viewer: NamedDependency[Viewer], error: str = "", status: int = 200
) -> Template:
    """Each heartbeat; a down one with why (a failure reported, a deadline missed) and
    its incident, read from the alert it raised."""
    store = request.app.state.hub.store
    rows = [api_heartbeats.present(row) for row in store.heartbeats()]
    alerts = store.alerts_by_fingerprint([heartbeat_checks.fingerprint(r["name"]) for r in rows])
    for row in rows:
        alert = alerts.get(heartbeat_checks.fingerprint(row["name"]))
        row["alert"] = alert if alert and alert["status"] == "firing" else None
    return page(
        request,
        viewer,
        "heartbeats.html",
        live="heartbeats_table.html",
        status=status,
        error=error,
        heartbeats=rows,
    )


@get("/oncall", name="console:oncall")
async def oncall(request: Request, viewer: NamedDependency[Viewer]) -> Template:
    """Who is on call in each schedule now, until when, and who is next."""
    hub = request.app.state.hub
    now = datetime.fromtimestamp(hub.clock(), UTC)
    rows = [
        {
            **api_oncall.answer(s, now),
            "time_zone": s.time_zone,
            "people": [p.name for p in s.people],
        }
        for s in hub.config.schedules
    ]
    return page(request, viewer, "oncall.html", schedules=rows)


@get("/sources", name="console:sources")
async def sources(request: Request, viewer: NamedDependency[Viewer]) -> Template:
    """The webhook inspector: each configured source and its latest deliveries."""
    hub = request.app.state.hub
    listed = [
        {"source": s, "deliveries": hub.store.deliveries(s.name, DELIVERIES_PER_SOURCE)}
        for s in hub.config.sources
    ]
    _with_outcomes(hub.store, [d for entry in listed for d in entry["deliveries"]])
    return page(request, viewer, "sources.html", live="sources_live.html", sources=listed)


def _with_outcomes(store: Any, deliveries: list[dict]) -> None:
    """Give each delivery the outcomes of its events (``outcomes``), which say what it
    did: a format that answers 200 with no body (Prometheus) says nothing itself, and
    the answer code cannot tell a first delivery from a repeat."""
    found = store.delivery_outcomes([d["id"] for d in deliveries])
    for delivery in deliveries:
        delivery["outcomes"] = found.get(delivery["id"], {})


@get("/deliveries/{delivery_id:str}", name="console:delivery")
async def delivery(
    request: Request, viewer: NamedDependency[Viewer], delivery_id: RowId
) -> Template:
    return delivery_page(request, viewer, delivery_id)


def delivery_page(
    request: Request,
    viewer: NamedDependency[Viewer],
    delivery_id: int,
    error: str = "",
    status: int = 200,
    decision: dict | None = None,
) -> Template:
    """One delivery as it arrived (headers without credentials, the raw body), what it
    was answered, the events it produced, and a replay's dry-run decision if asked."""
    store = request.app.state.hub.store
    row = store.delivery(delivery_id)
    if row is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    body, is_base64 = api_events.body_text(row.pop("body"))
    _with_outcomes(store, [row])
    return page(
        request,
        viewer,
        "delivery.html",
        status=status,
        error=error,
        delivery=row,
        body=_pretty(body) if not is_base64 else body,
        body_base64=is_base64,
        events=store.delivery_events(delivery_id),
        replayable=row["source"] not in api_replay.HUB_MADE,
        decision=decision,
        effects=replay_effects(decision) if decision else [],
    )


# What each outcome of a dry run means to the person about to ingest a body again,
# keyed by the outcome and the status the event carries.
_EFFECTS = {
    ("new", "firing"): "opens a new firing alert",
    ("new", "resolved"): "records a new alert as resolved",
    ("changed", "firing"): "reopens a resolved alert",
    ("changed", "resolved"): "resolves a firing alert",
    ("updated", "firing"): "changes a firing alert's summary or severity",
    ("updated", "resolved"): "changes a resolved alert's summary or severity",
    ("acknowledged", "acknowledged"): "acknowledges an alert's incident",
}


def replay_effects(decision: dict) -> list[str]:
    """A dry run in words, one line per event that would change something, then who
    would be told: what an admin reads before ingesting a body again can page people."""
    lines = [
        f"{event['fingerprint']}: {_EFFECTS[event['outcome'], event['event']['status']]}"
        for event in decision["decision"]
        if (event["outcome"], event["event"]["status"]) in _EFFECTS
    ]
    told = sorted({receiver for event in decision["decision"] for receiver in event["receivers"]})
    unchanged = len(decision["decision"]) - len(lines)
    if unchanged:
        lines.append(f"{unchanged} event(s) change nothing (repeats, stale or ignored)")
    lines.append(f"notifies {', '.join(told)}" if told else "notifies nobody")
    return lines


def _pretty(text: str) -> str:
    """JSON bodies indented for reading; the stored bytes stay exactly as received."""
    return json.dumps(json.loads(text), indent=2, ensure_ascii=False)


@get("/notifications", name="console:notifications")
async def notifications(
    request: Request,
    viewer: NamedDependency[Viewer],
    wanted: Annotated[str, QueryParameter(name="state")] = "",
) -> Template:
    return notifications_page(request, viewer, wanted)


def notifications_page(
    request: Request,
    viewer: NamedDependency[Viewer],
    state: str = "",
    error: str = "",
    status: int = 200,
) -> Template:
    """The delivery log, newest first, with each row's outcome and last error."""
    store = request.app.state.hub.store
    filters = {"state": state} if state in get_args(api_incidents.NotificationState) else {}
    rows = store.notifications(filters, limit=SHOWN)
    return page(
        request,
        viewer,
        "notifications.html",
        live="notification_rows.html",
        status=status,
        error=error,
        state=filters.get("state", ""),
        notifications=rows,
        dismissals=dismissals(store, rows),
    )


def dismissals(store: Any, notifications: list[dict]) -> dict[int, dict]:
    """Who dismissed each dismissed notification and why, from its incident's timeline."""
    gone = {n["incident_id"] for n in notifications if n["state"] == "dismissed"}
    return store.dismissals(sorted(i for i in gone if i is not None)) if gone else {}


@get(TEST_PATH, name="console:notify-test")
async def test_link(request: Request) -> Template:
    """Where the links of a ``hub notify-test`` message lead. No sign-in, as for a real
    message's ack link: whoever checks a link from their phone is told it worked."""
    return page(
        request,
        identify(request),
        "error.html",
        title="Test notification",
        detail=(
            "This link is in a test message that hub notify-test sent: no incident is"
            " behind it, and following it acknowledges nothing. It reached the hub, so"
            " the links in real notifications will too."
        ),
    )


HANDLERS = [
    test_link,
    incidents,
    incident,
    silences,
    new_silence,
    edit_silence,
    heartbeats,
    oncall,
    sources,
    delivery,
    notifications,
]
