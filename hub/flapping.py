"""Flapping: an alert that changes state more than ``threshold`` times inside ``window``
has its notifications held until it settles, i.e. until the changes inside the window
drop back to ``threshold`` or fewer. Defaults and their reasons: ``hub.config.Flapping``.

Ingest keeps each alert's recent change times with ``prune`` (bounded by the window and
by ``threshold + 1`` entries, all the decision ever needs) and asks ``is_flapping``;
the dispatcher can re-check at ``settles_at``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.config import Flapping


def prune(changes: Iterable[datetime], now: datetime, settings: Flapping) -> list[datetime]:
    """The changes still inside the window, oldest first, at most ``threshold + 1``."""
    start = now - timedelta(seconds=settings.window)
    recent = sorted(t for t in changes if start < t <= now)
    return recent[-(settings.threshold + 1) :]


def is_flapping(changes: Iterable[datetime], now: datetime, settings: Flapping) -> bool:
    return len(prune(changes, now, settings)) > settings.threshold


def settles_at(changes: Iterable[datetime], now: datetime, settings: Flapping) -> datetime | None:
    """When a flapping alert stops flapping if nothing else changes; None if it is not."""
    recent = prune(changes, now, settings)
    if len(recent) <= settings.threshold:
        return None
    return recent[0] + timedelta(seconds=settings.window)
