"""Silences: label matchers plus a time range, with an author and a reason.

A silence mutes matching alerts at send time (so one created after an alert arrived
still applies); the alerts are stored and counted as usual. Static silences and one-off
maintenance windows from the config are silences too, so every mute by time and labels
goes through ``muting_silences`` and shows up under one "muted by" list. Times are
timezone-aware; ``None`` bounds mean "since always" and "forever".
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from hub import matchers
from hub.events import in_utc

if TYPE_CHECKING:
    from hub.config import Config

State = Literal["pending", "active", "expired"]
Shown = Literal["pending", "active", "expired", "unreadable"]
"""A silence's state as lists show it: ``unreadable`` for an ``UnreadableSilence``."""
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
"""The last second a silence may start or end at. hub keeps and shows times in UTC,
where an offset can carry 9999-12-31 (or 0001-01-01) past what a datetime holds."""


class Silence(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """One silence as the API shows it; ``parsed`` holds the compiled matchers.
    ``updated_by`` and ``updated_at`` say who last changed it in place, and when (None:
    never), as the ``created_*`` fields keep who made it. ``created_via`` and
    ``updated_via`` name the token that vouched for a person it spoke for (None: the
    token itself is the author)."""

    id: str
    matchers: list[str]
    starts_at: datetime | None
    ends_at: datetime | None
    created_by: str
    created_via: str | None = None
    comment: str = ""
    created_at: datetime
    updated_by: str | None = None
    updated_via: str | None = None
    updated_at: datetime | None = None

    @cached_property
    def parsed(self) -> list[matchers.Matcher]:
        """The compiled matchers, shared by every read of a silence with these texts
        (``PARSED``): not to be changed."""
        return PARSED.get(tuple(self.matchers))


class _ParsedMatchers:
    """Compiled lists of matchers by their texts, the most recently used kept while their
    texts add up to at most ``budget`` characters. Silences are read from the store at
    every dispatch round and list, each read a new ``Silence``: compiled at each read,
    1,000 silences with a regex each cost 35 ms a read, and the dispatcher's rounds
    held up webhooks for over 100 ms; each text is compiled once now."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._kept: OrderedDict[tuple[str, ...], list[matchers.Matcher]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # the read threads share it with the event loop

    def get(self, texts: tuple[str, ...]) -> list[matchers.Matcher]:
        """``matchers.parse_all(texts)``, compiled at most once while kept."""
        with self._lock:
            found = self._kept.get(texts)
            if found is not None:
                self._kept.move_to_end(texts)
                return found
        parsed = matchers.parse_all(texts)
        self._keep(texts, parsed)
        return parsed

    def _keep(self, texts: tuple[str, ...], parsed: list[matchers.Matcher]) -> None:
        size = sum(map(len, texts))
        if size > self._budget:
            return
        with self._lock:
            if texts in self._kept:
                return
            self._kept[texts] = parsed
            self._size += size
            while self._size > self._budget:
                gone, _ = self._kept.popitem(last=False)
                self._size -= sum(map(len, gone))


PARSED = _ParsedMatchers(budget=16_000_000)
"""Characters of silences' matchers kept compiled: thousands of silences of everyday
size, a few of the largest a request body carries."""


class UnreadableSilence(msgspec.Struct, frozen=True, kw_only=True):
    """A stored silence hub cannot read: a hand edit left text in a time column, bytes in
    its id, or matchers that are not a list of matchers; or one of its regexes is one
    RE2 refuses, stored by a hub that took Python's. It is never in force (failing
    open: a page that should have been muted is sent, not one that should have been
    sent muted), lists show its ``stored`` row as text, and expiring it removes it.
    ``id`` is the stored id as text; ``column`` the first one that cannot be read."""

    id: str
    column: str
    stored: dict[str, Any]


def state(silence: Silence, now: datetime) -> State:
    """Alertmanager's states: pending before ``starts_at``, expired from ``ends_at``."""
    if silence.ends_at is not None and now >= silence.ends_at:
        return "expired"
    if silence.starts_at is not None and now < silence.starts_at:
        return "pending"
    return "active"


def mutes(silence: Silence, labels: Mapping[str, str], now: datetime) -> bool:
    return state(silence, now) == "active" and matchers.matches_all(silence.parsed, labels)


def includes(silence: Silence, wanted: Iterable[matchers.Matcher]) -> bool:
    """Whether each wanted matcher is one of the silence's: the same label, operator and
    value, quoted or not. amtool's rule for ``silence query``: ``alertname=DiskFull``
    finds the silences made for DiskFull, not every one that would also mute it
    (``severity="warning"``, ``alertname=~".+"``)."""
    return all(matcher in silence.parsed for matcher in wanted)


def muting_silences(
    silences: Iterable[Silence], labels: Mapping[str, str], now: datetime
) -> list[str]:
    """The ids of the silences muting these labels now (empty: not silenced)."""
    return [s.id for s in silences if mutes(s, labels, now)]


def next_look(active: Iterable[Silence], now: float, longest: float) -> float:
    """When to look again at alerts held back at ``now`` (epoch seconds): ``longest``
    seconds on, or sooner when the first of these silences ends, since an alert it
    mutes may be notified from then on (grouping's and escalation's looks both wait so)."""
    ends = [s.ends_at.timestamp() for s in active if s.ends_at is not None]
    return min([now + longest, *(end for end in ends if end > now)])


def expire(silence: Silence, now: datetime) -> Silence:
    """End a silence now; a pending one ends before it ever started, as in Alertmanager."""
    if state(silence, now) == "expired":
        return silence
    starts_at = now if state(silence, now) == "pending" else silence.starts_at
    return msgspec.structs.replace(silence, starts_at=starts_at, ends_at=now)


def problems(texts: list[str], starts_at: datetime | None, ends_at: datetime | None) -> list[str]:
    """What is wrong with a silence, as ``key: reason`` lines (for the API and the config).

    A silence whose matchers all match the empty string would mute every alert,
    so it is refused, as Alertmanager does.
    """
    found = matchers.problems(texts, "matchers", required=True)
    if not found and matchers.matches_all(PARSED.get(tuple(texts)), {}):
        found.append(
            "matchers: at least one matcher must not match the empty string, "
            "or the silence would mute every alert"
        )
    found += _out_of_range("starts_at", starts_at) + _out_of_range("ends_at", ends_at)
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        found.append("ends_at: must be after starts_at")
    return found


def _out_of_range(key: str, moment: datetime | None) -> list[str]:
    """``key: ...`` when ``moment`` in UTC is past ``LATEST`` or before the year 1."""
    if moment is None:
        return []
    utc = in_utc(moment)
    if utc is not None and utc <= LATEST:
        return []
    shown = moment.isoformat()
    return [f"{key}: {shown} is not between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"]


def from_config(
    config: Config, loaded_at: datetime, known: Iterable[Silence] = ()
) -> list[Silence]:
    """Static ``[[silences]]`` and one-off ``[[maintenance]]`` windows, as silences.

    Ids come from the content (``config-<hash>``) or the window's name
    (``maintenance:<name>``), so they survive a reload that leaves them unchanged. Each
    is created when a config holding it was first loaded: at ``loaded_at``, or, when
    one of the ``known`` silences of the config before has its id, when that one was.
    """
    static = [
        Silence(
            id=f"config-{_digest(s.matchers, s.starts_at, s.ends_at)}",
            matchers=s.matchers,
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            created_by=s.created_by,
            comment=s.comment,
            created_at=loaded_at,
        )
        for s in config.silences
    ]
    windows = [
        Silence(
            id=f"maintenance:{m.name}",
            matchers=m.matchers,
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            created_by="config",
            comment=m.comment or f"maintenance window {m.name}",
            created_at=loaded_at,
        )
        for m in config.maintenance
    ]
    first = {s.id: s.created_at for s in known}
    return [
        msgspec.structs.replace(s, created_at=first.get(s.id, loaded_at)) for s in static + windows
    ]


def _digest(texts: list[str], starts_at: datetime | None, ends_at: datetime | None) -> str:
    key = "\n".join([*texts, str(starts_at), str(ends_at)])
    return hashlib.sha256(key.encode()).hexdigest()[:12]
