"""Prometheus metrics on an app-owned registry (several apps in one process never clash).

Every stage of the flow counts and times itself through one attribute of ``Metrics``;
docs/metrics.md describes each metric for the people who chart and alert on them.
Label sets are bounded (configured names and the fixed tuples below) and every
combination that can occur is created at start, so series exist at 0 before the first event:
dashboards and ``rate()`` work from the first scrape. Counts of stored things (active
alerts, open incidents, outbox depth) are read from the store's indexes at scrape time
instead of being tracked twice. A scrape is built off the event loop (``Exposition``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import NamedTuple

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub import logs
from hub.auth import REASONS as AUTH_REASONS
from hub.events import SEVERITIES

# What became of a delivery to a configured source (each source has those it can have:
# ``SourceSeries``).
SOURCE_OUTCOMES = (
    "accepted",
    "repeated",
    "unauthorized",
    "malformed",
    "invalid",
    "key_reused",
    "too_large",
    "unsupported_media",
    "rate_limited",
    "unavailable",
    # 404: posted to the Alertmanager API path, which only prometheus sources have.
    "unknown_endpoint",
)
# "rejected": a batch item its decoder refused, while the batch's valid items were applied.
# Each source has those its format can produce (``SourceSeries``).
EVENT_OUTCOMES = (
    "new",
    "duplicate",
    "changed",
    "updated",
    "acknowledged",
    "stale",
    "ignored",
    "rejected",
)
NOTIFICATION_OUTCOMES = ("sent", "failed", "dead")
OUTBOX_STATES = ("pending", "sending", "dead")
INCIDENT_STATES = ("open", "acknowledged")
SUPPRESSION_REASONS = ("silence", "inhibition", "maintenance", "flapping")
ESCALATION_OUTCOMES = (
    "notified",
    "held_muted",
    "skipped_nobody_on_call",
    "skipped_acknowledged",
    "skipped_resolved",
    "told_resolved",
    # Not steps: acknowledgements that lapsed (``hub.snoozes``), each starting a chain over.
    "snooze_ended",
    "ack_timed_out",
)
RELOAD_OUTCOMES = ("success", "failure")
# The background workers (``hub.worker``), by name.
WORKERS = ("outbox", "dispatcher", "escalator", "watchdog", "expirer")
"""The workers whose round handles each item on its own (``hub.worker.Isolation``)."""
# A delivery to a name no source has is counted as this pseudo-source with this outcome,
# and only so: nothing else is known of it (no authentication, body, events or timing).
UNKNOWN_SOURCE = "_unknown"
UNKNOWN_SOURCE_OUTCOME = "unknown_source"
log = logging.getLogger("hub.metrics")

# Label sets kept per hot-path metric: sources x outcomes, with room for reloads.
SERIES_CACHE = 4096

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
# group_wait and group_interval are part of it: Alertmanager's defaults are 30 s and 5 min.
_EVENT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

Counts = Mapping[str, int]
IncidentCounts = Mapping[tuple[str, str], int]


class SourceSeries(NamedTuple):
    """The label values of one source's series: those a delivery to it can produce,
    worked out from its config (``hub.webhooks.source_series``)."""

    refusals: Collection[str]  # hub_auth_failures_total reasons (``hub.auth.refusals``)
    outcomes: Collection[str]  # hub_webhooks_received_total outcomes, of SOURCE_OUTCOMES
    events: Collection[str]  # hub_events_total outcomes, of EVENT_OUTCOMES


def _no_incidents() -> IncidentCounts:
    """Stands in until incidents are stored: the series still exist, at 0."""
    return {}


class Metrics:
    """Every metric hub exposes, created once per app. Label values are the tuples above.

    Ingest (``hub.webhooks``):
      ``webhooks``          hub_webhooks_received_total{source, outcome in the source's
                            SourceSeries.outcomes}, and {UNKNOWN_SOURCE, UNKNOWN_SOURCE_OUTCOME}
      ``auth_failures``     hub_auth_failures_total{source, reason in SourceSeries.refusals}
      ``events``            hub_events_total{source, outcome in SourceSeries.events}; also
                            for ``own_sources`` (``expiry``) through ``count_events``
      ``ingest_seconds``    hub_ingest_duration_seconds{source}
    Notifications (``hub.outbox`` and the dispatcher):
      ``notifications``     hub_notifications_total{receiver, integration, outcome in
                            NOTIFICATION_OUTCOMES}: one per send attempt
      ``attempt_seconds``   hub_notification_attempt_duration_seconds{integration}
      ``delivery_seconds``  hub_notification_delivery_seconds{receiver}
      ``event_latency``     hub_notification_event_latency_seconds{receiver}
      ``template_errors``   hub_notification_template_errors_total{receiver with templates}
      ``suppressed``        hub_notifications_suppressed_total{reason in SUPPRESSION_REASONS}
    Escalation, heartbeats and expiry:
      ``escalation_steps``  hub_escalation_steps_total{outcome in ESCALATION_OUTCOMES}
      ``heartbeat_last_ping``  hub_heartbeat_last_ping_timestamp_seconds{heartbeat}
      ``heartbeat_overdue``    hub_heartbeat_overdue{heartbeat}: 1 while overdue, else 0
                               (0 while paused)
      ``heartbeat_paused``     hub_heartbeat_paused{heartbeat}: 1 while paused, else 0
      ``alerts_ended``      hub_alerts_ended_total: resolved at their end (``hub.expiry``)
      ``worker_failures``   hub_worker_round_failures_total{worker in WORKERS}
      ``worker_items_failed``  hub_worker_item_failures_total{worker in WORKERS}
      ``worker_items_failing`` hub_worker_items_failing{worker in WORKERS}
    Store: ``observe_commit`` feeds hub_store_batch_size and
    hub_store_commit_duration_seconds; ``watch_store`` adds the scrape-time gauges.
    Config: ``config_loaded`` at start, ``count_reload`` at each reload.
    Connections (``hub serve``): ``connections_refused`` hub_connections_refused_total,
    ``watch_connections`` hub_connections_open and hub_connections_max.
    Reads: ``reads_refused`` hub_reads_refused_total (``Store.read_aside``).
    Beside hub's own, the standard process_* and python_info, as from any Prometheus
    client: hub's registry is its own, so they are added to it.
    """

    def __init__(
        self,
        sources: Mapping[str, SourceSeries],
        receivers: Iterable[str],
        version: str,
        *,
        heartbeats: Iterable[str] = (),
        own_sources: Mapping[str, Collection[str]] | None = None,
        templated: Iterable[str] = (),
    ) -> None:
        """``own_sources``: hub's own deliveries (``expiry``), by name, with the event
        outcomes they can have; ``templated``: the receivers with templates of their own."""
        disable_created_metrics()  # *_created series only add noise to dashboards
        self.registry = CollectorRegistry(auto_describe=True)
        self._ingest_metrics()
        self._notification_metrics()
        self._schedule_metrics()
        self._store_metrics()
        Info("hub_build", "hub version.", registry=self.registry).info({"version": version})
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._precreate(sources, list(receivers), list(heartbeats), own_sources or {})
        self.precreate_templated(templated)
        self._not_text: set[str] = set()  # label values ``label`` logged

    def label(self, stored: object) -> str:
        """A value read from a committed row as a label value: as ``logs.text`` shows it,
        so that the series and the log lines name it alike. One that is not text (a
        hand edit, a fault) is logged once: counting a committed outcome must never fail
        on it, or turn that outcome into an error answer or a dead task."""
        if isinstance(stored, str):
            return stored
        shown = logs.text(stored)
        if shown not in self._not_text:
            self._not_text.add(shown)
            log.warning(
                "event=metric_label_not_text label=%s stored_as=%s",
                logs.value(shown),
                type(stored).__name__,
            )
        return shown

    def _ingest_metrics(self) -> None:
        r = self.registry
        self.webhooks = Counter(
            "hub_webhooks_received",
            "Webhook deliveries by source and outcome.",
            ["source", "outcome"],
            registry=r,
        )
        self.auth_failures = Counter(
            "hub_auth_failures",
            "Rejected sender authentications by source and reason.",
            ["source", "reason"],
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
        # The series every delivery touches, looked up once per label set: labels()
        # validates and locks on each call, a real share of a repeated event's cost.
        self.webhook_series = functools.lru_cache(maxsize=SERIES_CACHE)(self.webhooks.labels)
        self.event_series = functools.lru_cache(maxsize=SERIES_CACHE)(self.events.labels)
        self.ingest_series = functools.lru_cache(maxsize=SERIES_CACHE)(self.ingest_seconds.labels)

    def _notification_metrics(self) -> None:
        r = self.registry
        self.notifications = Counter(
            "hub_notifications",
            "Notification send attempts by receiver, integration and outcome.",
            ["receiver", "integration", "outcome"],
            registry=r,
        )
        self.attempt_seconds = Histogram(
            "hub_notification_attempt_duration_seconds",
            "Duration of one send attempt through Apprise, by integration.",
            ["integration"],
            buckets=_DELIVERY_BUCKETS,
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "hub_notification_delivery_seconds",
            "Time from a notification being queued to its channel accepting it.",
            ["receiver"],
            buckets=_DELIVERY_BUCKETS,
            registry=r,
        )
        self.event_latency = Histogram(
            "hub_notification_event_latency_seconds",
            "Time from hub receiving a change to a channel accepting the notification"
            " that reports it (grouping waits and retries included).",
            ["receiver"],
            buckets=_EVENT_BUCKETS,
            registry=r,
        )
        self.template_errors = Counter(
            "hub_notification_template_errors",
            "Messages sent as the default because the receiver's own template failed on"
            " the incident, by receiver.",
            ["receiver"],
            registry=r,
        )
        self.suppressed = Counter(
            "hub_notifications_suppressed",
            "Alerts withheld from a receiver, counted once when they became muted, by reason.",
            ["reason"],
            registry=r,
        )

    def _schedule_metrics(self) -> None:
        r = self.registry
        self.escalation_steps = Counter(
            "hub_escalation_steps",
            "Escalation steps that fell due, by what they did, and acknowledgements that"
            " lapsed (snooze_ended, ack_timed_out).",
            ["outcome"],
            registry=r,
        )
        self.heartbeat_last_ping = Gauge(
            "hub_heartbeat_last_ping_timestamp_seconds",
            "Unix time of each heartbeat's last ping; 0 until its first ping.",
            ["heartbeat"],
            registry=r,
        )
        self.heartbeat_overdue = Gauge(
            "hub_heartbeat_overdue",
            "1 while a heartbeat has missed its deadline, else 0 (paused ones too).",
            ["heartbeat"],
            registry=r,
        )
        self.heartbeat_paused = Gauge(
            "hub_heartbeat_paused",
            "1 while a heartbeat is paused (not watched, so never overdue), else 0.",
            ["heartbeat"],
            registry=r,
        )
        self.alerts_ended = Counter(
            "hub_alerts_ended",
            "Firing alerts resolved because their end (endsAt) passed without a re-send.",
            registry=r,
        )
        self.worker_failures = Counter(
            "hub_worker_round_failures",
            "Background worker rounds that raised (logged as worker_round_failed), by worker.",
            ["worker"],
            registry=r,
        )
        self.worker_items_failed = Counter(
            "hub_worker_item_failures",
            "Items a worker's round set aside because handling them raised (logged as"
            " worker_item_failed), by worker.",
            ["worker"],
            registry=r,
        )
        self.worker_items_failing = Gauge(
            "hub_worker_items_failing",
            "Items a worker set aside whose last try raised, waiting for their retry, by"
            " worker (kept in memory: 0 after a restart until each is tried again).",
            ["worker"],
            registry=r,
        )

    def _store_metrics(self) -> None:
        r = self.registry
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
        self.config_reload_successful = Gauge(
            "hub_config_last_reload_successful",
            "1 if the last config load (the start, or the last reload) succeeded, else 0.",
            registry=r,
        )
        self.config_reload_success_time = Gauge(
            "hub_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful config load (the start, or a reload).",
            registry=r,
        )
        self.connections_refused = Counter(
            "hub_connections_refused",
            "Connections answered 503 at [server] max_connections, none being idle.",
            registry=r,
        )
        self.connections_open = Gauge(
            "hub_connections_open", "Client connections open, at scrape.", registry=r
        )
        self.connections_max = Gauge(
            "hub_connections_max", "[server] max_connections in force.", registry=r
        )
        self.reads_refused = Counter(
            "hub_reads_refused",
            "Reads over every firing alert answered 503 at [server] read_concurrency.",
            registry=r,
        )

    def watch_connections(self, open_now: Callable[[], int], limit: int) -> None:
        """Read the open connections from the server's count at scrape, and expose its
        cap beside them, so that a panel or a rule can tell how close hub is to it
        (both 0 without a server)."""
        self.connections_open.set_function(open_now)
        self.connections_max.set(limit)

    def precreate_sources(self, sources: Mapping[str, SourceSeries]) -> None:
        """Create the series these sources can have at 0, at start and for reloaded ones,
        and remove those they cannot: a reload that changed a source's auth, format or
        rate limit removes the series the new config cannot move; those both have keep
        their counts."""
        for source, series in sources.items():
            _only(self.webhooks, source, SOURCE_OUTCOMES, series.outcomes)
            _only(self.events, source, EVENT_OUTCOMES, series.events)
            _only(self.auth_failures, source, AUTH_REASONS, series.refusals)
            self.ingest_seconds.labels(source)
        self._clear_series_caches()

    def _precreate(
        self,
        sources: Mapping[str, Collection[str]],
        receivers: list[str],
        heartbeats: list[str],
        own: Mapping[str, Collection[str]],
    ) -> None:
        self.precreate_sources(sources)
        self.webhooks.labels(UNKNOWN_SOURCE, UNKNOWN_SOURCE_OUTCOME)
        for source, outcomes in own.items():  # hub's own deliveries have events, no webhooks
            _only(self.events, source, EVENT_OUTCOMES, outcomes)
        self.precreate_receivers(receivers)
        for reason in SUPPRESSION_REASONS:
            self.suppressed.labels(reason)
        for outcome in ESCALATION_OUTCOMES:
            self.escalation_steps.labels(outcome)
        for heartbeat in heartbeats:
            self.heartbeat_last_ping.labels(heartbeat)
            self.heartbeat_overdue.labels(heartbeat)
            self.heartbeat_paused.labels(heartbeat)
        for outcome in RELOAD_OUTCOMES:
            self.config_reloads.labels(outcome)
        for worker in WORKERS:
            self.worker_failures.labels(worker)
            self.worker_items_failed.labels(worker)
            self.worker_items_failing.labels(worker)

    def precreate_receivers(self, receivers: Iterable[str]) -> None:
        """Create the latency series of these receivers at 0 (at start, and for reloaded
        ones)."""
        for receiver in receivers:
            self.delivery_seconds.labels(receiver)
            self.event_latency.labels(receiver)

    def precreate_templated(self, receivers: Iterable[str]) -> None:
        """Create the template error series of these receivers, those with a title or
        body of their own, at 0 (at start, and for reloaded ones)."""
        for receiver in receivers:
            self.template_errors.labels(receiver)

    def forget_templated(self, receivers: Iterable[str]) -> None:
        """Remove the template error series of the receivers a reload removed or left
        without templates of their own: nothing can move them."""
        for receiver in receivers:
            _remove(self.template_errors, receiver)

    def precreate_channels(self, channels: Iterable[tuple[str, str]]) -> None:
        """Create the notification series of each (receiver, integration) at 0, at start
        and for the channels a reload adds: a series born at 1 hides its first dead
        letter from ``increase()``, and so from the HubDeadLetters rule.

        The caller knows how a receiver's URLs map to integrations (``outbox.send_targets``).
        """
        for receiver, integration in channels:
            for outcome in NOTIFICATION_OUTCOMES:
                self.notifications.labels(receiver, integration, outcome)
            self.attempt_seconds.labels(integration)

    def forget_sources(self, sources: Iterable[str]) -> None:
        """Remove every series of these sources, which a reload removed: left in place
        they would be exposed, frozen, until a restart."""
        for source in sources:
            for outcome in SOURCE_OUTCOMES:
                _remove(self.webhooks, source, outcome)
            for outcome in EVENT_OUTCOMES:
                _remove(self.events, source, outcome)
            _remove(self.ingest_seconds, source)
            for reason in AUTH_REASONS:
                _remove(self.auth_failures, source, reason)
        self._clear_series_caches()

    def _clear_series_caches(self) -> None:
        """The caches may hold removed children: a series added back by a later reload
        must count into the child its precreation puts in the registry."""
        for cached in (self.webhook_series, self.event_series, self.ingest_series):
            cached.cache_clear()

    def forget_channels(self, channels: Iterable[tuple[str, str]]) -> None:
        """Remove the notification series of the (receiver, integration) channels a
        reload removed: a removed receiver's or on-call person's, and a kept receiver's
        integration none of its URLs uses any more."""
        for receiver, integration in channels:
            for outcome in NOTIFICATION_OUTCOMES:
                _remove(self.notifications, receiver, integration, outcome)

    def forget_receivers(self, receivers: Iterable[str]) -> None:
        """Remove the latency series of the receivers (and on-call people) a reload
        removed. ``hub_notification_attempt_duration_seconds`` is by integration only:
        ``forget_integrations`` removes it."""
        for receiver in receivers:
            _remove(self.delivery_seconds, receiver)
            _remove(self.event_latency, receiver)

    def forget_integrations(self, integrations: Iterable[str]) -> None:
        """Remove the attempt durations of the integrations no receiver or on-call
        person uses any more after a reload."""
        for integration in integrations:
            _remove(self.attempt_seconds, integration)

    def forget_heartbeat(self, name: str) -> None:
        """A removed heartbeat's series go with it."""
        _remove(self.heartbeat_last_ping, name)
        _remove(self.heartbeat_overdue, name)
        _remove(self.heartbeat_paused, name)

    def count_events(self, source: str, outcomes: Sequence[str]) -> None:
        """Count a delivery's events by outcome, one increment per kind however many
        events (a batch holds a few kinds)."""
        for outcome in set(outcomes):
            self.event_series(source, outcome).inc(outcomes.count(outcome))

    def config_loaded(self, now: float) -> None:
        """The config in force was loaded at ``now``: at start, or by a reload."""
        self.config_reload_successful.set(1)
        self.config_reload_success_time.set(now)

    def count_reload(self, outcome: str, now: float) -> None:
        """One reload, by outcome; a refused one leaves the last success's time, as
        Alertmanager's gauges do, so an alert can tell how long the file has been bad."""
        self.config_reloads.labels(outcome).inc()
        if outcome == "success":
            self.config_loaded(now)
        else:
            self.config_reload_successful.set(0)

    def render(self) -> bytes:
        """The text exposition of every series. prometheus-client locks each metric
        while reading it, so this runs in a thread while the loop counts."""
        return generate_latest(self.registry)

    def observe_commit(self, batch_size: int, seconds: float) -> None:
        self.store_batch.observe(batch_size)
        self.store_commit_seconds.observe(seconds)

    def watch_store(
        self,
        active_alerts: Callable[[], Counts],
        outbox: Callable[[], Counts],
        incidents: Callable[[], IncidentCounts] = _no_incidents,
    ) -> None:
        """Expose store-derived gauges, computed from indexes at scrape time.

        ``active_alerts`` maps severity, ``outbox`` maps state and ``incidents`` maps
        (severity, state) to a count; missing keys are exposed as 0.
        """
        self.registry.register(_StoreCollector(active_alerts, outbox, incidents))


class Exposition:
    """``GET /metrics``' answers, built by ``build`` (``Metrics.render`` in the store's
    scrape thread) one at a time, each shared by every scrape waiting for it.

    With thousands of series a build takes a third of a second or more: on the event
    loop it held up every webhook and probe meanwhile. In a thread it still shares the
    interpreter with the loop, so a flood of scrapes must not cost a build each. A
    scrape arriving while a build runs waits for the next one, begun once that build
    ends and shared by every scrape arriving until then: each answer shows the state at
    or after its request, and any number of scrapes cost the build running and the one
    after it. Only the loop touches ``_running`` and ``_next``: no lock is needed.
    """

    def __init__(self, build: Callable[[], Awaitable[bytes]]) -> None:
        self._build = build
        self._running: asyncio.Task[bytes] | None = None
        self._next: asyncio.Task[bytes] | None = None  # not begun: a scrape may join it

    async def latest(self) -> bytes:
        if self._next is None:
            self._next = asyncio.create_task(self._after(self._running))
        # Shielded: a scrape whose client went away leaves the build to those sharing it.
        return await asyncio.shield(self._next)

    async def _after(self, previous: asyncio.Task[bytes] | None) -> bytes:
        if previous is not None:
            await asyncio.wait([previous])  # its outcome is its own scrapes'
        self._running, self._next = self._next, None
        return await self._build()


class _StoreCollector(Collector):
    def __init__(
        self,
        active_alerts: Callable[[], Counts],
        outbox: Callable[[], Counts],
        incidents: Callable[[], IncidentCounts],
    ) -> None:
        self.active_alerts = active_alerts
        self.outbox = outbox
        self.incidents = incidents

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield _gauge(
            "hub_alerts_active",
            "Firing alerts by severity.",
            ["severity"],
            [(severity,) for severity in SEVERITIES],
            {(key,): n for key, n in self.active_alerts().items()},
        )
        yield _gauge(
            "hub_incidents_open",
            "Incidents not yet resolved, by severity and state.",
            ["severity", "state"],
            [(severity, state) for severity in SEVERITIES for state in INCIDENT_STATES],
            self.incidents(),
        )
        yield _gauge(
            "hub_outbox_notifications",
            "Notifications in the outbox by state.",
            ["state"],
            [(state,) for state in OUTBOX_STATES],
            {(key,): n for key, n in self.outbox().items()},
        )


def _only(metric: Counter, source: str, values: Iterable[str], kept: Collection[str]) -> None:
    """Create the source's series of the ``kept`` values at 0 and remove the others'."""
    for value in values:
        if value in kept:
            metric.labels(source, value)
        else:
            _remove(metric, source, value)


def _remove(metric: Counter | Gauge | Histogram, *labels: str) -> None:
    """Remove one series if it exists: one never created (a person's latency series
    before their first page) or already removed is no error."""
    with contextlib.suppress(KeyError):
        metric.remove(*labels)


def _gauge(
    name: str,
    help_text: str,
    labels: Sequence[str],
    combinations: Iterable[tuple[str, ...]],
    counts: Mapping[tuple[str, ...], int],
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for values in combinations:
        family.add_metric(values, counts.get(values, 0))
    return family
