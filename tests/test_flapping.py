from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.config import Duration, Flapping
from hub.flapping import is_flapping, prune, settles_at

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SETTINGS = Flapping(threshold=3, window=Duration(600))


def ago(*seconds: float) -> list[datetime]:
    return [NOW - timedelta(seconds=s) for s in seconds]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (ago(), False),
        (ago(10, 20, 30), False),
        (ago(10, 20, 30, 40), True),
        (ago(10, 20, 30, 600), False),
        (ago(10, 20, 30, 599), True),
        (ago(10, 20, 30, 700, 800, 900), False),
    ],
)
def test_more_than_threshold_changes_inside_the_window_is_flapping(changes, expected):
    assert is_flapping(changes, NOW, SETTINGS) is expected


def test_it_settles_when_old_changes_leave_the_window():
    changes = ago(10, 20, 30, 400)
    assert is_flapping(changes, NOW, SETTINGS)
    settle = settles_at(changes, NOW, SETTINGS)
    assert settle == NOW + timedelta(seconds=200)
    assert is_flapping(changes, settle - timedelta(seconds=1), SETTINGS)
    assert not is_flapping(changes, settle, SETTINGS)


def test_a_quiet_alert_has_no_settle_time():
    assert settles_at(ago(10), NOW, SETTINGS) is None


def test_prune_keeps_only_what_the_decision_needs_oldest_first():
    kept = prune(ago(900, 5, 50, 500, 100, 200), NOW, SETTINGS)
    assert kept == ago(500, 200, 100, 50, 5)[-4:]
    assert len(kept) == SETTINGS.threshold + 1


def test_the_defaults_are_six_changes_in_ten_minutes():
    assert (Flapping().threshold, Flapping().window) == (6, 600)


_offsets = st.lists(st.floats(min_value=0, max_value=1200), max_size=15)


@given(_offsets, _offsets)
def test_is_flapping_is_monotone_in_the_number_of_changes(base, extra):
    if is_flapping(ago(*base), NOW, SETTINGS):
        assert is_flapping(ago(*base, *extra), NOW, SETTINGS)


@given(_offsets)
def test_pruning_never_changes_the_answer(offsets):
    changes = ago(*offsets)
    pruned = prune(changes, NOW, SETTINGS)
    assert is_flapping(pruned, NOW, SETTINGS) == is_flapping(changes, NOW, SETTINGS)
    assert settles_at(pruned, NOW, SETTINGS) == settles_at(changes, NOW, SETTINGS)
