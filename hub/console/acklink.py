"""The one-click acknowledgement link: ``GET /ack/{token}`` shows what the link does,
and only ``POST /ack/{token}`` acknowledges. ``HEAD`` is answered as GET without the
page (the server drops the body), since link checkers and mail clients send it first.

A GET or HEAD must change nothing: Slack unfurls the links in a message, mail
filters and proxies fetch links before anyone clicks, and each would acknowledge the
incident, pausing its escalation with nobody on it. In a browser the page submits
its form by itself (``console.js``), so a person still clicks once; a fetcher that
runs no script changes nothing. A forged, tampered or expired link gets a 403 page
saying why; an expired one, which hub did sign, also links to its incident. No
session is needed: the signed token is the permission. A link acknowledges only the
episode of the incident it was sent about: once the incident has reopened, its page
says so and a click changes nothing.

Who is recorded: a link sent to one person (``?by=``, signed with the token)
acknowledges as that person. A link sent to a shared channel cannot know who clicks
it: it records the console viewer if one is signed in, else ``ack-link``, and its
page and banner say so. The person holding the incident opening their link again is
told they hold it, and it changes nothing: not a snooze they took (an acknowledgement
by the API or console ends a snooze; a second click of a link is no such decision),
nor the timeline. Anyone else is told who holds the incident.
"""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Request, post, route
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from hub import acklinks, api_incidents
from hub.console import render, viewer
from hub.errors import Conflict, NotFound

ACTOR = "ack-link"


def _expired(request: Request, exc: acklinks.Expired) -> Template:
    """A 403 saying the link expired, with the way to its incident: a signed-in person
    can still acknowledge it there."""
    return render.page(
        request,
        viewer.identify(request),
        "error.html",
        status=exc.status,
        title="Link expired",
        detail=(
            f"This acknowledgement link for incident #{exc.incident_id} expired; a"
            " signed-in person can acknowledge the incident on its page."
        ),
        incident_id=exc.incident_id,
    )


@route(
    "/ack/{token:str}",
    http_method=["GET", "HEAD"],
    exception_handlers={acklinks.Expired: _expired},
)
async def ack_page(
    request: Request, token: FromPath[str], by: FromQuery[str | None] = None
) -> Template:
    """The incident the link acknowledges and as whom, with the form a browser submits
    at once."""
    link = _verified(request, token, by)
    incident = request.app.state.hub.store.incident(link.incident_id)
    if incident is None:
        raise NotFound(f"incident {link.incident_id} no longer exists")
    who = viewer.identify(request)
    actor = _actor(link, who)
    return render.page(
        request,
        who,
        "ack.html",
        incident=incident,
        action=acklinks.path(token, link.person),
        actor=actor,
        anonymous=actor == ACTOR,
        refusal=_refusal(incident, link, actor),
    )


@post("/ack/{token:str}", status_code=303, exception_handlers={acklinks.Expired: _expired})
async def ack_by_link(
    request: Request, token: FromPath[str], by: FromQuery[str | None] = None
) -> Redirect:
    """Acknowledge, then show the incident with a banner saying what happened: a
    second person clicking must not read that they took an incident someone else has
    (its page names who did), nor may a link about an earlier episode take this one."""
    link = _verified(request, token, by)
    hub = request.app.state.hub
    who = viewer.identify(request)
    actor = _actor(link, who)
    done = _refusal(hub.store.incident(link.incident_id), link, actor)
    if not done:
        try:
            await api_incidents.perform(
                hub,
                link.incident_id,
                "ack",
                actor,
                "acknowledged by link",
                link.episode,
                via="ack_link",
            )
            done = _acked(actor, who)
        except Conflict:  # it changed since it was read: say how
            done = _refusal(hub.store.incident(link.incident_id), link, actor)
    return Redirect(f"/incidents/{link.incident_id}?done={done}", status_code=303)


def _acked(actor: str, who: viewer.Viewer) -> str:
    """The banner after a link acknowledged: a shared channel's link recorded as
    ``ack-link`` says how to be named next time, signing in, unless the hub has no
    tokens to sign in with (the example config), where that advice leads nowhere."""
    if actor != ACTOR:
        return "acked-by-link"
    return "acked-by-shared-link-open" if who.open_mode else "acked-by-shared-link"


def _actor(link: acklinks.Link, who: viewer.Viewer) -> str:
    """Whom the acknowledgement is recorded as: the person the link was sent to; for a
    shared channel's link, the signed-in console viewer, else ``ack-link``."""
    return link.person or who.name or ACTOR


def _refusal(incident: dict | None, link: acklinks.Link, actor: str) -> str:
    """Why the link changes nothing (a banner's code), or "" when it acknowledges (a
    missing incident is left to the action, which says so). The person holding the
    incident is told so (``already-yours``); ``ack-link`` names nobody, so it never
    holds an incident for whoever clicks next."""
    if incident is None:
        return ""
    if incident["episode"] != link.episode:
        return "earlier-episode"
    if incident["status"] == "open":
        return ""
    return "already-yours" if _holds(incident, actor) else f"already-{incident['status']}"


def _holds(incident: dict, actor: str) -> bool:
    held = incident["status"] == "acknowledged" and incident["acknowledged_by"] == actor
    return held and actor != ACTOR


def _verified(request: Request, token: str, person: str | None) -> acklinks.Link:
    hub = request.app.state.hub
    now = datetime.fromtimestamp(hub.clock(), UTC)
    return acklinks.verify(hub.ack_secret, token, now, person)


HANDLERS = [ack_page, ack_by_link]
