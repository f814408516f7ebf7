"""When an incident's next notification to one receiver is due (Alertmanager timing).

- The first notification waits ``group_wait`` after the incident's first alert, so a
  burst of related alerts arrives as one message.
- A change (a new firing alert; a resolved one, for receivers that want resolutions)
  is sent at most every ``group_interval``.
- Nothing changed but alerts still fire: re-sent after ``repeat_interval``.
- A receiver without ``send_resolved`` is never told "all resolved"; an alert
  resolving while others still fire changes what it would be told (the firing set),
  so it gets the shorter list.

Pure: the caller keeps one ``Delivery`` per (incident, receiver) and asks again
whenever the incident's alerts change or a notification was sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Timing:
    """Seconds, as in the route's ``group_wait``, ``group_interval``, ``repeat_interval``."""

    group_wait: float
    group_interval: float
    repeat_interval: float


@dataclass(frozen=True)
class Delivery:
    """What one receiver has been told about one incident.

    ``last_notified_hash`` is ``content_hash`` of what was sent; both ``last_*`` are
    None until the first notification.
    """

    first_seen: datetime
    last_notified_at: datetime | None = None
    last_notified_hash: str | None = None


def content_hash(alerts: Iterable[tuple[str, str]], send_resolved: bool) -> str:
    """A digest of what a receiver would be told: (fingerprint, status) pairs.

    Resolved alerts count only for receivers that are sent resolutions, so for the
    others a resolution is not a change worth a message of its own.
    """
    relevant = sorted(
        f"{fingerprint}\x00{status}"
        for fingerprint, status in alerts
        if status == "firing" or send_resolved
    )
    return hashlib.sha256("\x01".join(relevant).encode()).hexdigest()[:32]


def when_due(
    delivery: Delivery,
    alerts: Iterable[tuple[str, str]],
    timing: Timing,
    send_resolved: bool,
    digest: str | None = None,
) -> datetime | None:
    """When to notify next, or None if there is nothing to tell this receiver.

    A returned time at or before now means "send now". ``digest`` is the alerts'
    ``content_hash`` when the caller has it: a look at an incident of 200,000 alerts
    hashes them once rather than at each question.
    """
    alerts = list(alerts)
    firing = any(status == "firing" for _, status in alerts)
    if delivery.last_notified_at is None:
        return delivery.first_seen + _seconds(timing.group_wait) if firing else None
    if digest is None:
        digest = content_hash(alerts, send_resolved)
    changed = digest != delivery.last_notified_hash
    if changed and (firing or send_resolved):
        return delivery.last_notified_at + _seconds(timing.group_interval)
    if firing:
        return delivery.last_notified_at + _seconds(timing.repeat_interval)
    return None


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
