"""Whatever arrives, a decoder answers with MalformedBody or InvalidPayload, never
with another exception (which would be a 500)."""

from datetime import UTC, datetime
from functools import partial

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.decoders import DECODERS, prometheus
from hub.errors import InvalidPayload, MalformedBody
from tests.source_factory import make_source

MAPPING = {
    "summary": "Order {id} is {status}",
    "status": "status",
    "severity": "level",
    "dedup_key": "id",
    "occurred_at": "timestamp",
    "labels": {"first": "items.0.name"},
    "status_map": {"failed": "firing"},
}
DECODER_SOURCES = [
    (name, decode, make_source(name, mapping=MAPPING) if name == "generic" else make_source(name))
    for name, decode in DECODERS.items()
]
DECODER_SOURCES.append(
    (
        "generic-events",
        DECODERS["generic"],
        make_source("generic", mapping={**MAPPING, "events": "alerts"}),
    )
)
DECODER_SOURCES.append(
    (
        "prometheus-fixed-clock",
        partial(prometheus.decode, now=datetime(2026, 1, 1, tzinfo=UTC)),
        make_source("prometheus"),
    )
)
IDS = [name for name, _, _ in DECODER_SOURCES]

KEYS = st.sampled_from(
    [
        "alerts", "version", "labels", "annotations", "status", "startsAt", "endsAt",
        "fingerprint", "generatorURL", "routing_key", "event_action", "dedup_key", "payload",
        "summary", "source", "severity", "timestamp", "custom_details", "id", "level", "items",
        "name", "occurred_at", "alertname",
    ]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["4", "firing", "resolved", "trigger", "resolve", "critical", "failed"])
    | st.sampled_from(["2026-11-28T12:00:00Z", "0001-01-01T00:00:00Z", "1689000000"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=6), inner, max_size=6)
    ),
    max_leaves=30,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=8)
# Bodies that get past the envelope, so the per-item code is exercised too.
ENVELOPES = (
    st.fixed_dictionaries({"version": st.just("4"), "alerts": st.lists(OBJECTS, max_size=3)})
    | st.lists(OBJECTS, max_size=3)
    | st.fixed_dictionaries(
        {
            "routing_key": st.just("k"),
            "event_action": st.sampled_from(["trigger", "acknowledge", "resolve"]),
            "payload": OBJECTS,
        }
    )
)


def decodes_or_refuses(decode, source, body: bytes) -> None:
    try:
        decoded = decode(body, source)
    except (MalformedBody, InvalidPayload):
        return
    empty = msgspec.json.decode(body) == []  # Prometheus' empty batch, answered 200
    assert decoded.events or empty, "a decoder that accepts a body returns at least one event"


@pytest.mark.parametrize(("name", "decode", "source"), DECODER_SOURCES, ids=IDS)
@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes_are_decoded_or_refused_with_a_4xx(name, decode, source, body):
    decodes_or_refuses(decode, source, body)


@pytest.mark.parametrize(("name", "decode", "source"), DECODER_SOURCES, ids=IDS)
@settings(max_examples=120, deadline=None)
@given(value=JSON | ENVELOPES)
def test_arbitrary_json_is_decoded_or_refused_with_a_4xx(name, decode, source, value):
    decodes_or_refuses(decode, source, msgspec.json.encode(value))
