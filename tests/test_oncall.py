"""On-call rotations with a fixed clock: handoffs at local wall-clock time, across
daylight-saving changes in both directions, overrides and layers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from conftest import BASE_CONFIG

from hub.config import Duration, Override, Person, Rotation, Schedule
from hub.oncall import next_handoff, on_call, problems

DAY, WEEK = Duration(86400), Duration(604800)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def schedule(
    *rotations: Rotation, zone: str = "Europe/Berlin", overrides: list[Override] | None = None
) -> Schedule:
    people = [
        Person(name=name, urls=[f"logfile://{name}.log"])
        for name in ("alice", "bob", "carol", "dave")
    ]
    return Schedule(
        name="primary",
        people=people,
        rotations=list(rotations),
        time_zone=zone,
        overrides=overrides or [],
    )


def rotation(
    start: date, length: Duration = WEEK, handoff: str = "09:00", participants=None
) -> Rotation:
    return Rotation(
        participants=participants or ["alice", "bob", "carol"],
        start=start,
        length=length,
        handoff=handoff,
    )


WEEKLY = schedule(rotation(date(2026, 1, 5)))


@pytest.mark.parametrize(
    ("at", "person"),
    [
        ("2026-01-05T07:59:59", None),  # 08:59:59 in Berlin: the rotation has not started
        ("2026-01-05T08:00:00", "alice"),
        ("2026-01-12T07:59:59", "alice"),
        ("2026-01-12T08:00:00", "bob"),
        ("2026-01-19T08:00:00", "carol"),
        ("2026-01-26T08:00:00", "alice"),
    ],
)
def test_a_weekly_rotation_hands_off_on_monday_at_nine_local_time(at, person):
    assert on_call(WEEKLY, utc(at)) == person


def test_the_next_handoff_is_the_next_monday_at_nine():
    assert next_handoff(WEEKLY, utc("2026-01-07T12:00:00")) == utc("2026-01-12T08:00:00")
    assert next_handoff(WEEKLY, utc("2026-01-01T00:00:00")) == utc("2026-01-05T08:00:00")


def test_a_daily_handoff_stays_at_nine_when_berlin_springs_forward():
    daily = schedule(rotation(date(2026, 3, 27), DAY))
    assert on_call(daily, utc("2026-03-28T08:00:00")) == "bob"  # 09:00 CET
    assert on_call(daily, utc("2026-03-29T06:59:59")) == "bob"
    assert on_call(daily, utc("2026-03-29T07:00:00")) == "carol"  # 09:00 CEST
    assert next_handoff(daily, utc("2026-03-28T12:00:00")) == utc("2026-03-29T07:00:00")


def test_a_daily_handoff_stays_at_nine_when_new_york_falls_back():
    daily = schedule(rotation(date(2026, 10, 30), DAY), zone="America/New_York")
    assert on_call(daily, utc("2026-10-31T13:00:00")) == "bob"  # 09:00 EDT
    assert on_call(daily, utc("2026-11-01T13:59:59")) == "bob"
    assert on_call(daily, utc("2026-11-01T14:00:00")) == "carol"  # 09:00 EST
    assert next_handoff(daily, utc("2026-10-31T13:00:00")) == utc("2026-11-01T14:00:00")


def test_a_weekly_handoff_across_the_october_change_keeps_local_time():
    weekly = schedule(rotation(date(2026, 10, 19)))
    assert next_handoff(weekly, utc("2026-10-20T12:00:00")) == utc("2026-10-26T08:00:00")
    assert on_call(weekly, utc("2026-10-26T08:00:00")) == "bob"  # 09:00 CET after the change


def test_a_handoff_inside_the_spring_forward_gap_happens_as_late_as_the_clocks_jumped():
    nightly = schedule(rotation(date(2026, 3, 27), DAY, handoff="02:30"))
    assert next_handoff(nightly, utc("2026-03-28T12:00:00")) == utc("2026-03-29T01:30:00")


def test_a_handoff_in_the_repeated_autumn_hour_happens_the_first_time():
    nightly = schedule(rotation(date(2026, 10, 23), DAY, handoff="02:30"))
    assert next_handoff(nightly, utc("2026-10-24T12:00:00")) == utc("2026-10-25T00:30:00")
    assert on_call(nightly, utc("2026-10-25T01:30:00")) == "carol"  # 02:30 again, in CET


def test_a_rotation_of_twelve_hours_counts_elapsed_time_across_the_change():
    halves = schedule(rotation(date(2026, 3, 28), Duration(12 * 3600)))
    assert on_call(halves, utc("2026-03-28T08:00:00")) == "alice"
    assert on_call(halves, utc("2026-03-28T20:00:00")) == "bob"
    assert on_call(halves, utc("2026-03-29T08:00:00")) == "carol"  # 10:00 CEST
    assert next_handoff(halves, utc("2026-03-29T07:00:00")) == utc("2026-03-29T08:00:00")


def test_an_override_wins_while_it_lasts_and_the_rotation_resumes_after():
    cover = Override(
        person="dave", starts_at=utc("2026-01-06T12:00:00"), ends_at=utc("2026-01-06T18:00:00")
    )
    covered = schedule(rotation(date(2026, 1, 5)), overrides=[cover])
    assert on_call(covered, utc("2026-01-06T11:59:59")) == "alice"
    assert on_call(covered, utc("2026-01-06T12:00:00")) == "dave"
    assert on_call(covered, utc("2026-01-06T18:00:00")) == "alice"
    assert next_handoff(covered, utc("2026-01-06T10:00:00")) == utc("2026-01-06T12:00:00")
    assert next_handoff(covered, utc("2026-01-06T13:00:00")) == utc("2026-01-06T18:00:00")


def test_of_overlapping_overrides_the_last_listed_wins():
    """The one added last: a swap agreed on top of a holiday cover holds."""
    holiday = Override(
        person="dave", starts_at=utc("2026-01-06T00:00:00"), ends_at=utc("2026-01-09T00:00:00")
    )
    swap = Override(
        person="carol", starts_at=utc("2026-01-07T12:00:00"), ends_at=utc("2026-01-07T18:00:00")
    )
    covered = schedule(rotation(date(2026, 1, 5)), overrides=[holiday, swap])
    assert on_call(covered, utc("2026-01-07T11:00:00")) == "dave"
    assert on_call(covered, utc("2026-01-07T12:00:00")) == "carol"
    assert on_call(covered, utc("2026-01-07T18:00:00")) == "dave"
    assert next_handoff(covered, utc("2026-01-07T11:00:00")) == utc("2026-01-07T12:00:00")
    assert next_handoff(covered, utc("2026-01-07T13:00:00")) == utc("2026-01-07T18:00:00")


def test_the_first_layer_that_has_someone_wins():
    later = rotation(date(2026, 2, 2), participants=["dave"])
    layered = schedule(later, rotation(date(2026, 1, 5)))
    assert on_call(layered, utc("2026-01-20T12:00:00")) == "carol"
    assert on_call(layered, utc("2026-02-02T08:00:00")) == "dave"
    assert next_handoff(layered, utc("2026-01-27T12:00:00")) == utc("2026-02-02T08:00:00")


def test_a_rotation_of_one_person_never_hands_off():
    alone = schedule(rotation(date(2026, 1, 5), participants=["alice"]))
    assert next_handoff(alone, utc("2026-06-01T00:00:00")) is None


def test_a_one_person_rota_is_on_call_until_an_override_however_far_ahead():
    """Its handoffs change nothing, nor those of a layer it hides: walked one by one, an
    hourly rota answered "never" (and a rota of years failed) before reaching cover."""
    cover = Override(
        person="bob", starts_at=utc("2027-06-01T00:00:00"), ends_at=utc("2027-06-02T00:00:00")
    )
    hourly = rotation(date(2026, 1, 5), Duration(3600), participants=["alice"])
    alone = schedule(hourly, overrides=[cover])
    assert next_handoff(alone, utc("2026-01-07T12:00:00")) == utc("2027-06-01T00:00:00")
    hiding = schedule(hourly, rotation(date(2026, 1, 5), Duration(3600)), overrides=[cover])
    assert next_handoff(hiding, utc("2026-01-07T12:00:00")) == utc("2027-06-01T00:00:00")
    decade = rotation(date(2026, 1, 5), Duration.parse("3650d"), participants=["alice"])
    assert next_handoff(schedule(decade), utc("2026-01-07T12:00:00")) is None


def test_a_misspelt_zone_is_refused_suggesting_the_nearest_one_as_time_intervals_do():
    bad = schedule(rotation(date(2026, 1, 5), participants=["alice"]), zone="Europe/Berln")
    assert problems(bad) == [
        "time_zone: unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"
    ]


def test_a_schedule_naming_strangers_or_a_bad_zone_is_refused():
    bad = schedule(
        rotation(date(2026, 1, 5), participants=["eve"], handoff="9am"), zone="Mars/Base"
    )
    assert problems(bad) == [
        "time_zone: unknown time zone 'Mars/Base' (expected e.g. 'Europe/Berlin')",
        'rotations[0].participants: "eve" is not in people',
        "rotations[0].handoff: expected a local time like \"09:00\", got '9am'",
    ]


@pytest.mark.parametrize("handoff", ["09:00Z", "09:00+02:00"])
def test_a_handoff_with_an_offset_is_refused_as_the_time_zone_says_where(handoff):
    """Taken, it made every lookup of the schedule fail: the on-call API answered 500
    and each escalation round failed, so no incident paged anyone."""
    bad = schedule(rotation(date(2026, 1, 5), handoff=handoff))
    assert problems(bad) == [
        "rotations[0].handoff: give the local time without an offset (time_zone says where),"
        f" got {handoff!r}"
    ]


def test_a_rotation_longer_than_ten_years_is_refused():
    """Its next handoff fell past the year 9999: every lookup failed, the on-call API
    answered 500 and each escalation round failed, so no incident paged anyone."""
    endless = schedule(rotation(date(2026, 1, 5), Duration.parse("3650001d")))
    assert problems(endless) == ["rotations[0].length: at most 3650d, got 3650001d"]
    assert problems(schedule(rotation(date(2026, 1, 5), Duration.parse("3650d")))) == []


SCHEDULE_CONFIG = """
[[schedules]]
name = "primary"
time_zone = "Europe/Berlin"
people = [
  {{ name = "alice", urls = ["logfile://alice.log"] }},
  {{ name = "bob", urls = ["logfile://bob.log"] }},
]
rotations = [{{ participants = ["alice", "bob"], length = "1d", start = 2026-03-27 }}]
"""


def test_the_oncall_endpoint_answers_who_until_when_and_who_is_next(hub_factory):
    hub = hub_factory(BASE_CONFIG + SCHEDULE_CONFIG, mail_url="logfile://ops.log")
    with hub.client() as http:
        answer = http.get("/api/v1/schedules/primary/oncall", params={"at": "2026-03-28T12:00:00Z"})
        assert answer.json() == {
            "schedule": "primary",
            "at": "2026-03-28T12:00:00Z",
            "person": "bob",
            "until": "2026-03-29T07:00:00Z",
            "next": "alice",
        }
        listed = http.get("/api/v1/schedules").json()
        assert [(s["name"], s["people"]) for s in listed] == [("primary", ["alice", "bob"])]
        noon = http.get("/api/v1/schedules/primary/oncall", params={"at": "noon"})
        assert (noon.status_code, noon.json()["detail"]) == (
            400,
            "invalid query parameter 'at': expected an RFC 3339 time, got 'noon'",
        )
        local = http.get("/api/v1/schedules/primary/oncall", params={"at": "2026-03-28T12:00"})
        assert (local.status_code, local.json()["detail"]) == (
            400,
            "invalid query parameter 'at': give the time with an offset, e.g. 2026-03-29T09:00:00Z",
        )
        # an empty value (a script's unset variable: ?at=$AT) is no time, not "now"
        empty = http.get("/api/v1/schedules/primary/oncall", params={"at": ""})
        assert (empty.status_code, empty.json()["detail"]) == (
            400,
            "invalid query parameter 'at': expected an RFC 3339 time, got ''",
        )
        assert http.get("/api/v1/schedules/nope/oncall").status_code == 404
        for late, why in [
            ("9999-12-31T23:59:59Z", "is too near the year 9999 for this schedule"),
            ("9999-12-31T23:59:59-05:00", "is outside the years 1 to 9999 in UTC"),
        ]:
            refused = http.get("/api/v1/schedules/primary/oncall", params={"at": late})
            assert (refused.status_code, refused.json()["detail"]) == (
                400,
                f"invalid query parameter 'at': {late!r} {why}",
            )
        # curl '...?at=2026-03-28T14:00:00+02:00': the unencoded + arrives as a space
        raw_plus = http.get("/api/v1/schedules/primary/oncall?at=2026-03-28T14:00:00+02:00")
        assert raw_plus.status_code == 200, raw_plus.text
        assert raw_plus.json()["at"] == "2026-03-28T12:00:00Z"
