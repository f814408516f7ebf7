"""The mute stage: which alerts of a notification are held back, and why.

Applied when notifying, not when receiving (as Alertmanager does), so a silence or
maintenance window created after an alert arrived still applies. Only firing
alerts are muted: a resolution is always worth knowing to whoever heard of the alert.
Reasons are a fixed set (a metric label): flapping, silence, maintenance, inhibition.
The dispatcher needs only the first reason; the routing decision (``hub.decision``)
shows every mute and what holds the alert, so a ``Muter`` answers both. Time intervals
belong to routes, so their part depends on whom the alert is for (a receiver, an
escalation policy: ``Brings``, ``RouteMuting``); every other mute is the alert's,
whoever is told.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import msgspec

from hub import flapping, silences
from hub.alerts import matchable
from hub.config import Flapping
from hub.inhibit import Inhibitor

Reason = Literal["flapping", "silence", "maintenance", "inhibition"]
REASONS: tuple[Reason, ...] = get_args(Reason)
MAINTENANCE_PREFIX = "maintenance:"

Labels = Mapping[str, str]
Brings = Callable[[Any], bool]
"""Whether one of an alert's matched routes (a ``routing.RouteMatch``) brings the alert
to whom a mute decision is for: it names the receiver told, or the escalation policy
paging."""
RouteMuting = Callable[[Labels, Brings | None], list[str]]
"""Labels and whom they are for -> the time intervals muting now the routes that bring
an alert of those labels there (empty: none); None: for anyone, so every route the
alert matches, muting it only while all of them are muted."""


class Mute(msgspec.Struct, frozen=True):
    """One reason an alert is held back, and what holds it: silence ids, time
    intervals, or the inhibition rule (``inhibit_rules[i]``); empty for flapping."""

    reason: Reason
    by: list[str] = []


@dataclass(frozen=True)
class Muter:
    """The mute decision at one moment, for any number of alerts."""

    now: datetime
    active_silences: Sequence[silences.Silence]
    inhibitor: Inhibitor
    route_muting: RouteMuting
    flapping: Flapping

    def reasons(self, alerts: Sequence[dict], brings: Brings | None = None) -> dict[str, str]:
        """fingerprint -> reason, for every firing alert that must not be notified now
        to whom ``brings`` says (None: to anyone, as the API asks: by all its routes).
        Stops at each alert's first mute: this runs for every alert of a due incident."""
        found = {}
        for alert in alerts:
            first = next(self._holding(alert, brings), None)
            if first is not None:
                found[alert["fingerprint"]] = first.reason
        return found

    def mutes(self, alert: dict) -> list[Mute]:
        """Every mute holding this alert back now, the reason that counts first; time
        intervals only while they mute every route of the alert, so none tells anyone."""
        return list(self._holding(alert, None))

    def _flapping(self, change_times: list[float]) -> bool:
        """Whether these changes make the alert flap now; fewer than the threshold never
        do, and most alerts have one or two (an incident's look runs this for each)."""
        if len(change_times) <= self.flapping.threshold:
            return False
        changes = [datetime.fromtimestamp(t, self.now.tzinfo) for t in change_times]
        return flapping.is_flapping(changes, self.now, self.flapping)

    def _holding(self, alert: dict, brings: Brings | None) -> Iterator[Mute]:
        """The mutes in order of precedence, found lazily. An operator's silence counts
        before a maintenance window when both apply."""
        if alert["status"] != "firing":
            return
        if self._flapping(alert.get("changes", [])):
            yield Mute("flapping")
        labels = matchable(alert)
        ids = silences.muting_silences(self.active_silences, labels, self.now)
        if ids:  # mostly none: an incident's look runs this for each of its alerts
            plain = [i for i in ids if not i.startswith(MAINTENANCE_PREFIX)]
            windows = [i for i in ids if i.startswith(MAINTENANCE_PREFIX)]
            yield from (
                Mute(reason, by)
                for reason, by in (("silence", plain), ("maintenance", windows))
                if by
            )
        intervals = self.route_muting(labels, brings)
        if intervals:
            yield Mute("maintenance", intervals)
        rule = self.inhibitor.inhibited_by(labels)
        if rule is not None:
            yield Mute("inhibition", [f"inhibit_rules[{rule}]"])
