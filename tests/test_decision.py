"""The routing decision: outcome, routes, receivers and mutes of events, decided
without writing anything, by the functions ingest and the dispatcher use."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub import config
from hub.decision import decide
from hub.events import Event
from hub.rules import Rules
from hub.silences import Silence, from_config

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()  # a Saturday

CONFIG = """
[[receivers]]
name = "ops"
urls = ["json://localhost/ops"]

[[receivers]]
name = "pager"
urls = ["json://localhost/pager"]
send_resolved = false

[[escalations]]
name = "night"
steps = [{ notify = ["pager"] }]

[[time_intervals]]
name = "weekend"
time_intervals = [{ weekdays = ["saturday", "sunday"] }]

[[inhibit_rules]]
source_matchers = ['alertname="DatacenterDown"']
target_matchers = ['severity="warning"']
equal = ["dc"]

[[maintenance]]
name = "dc2-move"
matchers = ['dc="dc2"']
starts_at = "2026-11-28T00:00:00Z"
ends_at = "2026-11-29T00:00:00Z"

[route]
receiver = "ops"
group_by = ["service"]
group_wait = "10s"

[[route.routes]]
matchers = ['service="checkout"']
receiver = "pager"
escalation = "night"
continue = true

[[route.routes]]
matchers = ['env="prod"']
receiver = "ops"
group_by = ["..."]

[[route.routes]]
matchers = ['service="batch"']
receiver = "ops"
mute_time_intervals = ["weekend"]

[[route.routes]]
matchers = ['service="jobs"']
receiver = "pager"
mute_time_intervals = ["weekend"]
continue = true

[[route.routes]]
matchers = ['service="jobs"']
receiver = "ops"

[[route.routes]]
matchers = ['service="cron"']
receiver = "pager"
mute_time_intervals = ["weekend"]
continue = true

[[route.routes]]
matchers = ['service="cron"']
receiver = "ops"
mute_time_intervals = ["weekend"]
"""

RULES = Rules.from_config(config.parse(CONFIG, {}))
SILENCE = Silence(
    id="s-1",
    matchers=['service="search"'],
    starts_at=None,
    ends_at=None,
    created_by="alice",
    created_at=datetime(2026, 11, 1, tzinfo=UTC),
)


def event(fingerprint: str = "fp", status: str = "firing", **labels: str) -> Event:
    return Event(fingerprint=fingerprint, status=status, summary="s", labels=labels)  # type: ignore[arg-type]


def stored(status: str, last_change: float = NOW - 60, changes: tuple[float, ...] = ()) -> dict:
    return {
        "fingerprint": "fp",
        "source": "shop",
        "status": status,
        "severity": "warning",
        "summary": "s",
        "labels": {},
        "annotations": {},
        "last_change": last_change,
        "ends_at": None,
        "changes": list(changes),
    }


def run(*events: Event, alerts: dict | None = None, firing: list | None = None) -> list:
    silences = [SILENCE, *from_config(RULES.config, datetime.fromtimestamp(NOW, UTC))]
    return decide(RULES, silences, firing or [], alerts or {}, list(events), "shop", NOW)


def test_a_batch_repeating_an_alert_reads_new_then_duplicate():
    first, second = run(event(), event())
    assert (first.outcome, first.notification, first.receivers) == ("new", "firing", ["ops"])
    assert (second.outcome, second.notification, second.receivers) == ("duplicate", None, [])


@pytest.mark.parametrize(
    ("alert", "status", "outcome", "notification"),
    [
        (stored("firing"), "resolved", "changed", "resolved"),
        (stored("firing"), "firing", "duplicate", None),
        (stored("resolved", last_change=NOW + 60), "firing", "stale", None),
    ],
)
def test_the_outcome_is_the_state_machines_against_the_stored_alert(
    alert, status, outcome, notification
):
    (decision,) = run(event(status=status), alerts={"fp": alert})
    assert (decision.outcome, decision.notification) == (outcome, notification)


def test_every_matched_route_is_shown_with_group_key_timing_and_escalation():
    (decision,) = run(event(service="checkout", env="prod"))
    first, second = decision.routes
    assert (first.route_id, first.receiver, first.escalation) == ("0.0", "pager", "night")
    assert first.group_key == '{}/{service="checkout"}:{service="checkout"}'
    assert first.group_by == ["service"]
    assert first.timing.group_wait == 10
    assert (second.route_id, second.group_by) == ("0.1", ["..."])
    assert decision.receivers == ["pager", "ops"]


def test_a_resolution_is_told_only_to_receivers_that_want_resolutions():
    resolved = event(status="resolved", service="checkout", env="prod")
    (decision,) = run(resolved, alerts={"fp": stored("firing")})
    assert decision.notification == "resolved"
    assert decision.receivers == ["ops"]


@pytest.mark.parametrize(
    ("labels", "firing", "mutes"),
    [
        ({"service": "search"}, [], [("silence", ["s-1"])]),
        ({"dc": "dc2"}, [], [("maintenance", ["maintenance:dc2-move"])]),
        ({"service": "batch"}, [], [("maintenance", ["mute_time_intervals:weekend"])]),
        (
            {"dc": "dc1"},
            [{"alertname": "DatacenterDown", "dc": "dc1"}],
            [("inhibition", ["inhibit_rules[0]"])],
        ),
        (
            {"service": "search", "dc": "dc2"},
            [],
            [("silence", ["s-1"]), ("maintenance", ["maintenance:dc2-move"])],
        ),
        ({"dc": "dc1"}, [{"alertname": "DatacenterDown", "dc": "dc3"}], []),
    ],
    ids=["silence", "window", "time-interval", "inhibition", "both", "none"],
)
def test_every_mute_in_force_now_is_shown_with_what_holds_the_alert(labels, firing, mutes):
    (decision,) = run(event(**labels), firing=firing)
    assert [(m.reason, m.by) for m in decision.mutes] == mutes
    assert decision.receivers == ([] if mutes else ["ops"])


def test_a_time_interval_holds_back_only_the_receiver_its_route_brings():
    """A later route's receiver is still told, so the alert itself is not muted."""
    (decision,) = run(event(service="jobs"))
    assert decision.mutes == []
    assert [r.receiver for r in decision.routes] == ["pager", "ops"]
    assert decision.receivers == ["ops"]


def test_an_alert_all_of_whose_routes_are_muted_is_muted_by_their_intervals_once():
    (decision,) = run(event(service="cron"))
    assert [(m.reason, m.by) for m in decision.mutes] == [
        ("maintenance", ["mute_time_intervals:weekend"])
    ]
    assert decision.receivers == []


def test_an_alert_that_would_start_flapping_is_muted_as_flapping():
    changes = tuple(NOW - i for i in range(1, 7))
    (decision,) = run(event(status="resolved"), alerts={"fp": stored("firing", changes=changes)})
    assert decision.mutes == [], "a resolution is never muted"
    (decision,) = run(event(), alerts={"fp": stored("resolved", changes=changes)})
    assert [m.reason for m in decision.mutes] == ["flapping"]
