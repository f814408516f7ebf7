from datetime import UTC, datetime

import pytest

from hub.decoders import DECODERS, RESPONDERS, decode, pagerduty
from hub.errors import AuthError, InvalidPayload, MalformedBody
from tests.source_factory import encode, fixture, fixture_json, make_source

SOURCE = make_source("pagerduty")


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("trigger.json", "firing"),
        ("acknowledge.json", "acknowledged"),
        ("resolve.json", "resolved"),
    ],
)
def test_each_event_action_becomes_a_status_of_the_same_alert(name, status):
    (event,) = pagerduty.decode(fixture("pagerduty", name), SOURCE).events
    assert (event.fingerprint, event.status) == ("test/srv01/mysql", status)


@pytest.mark.parametrize(
    ("name", "opens", "details"),
    [
        ("trigger.json", True, True),
        ("acknowledge.json", False, False),
        ("resolve.json", False, False),
    ],
)
def test_only_a_trigger_opens_an_alert_and_only_a_payload_carries_details(name, opens, details):
    (event,) = pagerduty.decode(fixture("pagerduty", name), SOURCE).events
    assert (event.opens, event.details) == (opens, details)


def test_it_is_registered_with_its_own_answers():
    assert DECODERS["pagerduty"] is pagerduty.decode
    assert RESPONDERS["pagerduty"] is pagerduty.RESPONDER


def test_a_trigger_carries_what_is_affected_as_labels_and_the_details_as_annotations():
    (event,) = pagerduty.decode(fixture("pagerduty", "trigger.json"), SOURCE).events
    assert event.summary == "DISK at 99% on machine prod-datapipe03.example.com"
    assert event.severity == "critical"
    assert event.labels == {
        "source": "prod-datapipe03.example.com",
        "component": "mysql",
        "group": "prod-datapipe",
        "class": "disk",
    }
    assert event.annotations == {
        "free space": "1%",
        "ping time": "1500ms",
        "load avg": "0.75",
        "client_url": "https://monitoring.service.com",
        "link_1": "Link text https://example.com/",
    }


def test_a_trigger_is_ordered_by_arrival_and_dated_by_its_detection_time():
    """PagerDuty applies events in the order they arrive; ``payload.timestamp`` is when
    the problem was detected, which senders repeat on every re-trigger."""
    (event,) = pagerduty.decode(fixture("pagerduty", "trigger.json"), SOURCE).events
    assert event.occurred_at is None
    assert event.starts_at == datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC)


def test_a_detection_time_ahead_of_hubs_clock_dates_nothing():
    """A sender's clock never runs ahead of hub's: the alert would fire "since" later."""
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    body = fixture_json("pagerduty", "trigger.json")
    body["payload"]["timestamp"] = "2026-11-28T12:05:00Z"
    (event,) = decode(encode(body), SOURCE, now).events
    assert (event.occurred_at, event.starts_at) == (None, None)


def test_a_trigger_without_dedup_key_gets_a_new_one_each_time():
    body = fixture("pagerduty", "trigger-without-dedup-key.json")
    first, second = (pagerduty.decode(body, SOURCE).events[0].fingerprint for _ in range(2))
    assert len(first.removeprefix("test/")) == 32
    assert first != second


def mutated(name, **changes):
    body = fixture_json("pagerduty", name)
    for key, value in changes.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    return encode(body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (mutated("trigger.json", routing_key=None), "$.routing_key"),
        (mutated("trigger.json", routing_key=""), "$.routing_key"),
        (mutated("trigger.json", event_action="escalate"), "$.event_action"),
        (mutated("trigger.json", payload=None), "$.payload"),
        (mutated("resolve.json", dedup_key=None), "$.dedup_key"),
        (mutated("acknowledge.json", dedup_key=None), "$.dedup_key"),
        (
            mutated("trigger.json", payload={"summary": "x", "source": "y", "severity": "high"}),
            "$.payload.severity",
        ),
        (
            mutated(
                "trigger.json",
                payload={"summary": "x", "source": "y", "severity": "info", "timestamp": "soon"},
            ),
            "$.payload.timestamp",
        ),
    ],
)
def test_it_refuses_events_pagerduty_would_refuse_naming_the_field(body, field):
    with pytest.raises(InvalidPayload) as caught:
        pagerduty.decode(body, SOURCE)
    assert caught.value.field == field


def test_it_answers_an_accepted_event_as_pagerduty_does():
    decoded = pagerduty.decode(fixture("pagerduty", "trigger.json"), SOURCE)
    assert pagerduty.RESPONDER.accepted(decoded) == (
        202,
        {"status": "success", "message": "Event processed", "dedup_key": "srv01/mysql"},
    )


@pytest.mark.parametrize(
    "error", [MalformedBody("body is not valid JSON"), InvalidPayload("bad", field="$.payload")]
)
def test_it_answers_an_invalid_event_as_pagerduty_does(error):
    status, body = pagerduty.RESPONDER.rejected(error)
    assert status == 400
    assert body == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [error.detail],
    }


def test_it_leaves_other_errors_to_hubs_own_answer():
    assert pagerduty.RESPONDER.rejected(AuthError("bad_token")) is None


def test_a_link_without_text_is_kept_as_its_address():
    body = fixture_json("pagerduty", "trigger.json")
    body["links"].append({"href": "https://runbooks.example/disk"})
    (event,) = pagerduty.decode(encode(body), SOURCE).events
    assert event.annotations["link_2"] == "https://runbooks.example/disk"
