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
"""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Request, post, route
from litestar.params import FromPath
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
async def ack_page(request: Request, token: FromPath[str]) -> Template:
    """The incident the link acknowledges, with the form a browser submits at once."""
    link = _verified(request, token)
    incident = request.app.state.hub.store.incident(link.incident_id)
    if incident is None:
        raise NotFound(f"incident {link.incident_id} no longer exists")
    return render.page(
        request,
        viewer.identify(request),
        "ack.html",
        incident=incident,
        token=token,
        refusal=_refusal(incident, link),
    )


@post("/ack/{token:str}", status_code=303, exception_handlers={acklinks.Expired: _expired})
async def ack_by_link(request: Request, token: FromPath[str]) -> Redirect:
    """Acknowledge, then show the incident with a banner saying what happened: a
    second person clicking must not read that they took an incident someone else has
    (its page names who did), nor may a link about an earlier episode take this one."""
    link = _verified(request, token)
    hub = request.app.state.hub
    done = _refusal(hub.store.incident(link.incident_id), link)
    if not done:
        try:
            await api_incidents.perform(
                hub, link.incident_id, "ack", ACTOR, "acknowledged by link", link.episode
            )
            done = "acked-by-link"
        except Conflict:  # it changed since it was read: say how
            done = _refusal(hub.store.incident(link.incident_id), link)
    return Redirect(f"/incidents/{link.incident_id}?done={done}", status_code=303)


def _refusal(incident: dict | None, link: acklinks.Link) -> str:
    """Why the link changes nothing (a banner's code), or "" when it acknowledges (a
    missing incident is left to the action, which says so)."""
    if incident is None:
        return ""
    if incident["episode"] != link.episode:
        return "earlier-episode"
    return "" if incident["status"] == "open" else f"already-{incident['status']}"


def _verified(request: Request, token: str) -> acklinks.Link:
    hub = request.app.state.hub
    return acklinks.verify(hub.ack_secret, token, datetime.fromtimestamp(hub.clock(), UTC))


HANDLERS = [ack_page, ack_by_link]
