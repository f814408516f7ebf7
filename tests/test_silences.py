from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.config import parse as parse_config
from hub.silences import Silence, expire, from_config, mutes, muting_silences, problems, state

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def silence(
    matchers=('service="checkout"',), starts=T0, ends=T0 + HOUR, id="s1", created_at=T0
) -> Silence:
    return Silence(
        id=id,
        matchers=list(matchers),
        starts_at=starts,
        ends_at=ends,
        created_by="ana",
        comment="deploy",
        created_at=created_at,
    )


@pytest.mark.parametrize(
    ("starts", "ends", "now", "expected"),
    [
        (T0, T0 + HOUR, T0 - timedelta(seconds=1), "pending"),
        (T0, T0 + HOUR, T0, "active"),
        (T0, T0 + HOUR, T0 + HOUR - timedelta(seconds=1), "active"),
        (T0, T0 + HOUR, T0 + HOUR, "expired"),
        (None, T0 + HOUR, T0 - 1000 * HOUR, "active"),
        (T0, None, T0 + 1000 * HOUR, "active"),
        (None, None, T0, "active"),
    ],
)
def test_state_follows_the_time_range_with_an_exclusive_end(starts, ends, now, expected):
    assert state(silence(starts=starts, ends=ends), now) == expected


@pytest.mark.parametrize(
    ("labels", "now", "expected"),
    [
        ({"service": "checkout"}, T0 + timedelta(minutes=5), True),
        ({"service": "search"}, T0 + timedelta(minutes=5), False),
        ({"service": "checkout"}, T0 - timedelta(minutes=5), False),
        ({"service": "checkout"}, T0 + 2 * HOUR, False),
    ],
)
def test_a_silence_mutes_matching_alerts_only_while_active(labels, now, expected):
    assert mutes(silence(), labels, now) is expected


def test_a_silence_created_later_still_mutes():
    alert_arrived = T0
    later = silence(starts=T0 + HOUR, ends=T0 + 3 * HOUR, created_at=T0 + HOUR)
    assert not mutes(later, {"service": "checkout"}, alert_arrived)
    assert mutes(later, {"service": "checkout"}, T0 + 2 * HOUR)


def test_muting_silences_lists_the_ids_that_apply():
    all_ = [
        silence(id="a"),
        silence(id="b", matchers=['env="prod"']),
        silence(id="c", ends=T0 + timedelta(minutes=1)),
    ]
    now = T0 + timedelta(minutes=10)
    assert muting_silences(all_, {"service": "checkout", "env": "prod"}, now) == ["a", "b"]
    assert muting_silences(all_, {"service": "search"}, now) == []


def test_expiring_an_active_silence_ends_it_now():
    now = T0 + timedelta(minutes=10)
    ended = expire(silence(), now)
    assert (ended.starts_at, ended.ends_at, state(ended, now)) == (T0, now, "expired")


def test_expiring_a_pending_silence_makes_it_never_start():
    now = T0 - HOUR
    ended = expire(silence(), now)
    assert (ended.starts_at, ended.ends_at, state(ended, now)) == (now, now, "expired")


def test_expiring_an_expired_silence_changes_nothing():
    old = silence()
    assert expire(old, T0 + 5 * HOUR) is old


@pytest.mark.parametrize(
    ("matchers", "starts", "ends", "expected"),
    [
        (['a="b"'], T0, T0 + HOUR, []),
        (['a="b"'], None, None, []),
        ([], T0, T0 + HOUR, ["matchers: at least one matcher is needed"]),
        (["nope"], T0, T0 + HOUR, ["matchers[0]: bad matcher"]),
        (['a=""'], T0, T0 + HOUR, ["matchers: at least one matcher must not match the empty"]),
        (['a=~".*"', 'b!="x"'], None, None, ["matchers: at least one matcher must not"]),
        (['a=~".*"', 'b="x"'], None, None, []),
        (['a="b"'], T0, T0, ["ends_at: must be after starts_at"]),
        ([], T0 + HOUR, T0, ["matchers: at least one", "ends_at: must be after"]),
    ],
)
def test_problems_are_named_by_key(matchers, starts, ends, expected):
    found = problems(matchers, starts, ends)
    assert len(found) == len(expected)
    assert all(f.startswith(e) for f, e in zip(found, expected, strict=True))


def test_the_api_struct_encodes_without_the_parsed_matchers():
    encoded = msgspec.json.decode(msgspec.json.encode(silence()))
    assert set(encoded) == {
        "id",
        "matchers",
        "starts_at",
        "ends_at",
        "created_by",
        "created_via",
        "comment",
        "created_at",
        "updated_by",
        "updated_via",
        "updated_at",
    }


CONFIG = """
[[receivers]]
name = "ops"
urls = ["json://localhost"]

[route]
receiver = "ops"

[[silences]]
matchers = ['env="staging"']
comment = "staging is noisy"

[[silences]]
matchers = ['service="search"']
starts_at = 2026-11-28T12:00:00Z
ends_at = "2026-11-28T14:00:00+01:00"
created_by = "ana"

[[maintenance]]
name = "db-move"
matchers = ['service=~"db|checkout"']
starts_at = 2026-12-01T22:00:00Z
ends_at = 2026-12-02T02:00:00Z
"""


def test_static_silences_and_maintenance_windows_become_silences():
    made = from_config(parse_config(CONFIG, {}), T0)
    assert [s.created_by for s in made] == ["config", "ana", "config"]
    assert made[0].id.startswith("config-")
    assert made[2].id == "maintenance:db-move"
    assert made[2].comment == "maintenance window db-move"
    assert made[1].ends_at == datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
    during = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    assert muting_silences(made, {"service": "db", "env": "prod"}, during) == [
        "maintenance:db-move"
    ]
    assert muting_silences(made, {"env": "staging"}, T0 + 1000 * HOUR) == [made[0].id]


def test_static_silence_ids_survive_a_reload():
    config = parse_config(CONFIG, {})
    assert [s.id for s in from_config(config, T0)] == [s.id for s in from_config(config, T0 + HOUR)]


def test_a_static_silence_keeps_when_it_was_first_loaded_across_reloads():
    before = from_config(parse_config(CONFIG, {}), T0)
    grown = CONFIG + "[[silences]]\nmatchers = ['env=\"dev\"']\n"
    after = from_config(parse_config(grown, {}), T0 + HOUR, known=before)
    assert [s.created_at for s in after] == [T0, T0, T0 + HOUR, T0]
    assert after[2].matchers == ['env="dev"']
    assert [s for s in after if s.created_at == T0] == before


_times = st.datetimes(timezones=st.just(UTC))


@given(st.one_of(st.none(), _times), st.one_of(st.none(), _times), _times, _times)
def test_state_only_moves_forward_in_time(starts, ends, earlier, later):
    if earlier > later:
        earlier, later = later, earlier
    order = ["pending", "active", "expired"]
    one = silence(starts=starts, ends=ends)
    assert order.index(state(one, earlier)) <= order.index(state(one, later))
