"""The app factory: builds the runtime (store, sender, scheduler, metrics) for one
config and the Litestar app that serves it. Nothing is global: two apps in one
process (as in tests) share nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NamedTuple

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from litestar import Litestar, Request, Response, Router
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, OpenAPI

from hub import (
    access,
    api,
    api_alertmanager,
    api_events,
    api_heartbeats,
    api_incidents,
    api_oncall,
    api_replay,
    api_schema,
    console,
    correlate,
    decoders,
    dispatch,
    escalation,
    expiry,
    fingerprints,
    heartbeats,
    inhibit,
    logfile,
    logs,
    retention,
    silences,
    stored,
    templates,
    webhooks_openapi,
)
from hub import config as config_module
from hub.api_params import refuse_bad_query
from hub.clocks import SteadyClock
from hub.config import Config
from hub.console import sessions
from hub.dispatch import Dispatcher, Flushed, Links
from hub.errors import ConfigError, Conflict, HubError
from hub.escalation import Escalator, Fired
from hub.limits import RateLimiter
from hub.metrics import Exposition, Metrics, SourceSeries
from hub.outbox import NO_INTEGRATION, Sender, send_targets
from hub.problems import (
    declare_refusal_headers,
    handle_hub_error,
    handle_recursion,
    handle_unexpected,
)
from hub.rules import Rules
from hub.store import Store, Tx, opened
from hub.webhooks import WebhookDoor, source_series
from hub.worker import Worker

log = logging.getLogger("hub.app")

CHECKPOINT_SECONDS = 30
RETENTION_SECONDS = 3600
# The first prune runs this long after start, not an hour after: a hub restarted more
# often than hourly (deploys, a crash loop) would otherwise never prune.
FIRST_PRUNE_SECONDS = 60


@functools.cache
def hub_version() -> str:
    """Read once a process: the package metadata is looked up on disk each time."""
    try:
        return version("hub")
    except PackageNotFoundError:
        return "0+unknown"


class Reload(NamedTuple):
    """What a reload did: the new file's problems (none: it runs), the settings it
    changed that only a restart applies (``[server] host``/``port``, ``[storage]``),
    and the risky settings of the config now running, as ``hub check-config`` warns."""

    problems: list[str]
    needs_restart: list[str]
    warnings: list[str]


class Runtime:
    """Everything one running hub owns; handlers reach it through ``app.state.hub``."""

    def __init__(
        self,
        config: Config,
        clock: Callable[[], float] = time.time,
        config_path: str | Path | None = None,
        server_given: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.server_given = dict(server_given or {})
        """``[server]`` keys from the command line, standing in for the file's at reloads."""
        self.rules = Rules.from_config(config)
        self.config_path = config_path
        self.clock = clock
        self.static_silences = silences.from_config(config, self._now())
        """The config's silences, each created when the hub first loaded it."""
        self.version = hub_version()
        self.started_at = clock()
        """When this hub started (epoch seconds), as the Alertmanager API's uptime."""
        self.metrics = Metrics(
            sources_series(config),
            notified(config),
            self.version,
            heartbeats=[h.name for h in config.heartbeats],
            own_sources={expiry.SOURCE: expiry.EVENT_OUTCOMES},
            templated=templates.templated(config),
        )
        self.metrics.config_loaded(clock())
        self.store = Store(
            config.storage.path,
            synchronous=config.storage.synchronous,
            batch_max=config.storage.batch_max,
            queue_max=config.storage.queue_max,
            on_commit=self.metrics.observe_commit,
            aside_max=config.server.read_concurrency,
            on_aside_refused=self.metrics.reads_refused.inc,
        )
        self.metrics.watch_store(
            self.store.active_alert_counts,
            self.store.notification_state_counts,
            self.store.incident_counts,
        )
        self.exposition = Exposition(lambda: self.store.read_scrape(self.metrics.render))
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.limiter = RateLimiter()  # one token bucket per source, kept across reloads
        self.stored_ack_secret = b""  # signs ack links when [server] ack_secret is unset
        self.session_key = b""  # signs console sessions; kept in the store
        self.sign_outs = sessions.SignOuts()  # loaded from the store at start
        self.sender: Sender | None = None
        self.dispatcher: Dispatcher | None = None
        self.escalator: Escalator | None = None
        self.watchdog: heartbeats.Watchdog | None = None
        self.expirer: expiry.Expirer | None = None
        self._tasks: list[asyncio.Task] = []
        self._chores: set[asyncio.Task] = set()  # one-off writes, held until done

    def current_rules(self) -> Rules:
        return self.rules

    @property
    def ack_secret(self) -> bytes:
        """The key of ack links: ``[server] ack_secret``, read at each use so that a
        reload rotating a leaked one applies at once (links signed with the old one
        stop working), else the one kept in the store."""
        return self.config.server.ack_secret.encode() or self.stored_ack_secret

    def links(self) -> Links:
        server = self.config.server
        return Links(server.base_url, self.ack_secret, server.ack_link_ttl)

    async def start(self) -> None:
        logfile.register()
        self._open_store()
        rekeyed = await self.store.write(self._rekey_positional, background=True)
        if rekeyed:
            log.info("event=incidents_rekeyed count=%d", rekeyed)
        moved = await self.store.write(self._rekey_labelled, background=True)
        moved += await self.store.write(self._rekey_empty_labelled, background=True)
        if moved:
            log.info("event=alerts_rekeyed count=%d", moved)
        await self.store.write(self._notice_missing_receivers, background=True)
        await self._index_inhibit_sources()
        self.stored_ack_secret = await self.store.write(_stored_ack_secret, background=True)
        self.session_key = await self.store.write(sessions.stored_key, background=True)
        self.sign_outs = await self.store.write(
            lambda tx: sessions.SignOuts.load(tx, _token_names(self.config), self.clock()),
            background=True,
        )
        self.sender = Sender(self.store, self.current_rules, self.metrics, clock=self.clock)
        await self.sender.recover()
        self.dispatcher = Dispatcher(
            self.store,
            self.current_rules,
            self.links,
            self.active_silences,
            self._flushed,
            clock=self.clock,
        )
        self.escalator = Escalator(
            self.store,
            self.current_rules,
            self.links,
            self.active_silences,
            self._escalated,
            clock=self.clock,
        )
        self.watchdog = heartbeats.Watchdog(
            self.store,
            self.current_rules,
            self.show_heartbeats,
            self.forget_heartbeats,
            clock=self.clock,
        )
        await self.watchdog.sync()
        self.expirer = expiry.Expirer(
            self.store, self.current_rules, self._alerts_ended, clock=self.clock
        )
        workers = (self.sender, self.dispatcher, self.escalator, self.watchdog, self.expirer)
        self._tasks = [self._start(worker) for worker in workers]
        self._schedule_housekeeping()
        log.info(
            "event=hub_started listen=%s:%d store=%s sources=%d receivers=%d",
            self.config.server.host,
            self.config.server.port,
            logs.value(self.config.storage.path),
            len(self.config.sources),
            len(self.config.receivers),
        )
        self._warn()

    def _open_store(self) -> None:
        """Open the store and refuse a config that clashes with what it holds, as a
        reload would, closing the store again so nothing is left half-started."""
        self.store.open()
        try:
            self.check_against_store(self.config)
        except ConfigError as e:
            self.store.close()
            log.error(
                "event=config_refused path=%s problems=%s",
                logs.value(str(self.config_path)),
                logs.value("; ".join(e.problems)),
            )
            raise

    def _start(self, worker: Worker) -> asyncio.Task:
        """Run ``worker`` in the background, its failed rounds and the items its rounds
        set aside counted by its name, and those whose last try failed gauged."""
        failed = self.metrics.worker_failures.labels(worker.name).inc

        def set_aside(count: int, failing: int) -> None:  # series only for a worker that isolates
            self.metrics.worker_items_failed.labels(worker.name).inc(count)
            self.metrics.worker_items_failing.labels(worker.name).set(failing)

        return asyncio.create_task(worker.run(failed, set_aside), name=f"hub-{worker.name}")

    def _schedule_housekeeping(self) -> None:
        """Periodic jobs off the hot path: the WAL checkpoint and retention."""
        self.scheduler.add_job(
            self.store.checkpoint, "interval", seconds=CHECKPOINT_SECONDS, id="wal-checkpoint"
        )
        self.scheduler.add_job(
            self.prune,
            "interval",
            seconds=RETENTION_SECONDS,
            id="retention",
            coalesce=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=FIRST_PRUNE_SECONDS),
        )
        self.scheduler.start()

    async def prune(self) -> dict[str, int]:
        return await retention.prune(self.store, self.config.retention, self.clock())

    def _rekey_positional(self, tx: Tx) -> int:
        """Incidents opened before group keys named routes by their matchers go on taking
        their group's alerts (``correlate.rekey_positional``)."""
        since = self.clock() - self.rules.reopen_window
        return correlate.rekey_positional(tx, self.rules.tree, since)

    def _rekey_labelled(self, tx: Tx) -> int:
        """Alerts stored before a source's labels were part of their identity take it
        (``fingerprints.rekey_labelled``)."""
        labelled = [
            source.name
            for source in self.config.sources
            if source.labels and source.format in decoders.SHARED_IDENTITY
        ]
        return fingerprints.rekey_labelled(tx, labelled)

    def _rekey_empty_labelled(self, tx: Tx) -> int:
        """Alerts whose label hash counted an empty label take the one without it
        (``fingerprints.rekey_empty_labelled``)."""
        hashed = {
            source.name: source.identity_labels
            for source in self.config.sources
            if source.format not in decoders.SHARED_IDENTITY
        }
        return fingerprints.rekey_empty_labelled(tx, hashed)

    def _notice_missing_receivers(self, tx: Tx) -> None:
        """Incidents still notifying receivers this config lacks get a dead letter each
        (``dispatch.notice_missing_receivers``): a restart, unlike a reload, may not
        refuse such a config, and a log line alone is easy to miss."""
        dispatch.notice_missing_receivers(tx, self.config, self.clock())

    async def _index_inhibit_sources(self) -> None:
        """Index the labels the running inhibit rules find their sources by, in the
        commit thread (an index over many firing alerts takes a while to build); the
        rules of the latest reload win, as its write comes last."""
        created, dropped = await self.store.write(
            lambda tx: tx.index_source_labels(inhibit.source_names(self.rules.inhibit_rules)),
            background=True,
            long=True,
        )
        if created or dropped:
            log.info(
                "event=source_indexes created=%s dropped=%s",
                logs.listed(created),
                logs.listed(dropped),
            )

    def _flushed(self, flushed: Flushed) -> None:
        for reason, count in flushed.suppressed.items():
            self.metrics.suppressed.labels(reason).inc(count)
        for letter in flushed.dead_letters:
            receiver = self.metrics.label(letter.receiver)
            self.metrics.notifications.labels(receiver, NO_INTEGRATION, "dead").inc()
            letter.log()
        if flushed.enqueued and self.sender is not None:
            self.sender.poke()

    def _escalated(self, fired: Fired) -> None:
        for outcome, count in fired.outcomes.items():
            self.metrics.escalation_steps.labels(outcome).inc(count)
        if fired.enqueued and self.sender is not None:
            self.sender.poke()
        if fired.woken and self.dispatcher is not None:
            self.dispatcher.poke()  # the woken incidents' receivers are due

    def show_heartbeats(self, rows: list[dict]) -> None:
        """Heartbeats changed (pinged, overdue, paused, resumed, synced): bring their
        gauges up to date and let the dispatcher and escalator see the alerts they raised
        or resolved. A last ping that is no time (a hand edit) is gauged as none yet (0),
        and ``overdue`` as every read takes a flag (``stored.flag``): a gauge must not
        fail on the row."""
        for row in rows:
            name = self.metrics.label(row["name"])
            last_ping = row["last_ping"]
            known = isinstance(last_ping, int | float)
            self.metrics.heartbeat_last_ping.labels(name).set(last_ping if known else 0)
            self.metrics.heartbeat_overdue.labels(name).set(stored.flag(row, "overdue"))
            self.metrics.heartbeat_paused.labels(name).set(row["paused_at"] is not None)
            if row["paused_at"] is not None:
                self._unwatched(row["name"])
        if rows:
            self.changed()

    def _alerts_ended(self, outcomes: list[str]) -> None:
        """Alerts resolved at their end: counted as ended and, like a sender's events, by
        outcome under source ``expiry``; the dispatcher looks now."""
        self.metrics.alerts_ended.inc(len(outcomes))
        self.metrics.count_events(expiry.SOURCE, outcomes)
        self.changed()

    def forget_heartbeat(self, name: str) -> None:
        """A deleted heartbeat's series go away with it."""
        self.metrics.forget_heartbeat(name)
        self._unwatched(name)

    def forget_heartbeats(self, names: list[str]) -> None:
        """Config heartbeats a sync removed: their series go, and the dispatcher sees
        the alerts their removal resolved."""
        for name in names:
            self.forget_heartbeat(name)
        if names:
            self.changed()

    def _unwatched(self, name: str) -> None:
        """A heartbeat paused or removed is no longer the watchdog's: one it set aside
        would never be tried again, and counted failing for hours after an operator
        paused it to stop it (``Worker.forget``)."""
        if self.watchdog is not None:
            self.watchdog.forget(heartbeats.item(name))

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for worker in (self.dispatcher, self.escalator, self.watchdog, self.expirer):
            if worker is not None:
                worker.stop()
        if self.sender is not None:
            await self.sender.shutdown()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.store.close()
        log.info("event=hub_stopped")

    async def ready(self) -> dict[str, bool]:
        """What readiness checks: the store takes writes, background work is running."""
        return {
            "store": await self.store.writable(),
            "scheduler": self.scheduler.running,
            "workers": bool(self._tasks) and not any(t.done() for t in self._tasks),
        }

    def changed(self) -> None:
        """Incidents changed: let the dispatcher, escalator and watchdog look now."""
        for worker in (self.dispatcher, self.escalator, self.watchdog):
            if worker is not None:
                worker.poke()

    def active_silences(self, now: datetime, tx: Tx | None = None) -> list[silences.Silence]:
        """Every silence in force at ``now``: the config's static ones and the API's, read
        in ``tx`` when given (as a worker's round does; see ``NotifyingWorker``)."""
        static = [s for s in self.static_silences if silences.state(s, now) == "active"]
        return static + (tx or self.store).active_silences(now)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def reload(self, by: str) -> Reload:
        """Re-read the config file; on success swap it in, else keep running the old one.
        ``by`` is who asked, for the log: a token's name, or ``sighup``.

        Returns the new file's problems (none: reloaded) and the changed settings only a
        restart applies, so the caller learns what did not take. The swap is one attribute
        assignment, and everything reads ``runtime.config`` when it needs it, so a
        request sees either the old config or the new one, never a mix.
        """
        if self.config_path is None:
            raise Conflict("the hub was started without a config file; there is nothing to reload")
        try:
            loaded = config_module.with_server(
                config_module.load(self.config_path), self.server_given
            )
            self.check_against_store(loaded)
            self._refuse_removing_notified(loaded)
        except ConfigError as e:
            self._count_reload("failure", by, f"problems={logs.value('; '.join(e.problems))}")
            return Reload(e.problems, [], [])
        new, kept = config_module.keep_startup_settings(self.config, loaded)
        old, self.config = self.config, new
        self.on_config_change(old, new)
        self._count_reload("success", by, f"needs_restart={logs.listed(kept)}" if kept else "")
        return Reload([], kept, self._warn())

    def _warn(self) -> list[str]:
        """Log the running config's warnings (those ``hub check-config`` prints), at start
        and at each reload, as a reload may bring new ones; return them."""
        found = config_module.warnings(self.config) + escalation.warnings(self.config)
        for warning in found:
            log.warning("event=config_warning detail=%s", logs.value(warning))
        return found

    def check_against_store(self, config: Config) -> None:
        """Config problems only the store can show (a config heartbeat named like an API
        one), refused at start and on reload like any other; a store not yet open has
        nothing to compare (``start`` checks once it is)."""
        if self.store.is_open:
            _refuse_clashes(config, self.store)

    def _refuse_removing_notified(self, new: Config) -> None:
        """A reload may not remove a receiver that open or acknowledged incidents still
        notify: they keep their receivers for life, and would go on firing with nobody
        told. Receivers the running config already lacked (a restart without them)
        are not this reload's doing; their incidents get dead letters. A store not
        yet open holds no incidents."""
        if not self.store.is_open:
            return
        running = {r.name for r in self.config.receivers}
        found: dict[str, list[int]] = {}
        for row in self.store.reading().notifying_unknown([r.name for r in new.receivers]):
            if row["receiver"] in running:
                found.setdefault(row["receiver"], []).append(row["incident_id"])
        if found:
            raise ConfigError([_still_notified(name, ids) for name, ids in found.items()])

    def on_config_change(self, old: Config, new: Config) -> None:
        """Called after a reload swapped the config, to rebuild what derives from it.

        Open incidents keep the receivers and timing they were created with; only
        new incidents and the next notifications see the new rules.
        """
        self.rules = Rules.from_config(new)
        self.static_silences = silences.from_config(new, self._now(), self.static_silences)
        self._forget_removed(old, new)
        self.metrics.precreate_sources(sources_series(new))
        self.metrics.precreate_receivers(notified(new))
        self.metrics.precreate_channels(send_targets(new))
        self.metrics.precreate_templated(templates.templated(new))
        self.changed()
        self._unhold()
        self._forget_sign_outs()
        self._reindex_sources()

    def _unhold(self) -> None:
        """The new config may have dropped what held escalation steps and notifications
        back (a silence, a maintenance window, a time interval, an inhibit rule): they
        are looked at now, not at their next look up to a minute or a group_interval
        on. A runtime not started has no workers to look."""
        if self.escalator is None:
            return
        self._chore(self._look_at_held())

    def _reindex_sources(self) -> None:
        """The new inhibit rules may find their sources by other labels. A runtime not
        started indexes them at start."""
        if self.escalator is None:
            return
        self._chore(self._index_inhibit_sources())

    def _forget_sign_outs(self) -> None:
        """The sign-outs of tokens the new config lacks go once lapsed, as at start
        (``SignOuts.forget_lapsed``). A runtime not started loads them at start."""
        if self.escalator is None:
            return
        names, now = _token_names(self.config), self.clock()
        self._chore(self.sign_outs.forget_lapsed(self.store, names, now))

    def _chore(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a one-off write in the background, held until done."""
        chore = asyncio.get_running_loop().create_task(work)
        self._chores.add(chore)
        chore.add_done_callback(self._chores.discard)

    async def _look_at_held(self) -> None:
        now = self.clock()
        if await self.store.write(lambda tx: escalation.unhold(tx, now), background=True):
            self.changed()

    def _forget_removed(self, old: Config, new: Config) -> None:
        """The series of the sources, receivers, on-call people and integrations a reload
        removed go, as a removed heartbeat's do; those that stay keep their counts.
        Notifications to a removed receiver or integration still in the outbox are not
        counted or timed (``Sender``), so they cannot bring its series back."""
        kept_sources = {s.name for s in new.sources}
        self.metrics.forget_sources(s.name for s in old.sources if s.name not in kept_sources)
        old_targets, new_targets = send_targets(old), send_targets(new)
        self.metrics.forget_channels(old_targets - new_targets)
        kept_receivers = {receiver for receiver, _ in new_targets}
        self.metrics.forget_receivers({receiver for receiver, _ in old_targets} - kept_receivers)
        self.metrics.forget_templated(templates.templated(old) - templates.templated(new))
        kept_integrations = {integration for _, integration in new_targets}
        self.metrics.forget_integrations(
            {integration for _, integration in old_targets} - kept_integrations
        )

    def _count_reload(self, outcome: str, by: str, detail: str) -> None:
        """One log line and one count per reload; a failure logs every problem, since a
        SIGHUP has no one to answer to."""
        self.metrics.count_reload(outcome, self.clock())
        level = logging.INFO if outcome == "success" else logging.ERROR
        log.log(
            level,
            "event=config_reload outcome=%s by=%s path=%s%s",
            outcome,
            logs.value(by),
            logs.value(str(self.config_path)),
            f" {detail}" if detail else "",
        )


def _still_notified(receiver: str, incident_ids: list[int], shown: int = 10) -> str:
    """The reload problem naming a removed receiver and (the first ``shown`` of) the
    incidents that still notify it."""
    listed = ", ".join(str(i) for i in incident_ids[:shown])
    more = f" and {len(incident_ids) - shown} more" if len(incident_ids) > shown else ""
    which = "incidents" if len(incident_ids) > 1 else "incident"
    notify, they = ("notify", "they are") if len(incident_ids) > 1 else ("notifies", "it is")
    return (
        f'receivers: "{receiver}" is removed, but open or acknowledged {which} {listed}{more}'
        f" still {notify} it: keep it until {they} resolved"
    )


def _stored_ack_secret(tx: Tx) -> bytes:
    """The ack link key generated once and kept in the store, so links survive restarts.
    Made even while ``[server] ack_secret`` is set: a reload removing that key then
    falls back to it at once, with no write to wait for."""
    stored = tx.get_setting("ack_secret")
    if stored is None:
        stored = secrets.token_urlsafe(32)
        tx.put_setting("ack_secret", stored)
    return stored.encode()


def _token_names(config: Config) -> set[str]:
    """The API tokens' names: whose console sign-outs are kept."""
    return {token.name for token in config.api.tokens}


def _refuse_clashes(config: Config, store: Store) -> None:
    problems = heartbeats.clashes(config.heartbeats, store.heartbeats())
    if problems:
        raise ConfigError(problems)


def check_store(config: Config) -> None:
    """Raise ConfigError if this hub cannot start on the config's store (a newer hub
    migrated it, a config heartbeat takes an API one's name), else migrate it: what
    ``Runtime.start`` refuses, found before serving, so that ``hub serve`` says it as
    it says the config's problems rather than failing its startup with a traceback."""
    with opened(config.storage.path, synchronous=config.storage.synchronous) as store:
        _refuse_clashes(config, store)


def notified(config: Config) -> list[str]:
    """Everyone hub can send to, receivers and on-call people (``schedule:NAME/PERSON``)
    alike: each gets its latency series at 0, so the first page to a person counts."""
    return sorted({receiver for receiver, _ in send_targets(config)})


def sources_series(config: Config) -> dict[str, SourceSeries]:
    """The series each source can have, by name (``hub.webhooks.source_series``)."""
    return {source.name: source_series(source) for source in config.sources}


def http_error(request: Request, exc: HTTPException) -> Response:
    """Litestar's own refusals (an unknown path, a wrong method), raised before any
    router's handlers could answer: in the Alertmanager API's forms on its paths, alerts
    posted to ``/api/v1/alerts`` told where they go, else as the console answers them
    (a page, or a problem document on the API)."""
    if api_alertmanager.owns(request.url.path):
        return api_alertmanager.http_as_text(request, exc)
    if api_alertmanager.posts_v1_alerts(request, exc):
        return api_alertmanager.v1_alerts_refused(request, exc)
    return console.http_error(request, exc)


def create_app(
    config: Config,
    config_path: str | Path | None = None,
    *,
    clock: Callable[[], float] | None = None,
    server_given: Mapping[str, Any] | None = None,
) -> WebhookDoor:
    """Build the app for one config; the lifespan starts and stops its runtime.

    ``clock`` is the time every part of hub reads: by default the wall clock that
    never steps back (``hub.clocks``); tests give one they can move.

    ``config_path`` is the file ``config`` came from: reloads re-read it, with the
    ``[server]`` keys in ``server_given`` (``hub serve --host/--port``) in place of
    its own. Webhooks are answered by the door in front of Litestar (see
    ``hub.webhooks``).
    """
    runtime = Runtime(config, clock or SteadyClock(), config_path, server_given)

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        try:
            with reload_on_sighup(runtime):
                yield
        finally:
            await runtime.stop()

    app = Litestar(
        route_handlers=[
            *api.HANDLERS,
            *api_incidents.HANDLERS,
            *api_events.HANDLERS,
            *api_replay.HANDLERS,
            *api_heartbeats.HANDLERS,
            *api_oncall.HANDLERS,
            api_alertmanager.router(),
            console.router(),
        ],
        template_config=console.template_config(),
        lifespan=[lifespan],
        before_request=refuse_bad_query,
        state=State({"hub": runtime}),
        request_max_body_size=None,  # the door limits bodies (``WebhookDoor._limited``)
        exception_handlers={
            HubError: handle_hub_error,
            HTTPException: http_error,
            RecursionError: handle_recursion,
            Exception: handle_unexpected,
        },
        openapi_config=OpenAPIConfig(
            title="hub",
            version=hub_version(),
            components=Components(
                security_schemes=access.SECURITY_SCHEMES | api_heartbeats.SECURITY_SCHEMES
            ),
            openapi_router=Router(
                "/schema",
                route_handlers=[],
                include_in_schema=False,
                dto=None,
                return_dto=None,
                before_request=_complete_before_serving,
            ),
        ),
        logging_config=None,
    )
    return WebhookDoor(app)


def documented(app: Litestar) -> OpenAPI:
    """The app's OpenAPI document: Litestar's, built from the handlers, with what hub
    adds (the webhook doors, heartbeat pings, refusal headers, the answers' schemas),
    added once. Done at the first request for it, not at start: the two take about a
    fifth of a hub's start, and most hubs never serve the document."""
    schema = app.openapi_schema
    if not app.state.get(_SCHEMA_COMPLETE):
        api_heartbeats.document(schema)
        declare_refusal_headers(schema)
        webhooks_openapi.document(schema)
        api_schema.document(schema)  # the answers of all of the above
        app.state[_SCHEMA_COMPLETE] = True
    return schema


_SCHEMA_COMPLETE = "schema_complete"


def _complete_before_serving(request: Request) -> None:
    """The schema router's hook, in place of the app's (``refuse_bad_query``, which
    checks only the API's paths): Litestar's handlers serve what ``documented`` made."""
    documented(request.app)


@contextlib.contextmanager
def reload_on_sighup(runtime: Runtime) -> Iterator[None]:
    """SIGHUP reloads the config, as operators expect of a daemon.

    Signal handlers belong to the main thread; an app served from another thread (as
    in tests) or without a config file simply has none.
    """
    if runtime.config_path is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, runtime.reload, "sighup")
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
