from datetime import UTC, datetime, timedelta

import pytest

from hub.decoders import DECODERS, alertmanager, prometheus
from hub.errors import InvalidPayload
from tests.source_factory import encode, fixture, make_source

SOURCE = make_source("prometheus")
NOW = datetime(2026, 11, 28, 22, 0, 45, tzinfo=UTC)


def at(offset: float) -> str:
    return (NOW + timedelta(seconds=offset)).isoformat()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "firing-batch.json",
            [("6b157f79b26a43ad", "firing", "critical"), ("dacf9b9d4514851e", "firing", "warning")],
        ),
        ("resolved.json", [("dacf9b9d4514851e", "resolved", "warning")]),
    ],
)
def test_it_decodes_batches_captured_from_a_real_prometheus(name, expected):
    decoded = prometheus.decode(fixture("prometheus", name), SOURCE, now=NOW)
    assert [(e.fingerprint, e.status, e.severity) for e in decoded.events] == expected
    assert decoded.rejected == []


def test_it_is_registered_as_a_format():
    assert DECODERS["prometheus"] is prometheus.decode


@pytest.mark.parametrize("labels", [{}, {"cluster": "eu"}])
def test_an_alert_has_the_same_identity_from_prometheus_and_from_alertmanager(labels):
    prometheus_source = make_source("prometheus", labels=labels)
    alertmanager_source = make_source("alertmanager", labels=labels)
    body = fixture("prometheus", "firing-batch.json")
    direct = prometheus.decode(body, prometheus_source, now=NOW)
    webhook = alertmanager.decode(fixture("alertmanager", "mixed-batch.json"), alertmanager_source)
    assert {e.fingerprint for e in direct.events} == {e.fingerprint for e in webhook.events}


def test_sources_with_other_labels_keep_the_same_alert_apart_and_alike_share_it():
    """Two clusters' Watchdogs are two alerts, as with Prometheus' external_labels;
    the two servers of an HA pair, posting to two sources alike, send one."""
    watchdog = encode([{"labels": {"alertname": "Watchdog"}}])
    eu, eu_twin, us = (
        make_source("prometheus", name=name, labels={"cluster": cluster})
        for name, cluster in (("prom-eu", "eu-1"), ("prom-eu-b", "eu-1"), ("prom-us", "us-1"))
    )
    (first,), (twin,), (other,) = (
        prometheus.decode(watchdog, source, now=NOW).events for source in (eu, eu_twin, us)
    )
    assert first.fingerprint == twin.fingerprint != other.fingerprint


@pytest.mark.parametrize(
    ("ends_at", "status"),
    [(-60, "resolved"), (0, "resolved"), (1, "firing"), (240, "firing"), (None, "firing")],
)
def test_an_alert_whose_end_has_passed_is_resolved(ends_at, status):
    alert = {"labels": {"alertname": "A"}, "startsAt": at(-600)}
    if ends_at is not None:
        alert["endsAt"] = at(ends_at)
    (event,) = prometheus.decode(encode([alert]), SOURCE, now=NOW).events
    assert event.status == status


@pytest.mark.parametrize(
    ("ends_at", "expected"), [(240, at(240)), (None, None), (-60, None), (0, None)]
)
def test_a_firing_alert_carries_its_end_and_a_resolved_one_none(ends_at, expected):
    alert = {"labels": {"alertname": "A"}, "startsAt": at(-600)}
    if ends_at is not None:
        alert["endsAt"] = at(ends_at)
    (event,) = prometheus.decode(encode([alert]), SOURCE, now=NOW).events
    assert (event.ends_at.isoformat() if event.ends_at else None) == expected


def test_gos_zero_time_is_a_time_left_unset_as_amtool_alert_add_sends_it():
    """amtool sends both times as Go's zero time; read as set, the alert was resolved
    at birth (and in the year 1) and never fired."""
    zero = "0001-01-01T00:00:00.000Z"
    alert = {"labels": {"alertname": "A"}, "startsAt": zero, "endsAt": zero}
    (event,) = prometheus.decode(encode([alert]), SOURCE, now=NOW).events
    assert (event.status, event.occurred_at, event.ends_at) == ("firing", None, None)


def test_without_a_clock_it_compares_with_the_current_time():
    past = {"labels": {"alertname": "A"}, "endsAt": "2000-01-01T00:00:00Z"}
    future = {"labels": {"alertname": "B"}, "endsAt": "2999-01-01T00:00:00Z"}
    statuses = [e.status for e in prometheus.decode(encode([past, future]), SOURCE).events]
    assert statuses == ["resolved", "firing"]


def test_it_drops_empty_label_values_as_alertmanager_does():
    alert = {"labels": {"alertname": "A", "instance": ""}}
    (event,) = prometheus.decode(encode([alert]), SOURCE, now=NOW).events
    assert "instance" not in event.labels
    assert (
        event.fingerprint
        == prometheus.decode(encode([{"labels": {"alertname": "A"}}]), SOURCE, now=NOW)
        .events[0]
        .fingerprint
    )


def test_it_keeps_the_valid_alerts_of_a_batch_and_lists_the_invalid_ones():
    batch = [
        {"labels": {"alertname": "ok"}},
        {"labels": {}},
        {"labels": {"alertname": 1}},
        {"labels": {"alertname": "x"}, "startsAt": at(0), "endsAt": at(-10)},
    ]
    decoded = prometheus.decode(encode(batch), SOURCE, now=NOW)
    assert [e.summary for e in decoded.events] == ["ok"]
    fields = [r.split(":")[0] for r in decoded.rejected]
    assert fields == ["$[1].labels", "$[2].labels.alertname", "$[3].endsAt"]


@pytest.mark.parametrize(
    ("body", "field"),
    [([{"labels": {}}], "$[0].labels"), ({"labels": {}}, "$")],
)
def test_it_refuses_a_body_without_one_valid_alert(body, field):
    with pytest.raises(InvalidPayload) as caught:
        prometheus.decode(encode(body), SOURCE, now=NOW)
    assert caught.value.field == field
