from datetime import UTC, datetime

import pytest

from hub.decoders import DECODERS, generic
from hub.decoders.generic import lookup
from hub.errors import InvalidPayload
from tests.source_factory import encode, fixture, make_source

SHOP = make_source(
    "generic",
    labels={"service": "shop"},
    mapping={
        "summary": "Order {name} is {financial_status}",
        "status": "financial_status",
        "status_map": {"voided": "firing", "pending": "firing", "paid": "resolved"},
        "dedup_key": "id",
        "occurred_at": "updated_at",
        "labels": {"country": "shipping_address.country_code", "first_sku": "line_items.0.sku"},
        "annotations": {"customer": "customer.email", "total": "total_price"},
        "defaults": {"severity": "error"},
    },
)
PAYMENTS = make_source(
    "generic",
    mapping={
        "summary": "Payment {data.object.id} of {data.object.amount} "
        "{data.object.currency}: {type}",
        "status": "type",
        "status_map": {
            "payment_intent.payment_failed": "firing",
            "payment_intent.succeeded": "resolved",
        },
        "dedup_key": "data.object.id",
        "occurred_at": "created",
        "labels": {
            "customer": "data.object.customer",
            "code": "data.object.last_payment_error.code",
        },
        "annotations": {"reason": "data.object.last_payment_error.message"},
    },
)
CRM = make_source(
    "generic",
    mapping={
        "summary": "Deal {objectId} moved to {propertyValue}",
        "status": "propertyValue",
        "status_map": {"closedlost": "firing", "closedwon": "resolved"},
        "dedup_key": "objectId",
        "occurred_at": "occurredAt",
        "labels": {"portal": "portalId"},
        "defaults": {"severity": "info"},
    },
)


def test_it_is_registered_as_a_format():
    assert DECODERS["generic"] is generic.decode


def test_it_maps_a_shop_order():
    (event,) = generic.decode(fixture("generic", "shopify-order.json"), SHOP).events
    assert event.summary == "Order #9999 is voided"
    assert (event.status, event.severity, event.fingerprint) == (
        "firing",
        "error",
        "test/820982911946154508",
    )
    assert event.labels == {"service": "shop", "country": "US", "first_sku": "IPOD2008PINK"}
    assert event.annotations == {"customer": "john@example.com", "total": "403.00"}
    assert event.occurred_at == datetime(2022, 1, 1, 0, 0, tzinfo=UTC)


def test_it_maps_a_failed_payment():
    (event,) = generic.decode(fixture("generic", "stripe-payment-failed.json"), PAYMENTS).events
    assert event.summary == (
        "Payment pi_3NRnmPLkdIwHu7ix0DOpnzKk of 2000 usd: payment_intent.payment_failed"
    )
    assert (event.status, event.severity) == ("firing", "warning")
    assert event.labels == {"customer": "cus_O9xLzGL0bZ6mCd", "code": "card_declined"}
    assert event.annotations == {"reason": "Your card has insufficient funds."}
    assert event.occurred_at == datetime.fromtimestamp(1689000000, UTC)


def test_doubled_braces_in_a_summary_template_are_literal_braces():
    source = make_source("generic", mapping={"summary": "{{{kind}}} }}{name}{{"})
    (event,) = generic.decode(encode({"kind": "order", "name": "#1"}), source).events
    assert event.summary == "{order} }#1{"


def test_a_body_that_is_a_list_carries_many_events():
    decoded = generic.decode(fixture("generic", "hubspot-deals.json"), CRM)
    assert [(e.fingerprint, e.status, e.severity) for e in decoded.events] == [
        ("test/1246965", "firing", "info"),
        ("test/1246978", "resolved", "info"),
    ]
    assert decoded.events[0].occurred_at == datetime(2023, 7, 10, 14, 40, 0, 123000, tzinfo=UTC)


def test_the_events_path_names_a_list_inside_the_body_and_paths_are_relative_to_it():
    source = make_source("generic", mapping={"summary": "name", "events": "data.checks"})
    body = {"data": {"checks": [{"name": "db"}, {"nom": "web"}, {"name": "cache"}]}}
    decoded = generic.decode(encode(body), source)
    assert [e.summary for e in decoded.events] == ["db", "cache"]
    assert decoded.rejected == ["$.data.checks[1].name: missing required field name"]


@pytest.mark.parametrize(
    ("mapping", "body", "field"),
    [
        ({"summary": "title"}, {"name": "x"}, "$.title"),
        ({"summary": "Order {order.id} failed"}, {"order": {}}, "$.order.id"),
        ({"summary": "title", "dedup_key": "id"}, {"title": "x"}, "$.id"),
        ({"summary": "title", "status": "state"}, {"title": "x"}, "$.state"),
        ({"summary": "title", "status": "state"}, {"title": "x", "state": "odd"}, "$.state"),
        ({"summary": "title", "events": "items"}, {"items": {"a": 1}}, "$.items"),
        ({"summary": "title", "occurred_at": "at"}, {"title": "x", "at": "yesterday"}, "$.at"),
    ],
)
def test_a_missing_or_unusable_value_is_refused_naming_its_path(mapping, body, field):
    with pytest.raises(InvalidPayload) as caught:
        generic.decode(encode(body), make_source("generic", mapping=mapping))
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("failed", "firing"),
        ("resolved", "resolved"),
        ("odd", "acknowledged"),
        (None, "acknowledged"),
    ],
)
def test_status_is_mapped_else_taken_as_is_else_defaulted(state, expected):
    source = make_source(
        "generic",
        mapping={
            "summary": "title",
            "status": "state",
            "status_map": {"failed": "firing"},
            "defaults": {"status": "acknowledged"},
        },
    )
    (event,) = generic.decode(encode({"title": "x", "state": state}), source).events
    assert event.status == expected


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("S1", "critical"),
        ("P2", "error"),
        ("warn", "warning"),
        (None, "info"),
        ("odd", "info"),
        (3, "critical"),
    ],
)
def test_severity_is_mapped_else_normalized_else_defaulted(level, expected):
    source = make_source(
        "generic",
        mapping={
            "summary": "title",
            "severity": "level",
            "severity_map": {"S1": "critical", "3": "critical"},
            "defaults": {"severity": "info"},
        },
    )
    (event,) = generic.decode(encode({"title": "x", "level": level}), source).events
    assert event.severity == expected
    assert event.rated is (level is not None), "only a body without a word leaves it unrated"


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        ({"state": "refunded", "id": 7}, "ignored: state is 'refunded'"),
        ({"state": "draft", "id": 7}, "ignored: state is 'draft'"),
        ({"zen": "Keep it logically awesome.", "hook_id": 1}, "ignored: state is missing"),
    ],
    ids=["mapped", "unmapped", "missing"],
)
def test_a_word_mapped_or_defaulted_to_ignore_needs_no_other_field(body, summary):
    """A refund the mapping maps to "ignore", or, with ``defaults.status = "ignore"``,
    any word it does not map (GitHub's ping has none): no summary or key is required."""
    source = make_source(
        "generic",
        mapping={
            "summary": "Order {name}",
            "status": "state",
            "status_map": {"voided": "firing", "refunded": "ignore"},
            "dedup_key": "id",
            "defaults": {"status": "ignore"},
        },
    )
    (event,) = generic.decode(encode(body), source).events
    assert (event.ignored, event.summary) == (True, summary)


def test_without_a_status_path_every_event_fires():
    source = make_source("generic", mapping={"summary": "title"})
    (event,) = generic.decode(encode({"title": "x"}), source).events
    assert event.status == "firing"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.b", 1),
        ("a.list.1.name", "second"),
        ("a.list.9.name", None),
        ("a.b.c", None),
        ("a.list.x", None),
        ("missing", None),
    ],
)
def test_lookup_follows_objects_and_list_indices(path, expected):
    data = {"a": {"b": 1, "list": [{"name": "first"}, {"name": "second"}]}}
    assert lookup(data, path) == expected
