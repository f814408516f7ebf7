"""The console's forms: acknowledge, snooze, unacknowledge and resolve an incident,
create, change and expire silences, retry or dismiss a dead letter, pause and resume
a heartbeat. Each post is checked (CSRF
token, then role) by ``viewer.posted`` and then calls the same function the API does.
Success redirects (so a reload never repeats it) with a ``done`` banner; a refused
change shows the page again with the reason.
"""

from __future__ import annotations

import msgspec
from litestar import Request, get, post
from litestar.datastructures.multi_dicts import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from hub import api_heartbeats, api_incidents, api_replay, heartbeats, silencing, snoozes
from hub.api import RowId
from hub.api_params import check_comment
from hub.console import pages, render
from hub.console.viewer import Viewer, local, posted
from hub.errors import Conflict, Forbidden, InvalidPayload, MalformedBody, NotFound, Unavailable

ACTIONS = ("ack", "snooze", "unack", "resolve")
HEARTBEAT_ACTIONS = {"pause": "paused", "resume": "resumed"}
"""A heartbeat's actions and the banner each shows once done."""


@post("/incidents/{incident_id:int}/{action:str}", name="console:act")
async def act(
    request: Request,
    viewer: NamedDependency[Viewer],
    incident_id: RowId,
    action: FromPath[str],
) -> Redirect | Template:
    if action not in ACTIONS:
        raise NotFound(f"no incident action {action!r}")
    form = await posted(request, viewer, "write")
    comment = str(form.get("comment", ""))
    hub = request.app.state.hub
    try:
        snooze = snoozes.length(str(form.get("duration", ""))) if action == "snooze" else None
        done = await api_incidents.perform(
            hub,
            incident_id,
            action,
            viewer.name or "console",
            comment,
            snooze=snooze,
            via="console",
        )
    except (Conflict, InvalidPayload) as e:
        return pages.incident_page(request, viewer, incident_id, error=e.detail, status=e.status)
    unchanged_resolve = action == "resolve" and not done.changed  # a page left open
    banner = "already-resolved" if unchanged_resolve else action
    return Redirect(f"/incidents/{incident_id}?done={banner}", status_code=303)


@get(
    [
        "/incidents/{incident_id:int}/{action:str}",
        "/notifications/{notification_id:int}/{action:str}",
        "/silences/{silence_id:str}/expire",
        "/deliveries/{delivery_id:int}/replay",
        "/heartbeats/{name:str}/{action:str}",
        "/logout",
    ],
    name="console:action-page",
)
async def action_page(request: Request) -> Redirect:
    """An action URL opened, not posted (a reload of a form's answer, a shared address):
    its page, where the action can be seen and taken."""
    return Redirect(render.page_of(request.url.path), status_code=303)


@post("/silences", name="console:create-silence")
async def create_silence(request: Request, viewer: NamedDependency[Viewer]) -> Redirect | Template:
    """Matchers one per line, a duration and a comment; refused ones keep what was typed.
    The banner counts the firing alerts it mutes: one muting none has a typo, likely."""
    values, body = _silence_sent(await posted(request, viewer, "write"))
    hub = request.app.state.hub
    try:
        made = await silencing.create(hub, body, viewer.caller)
    except InvalidPayload as e:
        return pages.silence_form(request, viewer, values, error=e.detail, status=422)
    back = f"/incidents/{values['incident']}" if values["incident"].isdigit() else "/silences"
    mutes = await _firing_caught(hub, made["matchers"])
    counted = "" if mutes is None else f"&mutes={mutes}"
    return Redirect(f"{back}?done=silenced{counted}", status_code=303)


async def _firing_caught(hub, texts: list[str]) -> int | None:
    """How many firing alerts matchers catch, counted in a read thread: reading and
    matching every firing alert's labels took 0.7-1.1 s at 200,000 of them, which the
    event loop spent on it before. None when every read thread is busy: the silence is
    made, and its banner says so without the count."""
    try:
        return await hub.store.read_aside(
            lambda: sum(pages.caught(texts, hub.store.reading().firing_alert_labels()))
        )
    except Unavailable:
        return None


@post("/silences/{silence_id:str}/edit", name="console:update-silence")
async def update_silence(
    request: Request, viewer: NamedDependency[Viewer], silence_id: FromPath[str]
) -> Redirect | Template:
    """The edit form sent: the silence changed in place (same id), or the form again with
    what was typed and why it was refused; a silence that expired or left meanwhile is
    refused on the list, as Expire is."""
    values, body = _silence_sent(await posted(request, viewer, "write"))
    hub = request.app.state.hub
    try:
        await silencing.update(hub, silence_id, body, viewer.caller)
    except InvalidPayload as e:
        editing = silencing.changeable(hub, silence_id)
        return pages.silence_form(request, viewer, values, e.detail, 422, editing)
    except Conflict as e:
        return pages.silences_page(request, viewer, error=e.detail, status=409)
    return Redirect("/silences?done=updated", status_code=303)


def _silence_sent(form: FormMultiDict) -> tuple[dict[str, str], silencing.NewSilence]:
    """The silence form's fields as typed (shown again if refused), and as the API's body:
    matchers one per line, without a start (new: now; changed: as it was)."""
    values = {
        key: str(form.get(key, "")) for key in ("matchers", "duration", "comment", "incident")
    }
    body = silencing.NewSilence(
        matchers=[line.strip() for line in values["matchers"].splitlines() if line.strip()],
        duration=values["duration"].strip() or None,
        comment=values["comment"],
    )
    return values, body


@post("/silences/{silence_id:str}/expire", name="console:expire-silence")
async def expire_silence(
    request: Request, viewer: NamedDependency[Viewer], silence_id: FromPath[str]
) -> Redirect | Template:
    await posted(request, viewer, "write")
    try:
        await silencing.expire(request.app.state.hub, silence_id, viewer.name)
    except Conflict as e:
        return pages.silences_page(request, viewer, error=e.detail, status=409)
    return Redirect("/silences?done=expired", status_code=303)


@post("/notifications/{notification_id:int}/{action:str}", name="console:dead-letter")
async def dead_letter(
    request: Request,
    viewer: NamedDependency[Viewer],
    notification_id: RowId,
    action: FromPath[str],
) -> Redirect | Template:
    """Send a dead letter again, or dismiss it with an optional why (role admin, as in
    the API); then back to the page the button was on (an incident's, a tab)."""
    if action not in ("retry", "dismiss"):
        raise NotFound(f"no dead letter action {action!r}")
    form = await posted(request, viewer, "admin")
    hub, by = request.app.state.hub, viewer.name or "console"
    try:
        if action == "retry":
            await api_incidents.retry(hub, notification_id, by, via="console")
        else:
            comment = str(form.get("comment", ""))
            await api_incidents.dismiss(hub, notification_id, by, comment, via="console")
    except (Conflict, InvalidPayload) as e:
        return pages.notifications_page(request, viewer, error=e.detail, status=e.status)
    back = local(str(form.get("back", "/notifications")))
    return Redirect(f"{back}{'&' if '?' in back else '?'}done={action}", status_code=303)


@post("/deliveries/{delivery_id:int}/replay", name="console:replay")
async def replay(
    request: Request, viewer: NamedDependency[Viewer], delivery_id: RowId
) -> Redirect | Template:
    """Try a stored delivery against the current config (role write: a dry run shows
    the decision) or ingest it again as a new delivery (role admin)."""
    form = await posted(request, viewer, "write")
    dry_run = form.get("dry_run") == "1"
    if not dry_run and not viewer.can("admin"):
        raise Forbidden("ingesting a delivery again needs the admin role; a dry run needs write")
    try:
        _, answer = await api_replay.run(request.app.state.hub, delivery_id, dry_run=dry_run)
    except (Conflict, InvalidPayload, MalformedBody) as e:
        return pages.delivery_page(request, viewer, delivery_id, error=e.detail, status=409)
    if dry_run:
        shown = msgspec.to_builtins(answer)
        return pages.delivery_page(request, viewer, delivery_id, decision=shown)
    return Redirect(f"/deliveries/{answer['delivery_id']}?done=replayed", status_code=303)


@post("/heartbeats/{name:str}/{action:str}", name="console:heartbeat")
async def heartbeat(
    request: Request, viewer: NamedDependency[Viewer], name: FromPath[str], action: FromPath[str]
) -> Redirect | Template:
    """Pause a heartbeat with an optional why, or resume it (role write, as in the API),
    recorded as the signed-in person; a refusal (resuming one a ping already resumed, a
    reason too long) shows the list again with why."""
    if action not in HEARTBEAT_ACTIONS:
        raise NotFound(f"no heartbeat action {action!r}")
    form = await posted(request, viewer, "write")
    hub, who = request.app.state.hub, heartbeats.Who(viewer.name or "console", via="console")
    try:
        if action == "pause":
            reason = str(form.get("reason", "")).strip()
            check_comment(reason, "reason")
            await api_heartbeats.pause(hub, name, who, reason)
        else:
            await api_heartbeats.resume(hub, name, who)
    except (Conflict, InvalidPayload) as e:
        return pages.heartbeats_page(request, viewer, error=e.detail, status=e.status)
    return Redirect(f"/heartbeats?done={HEARTBEAT_ACTIONS[action]}", status_code=303)


HANDLERS = [
    act,
    action_page,
    create_silence,
    update_silence,
    expire_silence,
    dead_letter,
    replay,
    heartbeat,
]
