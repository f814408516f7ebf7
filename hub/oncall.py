"""On-call schedules: who is on call at a moment, and when that changes. Pure functions
of the schedule and a timezone-aware time.

A schedule is a list of rotation layers plus overrides. An override covering the
moment wins; else the first rotation that has someone (one that has started) does.

A rotation hands off at a local wall-clock time in the schedule's ``time_zone``,
so "09:00" stays 09:00 across daylight-saving changes: a length of whole days
("1d", "1w", "14d") counts calendar days in local time, and the shift spanning a
DST change is an hour shorter or longer. A length that is not whole days ("12h",
"90m") is elapsed time from the first handoff. A handoff time that does not exist
locally (inside a spring-forward gap) happens as much later as the clocks jumped
(02:30 becomes 03:30); one that exists twice (fall back) happens the first time.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from math import floor
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub import timeintervals
from hub.config import LONGEST, Rotation, Schedule, did_you_mean, entry

DAY = 86400.0
_CHANGES_LOOKED_AT = 1000  # a schedule whose person never changes stops looking here


def on_call(schedule: Schedule, at: datetime) -> str | None:
    """The person on call at ``at``, or None when no override or rotation covers it.

    Of overlapping overrides the last listed wins: it is the one added last, and a
    newer override wins in PagerDuty and Grafana OnCall too."""
    for override in reversed(schedule.overrides):
        if override.starts_at <= at < override.ends_at:
            return override.person
    zone = ZoneInfo(schedule.time_zone)
    for rotation in schedule.rotations:
        turn = _turn(rotation, zone, at)
        if turn >= 0:
            return rotation.participants[turn % len(rotation.participants)]
    return None


def next_handoff(schedule: Schedule, at: datetime) -> datetime | None:
    """The first moment after ``at`` when someone else is on call; None if never."""
    current = on_call(schedule, at)
    moment: datetime | None = at
    for _ in range(_CHANGES_LOOKED_AT):
        moment = _next_boundary(schedule, moment)  # type: ignore[arg-type]
        if moment is None:
            return None
        if on_call(schedule, moment) != current:
            return moment
    return None


def _next_boundary(schedule: Schedule, at: datetime) -> datetime | None:
    """The earliest time after ``at`` where an override starts or ends, or a rotation
    that may change the answer hands off: the only moments it can change. A rotation
    that has started always has someone, so the layers below it never show, and its
    own handoffs change nothing when one person takes every turn: walking those, a
    one-person rota met no change for a thousand turns and answered "never", or ran
    past the year 9999, before it reached an override."""
    zone = ZoneInfo(schedule.time_zone)
    candidates = [t for o in schedule.overrides for t in (o.starts_at, o.ends_at) if t > at]
    for rotation in schedule.rotations:
        turn = _turn(rotation, zone, at)
        if turn < 0 or len(set(rotation.participants)) > 1:
            candidates.append(_handoff(rotation, zone, turn + 1))
        if turn >= 0:
            break
    return min(candidates, default=None)


def _turn(rotation: Rotation, zone: ZoneInfo, at: datetime) -> int:
    """Which turn of the rotation ``at`` falls in; -1 before the rotation starts."""
    if rotation.length % DAY == 0:
        local = at.astimezone(zone).replace(tzinfo=None)
        elapsed = (local - _first_local(rotation)).total_seconds()
    else:
        elapsed = (at - _handoff(rotation, zone, 0)).total_seconds()
    turn = floor(elapsed / rotation.length)
    while turn >= 0 and _handoff(rotation, zone, turn) > at:
        turn -= 1  # the local-time estimate is off by the DST shift near a handoff
    while _handoff(rotation, zone, turn + 1) <= at:
        turn += 1
    return max(turn, -1)


def _handoff(rotation: Rotation, zone: ZoneInfo, turn: int) -> datetime:
    """When turn number ``turn`` begins, in UTC."""
    if rotation.length % DAY == 0:
        days = timedelta(days=turn * rotation.length / DAY)
        local = (_first_local(rotation) + days).replace(tzinfo=zone)
        return local.astimezone(UTC)
    first = _first_local(rotation).replace(tzinfo=zone).astimezone(UTC)
    return first + timedelta(seconds=turn * rotation.length)


def _first_local(rotation: Rotation) -> datetime:
    return datetime.combine(rotation.start, time.fromisoformat(rotation.handoff))


def problems(schedule: Schedule) -> list[str]:
    """What is wrong with one schedule, as ``key: reason`` lines."""
    found = []
    try:
        ZoneInfo(schedule.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        found.append(f"time_zone: {timeintervals.unknown_zone(schedule.time_zone)}")
    names = {p.name for p in schedule.people}
    found += [
        f"{entry(f'people[{i}]', person.name)}.urls: at least one URL is needed"  # paged in vain
        for i, person in enumerate(schedule.people)
        if not person.urls
    ]
    if not schedule.rotations:
        found.append("rotations: at least one rotation is needed")
    for i, rotation in enumerate(schedule.rotations):
        where = entry(f"rotations[{i}]", rotation.name)
        found += [f"{where}.{p}" for p in _rotation_problems(rotation, names)]
    for i, override in enumerate(schedule.overrides):
        if override.person not in names:
            hint = did_you_mean(override.person, names)
            found.append(f'overrides[{i}].person: "{override.person}" is not in people{hint}')
        if override.ends_at <= override.starts_at:
            found.append(f"overrides[{i}].ends_at: must be after starts_at")
    return found


def _rotation_problems(rotation: Rotation, people: set[str]) -> list[str]:
    found = [
        f'participants: "{name}" is not in people{did_you_mean(name, people)}'
        for name in rotation.participants
        if name not in people
    ]
    if not rotation.participants:
        found.append("participants: at least one participant is needed")
    if rotation.length <= 0:
        found.append("length: must be longer than 0s")
    if rotation.length > LONGEST:
        found.append(f"length: at most {LONGEST.text()}, got {rotation.length.text()}")
    try:
        handoff = time.fromisoformat(rotation.handoff)
    except ValueError:
        found.append(f'handoff: expected a local time like "09:00", got {rotation.handoff!r}')
    else:
        if handoff.tzinfo is not None:  # the schedule's time_zone says where; two would clash
            found.append(
                f"handoff: give the local time without an offset (time_zone says where),"
                f" got {rotation.handoff!r}"
            )
    return found
