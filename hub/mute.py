"""The mute stage: which alerts of a notification are held back, and why.

Applied when notifying, not when receiving (as Alertmanager does), so a silence or
maintenance window created after an alert arrived still applies. Only firing
alerts are muted: a resolution is always worth knowing to whoever heard of the alert.
Reasons are a fixed set (a metric label): flapping, silence, maintenance, inhibition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from hub import flapping, silences
from hub.alerts import matchable
from hub.config import Flapping
from hub.inhibit import Inhibitor

REASONS = ("flapping", "silence", "maintenance", "inhibition")
MAINTENANCE_PREFIX = "maintenance:"

Labels = Mapping[str, str]


def reasons(
    alerts: Sequence[dict],
    now: datetime,
    active_silences: Sequence[silences.Silence],
    inhibitor: Inhibitor,
    route_muted: Callable[[Labels], bool],
    flapping_settings: Flapping,
) -> dict[str, str]:
    """fingerprint -> reason, for every firing alert that must not be notified now."""
    found = {}
    for alert in alerts:
        if alert["status"] != "firing":
            continue
        reason = _reason(alert, now, active_silences, inhibitor, route_muted, flapping_settings)
        if reason is not None:
            found[alert["fingerprint"]] = reason
    return found


def _reason(
    alert: dict,
    now: datetime,
    active_silences: Sequence[silences.Silence],
    inhibitor: Inhibitor,
    route_muted: Callable[[Labels], bool],
    flapping_settings: Flapping,
) -> str | None:
    changes = [datetime.fromtimestamp(t, now.tzinfo) for t in alert.get("changes", [])]
    if flapping.is_flapping(changes, now, flapping_settings):
        return "flapping"
    labels = matchable(alert)
    muting = silences.muting_silences(active_silences, labels, now)
    if muting:
        return "maintenance" if all(m.startswith(MAINTENANCE_PREFIX) for m in muting) else "silence"
    if route_muted(labels):
        return "maintenance"
    if inhibitor.inhibited_by(labels) is not None:
        return "inhibition"
    return None
