from datetime import UTC, datetime

import pytest

from hub.decoders import DECODERS, alertmanager, decode
from hub.errors import InvalidPayload
from hub.fingerprints import alertmanager_fingerprint
from tests.source_factory import encode, fixture, fixture_json, make_source

SOURCE = make_source("alertmanager")
EU = make_source("alertmanager", labels={"cluster": "eu-1"})
CHECKOUT = ("6b157f79b26a43ad", "firing", "critical", "checkout is always on fire")
FLAPPING = ("dacf9b9d4514851e", "resolved", "warning", "fires for ten seconds out of twenty")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("firing.json", [CHECKOUT]),
        ("resolved.json", [FLAPPING]),
        ("mixed-batch.json", [FLAPPING, CHECKOUT]),
    ],
)
def test_it_decodes_notifications_captured_from_a_real_alertmanager(name, expected):
    decoded = alertmanager.decode(fixture("alertmanager", name), SOURCE)
    assert [(e.fingerprint, e.status, e.severity, e.summary) for e in decoded.events] == expected
    assert decoded.rejected == []


def test_it_is_registered_as_a_format():
    assert DECODERS["alertmanager"] is alertmanager.decode


@pytest.mark.parametrize("name", ["firing.json", "resolved.json", "mixed-batch.json"])
def test_alertmanagers_fingerprint_is_the_one_hub_computes_from_labels(name):
    for alert in fixture_json("alertmanager", name)["alerts"]:
        assert alertmanager_fingerprint(alert["labels"]) == alert["fingerprint"]


def test_it_dates_a_firing_alert_from_starts_at_and_a_resolved_one_from_ends_at():
    resolved, firing = alertmanager.decode(
        fixture("alertmanager", "mixed-batch.json"), SOURCE
    ).events
    assert resolved.occurred_at == datetime(2026, 11, 28, 22, 1, 10, 255000, tzinfo=UTC)
    assert firing.occurred_at == datetime(2026, 11, 28, 22, 0, 16, 255000, tzinfo=UTC)


def test_a_time_after_hubs_now_is_dropped_so_the_event_dates_from_its_receipt():
    """An Alertmanager whose clock runs ahead: its resolve, dated after hub's now, is
    taken as received now; the firing alert's earlier startsAt is kept."""
    now = datetime(2026, 11, 28, 22, 0, 30, tzinfo=UTC)
    resolved, firing = decode(fixture("alertmanager", "mixed-batch.json"), SOURCE, now).events
    assert (resolved.status, resolved.occurred_at) == ("resolved", None)
    assert firing.occurred_at == datetime(2026, 11, 28, 22, 0, 16, 255000, tzinfo=UTC)


def test_source_labels_join_the_identity_as_prometheus_external_labels_would():
    """Alertmanager fingerprints an alert with its Prometheus' external labels: a
    source's labels stand for them, so the same alert from two clusters is two alerts,
    and is the alert an Alertmanager sends with that label itself."""
    body = fixture_json("alertmanager", "firing.json")
    (event,) = alertmanager.decode(encode(body), EU).events
    labelled = {**body["alerts"][0]["labels"], "cluster": "eu-1"}
    body["alerts"][0] |= {"labels": labelled, "fingerprint": alertmanager_fingerprint(labelled)}
    (external,) = alertmanager.decode(encode(body), SOURCE).events
    assert event.labels == external.labels == labelled
    assert event.fingerprint == external.fingerprint != "6b157f79b26a43ad"
    assert event.annotations["generator_url"].startswith("http://")


def test_it_tolerates_fields_that_newer_alertmanagers_add():
    body = fixture_json("alertmanager", "firing.json")
    body |= {"notification_reason": "new_alerts", "routeLabels": {"team": "ops"}}
    body["alerts"][0]["unknownField"] = 1
    assert len(alertmanager.decode(encode(body), SOURCE).events) == 1


def test_it_refuses_another_payload_version():
    body = fixture_json("alertmanager", "firing.json") | {"version": "5"}
    with pytest.raises(InvalidPayload) as caught:
        alertmanager.decode(encode(body), SOURCE)
    assert caught.value.field == "$.version"


def test_it_keeps_the_valid_alerts_of_a_batch_and_lists_the_invalid_ones():
    body = fixture_json("alertmanager", "mixed-batch.json")
    body["alerts"][0]["status"] = "pending"
    decoded = alertmanager.decode(encode(body), SOURCE)
    assert [e.fingerprint for e in decoded.events] == ["6b157f79b26a43ad"]
    assert len(decoded.rejected) == 1
    assert decoded.rejected[0].startswith("$.alerts[0].status: ")


def test_it_refuses_a_batch_without_one_valid_alert():
    body = fixture_json("alertmanager", "firing.json")
    del body["alerts"][0]["labels"]
    with pytest.raises(InvalidPayload) as caught:
        alertmanager.decode(encode(body), SOURCE)
    assert caught.value.field == "$.alerts[0].labels"
    assert "labels" in caught.value.detail
