from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest

from hub.config import IntervalSpec, TimeIntervals
from hub.errors import ConfigError
from hub.timeintervals import compile_all, compile_spec, in_any, matches, route_muting

BUSINESS = {"times": [{"start_time": "09:00", "end_time": "17:00"}], "weekdays": ["monday:friday"]}


def interval(**fields):
    return compile_spec(msgspec.convert(fields, IntervalSpec))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "when", "expected"),
    [
        ({}, utc(2026, 11, 28, 3, 0), True),
        (BUSINESS, utc(2026, 11, 25, 9, 0), True),
        (BUSINESS, utc(2026, 11, 25, 8, 59, 59), False),
        (BUSINESS, utc(2026, 11, 25, 16, 59, 59), True),
        (BUSINESS, utc(2026, 11, 25, 17, 0), False),
        (BUSINESS, utc(2026, 11, 28, 12, 0), False),
        ({"times": [{"start_time": "00:00", "end_time": "24:00"}]}, utc(2026, 1, 1, 23, 59), True),
        (
            {
                "times": [
                    {"start_time": "08:00", "end_time": "09:00"},
                    {"start_time": "18:00", "end_time": "19:00"},
                ]
            },
            utc(2026, 1, 1, 18, 30),
            True,
        ),
        ({"weekdays": ["saturday", "sunday"]}, utc(2026, 11, 29, 12, 0), True),
        ({"weekdays": ["Saturday"]}, utc(2026, 11, 29, 12, 0), False),
        ({"days_of_month": ["1:5"]}, utc(2026, 11, 5, 23, 59), True),
        ({"days_of_month": ["1:5"]}, utc(2026, 11, 6, 0, 0), False),
        ({"days_of_month": ["-1"]}, utc(2026, 2, 28, 12, 0), True),
        ({"days_of_month": ["-1"]}, utc(2028, 2, 28, 12, 0), False),
        ({"days_of_month": ["-1"]}, utc(2028, 2, 29, 12, 0), True),
        ({"days_of_month": ["-1"]}, utc(2026, 4, 30, 12, 0), True),
        ({"days_of_month": ["-1"]}, utc(2026, 4, 29, 12, 0), False),
        ({"days_of_month": ["-3:-1"]}, utc(2026, 2, 26, 0, 0), True),
        ({"days_of_month": ["-3:-1"]}, utc(2026, 2, 25, 23, 59), False),
        ({"days_of_month": ["25:31"]}, utc(2026, 2, 28, 12, 0), True),
        ({"days_of_month": ["30:31"]}, utc(2026, 2, 28, 12, 0), False),
        ({"days_of_month": ["1:-1"]}, utc(2026, 2, 17, 12, 0), True),
        ({"days_of_month": ["-31:-1"]}, utc(2026, 2, 1, 0, 0), True),
        ({"months": ["january:march", "12"]}, utc(2026, 2, 10, 0, 0), True),
        ({"months": ["january:march", "12"]}, utc(2026, 4, 1, 0, 0), False),
        ({"months": ["january:march", "12"]}, utc(2026, 12, 31, 23, 59), True),
        ({"months": ["December"]}, utc(2026, 12, 1, 0, 0), True),
        ({"years": ["2026:2027"]}, utc(2025, 12, 31, 23, 59), False),
        ({"years": ["2026:2027"]}, utc(2027, 6, 1, 0, 0), True),
        ({"years": ["2026:2027"]}, utc(2028, 1, 1, 0, 0), False),
        ({**BUSINESS, "location": "Europe/Berlin"}, utc(2026, 11, 25, 8, 0), True),
        ({**BUSINESS, "location": "Europe/Berlin"}, utc(2026, 11, 25, 16, 0), False),
        ({"weekdays": ["monday"], "location": "Europe/Berlin"}, utc(2026, 11, 29, 23, 30), True),
        ({"days_of_month": ["1"], "location": "Asia/Tokyo"}, utc(2026, 11, 30, 15, 0), True),
    ],
)
def test_an_interval_matches_when_every_given_field_matches(fields, when, expected):
    assert matches(interval(**fields), when) is expected


def matched_minutes(spec: dict, day: date, zone_offset_hours: int = 0) -> int:
    """Minutes of real time on the UTC calendar day around ``day`` that match."""
    start = utc(day.year, day.month, day.day) - timedelta(hours=zone_offset_hours)
    compiled = interval(**spec)
    return sum(matches(compiled, start + timedelta(minutes=m)) for m in range(24 * 60))


BERLIN_2_TO_3 = {
    "times": [{"start_time": "02:00", "end_time": "03:00"}],
    "location": "Europe/Berlin",
}
NEW_YORK_1_TO_2 = {
    "times": [{"start_time": "01:00", "end_time": "02:00"}],
    "location": "America/New_York",
}


@pytest.mark.parametrize(
    ("spec", "day", "offset", "expected"),
    [
        (BERLIN_2_TO_3, date(2026, 3, 28), 1, 60),
        (BERLIN_2_TO_3, date(2026, 3, 29), 1, 0),
        (BERLIN_2_TO_3, date(2026, 10, 25), 2, 120),
        ({**BUSINESS, "weekdays": [], "location": "Europe/Berlin"}, date(2026, 3, 29), 1, 480),
        ({**BUSINESS, "weekdays": [], "location": "Europe/Berlin"}, date(2026, 10, 25), 2, 480),
        (NEW_YORK_1_TO_2, date(2026, 3, 8), -5, 60),
        (NEW_YORK_1_TO_2, date(2026, 11, 1), -4, 120),
    ],
)
def test_intervals_follow_the_wall_clock_across_dst_changes(spec, day, offset, expected):
    assert matched_minutes(spec, day, offset) == expected


def test_new_york_business_hours_move_in_utc_when_dst_starts():
    nine_to_five = interval(**BUSINESS, location="America/New_York")
    assert not matches(nine_to_five, utc(2026, 3, 6, 13, 0))  # Friday 08:00 EST
    assert matches(nine_to_five, utc(2026, 3, 6, 14, 0))  # Friday 09:00 EST
    assert matches(nine_to_five, utc(2026, 3, 9, 13, 0))  # Monday 09:00 EDT
    assert not matches(nine_to_five, utc(2026, 3, 9, 21, 0))  # Monday 17:00 EDT


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        matches(interval(), datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"weekdays": ["mon"]}, "weekdays[0]: unknown weekday 'mon'"),
        ({"weekdays": ["saturday:sunday"]}, "weekdays[0]: 'saturday:sunday': the start is after"),
        ({"days_of_month": ["0"]}, "days_of_month[0]: day of month '0' is not between"),
        ({"days_of_month": ["32"]}, "days_of_month[0]: day of month '32'"),
        ({"days_of_month": ["x"]}, "days_of_month[0]: day of month 'x' is not a number"),
        ({"days_of_month": ["-5:3"]}, "days_of_month[0]: '-5:3': a negative start day needs"),
        ({"days_of_month": ["10:5"]}, "days_of_month[0]: '10:5': the start is after the end"),
        ({"days_of_month": ["-1:-5"]}, "days_of_month[0]: '-1:-5': the start is after the end"),
        ({"months": ["13"]}, "months[0]: month '13' is not between 1 and 12"),
        ({"months": ["jan"]}, "months[0]: unknown month 'jan': write january or 1"),
        ({"months": ["Sept"]}, "months[0]: unknown month 'sept': write september or 9"),
        ({"months": ["winter"]}, "months[0]: unknown month 'winter': write january or 1"),
        ({"months": ["march:january"]}, "months[0]: 'march:january': the start is after"),
        ({"years": ["0"]}, "years[0]: year '0' is not positive"),
        ({"years": ["2027:2026"]}, "years[0]: '2027:2026': the start is after the end"),
        ({"times": [{"start_time": "17:00", "end_time": "09:00"}]}, "times[0]: start_time '17:00'"),
        ({"times": [{"start_time": "9:00", "end_time": "17:00"}]}, "times[0]: time '9:00' is not"),
        ({"times": [{"start_time": "00:00", "end_time": "24:01"}]}, "times[0]: time '24:01'"),
        ({"times": [{"start_time": "00:60", "end_time": "02:00"}]}, "times[0]: time '00:60'"),
        (
            {"location": "Mars/Olympus"},
            "location: unknown time zone 'Mars/Olympus' (expected e.g. 'Europe/Berlin')",
        ),
        (
            {"location": "Europe/Berln"},
            "location: unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)",
        ),
        ({"location": "../etc/passwd"}, "location: unknown time zone"),
    ],
)
def test_a_bad_value_is_reported_by_key(fields, expected):
    with pytest.raises(ConfigError) as caught:
        interval(**fields)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(expected)


def test_every_bad_value_is_listed():
    with pytest.raises(ConfigError) as caught:
        interval(weekdays=["monday", "funday"], months=["smarch"], location="Nowhere")
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "weekdays[1]",
        "months[0]",
        "location",
    ]


TABLE = compile_all(
    [
        msgspec.convert({"name": "business", "time_intervals": [BUSINESS]}, TimeIntervals),
        msgspec.convert(
            {"name": "weekend", "time_intervals": [{"weekdays": ["saturday", "sunday"]}]},
            TimeIntervals,
        ),
        msgspec.convert({"name": "never", "time_intervals": []}, TimeIntervals),
    ]
)
WEDNESDAY_NOON = utc(2026, 11, 25, 12, 0)
SATURDAY_NOON = utc(2026, 11, 28, 12, 0)


def test_a_named_set_matches_if_any_of_its_intervals_does():
    assert in_any(TABLE["weekend"], SATURDAY_NOON)
    assert not in_any(TABLE["never"], SATURDAY_NOON)


@pytest.mark.parametrize(
    ("mute", "active", "when", "expected"),
    [
        ([], [], SATURDAY_NOON, False),
        (["weekend"], [], SATURDAY_NOON, True),
        (["weekend"], [], WEDNESDAY_NOON, False),
        ([], ["business"], WEDNESDAY_NOON, False),
        ([], ["business"], SATURDAY_NOON, True),
        (["weekend"], ["business"], WEDNESDAY_NOON, False),
        ([], ["never"], WEDNESDAY_NOON, True),
    ],
)
def test_a_route_is_muted_inside_mute_and_outside_active_intervals(mute, active, when, expected):
    assert bool(route_muting(mute, active, TABLE, when)) is expected
