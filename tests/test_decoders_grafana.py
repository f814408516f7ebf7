from datetime import UTC, datetime

import pytest

from hub.decoders import DECODERS, grafana
from hub.errors import InvalidPayload
from tests.source_factory import encode, fixture, make_source

SOURCE = make_source("grafana")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "firing.json",
            [
                ("c6eadffa33fcdf37", "firing", "This alert was triggered for zone us-1"),
                ("bc97ff14869b13e3", "firing", "This alert was triggered for zone eu-1"),
            ],
        ),
        (
            "resolved.json",
            [("c6eadffa33fcdf37", "resolved", "This alert was triggered for zone us-1")],
        ),
    ],
)
def test_it_decodes_grafana_webhook_notifications(name, expected):
    decoded = grafana.decode(fixture("grafana", name), SOURCE)
    assert [(e.fingerprint, e.status, e.summary) for e in decoded.events] == expected


def test_it_is_registered_as_a_format():
    assert DECODERS["grafana"] is grafana.decode


def test_it_keeps_grafanas_links_and_values_as_annotations():
    (event,) = grafana.decode(fixture("grafana", "resolved.json"), SOURCE).events
    assert event.annotations["dashboard_url"] == "https://play.grafana.org/d/a1b2c3d4?orgId=1"
    assert event.annotations["panel_url"].endswith("viewPanel=2")
    assert event.annotations["silence_url"].startswith("https://play.grafana.org/alerting/silence")
    assert event.annotations["values"].startswith("[ var='B'")
    assert event.occurred_at == datetime(2021, 10, 12, 8, 6, 3, 157076, tzinfo=UTC)


def test_it_leaves_out_links_that_grafana_sends_empty():
    first, _ = grafana.decode(fixture("grafana", "firing.json"), SOURCE).events
    assert "dashboard_url" not in first.annotations
    assert first.severity == "warning"


def test_it_refuses_the_legacy_alerting_format_naming_the_missing_list():
    legacy = {"ruleName": "CPU", "state": "alerting", "evalMatches": [], "title": "[Alerting] CPU"}
    with pytest.raises(InvalidPayload) as caught:
        grafana.decode(encode(legacy), SOURCE)
    assert "alerts" in caught.value.detail
