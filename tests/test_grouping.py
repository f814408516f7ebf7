"""Grouping timers as a timeline: a fake clock, alerts arriving, and when each is sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.grouping import Delivery, Timing, content_hash, when_due

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TIMING = Timing(group_wait=30, group_interval=300, repeat_interval=3600)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sent(alerts, when: float, send_resolved: bool = True) -> Delivery:
    """The state after notifying ``alerts`` at ``when``."""
    return Delivery(at(0), at(when), content_hash(alerts, send_resolved))


def test_a_burst_within_group_wait_gets_one_notification_time():
    new = Delivery(first_seen=at(0))
    arrivals = [[("a", "firing")], [("a", "firing"), ("b", "firing")]]
    arrivals.append([*arrivals[1], ("c", "firing")])
    assert {when_due(new, alerts, TIMING, True) for alerts in arrivals} == {at(30)}


@pytest.mark.parametrize(
    ("alerts", "send_resolved", "due"),
    [
        ([("a", "firing")], True, 3600),
        ([("a", "firing"), ("b", "firing")], True, 300),
        ([("a", "resolved")], True, 300),
        ([("a", "resolved")], False, None),
        ([("a", "firing"), ("b", "resolved")], False, 3600),
    ],
    ids=[
        "unchanged firing waits for repeat_interval",
        "a new alert waits for group_interval",
        "a resolution waits for group_interval",
        "a resolution is not sent without send_resolved",
        "a new resolved alert is no change without send_resolved",
    ],
)
def test_after_a_notification(alerts, send_resolved, due):
    delivery = sent([("a", "firing")], when=30, send_resolved=send_resolved)
    expected = None if due is None else at(30 + due)
    assert when_due(delivery, alerts, TIMING, send_resolved) == expected


def test_a_resolution_already_sent_is_not_sent_again():
    delivery = sent([("a", "resolved")], when=330)
    assert when_due(delivery, [("a", "resolved")], TIMING, True) is None


def test_an_incident_first_seen_resolved_is_never_notified():
    assert when_due(Delivery(first_seen=at(0)), [("a", "resolved")], TIMING, True) is None


def test_group_interval_limits_changes_to_one_message_per_interval():
    """Alerts keep arriving; the receiver hears at 30s, then at most every 300s."""
    clock, delivery, sends = 0.0, Delivery(first_seen=at(0)), []
    alerts: list[tuple[str, str]] = []
    while clock <= 900:
        alerts.append((f"alert-{clock:g}", "firing"))
        due = when_due(delivery, alerts, TIMING, True)
        if due is not None and due <= at(clock):
            sends.append(clock)
            delivery = Delivery(at(0), at(clock), content_hash(alerts, True))
        clock += 10
    assert sends == [30, 330, 630]


def test_repeat_interval_renotifies_an_unchanged_firing_incident():
    alerts = [("a", "firing")]
    delivery = sent(alerts, when=30)
    due = when_due(delivery, alerts, TIMING, True)
    assert due == at(3630)
    delivery = Delivery(at(0), due, content_hash(alerts, True))
    assert when_due(delivery, alerts, TIMING, True) == at(7230)


def test_content_hash_ignores_order():
    assert content_hash([("a", "firing"), ("b", "resolved")], True) == content_hash(
        [("b", "resolved"), ("a", "firing")], True
    )
