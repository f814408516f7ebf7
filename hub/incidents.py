"""The incident lifecycle: open -> acknowledged -> resolved, derived from its alerts.

An incident resolves by itself when none of its alerts is active any more; resolved is
final for that incident. A group that fires again then starts a new incident, or
reopens its last one when that resolved less than ``[incidents] reopen_window`` ago
(default "0s": never), so a brief blip does not scatter one outage over many
incidents. The caller records acks and resolves; these rules only decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from hub.events import Status

HUB_ACTOR = "hub"
"""Who hub records as the actor of what it does itself (opening, resolving by alerts)."""

IncidentStatus = Literal["open", "acknowledged", "resolved"]
Placement = Literal["join", "reopen", "new"]


def next_status(
    current: IncidentStatus, alert_statuses: Iterable[Status], acked: bool
) -> IncidentStatus:
    """The status after a change to the alerts or the ack.

    ``acked`` is a person's ack (API, CLI, link); an incident whose active alerts were
    all acknowledged at their source (e.g. PagerDuty ``acknowledge``) counts as acked.
    """
    active = [s for s in alert_statuses if s != "resolved"]
    if current == "resolved" or not active:
        return "resolved"
    if acked or all(s == "acknowledged" for s in active):
        return "acknowledged"
    return "open"


def said(comment: str, via: str | None) -> dict:
    """A person's action as its timeline entry details it: why, and the token that named
    them (``via``, a token that speaks for others) when one did."""
    return {"comment": comment} | ({"via": via} if via else {})


def marked(
    action: Literal["acknowledged", "resolved"],
    at: float | None = None,
    actor: str | None = None,
    via: str | None = None,
) -> dict[str, float | str | None]:
    """The columns saying when and by whom an incident was acknowledged or resolved,
    and the token that vouched for that person (``via``); called without ``at`` they
    clear it. Every writer goes through here, so a person cleared never leaves their
    token behind, nor a person recorded someone else's."""
    return {f"{action}_at": at, f"{action}_by": actor, f"{action}_via": via}


def should_reopen(resolved_at: datetime, now: datetime, window: float) -> bool:
    """True if an incident resolved less than ``window`` seconds ago may be reopened."""
    return window > 0 and now - resolved_at < timedelta(seconds=window)


def place(
    last: IncidentStatus | None, resolved_at: datetime | None, now: datetime, window: float
) -> Placement:
    """Where a new firing alert of a group goes: join the group's last incident while it is
    not resolved, reopen it if it resolved within the window, otherwise start a new one."""
    if last is None:
        return "new"
    if last != "resolved":
        return "join"
    if resolved_at is not None and should_reopen(resolved_at, now, window):
        return "reopen"
    return "new"
