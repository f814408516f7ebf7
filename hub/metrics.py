"""Prometheus metrics on an app-owned registry (several apps in one process never clash).

Label sets are bounded and every known combination is created at start, so series
exist at 0 before the first event: dashboards and ``rate()`` work from the first scrape.
Counts of stored things (active alerts, outbox depth) are read from the store's
indexes at scrape time instead of being tracked twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.events import SEVERITIES

WEBHOOK_OUTCOMES = (
    "accepted",
    "unknown_source",
    "repeated",
    "unauthorized",
    "malformed",
    "invalid",
    "too_large",
    "unsupported_media",
    "rate_limited",
    "unavailable",
)
EVENT_OUTCOMES = ("new", "duplicate", "changed", "updated", "acknowledged", "stale")
NOTIFICATION_OUTCOMES = ("sent", "failed", "dead")
OUTBOX_STATES = ("pending", "sending", "dead")
RELOAD_OUTCOMES = ("success", "failure")
UNKNOWN_SOURCE = "_unknown"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """Every metric hub exposes, created once per app."""

    def __init__(self, sources: Iterable[str], receivers: Iterable[str], version: str) -> None:
        disable_created_metrics()  # *_created series only add noise to dashboards
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.webhooks = Counter(
            "hub_webhooks_received",
            "Webhook deliveries by source and outcome.",
            ["source", "outcome"],
            registry=r,
        )
        self.events = Counter(
            "hub_events",
            "Decoded events by source and what they did to their alert.",
            ["source", "outcome"],
            registry=r,
        )
        self.ingest_seconds = Histogram(
            "hub_ingest_duration_seconds",
            "Time from request received to committed answer.",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.auth_failures = Counter(
            "hub_auth_failures",
            "Rejected sender authentications by source and reason.",
            ["source", "reason"],
            registry=r,
        )
        self.notifications = Counter(
            "hub_notifications",
            "Notification attempts by receiver and outcome.",
            ["receiver", "outcome"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "hub_notification_delivery_seconds",
            "Time from the event being received to the notification being accepted.",
            ["receiver"],
            buckets=_DELIVERY_BUCKETS,
            registry=r,
        )
        self.store_batch = Histogram(
            "hub_store_batch_size",
            "Writes committed together in one transaction.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.store_commit_seconds = Histogram(
            "hub_store_commit_duration_seconds",
            "Duration of one group commit.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.config_reloads = Counter(
            "hub_config_reloads",
            "Config reloads (POST /-/reload, SIGHUP) by outcome.",
            ["outcome"],
            registry=r,
        )
        Info("hub_build", "hub version.", registry=r).info({"version": version})
        self._precreate(list(sources), list(receivers))

    def _precreate(self, sources: list[str], receivers: list[str]) -> None:
        for source in [*sources, UNKNOWN_SOURCE]:
            for outcome in WEBHOOK_OUTCOMES:
                self.webhooks.labels(source, outcome)
            for outcome in EVENT_OUTCOMES:
                self.events.labels(source, outcome)
            self.ingest_seconds.labels(source)
        for receiver in receivers:
            for outcome in NOTIFICATION_OUTCOMES:
                self.notifications.labels(receiver, outcome)
            self.delivery_seconds.labels(receiver)
        for outcome in RELOAD_OUTCOMES:
            self.config_reloads.labels(outcome)

    def observe_commit(self, batch_size: int, seconds: float) -> None:
        self.store_batch.observe(batch_size)
        self.store_commit_seconds.observe(seconds)

    def watch_store(
        self,
        active_alerts: Callable[[], dict[str, int]],
        outbox: Callable[[], dict[str, int]],
    ) -> None:
        """Expose store-derived gauges, computed from indexes at scrape time."""
        self.registry.register(_StoreCollector(active_alerts, outbox))


class _StoreCollector(Collector):
    def __init__(
        self,
        active_alerts: Callable[[], dict[str, int]],
        outbox: Callable[[], dict[str, int]],
    ) -> None:
        self.active_alerts = active_alerts
        self.outbox = outbox

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield _gauge(
            "hub_alerts_active",
            "Firing alerts by severity.",
            "severity",
            SEVERITIES,
            self.active_alerts(),
        )
        yield _gauge(
            "hub_outbox_notifications",
            "Notifications in the outbox by state.",
            "state",
            OUTBOX_STATES,
            self.outbox(),
        )


def _gauge(
    name: str, help_text: str, label: str, values: Iterable[str], counts: dict[str, int]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=[label])
    for value in values:
        family.add_metric([value], counts.get(value, 0))
    return family
