from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from source_factory import encode, make_source

from hub.decoders import decode
from hub.decoders.common import alert_summary, normalize_severity, parse_time
from hub.errors import InvalidPayload


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("critical", "critical"),
        ("CRIT", "critical"),
        ("fatal", "critical"),
        ("page", "critical"),
        ("P1", "critical"),
        ("high", "critical"),
        ("error", "error"),
        ("major", "error"),
        (" Warning ", "warning"),
        ("minor", "warning"),
        ("info", "info"),
        ("low", "info"),
        ("whatever", "warning"),
        ("", "warning"),
        (None, "warning"),
        (3, "warning"),
    ],
)
def test_severity_words_are_normalized_to_four_and_unknown_ones_are_warnings(word, expected):
    assert normalize_severity(word) == expected


def test_an_unknown_severity_word_takes_the_given_default():
    assert normalize_severity("whatever", "info") == "info"


@pytest.mark.parametrize(
    ("annotations", "labels", "expected"),
    [
        ({"summary": "s", "description": "d"}, {"alertname": "A"}, "s"),
        ({"description": "d", "message": "m"}, {"alertname": "A"}, "d"),
        ({"message": "m"}, {"alertname": "A"}, "m"),
        ({"summary": ""}, {"alertname": "A"}, "A"),
        ({}, {"job": "api", "env": "prod"}, '{env="prod", job="api"}'),
    ],
)
def test_the_summary_comes_from_annotations_then_alertname_then_labels(
    annotations, labels, expected
):
    assert alert_summary(labels, annotations) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-28T12:00:00Z", datetime(2026, 11, 28, 12, tzinfo=UTC)),
        ("2026-11-28T12:00:00", datetime(2026, 11, 28, 12, tzinfo=UTC)),
        (
            "2015-07-17T08:42:58.315+0000",
            datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC),
        ),
        (
            "2021-12-31T19:00:00-05:00",
            datetime(2021, 12, 31, 19, tzinfo=timezone(timedelta(hours=-5))),
        ),
        (1689000000, datetime(2023, 7, 10, 14, 40, tzinfo=UTC)),
        (1689000000.5, datetime(2023, 7, 10, 14, 40, 0, 500000, tzinfo=UTC)),
        ("1689000000", datetime(2023, 7, 10, 14, 40, tzinfo=UTC)),
        (1689000000123, datetime(2023, 7, 10, 14, 40, 0, 123000, tzinfo=UTC)),
    ],
)
def test_times_are_iso_8601_or_epoch_seconds_or_milliseconds(value, expected):
    assert parse_time(value, "$.at") == expected


@pytest.mark.parametrize("value", ["yesterday", "", True, None, {"t": 1}, 1e300])
def test_anything_else_is_not_a_time(value):
    with pytest.raises(InvalidPayload) as caught:
        parse_time(value, "$.at")
    assert caught.value.field == "$.at"


def _sent(format: str) -> tuple[dict[str, Any], Callable[[dict[str, str]], Any]]:
    """A source's keys, and the body of one alert on host db1 with ``extra`` labels."""
    if format == "generic":
        mapping = {"summary": "text", "labels": {"host": "host", "env": "env"}}
        return {"mapping": mapping}, lambda extra: {"text": "s", "host": "db1", **extra}
    if format == "prometheus":
        return {}, lambda extra: [{"labels": {"host": "db1", **extra}}]
    if format == "alertmanager":
        return {}, lambda extra: {
            "version": "4",
            "alerts": [{"status": "firing", "labels": {"host": "db1", **extra}}],
        }
    return {}, lambda extra: {
        "status": "firing",
        "summary": "s",
        "labels": {"host": "db1", **extra},
    }


@pytest.mark.parametrize("format", ["native", "generic", "prometheus", "alertmanager"])
@pytest.mark.parametrize("source_labels", [{}, {"env": "prod", "zone": ""}])
def test_an_empty_label_value_is_no_label_in_every_format(format, source_labels):
    """As in Prometheus, ``{env=""}`` is ``{}``: the same alert with and without it has
    one identity, and a source's ``env`` stands in for the empty one."""
    keys, body = _sent(format)
    source = make_source(format, labels=source_labels, **keys)
    now = datetime.now(UTC)
    with_empty, without = (
        decode(encode(body(extra)), source, now).events[0] for extra in ({"env": ""}, {})
    )
    expected = {"host": "db1", **({"env": "prod"} if source_labels else {})}
    assert with_empty.labels == without.labels == expected
    assert with_empty.fingerprint == without.fingerprint
