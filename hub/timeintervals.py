"""Recurring time intervals with Alertmanager's ``time_intervals`` semantics.

An interval matches when every field it gives matches (an empty field matches any
value). Ranges are inclusive ``start:end``, except ``times`` whose ``end_time`` is
exclusive; weekdays run sunday..saturday and months january..december (names or
numbers), so ``saturday:sunday`` is refused as in Alertmanager: write both days.
Negative days of the month count from its end (``-1`` is the last day). Everything is
evaluated in the interval's ``location`` (an IANA zone, default UTC): across a DST
change ``09:00-17:00`` follows the wall clock, a skipped hour never matches and a
repeated hour matches twice.

Routes use them by name (``mute_time_intervals``, ``active_time_intervals``). One-off
windows are ``[[maintenance]]`` entries, handled as silences (see ``hub.silences``).
"""

from __future__ import annotations

import calendar
import difflib
import re
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.errors import ConfigError

if TYPE_CHECKING:
    from hub.config import IntervalSpec, TimeIntervals, TimeRange

T = TypeVar("T")
Ranges = tuple[tuple[int, int], ...]

WEEKDAYS = {name.lower(): (i + 1) % 7 for i, name in enumerate(calendar.day_name)}
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_CLOCK = re.compile(r"^(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class Interval:
    """A compiled interval; ``times`` are inclusive minute-of-day ranges."""

    times: Ranges
    weekdays: Ranges
    days_of_month: Ranges
    months: Ranges
    years: Ranges
    location: ZoneInfo


def matches(interval: Interval, when: datetime) -> bool:
    if when.tzinfo is None:
        raise ValueError("time intervals need a timezone-aware datetime")
    local = when.astimezone(interval.location)
    return (
        _within(interval.times, local.hour * 60 + local.minute)
        and _within(interval.weekdays, local.isoweekday() % 7)
        and _within(_resolve_days(interval.days_of_month, local), local.day)
        and _within(interval.months, local.month)
        and _within(interval.years, local.year)
    )


def in_any(intervals: Iterable[Interval], when: datetime) -> bool:
    return any(matches(interval, when) for interval in intervals)


def route_muting(
    mute: Iterable[str], active: Iterable[str], table: dict[str, list[Interval]], when: datetime
) -> list[str]:
    """What mutes a route at ``when`` (empty: nothing): the ``mute`` intervals it is
    inside, else, when it is outside all its ``active`` intervals, those. Named as in the
    config (``mute_time_intervals:nights``), so an operator sees which key to change."""
    inside = [f"mute_time_intervals:{name}" for name in mute if in_any(table[name], when)]
    if inside:
        return inside
    active = list(active)
    if active and not any(in_any(table[name], when) for name in active):
        return [f"active_time_intervals:{name}" for name in active]
    return []


def compile_all(named: Iterable[TimeIntervals]) -> dict[str, list[Interval]]:
    """The lookup table routes refer to by name; the config must have passed ``check``."""
    return {n.name: [compile_spec(spec) for spec in n.time_intervals] for n in named}


def compile_spec(spec: IntervalSpec) -> Interval:
    """Compile one interval; raise ConfigError listing every bad entry as ``key[i]: reason``."""
    problems: list[str] = []

    def each(key: str, items: Sequence[T], parse: Callable[[T], tuple[int, int]]) -> Ranges:
        parsed = []
        for i, item in enumerate(items):
            try:
                parsed.append(parse(item))
            except ValueError as e:
                problems.append(f"{key}[{i}]: {e}")
        return tuple(parsed)

    interval = Interval(
        times=each("times", spec.times, _clock_range),
        weekdays=each("weekdays", spec.weekdays, lambda t: _ascending(t, _weekday)),
        days_of_month=each("days_of_month", spec.days_of_month, _day_range),
        months=each("months", spec.months, lambda t: _ascending(t, _month)),
        years=each("years", spec.years, lambda t: _ascending(t, _year)),
        location=_zone(spec.location, problems),
    )
    if problems:
        raise ConfigError(problems)
    return interval


def _within(ranges: Ranges, value: int) -> bool:
    return not ranges or any(lo <= value <= hi for lo, hi in ranges)


def _resolve_days(ranges: Ranges, local: datetime) -> Ranges:
    """Turn negative days into this month's dates, clamped to its length."""
    last = calendar.monthrange(local.year, local.month)[1]
    resolved = (
        (lo if lo > 0 else last + lo + 1, hi if hi > 0 else last + hi + 1) for lo, hi in ranges
    )
    return tuple((lo, min(hi, last)) for lo, hi in resolved)


def _bounds(text: str, parse_one: Callable[[str], int]) -> tuple[int, int]:
    """``a:b`` or a single value ``a`` (meaning ``a:a``)."""
    start, _, end = text.partition(":")
    lo = parse_one(start.strip().lower())
    return lo, parse_one(end.strip().lower()) if end else lo


def _ascending(text: str, parse_one: Callable[[str], int]) -> tuple[int, int]:
    lo, hi = _bounds(text, parse_one)
    if lo > hi:
        raise ValueError(f"{text!r}: the start is after the end")
    return lo, hi


def _weekday(text: str) -> int:
    if text not in WEEKDAYS:
        raise ValueError(f"unknown weekday {text!r} (expected e.g. 'monday' or 'monday:friday')")
    return WEEKDAYS[text]


def _month(text: str) -> int:
    """A month's full name or number, as Alertmanager takes them (not 'jan')."""
    if text in MONTHS:
        return MONTHS[text]
    try:
        value = int(text)
    except ValueError:
        named = next((name for name in MONTHS if text and name.startswith(text)), "january")
        raise ValueError(f"unknown month {text!r}: write {named} or {MONTHS[named]}") from None
    if not 1 <= value <= 12:
        raise ValueError(f"month {text!r} is not between 1 and 12")
    return value


def _year(text: str) -> int:
    value = _integer(text, "year")
    if value < 1:
        raise ValueError(f"year {text!r} is not positive")
    return value


def _day_range(text: str) -> tuple[int, int]:
    """Alertmanager's rules: a negative start needs a negative end, and the range must
    run forwards in a 28-day month (the shortest)."""
    lo, hi = _bounds(text, _day)
    if lo < 0 < hi:
        raise ValueError(f"{text!r}: a negative start day needs a negative end day")
    if (lo if lo > 0 else 28 + lo) > (hi if hi > 0 else 28 + hi):
        raise ValueError(f"{text!r}: the start is after the end")
    return lo, hi


def _day(text: str) -> int:
    value = _integer(text, "day of month")
    if value == 0 or not -31 <= value <= 31:
        raise ValueError(f"day of month {text!r} is not between 1 and 31 or -31 and -1")
    return value


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None


def _clock_range(times: TimeRange) -> tuple[int, int]:
    lo, hi = _clock(times.start_time), _clock(times.end_time)
    if lo >= hi:
        raise ValueError(
            f"start_time {times.start_time!r} is not before end_time {times.end_time!r}"
        )
    return lo, hi - 1


def _clock(text: str) -> int:
    found = _CLOCK.match(text)
    minutes = int(found[1]) * 60 + int(found[2]) if found else -1
    if not found or int(found[2]) > 59 or not 0 <= minutes <= 24 * 60:
        raise ValueError(f"time {text!r} is not HH:MM between 00:00 and 24:00")
    return minutes


def _zone(name: str, problems: list[str]) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"location: {unknown_zone(name)}")
        return ZoneInfo("UTC")


def unknown_zone(name: str) -> str:
    """Why ``name`` is no IANA time zone, suggesting the nearest one (a typo such as
    'Europe/Berln') or else an example: schedules and intervals say it alike."""
    nearest = difflib.get_close_matches(name, zoneinfo.available_timezones(), n=1)
    hint = f"did you mean {nearest[0]!r}?" if nearest else "expected e.g. 'Europe/Berlin'"
    return f"unknown time zone {name!r} ({hint})"
