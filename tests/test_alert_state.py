"""The alert state machine and identity, as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.alerts import Outcome, classify, judge, notification_kind
from hub.events import Event
from hub.fingerprints import alertmanager_fingerprint, fingerprint, label_fingerprint

FIRING_AT_100 = {
    "status": "firing",
    "severity": "warning",
    "summary": "s",
    "last_change": 100.0,
    "ends_at": None,
}
EXPIRED_AT_200 = {**FIRING_AT_100, "status": "resolved", "last_change": 200.0, "ends_at": 200.0}
RESOLVED_AT_200 = {**EXPIRED_AT_200, "ends_at": None}


@pytest.mark.parametrize(
    ("alert", "status", "severity", "summary", "at", "outcome", "notify"),
    [
        (None, "firing", "warning", "s", 100.0, Outcome.NEW, "firing"),
        (None, "resolved", "warning", "s", 100.0, Outcome.NEW, None),
        (FIRING_AT_100, "firing", "warning", "s", 101.0, Outcome.DUPLICATE, None),
        (FIRING_AT_100, "firing", "critical", "s", 101.0, Outcome.UPDATED, None),
        (FIRING_AT_100, "resolved", "warning", "s", 101.0, Outcome.CHANGED, "resolved"),
        (FIRING_AT_100, "resolved", "warning", "s", 100.0, Outcome.CHANGED, "resolved"),
        (FIRING_AT_100, "resolved", "warning", "s", 99.0, Outcome.STALE, None),
        (FIRING_AT_100, "acknowledged", "warning", "s", 101.0, Outcome.ACKNOWLEDGED, None),
        (
            {**FIRING_AT_100, "status": "resolved"},
            "firing",
            "warning",
            "s",
            101.0,
            Outcome.CHANGED,
            "firing",
        ),
        (
            {**FIRING_AT_100, "status": "resolved"},
            "firing",
            "warning",
            "s",
            50.0,
            Outcome.STALE,
            None,
        ),
    ],
)
def test_classify_decides_what_an_event_does(alert, status, severity, summary, at, outcome, notify):
    result = classify(alert, status, severity, summary, at)
    assert result is outcome
    assert notification_kind(result, status) == notify


@pytest.mark.parametrize(
    ("alert", "ends", "outcome"),
    [
        (EXPIRED_AT_200, 300.0, Outcome.CHANGED),  # still firing after the end hub inferred
        (EXPIRED_AT_200, 200.0, Outcome.STALE),  # no later end: sent before it
        (EXPIRED_AT_200, None, Outcome.STALE),
        (RESOLVED_AT_200, 300.0, Outcome.STALE),  # the sender's own resolve is final
    ],
)
def test_an_older_firing_outlasting_an_inferred_end_fires_again(alert, ends, outcome):
    assert classify(alert, "firing", "warning", "s", 50.0, ends) is outcome


@pytest.mark.parametrize(
    ("status", "opens", "outcome"),
    [
        ("acknowledged", True, Outcome.IGNORED),
        ("resolved", False, Outcome.IGNORED),
        ("acknowledged", False, Outcome.IGNORED),
        ("resolved", True, Outcome.NEW),
    ],
)
def test_an_event_about_no_alert_is_ignored_unless_it_may_open_one(status, opens, outcome):
    result = classify(None, status, "warning", "s", 100.0, opens=opens)
    assert result is outcome
    assert notification_kind(result, status) is None


@pytest.mark.parametrize(
    ("status", "rated", "severity"),
    [
        ("resolved", False, "error"),  # said nothing of severity: the alert's stays
        ("resolved", True, "warning"),  # said warning: it is a warning now
        ("firing", False, "warning"),  # a firing event's default stands, as documented
    ],
)
def test_a_resolve_without_a_severity_keeps_the_alerts(status, rated, severity):
    alert = {**FIRING_AT_100, "severity": "error"}
    event = Event(fingerprint="fp", status=status, summary="s", rated=rated)
    applied, _, _ = judge(alert, event, 101.0)
    assert applied.severity == severity


def test_alertmanager_fingerprint_of_no_labels_is_the_fnv_offset_basis():
    assert alertmanager_fingerprint({}) == "cbf29ce484222325"


@given(st.dictionaries(st.text(min_size=1), st.text(), max_size=6))
def test_fingerprints_do_not_depend_on_label_order(labels):
    reordered = dict(reversed(list(labels.items())))
    assert alertmanager_fingerprint(labels) == alertmanager_fingerprint(reordered)
    assert label_fingerprint("s", labels) == label_fingerprint("s", reordered)


def test_the_senders_key_wins_within_its_source_and_identity_labels_narrow_the_hash():
    labels = {"service": "api", "pod": "api-7f9c"}
    assert fingerprint("shop", "order-17", labels) == "shop/order-17"
    assert fingerprint("crm", "order-17", labels) == "crm/order-17"
    by_service = fingerprint("shop", None, labels, ["service"])
    assert by_service == fingerprint("shop", None, {"service": "api", "pod": "other"}, ["service"])
    assert fingerprint("shop", None, labels) != fingerprint("crm", None, labels)
