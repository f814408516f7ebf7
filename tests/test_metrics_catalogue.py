"""docs/metrics.md cannot fall behind /metrics: every hub_* family the real app exposes is
documented with its type and labels, and every documented one is exposed. Scrape-time
gauges read the store through indexes, never by scanning a table."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import NamedTuple

from conftest import BASE_CONFIG, mail_url, render_config
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from hub import config as config_module
from hub.app import Runtime

DOCS = Path(__file__).parent.parent / "docs" / "metrics.md"
_DOC_ROW = re.compile(r"^\| `(hub_[a-z0-9_]+)` \| (\w+) \|([^|]*)\|", re.MULTILINE)


class Family(NamedTuple):
    """A metric family as PromQL users name it (counters with ``_total``)."""

    type: str
    labels: frozenset[str] | None  # None when no series exists yet to read them from


def exposed_families(exposition: str) -> dict[str, Family]:
    """The hub_* families of an exposition, keyed by the name used in PromQL."""
    families = {}
    for family in text_string_to_metric_families(exposition):
        if not family.name.startswith("hub_"):
            continue
        name = f"{family.name}_total" if family.type == "counter" else family.name
        labels = {label for sample in family.samples for label in sample.labels} - {"le"}
        families[name] = Family(family.type, frozenset(labels) if family.samples else None)
    return families


def queryable_names(families: dict[str, Family]) -> set[str]:
    """The series names a PromQL query can select: histograms only by their parts."""
    names = set()
    for name, family in families.items():
        if family.type == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        else:
            names.add(name)
    return names


def scrape_hub(hub) -> dict[str, Family]:
    with hub.client() as http:
        answer = http.get("/metrics")
    answer.raise_for_status()
    return exposed_families(answer.text)


def label_values(exposition: str, sample: str, *labels: str) -> dict[tuple[str, ...], float]:
    """Every series of one sample name, keyed by the values of ``labels``."""
    return {
        tuple(found.labels[label] for label in labels): found.value
        for family in text_string_to_metric_families(exposition)
        for found in family.samples
        if found.name == sample
    }


def documented_families() -> dict[str, Family]:
    return {
        name: Family(kind, frozenset(re.findall(r"`(\w+)`", labels)))
        for name, kind, labels in _DOC_ROW.findall(DOCS.read_text())
    }


def test_every_exposed_metric_is_documented_and_every_documented_one_is_exposed(hub_factory, smtp):
    _, smtp_port = smtp
    exposed = scrape_hub(hub_factory(mail_url=mail_url(smtp_port)))
    documented = documented_families()
    assert sorted(exposed.keys() - documented.keys()) == [], "exposed but not in docs/metrics.md"
    assert sorted(documented.keys() - exposed.keys()) == [], "in docs/metrics.md, not exposed"
    for name, family in exposed.items():
        assert family.type == documented[name].type, name
        if family.labels is not None:
            assert family.labels == documented[name].labels, name


def test_the_standard_process_metrics_are_exposed_beside_hubs_own(hub_factory, smtp):
    """hub has a registry of its own: the client library's default collectors are not
    on it unless added, and dashboards for any process expect them."""
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    with hub.client() as http:
        families = {f.name for f in text_string_to_metric_families(http.get("/metrics").text)}
    process = {"process_cpu_seconds", "process_resident_memory_bytes", "process_start_time_seconds"}
    assert {*process, "python_info"} <= families


def test_the_content_type_is_one_a_strict_scraper_can_parse(hub_factory, smtp):
    """Prometheus 3 refuses a scrape whose Content-Type it cannot parse, and its parser
    (Go's) refuses a parameter given twice: /metrics said ``text/plain; version=1.0.0;
    charset=utf-8; charset=utf-8``."""
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    with hub.client() as http:
        content_type = http.get("/metrics").headers["content-type"]
    media_type, *parameters = (part.strip() for part in content_type.split(";"))
    names = [parameter.partition("=")[0].lower() for parameter in parameters]
    assert media_type == "text/plain"
    assert sorted(names) == ["charset", "version"], content_type
    assert content_type == CONTENT_TYPE_LATEST


def test_every_known_label_combination_exists_at_zero_from_start(hub_factory, smtp):
    _, smtp_port = smtp
    exposed = scrape_hub(hub_factory(mail_url=mail_url(smtp_port)))
    unlabelled_until_configured = {
        "hub_heartbeat_last_ping_timestamp_seconds",
        "hub_heartbeat_overdue",
        "hub_heartbeat_paused",
        "hub_notification_template_errors_total",  # receivers with templates of their own
    }
    empty = {name for name, family in exposed.items() if family.labels is None}
    assert empty == unlabelled_until_configured


def test_only_series_that_can_happen_are_created(hub_factory, smtp):
    """A delivery to an unknown source is counted as source _unknown, outcome
    unknown_source, and nothing else is known of it; a configured source is never
    unknown. Series that can never move would only mislead a dashboard."""
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    with hub.client() as http:
        assert http.post("/webhooks/nosuch", json={}).status_code == 404
        metrics = http.get("/metrics").text
    webhooks = label_values(metrics, "hub_webhooks_received_total", "source", "outcome")
    unknown = {key: n for key, n in webhooks.items() if {"_unknown", "unknown_source"} & set(key)}
    assert unknown == {("_unknown", "unknown_source"): 1.0}
    assert ("shop", "accepted") in webhooks
    events = label_values(metrics, "hub_events_total", "source", "outcome")
    assert set(events) == {("shop", outcome) for outcome in (*EVERY_FORMATS_EVENTS, "ignored")} | {
        ("expiry", "changed")
    }, (
        "native batches are all-or-nothing and never acknowledge, only a resolve without"
        " a summary of no alert is ignored; expiry only resolves"
    )
    timed = label_values(metrics, "hub_ingest_duration_seconds_count", "source")
    assert set(timed) == {("shop",)}
    auth = label_values(metrics, "hub_auth_failures_total", "source")
    assert set(auth) == {("shop",)}


EVERY_FORMATS_EVENTS = ("new", "duplicate", "changed", "updated", "stale")
EVERY_SOURCES_OUTCOMES = (
    "accepted",
    "repeated",
    "malformed",
    "invalid",
    "key_reused",
    "too_large",
    "unsupported_media",
    "unavailable",
)
FORMATS = """
[[sources]]
name = "prom"
format = "prometheus"
auth = {{ type = "none" }}

[[sources]]
name = "pd"
format = "pagerduty"
auth = {{ type = "none" }}

[[sources]]
name = "am"
format = "alertmanager"
auth = {{ type = "bearer", tokens = ["am-token"] }}
rate_limit = 10

[[sources]]
name = "forms"
format = "generic"
auth = {{ type = "none" }}
[sources.mapping]
summary = "title"

[[sources]]
name = "tickets"
format = "generic"
auth = {{ type = "none" }}
[sources.mapping]
summary = "title"
status = "state"
"""


def test_each_source_has_the_series_its_format_auth_and_limits_can_move(hub_factory, smtp):
    """A batch format can refuse items, PagerDuty and a generic mapping that reads a
    status can acknowledge (or ignore an acknowledgement of nothing); a source without
    auth is never unauthorized, one without a rate limit never rate limited, and only
    one that is not ``prometheus`` can be posted to the Alertmanager API path it
    does not have."""
    hub = hub_factory(BASE_CONFIG + FORMATS, mail_url=mail_url(smtp[1]))
    with hub.client() as http:
        metrics = http.get("/metrics").text
    events = label_values(metrics, "hub_events_total", "source", "outcome")
    webhooks = label_values(metrics, "hub_webhooks_received_total", "source", "outcome")

    def of(series: dict, source: str) -> set[str]:
        return {outcome for (name, outcome) in series if name == source}

    acknowledging = {"acknowledged", "ignored"}
    assert of(events, "pd") == {*EVERY_FORMATS_EVENTS, *acknowledging}
    assert of(events, "am") == {*EVERY_FORMATS_EVENTS, "rejected"}
    assert of(events, "forms") == {*EVERY_FORMATS_EVENTS, "rejected"}
    assert of(events, "tickets") == {*EVERY_FORMATS_EVENTS, "rejected", *acknowledging}
    assert of(events, "prom") == {*EVERY_FORMATS_EVENTS, "rejected"}
    assert of(webhooks, "prom") == set(EVERY_SOURCES_OUTCOMES)
    assert of(webhooks, "pd") == {*EVERY_SOURCES_OUTCOMES, "unknown_endpoint"}
    assert of(webhooks, "am") == {
        *EVERY_SOURCES_OUTCOMES,
        "unauthorized",
        "rate_limited",
        "unknown_endpoint",
    }
    assert of(webhooks, "shop") == {*EVERY_SOURCES_OUTCOMES, "unauthorized", "unknown_endpoint"}


def test_an_on_call_persons_notification_series_exist_at_zero_from_start(hub_factory, smtp):
    """Escalation pages a person as receiver ``schedule:NAME/PERSON``: a dead page must be
    an increase of its series, so the series exists before the first page."""
    schedule = (
        '[[schedules]]\nname = "primary"\n'
        'people = [{{ name = "al", urls = ["json://127.0.0.1:9/al"] }}]\n'
        'rotations = [{{ participants = ["al"], start = 2026-01-05 }}]\n'
    )
    hub = hub_factory(BASE_CONFIG + schedule, mail_url=mail_url(smtp[1]))
    with hub.client() as http:
        metrics = http.get("/metrics").text
    for outcome in ("sent", "failed", "dead"):
        series = f'integration="json",outcome="{outcome}",receiver="schedule:primary/al"'
        assert f"hub_notifications_total{{{series}}} 0.0" in metrics
    for latency in ("delivery_seconds", "event_latency_seconds"):
        series = f'hub_notification_{latency}_count{{receiver="schedule:primary/al"}} 0.0'
        assert series in metrics, "the first page's latency is an increase too"


def test_scrape_time_gauges_read_the_store_through_indexes(tmp_path):
    path = tmp_path / "alerts.toml"
    path.write_text(
        render_config(
            BASE_CONFIG,
            port=8080,
            db=(tmp_path / "hub.db").as_posix(),
            max_attempts=1,
            mail_url=mail_url(1),
            group_wait="0s",
            group_interval="1s",
            repeat_interval="1h",
        )
    )
    runtime = Runtime(config_module.load(path))
    runtime.store.open()
    try:
        statements = _statements_run_by_a_scrape(runtime)
        plans = [runtime.store.query(f"EXPLAIN QUERY PLAN {sql}") for sql in statements]
    finally:
        runtime.store.close()
    assert statements, "the scrape read nothing from the store"
    for sql, plan in zip(statements, plans, strict=True):
        scans = [row["detail"] for row in plan if row["detail"].startswith("SCAN")]
        assert scans == [], f"{sql} scans: {scans}"


def _statements_run_by_a_scrape(runtime: Runtime) -> list[str]:
    statements: list[str] = []
    reader: sqlite3.Connection = runtime.store._reader  # type: ignore[assignment]
    reader.set_trace_callback(statements.append)
    try:
        list(runtime.metrics.registry.collect())
    finally:
        reader.set_trace_callback(None)
    return [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
