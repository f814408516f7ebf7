"""Config keys for silences, maintenance, inhibition, time intervals, flapping, incidents."""

import pytest

from hub.config import parse
from hub.errors import ConfigError

BASE = """
[[receivers]]
name = "ops"
urls = ["json://localhost"]

[route]
receiver = "ops"
"""

ROUTE_WITH_INTERVALS = """
[[receivers]]
name = "ops"
urls = ["json://localhost"]

[route]
receiver = "ops"
mute_time_intervals = ["weekend"]

[[route.routes]]
matchers = ['team="db"']
active_time_intervals = ["business", "nights"]

[[route.routes.routes]]
mute_time_intervals = ["holidays"]
"""

FULL = """
[[silences]]
matchers = ['env="staging"']

[[maintenance]]
name = "db-move"
matchers = ['service="db"']
starts_at = 2026-12-01T22:00:00Z
ends_at = "2026-12-02T02:00:00Z"
comment = "moving the primary"

[[inhibit_rules]]
source_matchers = ['alertname="DatacenterDown"']
target_matchers = ['alertname=~"Host.*"']
equal = ["dc"]

[[time_intervals]]
name = "weekend"
time_intervals = [{ weekdays = ["saturday", "sunday"] }]

[[time_intervals]]
name = "business"
[[time_intervals.time_intervals]]
times = [{ start_time = "09:00", end_time = "17:00" }]
weekdays = ["monday:friday"]
days_of_month = ["1:5", "-1"]
months = ["january:march", "12"]
years = ["2026:2027"]
location = "Europe/Berlin"

[flapping]
threshold = 4
window = "15m"

[incidents]
reopen_window = "5m"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, {})
    return caught.value.problems


def test_every_new_key_is_accepted():
    config = parse(BASE + FULL, {})
    assert config.maintenance[0].name == "db-move"
    assert config.inhibit_rules[0].equal == ["dc"]
    assert config.time_intervals[1].time_intervals[0].location == "Europe/Berlin"
    assert (config.flapping.threshold, config.flapping.window) == (4, 900)
    assert config.incidents.reopen_window == 300


def test_the_defaults_need_no_table():
    config = parse(BASE, {})
    assert (config.silences, config.maintenance, config.inhibit_rules) == ([], [], [])
    assert (config.flapping.threshold, config.flapping.window) == (6, 600)
    assert config.incidents.reopen_window == 0
    assert config.route.mute_time_intervals == config.route.active_time_intervals == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('[[silences]]\nmatchers = ["a=b,"]\ncomment = 3', "silences[0].comment: Expected `str`"),
        (
            "[[silences]]\nmatchers = ['a=\"b\"']\nstarts_at = 2026-01-01T00:00:00",
            "silences[0].starts_at: Expected `datetime` with a timezone",
        ),
        (
            '[[silences]]\nmatchers = [\'a="b"\']\nends_at = "tomorrow"',
            "silences[0].ends_at: Invalid RFC3339",
        ),
        ("[[silences]]\nmatchers = ['a=\"b\"']\nuntil = 1", "silences[0].until: unknown key"),
        ("[[silences]]\nmatchers = ['a=\"b']", "silences[0].matchers[0]: unterminated"),
        ("[[silences]]\nmatchers = []", "silences[0].matchers: at least one matcher is needed"),
        (
            "[[silences]]\nmatchers = ['a=~\".*\"']",
            "silences[0].matchers: at least one matcher must not",
        ),
        (
            "[[silences]]\nmatchers = ['a=\"b\"']\n"
            "starts_at = 2026-01-02T00:00:00Z\nends_at = 2026-01-01T00:00:00Z",
            "silences[0].ends_at: must be after starts_at",
        ),
        (
            '[[maintenance]]\nname = "m"\nmatchers = [\'a="b"\']\nends_at = 2026-01-01T00:00:00Z',
            "maintenance[0] (m).starts_at: required key is missing",
        ),
        (
            '[[maintenance]]\nname = "m"\nmatchers = [\'a=""\']\n'
            "starts_at = 2026-01-01T00:00:00Z\nends_at = 2026-01-02T00:00:00Z",
            "maintenance[0] (m).matchers: at least one matcher must not",
        ),
        (
            '[[maintenance]]\nname = "m"\nmatchers = [\'a="b"\']\n'
            "starts_at = 2026-01-01T00:00:00Z\nends_at = 2025-01-02T00:00:00Z",
            "maintenance[0] (m).ends_at: must be after starts_at",
        ),
        (
            '[[maintenance]]\nname = "m"\nmatchers = [\'a="b"\']\n'
            "starts_at = 2026-01-01T00:00:00Z\nends_at = 9999-12-31T23:59:59-05:00",
            "maintenance[0] (m).ends_at: 9999-12-31T23:59:59-05:00 is not between",
        ),
        (
            "[[inhibit_rules]]\nsource_matchers = ['a=\"b\"']",
            "inhibit_rules[0].target_matchers: required key is missing",
        ),
        (
            "[[inhibit_rules]]\nsource_matchers = []\ntarget_matchers = ['a=\"b\"']",
            "inhibit_rules[0].source_matchers: at least one matcher is needed",
        ),
        (
            "[[inhibit_rules]]\nsource_matchers = ['a=\"b\"']\ntarget_matchers = ['x']",
            "inhibit_rules[0].target_matchers[0]: bad matcher 'x'",
        ),
        (
            "[[inhibit_rules]]\nsource_matchers = ['a=\"b\"']\n"
            'target_matchers = [\'c="d"\']\nequal = "dc"',
            "inhibit_rules[0].equal: Expected `array`",
        ),
        (
            "[[time_intervals]]\ntime_intervals = []",
            "time_intervals[0].name: required key is missing",
        ),
        (
            '[[time_intervals]]\nname = "w"\ntime_intervals = [{ weekdays = ["fri:mon"] }]',
            "time_intervals[0] (w).time_intervals[0].weekdays[0]: unknown weekday 'fri'",
        ),
        (
            '[[time_intervals]]\nname = "w"\ntime_intervals = [{ location = "Nowhere/Town" }]',
            "time_intervals[0] (w).time_intervals[0].location: unknown time zone",
        ),
        (
            '[[time_intervals]]\nname = "w"\n'
            'time_intervals = [{ times = [{ start_time = "09:00" }] }]',
            "time_intervals[0] (w).time_intervals[0].times[0].end_time: required key",
        ),
        (
            '[[time_intervals]]\nname = "w"\ntime_intervals = [{ weekday = ["monday"] }]',
            "time_intervals[0] (w).time_intervals[0].weekday: unknown key",
        ),
        ("[flapping]\nthreshold = 0", "flapping.threshold: must be at least 1"),
        ('[flapping]\nthreshold = "many"', "flapping.threshold: Expected `int`"),
        ('[flapping]\nwindow = "0s"', "flapping.window: must be longer than 0s"),
        ('[flapping]\nwindow = "soon"', "flapping.window: expected a duration"),
        ('[flapping]\nwindows = "5m"', "flapping.windows: unknown key"),
        ('[incidents]\nreopen_window = "soon"', "incidents.reopen_window: expected a duration"),
        ('[incidents]\nreopen = "5m"', "incidents.reopen: unknown key"),
    ],
)
def test_a_bad_value_is_reported_naming_the_table_and_key(extra, expected):
    found = problems(BASE + extra)
    assert len(found) == 1, found
    assert found[0].startswith(expected)


def test_routes_must_name_defined_time_intervals_at_every_depth():
    text = ROUTE_WITH_INTERVALS + '[[time_intervals]]\nname = "business"\n'
    assert problems(text) == [
        'route.mute_time_intervals: undefined time interval "weekend"',
        'route.routes[0].active_time_intervals: undefined time interval "nights"',
        'route.routes[0].routes[0].mute_time_intervals: undefined time interval "holidays"',
    ]


def test_several_bad_values_are_all_listed():
    text = (
        BASE
        + """
[[silences]]
matchers = []

[[maintenance]]
name = "m"
matchers = ['a="b"']
starts_at = 2026-01-02T00:00:00Z
ends_at = 2026-01-01T00:00:00Z

[[maintenance]]
name = "m"
matchers = ['a="b"']
starts_at = 2026-01-01T00:00:00Z
ends_at = 2026-01-02T00:00:00Z

[[inhibit_rules]]
source_matchers = ['a']
target_matchers = ['!']

[[time_intervals]]
name = "w"
time_intervals = [{ weekdays = ["someday"], months = ["13"] }]

[[time_intervals]]
name = "w"

[flapping]
threshold = 0
"""
    )
    assert [p.split(": ")[0] for p in problems(text)] == [
        "maintenance[0] and maintenance[1]",
        "silences[0].matchers",
        "maintenance[0] (m).ends_at",
        "inhibit_rules[0].source_matchers[0]",
        "inhibit_rules[0].target_matchers[0]",
        "time_intervals[0] and time_intervals[1]",
        "time_intervals[0] (w).time_intervals[0].weekdays[0]",
        "time_intervals[0] (w).time_intervals[0].months[0]",
        "flapping.threshold",
    ]


def test_several_type_errors_are_all_listed():
    text = BASE + '[flapping]\nthreshold = "x"\nwindow = 5\n[incidents]\nreopen_window = "soon"\n'
    assert [p.split(":")[0] for p in problems(text)] == [
        "flapping.threshold",
        "flapping.window",
        "incidents.reopen_window",
    ]
