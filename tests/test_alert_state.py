"""The alert state machine and identity (pure functions), and the SQL repeat path that
must agree with it."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.alerts import Outcome, classify, new_row, notification_kind
from hub.events import Event
from hub.fingerprints import alertmanager_fingerprint, fingerprint, label_fingerprint
from hub.store import opened

FIRING_AT_100 = {"status": "firing", "severity": "warning", "summary": "s", "last_change": 100.0}


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


def test_alertmanager_fingerprint_of_no_labels_is_the_fnv_offset_basis():
    assert alertmanager_fingerprint({}) == "cbf29ce484222325"


@given(st.dictionaries(st.text(min_size=1), st.text(), max_size=6))
def test_fingerprints_do_not_depend_on_label_order(labels):
    reordered = dict(reversed(list(labels.items())))
    assert alertmanager_fingerprint(labels) == alertmanager_fingerprint(reordered)
    assert label_fingerprint("s", labels) == label_fingerprint("s", reordered)


def test_the_senders_key_wins_and_identity_labels_narrow_the_hash():
    labels = {"service": "api", "pod": "api-7f9c"}
    assert fingerprint("shop", "order-17", labels) == "order-17"
    by_service = fingerprint("shop", None, labels, ["service"])
    assert by_service == fingerprint("shop", None, {"service": "api", "pod": "other"}, ["service"])
    assert fingerprint("shop", None, labels) != fingerprint("crm", None, labels)


STATUSES = st.sampled_from(["firing", "resolved"])
SEVERITIES = st.sampled_from(["critical", "warning"])
SUMMARIES = st.sampled_from(["disk full", "disk almost full"])
TIMES = st.sampled_from([99.0, 100.0, 100.5, 101.0])


@settings(max_examples=200, deadline=None)
@given(
    stored=st.tuples(STATUSES, SEVERITIES, SUMMARIES, TIMES),
    event=st.tuples(st.sampled_from(["firing", "resolved", "acknowledged"]), SEVERITIES),
    summary=SUMMARIES,
    occurred=TIMES,
)
def test_the_one_statement_repeat_path_agrees_with_classify(
    tmp_path_factory, stored, event, summary, occurred
):
    """Ingest first tries ``Tx.touch_repeat`` (SQL) and falls back to ``classify``
    (Python): the two must agree on what a repeat is, or a repeat would be recorded
    as a change, or a change counted as a repeat."""
    status, severity, stored_summary, last_change = stored
    row = new_row(
        "src",
        Event(fingerprint="fp", status=status, severity=severity, summary=stored_summary),
        last_change,
        last_change,
    )
    expected = classify(row, event[0], event[1], summary, occurred) is Outcome.DUPLICATE

    def touch(tx):
        tx.insert("alerts", row)
        return tx.touch_repeat("fp", event[0], event[1], summary, occurred, 200.0)

    with opened(str(tmp_path_factory.mktemp("repeat") / "s.db")) as store:
        touched = asyncio.run(store.write(touch))
        after = store.query("SELECT duplicates, last_change FROM alerts")[0]
    assert (touched is not None) is expected
    if expected:
        assert touched["status"] == status
        assert (after["duplicates"], after["last_change"]) == (1, occurred)
    else:
        assert (after["duplicates"], after["last_change"]) == (0, last_change)
