from datetime import UTC, datetime, timedelta

import pytest

from hub.incidents import next_status, place, should_reopen

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "alerts", "acked", "expected"),
    [
        ("open", ["firing"], False, "open"),
        ("open", ["firing", "resolved"], False, "open"),
        ("open", ["firing"], True, "acknowledged"),
        ("acknowledged", ["firing"], True, "acknowledged"),
        ("acknowledged", ["firing"], False, "open"),
        ("open", ["resolved", "resolved"], False, "resolved"),
        ("acknowledged", ["resolved"], True, "resolved"),
        ("open", [], False, "resolved"),
        ("open", ["acknowledged", "acknowledged"], False, "acknowledged"),
        ("open", ["acknowledged", "firing"], False, "open"),
        ("open", ["acknowledged", "resolved"], False, "acknowledged"),
        ("resolved", ["firing"], False, "resolved"),
        ("resolved", ["firing"], True, "resolved"),
    ],
)
def test_the_status_follows_the_alerts_and_the_ack(current, alerts, acked, expected):
    assert next_status(current, alerts, acked) == expected


@pytest.mark.parametrize(
    ("resolved_ago", "window", "expected"),
    [
        (timedelta(seconds=1), 0, False),
        (timedelta(seconds=-1), 0, False),
        (timedelta(minutes=4), 300, True),
        (timedelta(minutes=5), 300, False),
        (timedelta(hours=1), 300, False),
    ],
)
def test_an_incident_reopens_only_within_the_window(resolved_ago, window, expected):
    assert should_reopen(NOW - resolved_ago, NOW, window) is expected


@pytest.mark.parametrize(
    ("last", "resolved_at", "window", "expected"),
    [
        (None, None, 300, "new"),
        ("open", None, 300, "join"),
        ("acknowledged", None, 300, "join"),
        ("resolved", NOW - timedelta(minutes=1), 300, "reopen"),
        ("resolved", NOW - timedelta(minutes=10), 300, "new"),
        ("resolved", NOW - timedelta(seconds=1), 0, "new"),
    ],
)
def test_a_new_firing_alert_joins_reopens_or_starts_an_incident(
    last, resolved_at, window, expected
):
    assert place(last, resolved_at, NOW, window) == expected
