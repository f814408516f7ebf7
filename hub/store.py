"""All SQL lives here. One SQLite file in WAL mode, forward-only migrations, and
group commit: the writes of concurrent requests share one transaction.

Writes are functions ``fn(tx) -> T``; ``await store.write(fn)`` returns only after
the transaction holding ``fn`` committed, which is what lets an HTTP 2xx mean "on
disk". The functions run on the event loop (a write costs no thread hand-off); only
the COMMIT, which waits for the fsync, runs in a thread, and so does a batch holding
a write its caller marked ``long`` (thousands of alerts in one delivery, a look at due
incidents of as many). One failing function never rolls back its batch
neighbours. A function logs through ``tx.log``, so that its lines appear once it is
committed. Reads use a separate connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import gc
import hashlib
import itertools
import logging
import os
import queue
import sqlite3
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeVar

import msgspec
import sqlite_utils
from sqlite_utils.migrations import Migrations

from hub import logs, stored
from hub.alerts import ALERT_STATUSES, matchable
from hub.errors import ConfigError, Unavailable
from hub.events import SEVERITIES
from hub.inhibit import SourceFilter
from hub.matchers import Matcher
from hub.silences import Silence, UnreadableSilence

T = TypeVar("T")
Logged = tuple[logging.Logger, int, str, tuple[object, ...]]
"""A line a write function logs through ``Tx.log``: logger, level, message, arguments."""
log = logging.getLogger("hub.store")

migrations = Migrations("hub")

# Python 3.11's sqlite3 looks for a way to adapt every bytes or None parameter by
# raising and clearing an AttributeError, about a microsecond each; a registered
# adapter is found at once. A delivery's INSERT binds five such values.
sqlite3.register_adapter(bytes, bytes)
sqlite3.register_adapter(type(None), lambda value: value)

# The writer checkpoints in a COMMIT once the WAL holds this many pages: a pause for
# the writes waiting behind it, as long as the distinct pages to copy. With a million
# alerts stored (``bench.scale``) the p99 was 0.5 s at 10,000 pages, 0.14 s at 4,000,
# 0.065 s at 1,000; a small hot set copies the same pages again and again when they
# are checkpointed more often (native repeats: 0.78 of the bare endpoint at 1,000).
WAL_AUTOCHECKPOINT_PAGES = 4000
# A write lock held by another connection is retried this often.
LOCKED_RETRY_SECONDS = 0.01
LOCK_PROBE_SECONDS = 1.0
"""How long readiness waits for a write lock held elsewhere (``Store.writable``): a
backup's step or an operator's quick change lets it go well within it."""
LOCK_NOTED_SECONDS = 1.0
"""How long writes wait for a lock held elsewhere before the log says so: a webhook
answering slowly with no line why is what an operator would otherwise see."""
STALE_SNAPSHOT = (
    "a statement left open on hub's write connection reads a snapshot older than another"
    " connection's write; writes fail until it ends (a restart ends it)"
)
"""Why writes fail at once (``Store._begin``)."""

ROW_ID_MAX = 2**63 - 1
"""SQLite's largest integer: a larger id given to a query is refused, not an overflow."""
# The orders the API's lists are read in, newest first; the id breaks ties, so each
# is a unique key a page can resume after (``hub.paging``). Each is read in the order
# of an index (m019, m026), so that a page costs the same with a million rows as with
# a thousand; the firing alerts alone are sorted (``Store.alerts``).
ALERT_ORDER = ("last_change", "id")
INCIDENT_ORDER = ("updated_at", "id")
ID_ORDER = ("id",)
Position = tuple[float | int, ...]
"""A row's values of its list's order: where a page ends and the next one starts."""


class Unreadable(NamedTuple):
    """A notification's stored message or URL digests (``payload``, ``url_keys``) that
    are not JSON (a fault, a hand edit), in the column's place: the delivery log still
    lists the row, and the sender dead-letters it (``hub.outbox.message``) rather than
    fail to read it at every claim."""

    reason: str


class Target(NamedTuple):
    """Where a notification goes: its receiver, the position of its URL among the
    receiver's when it was queued (``channel``), that URL's integration (its scheme)
    and the digests of the receiver's URLs then, in order (``channels.url_key``: the
    store keeps no URL, as URLs hold secrets). No digests for a letter to a receiver
    the config lacks: it has no URL."""

    receiver: str
    channel: int
    integration: str
    url_keys: tuple[str, ...] = ()

    def columns(self) -> tuple[str, int, str, str | None]:
        """The columns receiver, channel, integration, url_keys."""
        keys = _json.encode(self.url_keys).decode() if self.url_keys else None
        return self.receiver, self.channel, self.integration, keys


def _script(db: sqlite_utils.Database, sql: str) -> None:
    """Run a migration's statements in its transaction. sqlite-utils splits a script
    one character at a time, joining the text anew at each, so that splitting was most
    of a new store's creation; this splits at each ``;`` instead and lets SQLite say
    whether the statement is complete, so a ``;`` in a trigger's body or a string stays."""
    statement = ""
    for piece in sql.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip("; \n"):
                db.execute(statement)
            statement = ""
    if statement.strip("; \n"):
        db.execute(statement)  # incomplete: SQLite's error names what is missing


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    """The first schema: deliveries, events, alerts with history, and the outbox."""
    _script(
        db,
        """
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            delivery_key TEXT,
            received_at REAL NOT NULL,
            headers TEXT NOT NULL,
            body BLOB NOT NULL,
            status_code INTEGER NOT NULL DEFAULT 0,
            response TEXT NOT NULL DEFAULT '{}'
        );
        CREATE UNIQUE INDEX deliveries_key ON deliveries (source, delivery_key)
            WHERE delivery_key IS NOT NULL;
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            fingerprint TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            status TEXT NOT NULL,
            severity TEXT NOT NULL,
            summary TEXT NOT NULL,
            labels TEXT NOT NULL,
            annotations TEXT NOT NULL,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            last_change REAL NOT NULL,
            duplicates INTEGER NOT NULL DEFAULT 0,
            resolved_at REAL
        );
        CREATE INDEX alerts_status ON alerts (status, severity);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
            alert_id INTEGER NOT NULL REFERENCES alerts (id),
            status TEXT NOT NULL,
            severity TEXT NOT NULL,
            occurred_at REAL NOT NULL,
            outcome TEXT NOT NULL
        );
        CREATE INDEX events_delivery ON events (delivery_id);
        CREATE TABLE alert_history (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alerts (id),
            event_id INTEGER REFERENCES events (id),
            at REAL NOT NULL,
            recorded_at REAL NOT NULL,
            status TEXT NOT NULL,
            severity TEXT NOT NULL,
            summary TEXT NOT NULL,
            applied INTEGER NOT NULL
        );
        CREATE INDEX alert_history_alert ON alert_history (alert_id);
        CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER REFERENCES alerts (id),
            receiver TEXT NOT NULL,
            channel INTEGER NOT NULL,
            integration TEXT NOT NULL,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            created_at REAL NOT NULL,
            due_at REAL NOT NULL,
            claimed_until REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            sent_at REAL
        );
        CREATE INDEX notifications_due ON notifications (state, due_at);
        CREATE TABLE notification_attempts (
            id INTEGER PRIMARY KEY,
            notification_id INTEGER NOT NULL REFERENCES notifications (id),
            started_at REAL NOT NULL,
            duration_ms REAL NOT NULL,
            outcome TEXT NOT NULL,
            error TEXT
        );
        CREATE INDEX notification_attempts_notification
            ON notification_attempts (notification_id);
        """,
    )


@migrations()
def m002_incidents(db: sqlite_utils.Database) -> None:
    """Incidents group alerts; notifications and grouping state hang off them."""
    _script(
        db,
        """
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY,
            group_key TEXT NOT NULL,
            route_id TEXT NOT NULL,
            status TEXT NOT NULL,
            severity TEXT NOT NULL,
            title TEXT NOT NULL,
            labels TEXT NOT NULL,
            receivers TEXT NOT NULL,
            timing TEXT NOT NULL,
            escalation TEXT,
            opened_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            acknowledged_at REAL,
            acknowledged_by TEXT,
            resolved_at REAL,
            resolved_by TEXT
        );
        CREATE INDEX incidents_group ON incidents (group_key, id);
        CREATE INDEX incidents_status ON incidents (status, severity);
        ALTER TABLE alerts ADD COLUMN incident_id INTEGER REFERENCES incidents (id);
        ALTER TABLE alerts ADD COLUMN changes TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE alerts ADD COLUMN flapping INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX alerts_incident ON alerts (incident_id);
        CREATE TABLE timeline (
            id INTEGER PRIMARY KEY,
            incident_id INTEGER NOT NULL REFERENCES incidents (id),
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX timeline_incident ON timeline (incident_id, id);
        CREATE TABLE incident_receivers (
            incident_id INTEGER NOT NULL REFERENCES incidents (id),
            receiver TEXT NOT NULL,
            send_resolved INTEGER NOT NULL,
            first_seen REAL NOT NULL,
            last_notified_at REAL,
            last_notified_hash TEXT,
            due_at REAL,
            PRIMARY KEY (incident_id, receiver)
        );
        CREATE INDEX incident_receivers_due ON incident_receivers (due_at)
            WHERE due_at IS NOT NULL;
        ALTER TABLE notifications ADD COLUMN incident_id INTEGER REFERENCES incidents (id);
        CREATE INDEX notifications_incident ON notifications (incident_id);
        CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    )


@migrations()
def m003_silences(db: sqlite_utils.Database) -> None:
    """Silences created through the API (config ones live in the config file)."""
    _script(
        db,
        """
        CREATE TABLE silences (
            id TEXT PRIMARY KEY,
            matchers TEXT NOT NULL,
            starts_at REAL,
            ends_at REAL,
            created_by TEXT NOT NULL,
            comment TEXT NOT NULL,
            created_at REAL NOT NULL,
            expired_at REAL
        );
        CREATE INDEX silences_ends ON silences (ends_at);
        """,
    )


@migrations()
def m004_audit(db: sqlite_utils.Database) -> None:
    """The audit log lists a source's recent deliveries without scanning the others'."""
    _script(db, "CREATE INDEX deliveries_source ON deliveries (source, id);")


@migrations()
def m005_escalation(db: sqlite_utils.Database) -> None:
    """One escalation per incident (keyed by the incident's id): the policy copied when
    the incident opened, the next step and when it is due. Plus the indexes retention
    deletes by."""
    _script(
        db,
        """
        CREATE TABLE escalations (
            id INTEGER PRIMARY KEY REFERENCES incidents (id),
            policy TEXT NOT NULL,
            plan TEXT NOT NULL,
            started_at REAL NOT NULL,
            next_step INTEGER NOT NULL DEFAULT 0,
            due_at REAL
        );
        CREATE INDEX escalations_due ON escalations (due_at) WHERE due_at IS NOT NULL;
        CREATE INDEX deliveries_received ON deliveries (received_at);
        CREATE INDEX alert_history_recorded ON alert_history (recorded_at);
        CREATE INDEX alert_history_event ON alert_history (event_id);
        CREATE INDEX events_alert ON events (alert_id);
        CREATE INDEX incidents_resolved ON incidents (resolved_at) WHERE status = 'resolved';
        """,
    )


@migrations()
def m006_heartbeats(db: sqlite_utils.Database) -> None:
    """Heartbeats from the config and the API, with their deadlines (rebuilt on start)."""
    _script(
        db,
        """
        CREATE TABLE heartbeats (
            name TEXT PRIMARY KEY,
            origin TEXT NOT NULL,
            period REAL NOT NULL,
            grace REAL NOT NULL,
            labels TEXT NOT NULL,
            severity TEXT NOT NULL,
            summary TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_ping REAL,
            started_at REAL,
            deadline REAL,
            overdue INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX heartbeats_deadline ON heartbeats (deadline) WHERE deadline IS NOT NULL;
        """,
    )


@migrations()
def m007_incident_counts(db: sqlite_utils.Database) -> None:
    """Keep per-incident counts incrementally, so a change never scans an incident.

    An incident of 200k alerts must cost the same per event as one of two:
    ``active_alerts`` is kept up to date by ingest, the highest active severity is
    found by index probes, and each receiver row knows its grouping waits so a
    change schedules the next look instead of forcing one.
    """
    _script(
        db,
        """
        ALTER TABLE incidents ADD COLUMN active_alerts INTEGER NOT NULL DEFAULT 0;
        DROP INDEX alerts_incident;
        CREATE INDEX alerts_incident ON alerts (incident_id, status, severity);
        ALTER TABLE incident_receivers ADD COLUMN group_wait REAL NOT NULL DEFAULT 0;
        ALTER TABLE incident_receivers ADD COLUMN group_interval REAL NOT NULL DEFAULT 0;
        """,
    )


@migrations()
def m008_test_mode(db: sqlite_utils.Database) -> None:
    """Deliveries say whether their source was in test mode (and then keep the routing
    decision, the only thing a test delivery produces) and which delivery they replay.
    ``replay_of`` is no foreign key: retention may prune the original first."""
    _script(
        db,
        """
        ALTER TABLE deliveries ADD COLUMN mode TEXT NOT NULL DEFAULT 'live';
        ALTER TABLE deliveries ADD COLUMN replay_of INTEGER;
        ALTER TABLE deliveries ADD COLUMN decision TEXT;
        """,
    )


@migrations()
def m009_deliveries_by_id(db: sqlite_utils.Database) -> None:
    """Retention takes deliveries oldest first by id, so the index on the receive time
    goes: every delivery written paid for it, and only retention read it."""
    _script(db, "DROP INDEX deliveries_received;")


@migrations()
def m010_alert_ends(db: sqlite_utils.Database) -> None:
    """A firing alert may say when it ends unless re-sent (Prometheus' ``endsAt``).

    ``end_check_at`` is when ``hub.expiry`` next looks at the alert, never after its
    end; only it is indexed, and only for alerts with an end. A re-send that moves
    the end later writes ``ends_at`` alone, so the index is not written on every
    repeat: the expirer moves the check up to the end when it finds it moved.
    """
    _script(
        db,
        """
        ALTER TABLE alerts ADD COLUMN ends_at REAL;
        ALTER TABLE alerts ADD COLUMN end_check_at REAL;
        CREATE INDEX alerts_end_check ON alerts (end_check_at) WHERE end_check_at IS NOT NULL;
        """,
    )


@migrations()
def m011_heartbeat_tokens(db: sqlite_utils.Database) -> None:
    """A heartbeat may require a token on its pings; only the token's SHA-256 is kept."""
    _script(db, "ALTER TABLE heartbeats ADD COLUMN token_sha256 TEXT;")


@migrations()
def m012_change_times(db: sqlite_utils.Database) -> None:
    """When hub received the earliest change a receiver has not been told of yet, and
    the change a notification reports: event-to-notification latency is measured
    from it, grouping waits included."""
    _script(
        db,
        """
        ALTER TABLE incident_receivers ADD COLUMN changed_at REAL;
        ALTER TABLE notifications ADD COLUMN changed_at REAL;
        """,
    )


@migrations()
def m013_no_future_changes(db: sqlite_utils.Database) -> None:
    """Before decode dropped event times later than the receive time, a sender whose
    clock ran ahead left alerts changed "in the future": every event until that date
    was stale, a resolve included. They are brought back to now, once."""
    now = time.time()
    db.execute("UPDATE alerts SET last_change = ? WHERE last_change > ?", (now, now))


@migrations()
def m014_paged_targets(db: sqlite_utils.Database) -> None:
    """Whom an incident's escalation paged and has not yet told it resolved (a JSON
    list). Incidents still open at the upgrade owe it to everyone their steps paged,
    as the timeline recorded: no resolution was ever told before."""
    _script(
        db,
        """
        ALTER TABLE escalations ADD COLUMN paged TEXT NOT NULL DEFAULT '[]';
        UPDATE escalations SET paged = (
            SELECT IFNULL(json_group_array(DISTINCT notified.value), '[]')
            FROM timeline, json_each(timeline.detail, '$.notified') AS notified
            WHERE timeline.incident_id = escalations.id AND timeline.kind = 'escalated'
        )
        WHERE id IN (SELECT id FROM incidents WHERE status != 'resolved');
        """,
    )


@migrations()
def m015_source_scoped_keys(db: sqlite_utils.Database) -> None:
    """A sender's dedup key now identifies an alert within its source
    (``<source>/<key>``, see ``hub.fingerprints``); alerts stored under a bare key
    move to the scoped form, so that the sender's re-sends still find them.

    A stored fingerprint is a bare key unless it is one of hub's forms: a heartbeat's
    (``heartbeat:NAME``) or 16 lowercase hex digits, the form of both the label hash
    and Alertmanager's fingerprint. Recomputing those from the stored labels cannot
    tell them apart better: the label hash may cover only a source's
    ``identity_labels``, and Alertmanager's covers the alert's labels without the
    source's defaults, neither of which the database knows. So a key that was itself
    16 hex digits keeps its bare form (its sender's next event opens a new alert);
    a key equal to hub's own hash of its labels named the same alert either way.

    Two passes over the table, both linear. The first stores the new fingerprints as
    BLOBs, which never equal a TEXT fingerprint: a new ``a/b`` may still be held as a
    bare key by another alert until that one moves too (source names have no ``/``,
    so the final fingerprints are all distinct). The second makes them TEXT.
    """
    db.execute(
        "UPDATE alerts SET fingerprint = CAST(source || '/' || fingerprint AS BLOB)"
        " WHERE source != 'heartbeat'"
        " AND NOT (length(fingerprint) = 16 AND fingerprint NOT GLOB '*[^0-9a-f]*')"
    )
    db.execute(
        "UPDATE alerts SET fingerprint = CAST(fingerprint AS TEXT)"
        " WHERE typeof(fingerprint) = 'blob'"
    )


@migrations()
def m016_incident_episodes(db: sqlite_utils.Database) -> None:
    """An incident's episode: 1 when it opens, one more each time it reopens. An ack
    link carries the episode it was sent about, so it never acknowledges a later one.
    Incidents at the upgrade count the reopens their timeline recorded."""
    _script(
        db,
        """
        ALTER TABLE incidents ADD COLUMN episode INTEGER NOT NULL DEFAULT 1;
        UPDATE incidents SET episode = 1 + (
            SELECT count(*) FROM timeline
            WHERE timeline.incident_id = incidents.id AND timeline.kind = 'reopened'
        )
        WHERE id IN (SELECT incident_id FROM timeline WHERE kind = 'reopened');
        """,
    )


@migrations()
def m017_snoozes(db: sqlite_utils.Database) -> None:
    """An acknowledgement may lapse: a person snoozed the incident, or its policy has an
    ``ack_timeout``. ``snoozed_until`` is when it returns to open, ``snooze_reason``
    which of the two set it (``hub.snoozes``); the escalator finds them by the index."""
    _script(
        db,
        """
        ALTER TABLE incidents ADD COLUMN snoozed_until REAL;
        ALTER TABLE incidents ADD COLUMN snooze_reason TEXT;
        CREATE INDEX incidents_snoozed ON incidents (snoozed_until)
            WHERE snoozed_until IS NOT NULL;
        """,
    )


@migrations()
def m018_incident_title_alerts(db: sqlite_utils.Database) -> None:
    """An incident's title is the summary of one of its alerts, ``title_alert_id``:
    when that one resolves while others fire, the title moves to one still firing.
    Incidents not resolved at the upgrade keep their title if a firing alert has it
    as summary; else (the first alert resolved before) they take the most severe
    firing alert's, the one stored first. Resolved ones name none until they reopen."""
    ranks = " ".join(f"WHEN '{name}' THEN {rank}" for rank, name in enumerate(SEVERITIES))
    _script(
        db,
        f"""
        ALTER TABLE incidents ADD COLUMN title_alert_id INTEGER;
        UPDATE incidents SET title_alert_id = (
            SELECT id FROM alerts
            WHERE incident_id = incidents.id AND status = 'firing' AND summary = incidents.title
            ORDER BY id LIMIT 1
        )
        WHERE status != 'resolved';
        UPDATE incidents SET (title_alert_id, title) = (
            SELECT id, summary FROM alerts
            WHERE incident_id = incidents.id AND status = 'firing'
            ORDER BY CASE severity {ranks} END, id LIMIT 1
        )
        WHERE status != 'resolved' AND title_alert_id IS NULL AND EXISTS (
            SELECT 1 FROM alerts WHERE incident_id = incidents.id AND status = 'firing'
        );
        """,
    )


@migrations()
def m019_incident_order(db: sqlite_utils.Database) -> None:
    """The incident lists (API, console tabs) read the most recently changed first, page
    after page: without an index in that order every page sorted every matching
    incident (0.4 s for the resolved tab of 200,000). One index for each list with a
    status and one for the list without; incidents change far less often than alerts,
    whose list has no such index as every re-send moves its order."""
    _script(
        db,
        """
        CREATE INDEX incidents_status_changed ON incidents (status, updated_at, id);
        CREATE INDEX incidents_changed ON incidents (updated_at, id);
        """,
    )


@migrations()
def m020_lapsed_acks(db: sqlite_utils.Database) -> None:
    """An incident open again because an acknowledgement lapsed keeps whose it was
    (``lapsed_by``) and why (``lapse_reason``, as ``snooze_reason`` was), so the pages
    sent again say so; the next acknowledgement or resolution forgets them."""
    _script(
        db,
        """
        ALTER TABLE incidents ADD COLUMN lapsed_by TEXT;
        ALTER TABLE incidents ADD COLUMN lapse_reason TEXT;
        """,
    )


@migrations()
def m021_firing_starts(db: sqlite_utils.Database) -> None:
    """When an alert's current firing began (``fired_at``, the sender's time where it
    gave one, as Alertmanager's ``startsAt``): messages said "since" its first sighting,
    even about an alert firing again days after it resolved.

    A firing alert's start is read back from its history (the first applied firing
    entry after the last applied resolve); where retention pruned that, and for
    resolved alerts, its first sighting stands, as before.
    """
    _script(
        db,
        """
        ALTER TABLE alerts ADD COLUMN fired_at REAL;
        UPDATE alerts SET fired_at = COALESCE(
            (SELECT MIN(h.at) FROM alert_history h
             WHERE h.alert_id = alerts.id AND h.applied AND h.status = 'firing'
             AND h.at > COALESCE(
                 (SELECT MAX(r.at) FROM alert_history r
                  WHERE r.alert_id = alerts.id AND r.applied AND r.status = 'resolved'),
                 0)),
            first_seen)
        WHERE status = 'firing';
        UPDATE alerts SET fired_at = first_seen WHERE status != 'firing';
        """,
    )


@migrations()
def m022_muted_alerts(db: sqlite_utils.Database) -> None:
    """Which of an incident's alerts a receiver's last look found muted (a JSON list
    of fingerprints), so an alert is counted as suppressed once when it becomes
    muted, not again at each look while it stays so (``hub.dispatch``)."""
    _script(db, "ALTER TABLE incident_receivers ADD COLUMN muted TEXT NOT NULL DEFAULT '[]';")


@migrations()
def m023_past_episodes(db: sqlite_utils.Database) -> None:
    """A resolved alert of an incident that reopened since belongs to an episode that is
    over (``past_episode``): messages about the incident leave it out, where a reopened
    incident's pages listed every alert that had resolved before, episode after episode.
    Marked when the incident reopens, cleared when the alert fires again, so no
    clock is compared (a sender's may lag hub's).

    At the upgrade, an alert that resolved before its incident last reopened (by the
    timeline) is marked as of the episode before.
    """
    _script(
        db,
        """
        ALTER TABLE alerts ADD COLUMN past_episode INTEGER;
        CREATE TEMP TABLE last_reopen (incident_id INTEGER PRIMARY KEY, at REAL NOT NULL);
        INSERT INTO last_reopen
            SELECT incident_id, MAX(at) FROM timeline WHERE kind = 'reopened' GROUP BY incident_id;
        UPDATE alerts SET past_episode = (
            SELECT episode - 1 FROM incidents WHERE incidents.id = alerts.incident_id
        )
        WHERE status = 'resolved' AND resolved_at < (
            SELECT at FROM last_reopen WHERE last_reopen.incident_id = alerts.incident_id
        );
        DROP TABLE last_reopen;
        """,
    )


@migrations()
def m024_held_escalations(db: sqlite_utils.Database) -> None:
    """An escalation whose pending step is held while every firing alert of its incident
    is muted keeps since when (``held_at``): its timeline says so once, not at every
    look. A chain that started over because an acknowledgement lapsed keeps why
    (``restarted_by``), so its steps do not read like the first run's."""
    _script(
        db,
        """
        ALTER TABLE escalations ADD COLUMN held_at REAL;
        ALTER TABLE escalations ADD COLUMN restarted_by TEXT;
        """,
    )


@migrations()
def m025_retry_budgets(db: sqlite_utils.Database) -> None:
    """A retried dead letter keeps counting its attempts (``attempts`` agrees with its
    attempts log) and remembers how many it had at its last retry
    (``retried_attempts``): the fresh budget a retry gives is counted from there. A
    retry used to reset ``attempts`` to 0 while the log kept every attempt; those rows
    get their count back from the log."""
    logged = "(SELECT COUNT(*) FROM notification_attempts WHERE notification_id = notifications.id)"
    _script(
        db,
        f"""
        ALTER TABLE notifications ADD COLUMN retried_attempts INTEGER NOT NULL DEFAULT 0;
        UPDATE notifications SET retried_attempts = {logged} - attempts, attempts = {logged}
            WHERE {logged} > attempts;
        """,
    )


@migrations()
def m026_alert_order(db: sqlite_utils.Database) -> None:
    """The alert lists (API, ``hub alerts``) read the most recently changed first, page
    after page: without an index in that order every page sorted every matching alert
    (1 s for a page of the resolved ones among a million). The index holds the resolved
    alerts only, which are nearly all of a big store's: a firing alert's repeat moves its
    ``last_change`` (a sender without times) and would move its entry on every re-send,
    which cost a quarter of the re-send rate with a million alerts stored (``python -m
    bench.scale``). The firing ones, as many as fire at once, are sorted by the list."""
    db.execute(
        "CREATE INDEX alerts_resolved_changed ON alerts (status, last_change, id)"
        " WHERE status = 'resolved'"
    )


@migrations()
def m027_notification_states(db: sqlite_utils.Database) -> None:
    """The delivery log by state (the API's and the console's ``state`` filter) reads the
    newest first: through the index the sender uses (state, due_at) every page sorted
    every notification in that state (0.2 s for the sent ones among 300,000). It costs
    a notification's insert and each change of its state, not an alert's event."""
    db.execute("CREATE INDEX notifications_state ON notifications (state, id)")


@migrations()
def m028_dead_letter_entries(db: sqlite_utils.Database) -> None:
    """One shape for a timeline's ``notification_dead``: the dispatcher's entry for a
    letter to a receiver the config lacked said ``reason`` and no ``integration`` or
    ``attempts``, where the sender's says ``error``; those entries take the sender's
    shape (integration none, attempts 0: it was never tried), so that the API, the
    console and the CLI show one. Its text named no URL (only the receiver)."""
    db.execute(
        "UPDATE timeline SET detail = json_remove(json_set(detail,"
        " '$.integration', 'none', '$.attempts', 0, '$.error', json_extract(detail, '$.reason')),"
        " '$.reason')"
        " WHERE kind = 'notification_dead' AND json_extract(detail, '$.reason') IS NOT NULL"
    )


@migrations()
def m029_notification_urls(db: sqlite_utils.Database) -> None:
    """A notification names the URLs its receiver had when it was queued, by digest
    (``url_keys``, its own at ``channel``), not its URL's position alone: a reload
    that reordered them sent a queued message to another URL. Rows an older hub
    stored get theirs at the next start, from the URLs then (``outbox.bind_older_rows``)."""
    db.execute("ALTER TABLE notifications ADD COLUMN url_keys TEXT")


@migrations()
def m030_unack_times(db: sqlite_utils.Database) -> None:
    """An escalation keeps when a person last unacknowledged its incident
    (``unacked_at``): an unack resumes the chain without moving its start, and its
    pages said how long nobody had acknowledged from the start, the hours someone held
    it included. Rows an older hub stored take theirs from the timeline."""
    _script(
        db,
        """
        ALTER TABLE escalations ADD COLUMN unacked_at REAL;
        UPDATE escalations SET unacked_at = (
            SELECT MAX(at) FROM timeline
            WHERE timeline.incident_id = escalations.id AND timeline.kind = 'unacknowledged'
        );
        """,
    )


@migrations()
def m031_silence_updates(db: sqlite_utils.Database) -> None:
    """A silence changed in place (``PUT /api/v1/silences/{id}``) keeps its id and creator
    and says who changed it last, and when; NULL for one never changed."""
    _script(
        db,
        """
        ALTER TABLE silences ADD COLUMN updated_by TEXT;
        ALTER TABLE silences ADD COLUMN updated_at REAL;
        """,
    )


@migrations()
def m032_silence_vouchers(db: sqlite_utils.Database) -> None:
    """A silence made or changed for a person its token named (Grafana's or karma's
    user, through a token that speaks for others) keeps that token's name beside them;
    NULL where the token is the author itself."""
    _script(
        db,
        """
        ALTER TABLE silences ADD COLUMN created_via TEXT;
        ALTER TABLE silences ADD COLUMN updated_via TEXT;
        """,
    )


@migrations()
def m033_incident_vouchers(db: sqlite_utils.Database) -> None:
    """An incident acknowledged or resolved for a person its token named (a chat bot's
    or a portal's user, through a token that speaks for others) keeps that token's name
    beside them, as silences do; NULL where the person acted themselves."""
    _script(
        db,
        """
        ALTER TABLE incidents ADD COLUMN acknowledged_via TEXT;
        ALTER TABLE incidents ADD COLUMN resolved_via TEXT;
        """,
    )


@migrations()
def m034_heartbeat_pauses(db: sqlite_utils.Database) -> None:
    """A heartbeat paused through the API (a job decommissioned for a while, a host in
    maintenance) has no deadline and fires nothing until a ping or a resume: when and by
    whom (and the token that named them), and why; ``resumed_at`` is where the deadline
    after a resume counts from, so that a reload does not count it from a ping long
    before the pause. NULL for one never paused."""
    _script(
        db,
        """
        ALTER TABLE heartbeats ADD COLUMN paused_at REAL;
        ALTER TABLE heartbeats ADD COLUMN paused_by TEXT;
        ALTER TABLE heartbeats ADD COLUMN paused_via TEXT;
        ALTER TABLE heartbeats ADD COLUMN pause_reason TEXT;
        ALTER TABLE heartbeats ADD COLUMN resumed_at REAL;
        """,
    )


_json = msgspec.json.Encoder()
_decode_json = msgspec.json.decode

NUMBERED = (
    "deliveries",
    "alerts",
    "incidents",
    "notifications",
    "events",
    "alert_history",
    "timeline",
)
"""The tables whose ids people cite (answers, logs, tickets, ``replay_of``, API URLs, ack
links, a delivery's events and the alert history naming them) or whose rows are listed
in id order (history, timeline): an id once given is never given again, even after
retention deleted its row. The INSERT takes it (``_next_id_sql``): no statement more."""


def _floor_setting(table: str) -> str:
    """The setting keeping the largest id retention deleted from ``table`` as its newest."""
    return f"id_floor:{table}"


_FLOORS = "SELECT substr(name, 10) FROM settings WHERE name > 'id_floor:' AND name < 'id_floor;'"
"""The tables that have a floor, from a range of the settings' key (";" follows ":")."""


def _next_id_sql(table: str) -> str:
    """SQL for ``table``'s next id: one past its largest id and past its floor.

    SQLite's own choice (one past the largest) went back once retention deleted the
    newest rows. Two index probes inside the statement that uses the id, so the
    floor costs no statement of its own and no copy that a rolled-back batch or
    another connection could leave stale. Only a table that has a floor needs them
    (``Tx.floored``): for the others SQLite's choice is the same id.
    """
    return (
        f"(MAX((SELECT IFNULL(MAX(id), 0) FROM {table}), IFNULL((SELECT CAST(value AS INTEGER)"
        f" FROM settings WHERE name = '{_floor_setting(table)}'), 0)) + 1)"
    )


def _numbered(table: str, sql: str) -> tuple[str, str]:
    """``sql`` with ``{id}`` as ``table``'s next id: SQLite's (NULL), and the floor's.
    Indexed by ``Tx.floored``; both built once, as ``_insert_sql`` builds the others:
    a string built anew for every event is hashed anew for SQLite's statement cache."""
    return sql.format(id="NULL"), sql.format(id=_next_id_sql(table))


_SELECT_NEXT_ID = {
    table: (f"SELECT IFNULL(MAX(id), 0) + 1 FROM {table}", f"SELECT {_next_id_sql(table)}")
    for table in NUMBERED
}
_INSERT_DELIVERY = _numbered(
    "deliveries",
    "INSERT INTO deliveries (id, source, delivery_key, received_at, headers, body, mode,"
    " replay_of, decision, status_code, response)"
    " VALUES (COALESCE(?, {id}), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
_INSERT_EVENT = _numbered(
    "events",
    "INSERT INTO events (id, delivery_id, alert_id, status, severity, occurred_at,"
    " outcome) VALUES ({id}, ?, ?, ?, ?, ?, ?)",
)
_INSERT_HISTORY = _numbered(
    "alert_history",
    "INSERT INTO alert_history"
    " (id, alert_id, event_id, at, recorded_at, status, severity, summary, applied)"
    " VALUES ({id}, ?, ?, ?, ?, ?, ?, ?, ?)",
)
_EARLIEST_CHANGE = (
    "CASE WHEN last_notified_at IS NULL THEN first_seen + group_wait"
    " ELSE MAX(:now, last_notified_at + group_interval) END"
)
_UNMARKED = f"(due_at IS NULL OR due_at > {_EARLIEST_CHANGE} OR changed_at IS NULL)"
"""A receiver's grouping state that ``Tx.mark_receivers_due`` writes at ``:now``."""
_MARK_RECEIVERS_DUE = (
    f"UPDATE incident_receivers SET due_at = MIN(COALESCE(due_at, 9e18), {_EARLIEST_CHANGE}),"
    f" changed_at = COALESCE(changed_at, :now) WHERE incident_id = :incident AND {_UNMARKED}"
)
_LATEST_INCIDENT = (
    "SELECT id, status, severity, title_alert_id, active_alerts, acknowledged_at, resolved_at,"
    " episode, receivers, timing, escalation, NOT EXISTS (SELECT 1 FROM incident_receivers"
    f" WHERE incident_id = incidents.id AND {_UNMARKED}) AS receivers_marked"
    " FROM incidents WHERE group_key = :group ORDER BY id DESC LIMIT 1"
)
_INSERT_TIMELINE = _numbered(
    "timeline",
    "INSERT INTO timeline (id, incident_id, at, kind, actor, detail) VALUES ({id}, ?, ?, ?, ?, ?)",
)
_INSERT_NOTIFICATION = _numbered(
    "notifications",
    "INSERT INTO notifications (id, incident_id, receiver, channel, integration,"
    " url_keys, kind, payload, created_at, due_at, changed_at)"
    " VALUES ({id}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
_INSERT_DEAD_LETTER = _numbered(
    "notifications",
    "INSERT INTO notifications (id, incident_id, receiver, channel, integration,"
    " url_keys, kind, payload, state, created_at, due_at, last_error)"
    " VALUES ({id}, ?, ?, ?, ?, ?, ?, ?, 'dead', ?, ?, ?) RETURNING *",
)


ACTIVE_SILENCES = (
    "SELECT * FROM silences"
    " WHERE (starts_at IS NULL OR starts_at <= ? OR typeof(starts_at) IN ('text', 'blob'))"
    " AND (ends_at IS NULL OR ends_at > ?)"
)
"""The API's silences in force at a moment, and those whose start is no time (SQLite
orders text after every number): read, each unreadable one is logged and left out."""


class Tx:
    """The narrow write interface handed to write functions, inside a transaction."""

    def __init__(self, conn: sqlite3.Connection, unreadable: set[tuple[str, str]]) -> None:
        """``unreadable``: the store's silences already logged as unreadable."""
        self.conn = conn
        self.unreadable = unreadable
        self.logged: list[Logged] = []
        self._floors: frozenset[str] | None = None

    def floored(self, table: str) -> bool:
        """Whether ``table`` has a floor (``_next_id_sql``), read once a transaction rather
        than in every INSERT: while this one holds the write lock no other connection
        writes, and a batch run again after a failure runs with a new Tx. Retention,
        which alone moves floors, reads them again (``_floors_kept``)."""
        if self._floors is None:
            self._floors = frozenset(row[0] for row in self.conn.execute(_FLOORS))
        return table in self._floors

    def isolated(self, fn: Callable[[Tx], T]) -> tuple[T | None, Exception | None]:
        """Run ``fn`` in a savepoint of its own, as a group commit runs each write of a
        batch that failed: if it raises, its changes and lines are undone and the error
        returned, and the rest of the transaction goes on (one item of a worker's round,
        ``hub.worker.Isolation``). An error that ended the transaction (an I/O error, a
        full disk) leaves no savepoint to roll back to, and fails the whole write."""
        return _run_in_savepoint(self.conn, self, fn)

    def log(self, logger: logging.Logger, level: int, message: str, *args: object) -> None:
        """Log ``message`` once this write is committed, not while it runs: a batch run
        again after one of its writes failed would log it twice, and a write rolled
        back, or whose COMMIT failed, would log what never happened."""
        self.logged.append((logger, level, message, args))

    def active_silences(self, now: datetime) -> list[Silence]:
        """The API's silences in force at ``now`` as this transaction sees them, the
        writes queued ahead of it (an expiry, a change) included."""
        at = now.timestamp()
        cursor = self.conn.execute(ACTIVE_SILENCES, (at, at))
        return _in_force(_all(cursor), self.unreadable)

    def find_delivery(self, source: str, key: str) -> tuple[int, Any, bytes] | None:
        """The status code, answer and body of the delivery with this key."""
        row = self.conn.execute(
            "SELECT status_code, response, body FROM deliveries"
            " WHERE source = ? AND delivery_key = ?",
            (source, key),
        ).fetchone()
        return (row[0], _decode_json(row[1]), row[2]) if row else None

    def next_delivery_id(self) -> int:
        """The next delivery's id (``_next_id_sql``), taken first so that an answer naming
        its delivery is stored in the same INSERT."""
        return self._next_id("deliveries")

    def insert_delivery(
        self,
        delivery_id: int | None,
        source: str,
        key: str | None,
        received_at: float,
        headers: dict,
        body: bytes,
        *,
        answer: tuple[int, Any],
        mode: str = "live",
        replay_of: int | None = None,
        decision: Any = None,
    ) -> int:
        """A delivery with the ``answer`` (status code, body) its sender was given;
        ``delivery_id`` None takes the next id in the INSERT. Returns the id."""
        status_code, response = answer
        cursor = self.conn.execute(
            _INSERT_DELIVERY[self.floored("deliveries")],
            (
                delivery_id,
                source,
                key,
                received_at,
                _json.encode(headers),
                body,
                mode,
                replay_of,
                None if decision is None else _json.encode(decision),
                status_code,
                _json.encode(response),
            ),
        )
        return cursor.lastrowid  # type: ignore[return-value]

    def alert_state(self, fingerprint: str) -> dict | None:
        """What the state machine decides on, without decoding labels: the repeat path
        (most of Prometheus' traffic) needs nothing more."""
        cursor = self.conn.execute(
            "SELECT id, status, severity, summary, last_change, incident_id, ends_at,"
            " end_check_at, annotations FROM alerts WHERE fingerprint = ?",
            (fingerprint,),
        )
        return _one(cursor)

    def next_alert_id(self) -> int:
        """The next alert's id (``_next_id_sql``), taken first so that an incident the alert
        opens names it in the same transaction."""
        return self._next_id("alerts")

    def _next_id(self, table: str) -> int:
        return self.conn.execute(_SELECT_NEXT_ID[table][self.floored(table)]).fetchone()[0]

    def get_alert(self, fingerprint: str) -> dict | None:
        cursor = self.conn.execute("SELECT * FROM alerts WHERE fingerprint = ?", (fingerprint,))
        row = _one(cursor)
        return _decode_alert(row) if row else None

    # incidents ---------------------------------------------------------------

    def incident(self, incident_id: int) -> dict | None:
        row = _one(self.conn.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)))
        return _decode_incident(row) if row else None

    def latest_incident(self, group_key: str, now: float) -> dict | None:
        """The group's newest incident, with the columns that placing a firing alert
        in it and refreshing it after read (``hub.correlate``), not the whole row: on
        every new alert, its 23 columns cost more to read than finding it.

        ``receivers_marked``: no receiver's grouping state is one that
        ``mark_receivers_due`` would write at ``now`` (in a busy incident, the common
        case), so the refresh after an alert joins need not run that statement.
        """
        row = _one(self.conn.execute(_LATEST_INCIDENT, {"group": group_key, "now": now}))
        if row is None:
            return None
        return {
            **row,
            "receivers": _decode_json(row["receivers"]),
            "timing": _decode_json(row["timing"]),
        }

    def source_alert_labels(self, source: str) -> list[tuple[int, str, dict[str, str]]]:
        """The id, fingerprint and labels of every alert ``source`` created."""
        cursor = self.conn.execute(
            "SELECT id, fingerprint, labels FROM alerts WHERE source = ?", (source,)
        )
        return [(row[0], row[1], _decode_json(row[2])) for row in cursor]

    def rekey_alert(self, alert_id: int, fingerprint: str) -> bool:
        """Give the alert a new fingerprint; False (and no change) when another alert
        has that one."""
        cursor = self.conn.execute(
            "UPDATE OR IGNORE alerts SET fingerprint = ? WHERE id = ?", (fingerprint, alert_id)
        )
        return cursor.rowcount == 1

    def positional_group_keys(self, since: float) -> list[tuple[int, str]]:
        """The id and group key of each incident an older hub keyed by its route's
        position (``0.3:{...}``; a route key starts with "{") that an alert may still
        join or reopen: not resolved, or resolved since ``since``. Two index-driven
        halves, so that a start does not read every incident ever kept."""
        cursor = self.conn.execute(
            "SELECT id, group_key FROM incidents WHERE status IN ('open', 'acknowledged')"
            " AND group_key NOT LIKE '{%'"
            " UNION ALL SELECT id, group_key FROM incidents INDEXED BY incidents_resolved"
            " WHERE status = 'resolved'"
            " AND resolved_at >= ? AND group_key NOT LIKE '{%'",
            (since,),
        )
        return cursor.fetchall()

    def episode_alerts(self, incident_id: int) -> list[dict]:
        """The alerts of the incident's current episode, what its messages list: those
        that resolved before it last reopened belong to an episode that is over. Each
        with what muting and writing a message read of it (``_EPISODE_COLUMNS``); the
        annotations of those a message lists are read apart (``alert_annotations``):
        read whole and decoded, 20,000 alerts took 308-386 ms against 160-175."""
        cursor = self.conn.execute(
            f"SELECT {_EPISODE_COLUMNS} FROM alerts"
            " WHERE incident_id = ? AND past_episode IS NULL ORDER BY id",
            (incident_id,),
        )
        return [_decode_episode_alert(row) for row in _all(cursor)]

    def alert_annotations(self, alert_ids: list[int]) -> dict[int, dict[str, str]]:
        """The annotations of these alerts, by id: those of the alerts a message lists."""
        cursor = self.conn.execute(
            f"SELECT id, annotations FROM alerts WHERE id IN ({_marks(alert_ids)})",
            tuple(alert_ids),
        )
        return {row["id"]: _decode_json(row["annotations"]) for row in _all(cursor)}

    def episode_headline(self, incident_id: int) -> dict | None:
        """The id, summary and severity of the most severe alert of the incident's
        current episode, firing or not, the one stored first among equals."""
        cursor = self.conn.execute(
            f"SELECT id, summary, severity FROM alerts WHERE incident_id = ?"
            f" AND past_episode IS NULL ORDER BY {_SEVERITY_RANK}, id LIMIT 1",
            (incident_id,),
        )
        return _one(cursor)

    def end_episode(self, incident_id: int, episode: int) -> None:
        """The incident reopens: its resolved alerts stay in ``episode``, now over (an
        alert firing again joins the new one: ``past_episode`` is cleared then)."""
        self.conn.execute(
            "UPDATE alerts SET past_episode = ? WHERE incident_id = ? AND status = 'resolved'"
            " AND past_episode IS NULL",
            (episode, incident_id),
        )

    def firing_alert_labels(self, wanted: SourceFilter | None = None) -> list[dict[str, str]]:
        """What inhibition rules match sources against: the firing alerts' labels, of
        those that have one rule's ``wanted`` pairs (``inhibit.source_filter``), or all.
        With ``index_source_labels`` done for the rules, each rule's sources are found
        through an index rather than by reading every firing alert's labels."""
        sql, params = self._firing_sources(wanted)
        cursor = self.conn.execute(sql, params)
        return [
            matchable({"severity": row[0], "labels": _decode_json(row[1])})
            for row in cursor.fetchall()
        ]

    def _firing_sources(self, wanted: SourceFilter | None) -> tuple[str, list[str]]:
        """SQL reading the firing alerts that ``wanted`` allows as sources, a label read
        as ``matchable`` reads it (``severity``: the label, else the alert's own), each
        rule's a SELECT of its own so that it can use its label's index
        (``index_source_labels``)."""
        columns = "SELECT severity, labels FROM alerts WHERE status = 'firing'"
        if wanted is None:
            return columns, []
        rows = "SELECT id, severity, labels FROM alerts WHERE status = 'firing'"
        selects, params = [], []
        for probe in wanted:
            if probe.pairs:
                having = " AND ".join(f"{_label_value(name)} = ?" for name, _ in probe.pairs)
                selects.append(f"{rows} AND {having}")
                params += [value for _, value in probe.pairs]
                continue
            values = self._label_values(probe.regex)
            if values is None:
                return columns, []  # this rule's sources may be any firing alerts
            if values:
                listed = ", ".join("?" * len(values))
                selects.append(f"{rows} AND {_label_value(probe.regex.name)} IN ({listed})")
                params += values
        if not selects:  # no rule, or no firing alert any rule could take as its source
            return f"{columns} AND 0", []
        return f"SELECT severity, labels FROM ({' UNION '.join(selects)})", params

    def _label_values(self, regex: Matcher) -> list[str] | None:
        """The values of ``regex``'s label among the firing alerts that it matches, read
        from the label's index (the planner would read every firing alert's labels, not
        knowing the index holds them); None without that index yet (a reload's comes
        next) or with more values matching than one statement may name."""
        expression = _label_value(regex.name)
        try:
            cursor = self.conn.execute(
                f'SELECT DISTINCT {expression} FROM alerts INDEXED BY "{_label_index(regex.name)}"'
                f" WHERE status = 'firing' AND {expression} IS NOT NULL"
            )
        except sqlite3.OperationalError as e:
            if not str(e).startswith("no such index"):
                raise
            return None
        values = [v for (v,) in cursor if isinstance(v, str) and regex.pattern.fullmatch(v)]
        return values if len(values) <= MAX_PROBED_VALUES else None

    def index_source_labels(self, names: Collection[str]) -> tuple[list[str], list[str]]:
        """Index the firing alerts by each label in ``names`` (those the inhibit rules'
        sources are narrowed by, ``inhibit.source_names``) and drop the indexes of labels
        no longer named; returns the indexes created and dropped.

        Without them, finding the sources read every firing alert's labels in each
        dispatcher round: 119-174 ms on the event loop at 200,000 firing alerts. The
        indexes hold firing alerts only, and only writes that set an alert's labels,
        severity or status touch them (a repeat sets none of those)."""
        wanted = {_label_index(name): _label_value(name) for name in names}
        present = {row[0] for row in self.conn.execute(_SOURCE_INDEXES)}
        dropped = sorted(present - wanted.keys())
        created = sorted(wanted.keys() - present)
        for index in dropped:
            self.conn.execute(f'DROP INDEX "{index}"')
        for index in created:
            self.conn.execute(
                f"CREATE INDEX \"{index}\" ON alerts ({wanted[index]}) WHERE status = 'firing'"
            )
        return created, dropped

    def add_timeline(
        self, incident_id: int, at: float, kind: str, actor: str | None, detail: dict
    ) -> None:
        self.conn.execute(
            _INSERT_TIMELINE[self.floored("timeline")],
            (incident_id, at, kind, actor, _json.encode(detail)),
        )

    def add_receiver(
        self,
        incident_id: int,
        receiver: str,
        send_resolved: bool,
        first_seen: float,
        waits: tuple[float, float],
    ) -> None:
        """Start the grouping state of one receiver for an incident that opens.

        ``waits`` is (group_wait, group_interval) of the incident's route.
        """
        self.conn.execute(
            "INSERT INTO incident_receivers (incident_id, receiver, send_resolved,"
            " first_seen, group_wait, group_interval) VALUES (?, ?, ?, ?, ?, ?)",
            (incident_id, receiver, int(send_resolved), first_seen, *waits),
        )

    def mark_receivers_due(self, incident_id: int, now: float) -> None:
        """Something changed: look at each receiver again at the earliest moment a
        change may be sent (group_wait after the first alert, then group_interval
        after the last message), not at every change: a busy incident costs one
        look per interval, as an Alertmanager group does. The first change since the
        last message also records when it came (``changed_at``). A receiver already
        due by then, with a change pending, is not written again: in a busy incident
        that is nearly every change."""
        self.conn.execute(_MARK_RECEIVERS_DUE, {"now": now, "incident": incident_id})

    def count_active(self, incident_id: int, delta: int) -> None:
        self.conn.execute(
            "UPDATE incidents SET active_alerts = active_alerts + ? WHERE id = ?",
            (delta, incident_id),
        )

    def highest_active_severity(self, incident_id: int, ranked: tuple[str, ...]) -> str | None:
        """The first of ``ranked`` that a firing alert of the incident has (index probes)."""
        for severity in ranked:
            found = self.conn.execute(
                "SELECT 1 FROM alerts WHERE incident_id = ? AND status = 'firing'"
                " AND severity = ? LIMIT 1",
                (incident_id, severity),
            ).fetchone()
            if found:
                return severity
        return None

    def first_firing_alert(self, incident_id: int, severity: str) -> dict | None:
        """The id and summary of the incident's first stored alert firing at ``severity``
        (an index probe: the index holds each key's rows in id order)."""
        cursor = self.conn.execute(
            "SELECT id, summary FROM alerts WHERE incident_id = ? AND status = 'firing'"
            " AND severity = ? ORDER BY id LIMIT 1",
            (incident_id, severity),
        )
        return _one(cursor)

    def due_receivers(self, now: float, limit: int) -> list[dict]:
        return _all(
            self.conn.execute(
                "SELECT * FROM incident_receivers WHERE due_at IS NOT NULL AND due_at <= ?"
                " ORDER BY due_at LIMIT ?",
                (now, limit),
            )
        )

    def set_receiver_state(self, incident_id: int, receiver: str, changes: dict) -> None:
        assignments = ", ".join(f"{column} = ?" for column in changes)
        self.conn.execute(
            f"UPDATE incident_receivers SET {assignments} WHERE incident_id = ? AND receiver = ?",
            (*changes.values(), incident_id, receiver),
        )

    def repage_receivers(self, incident_id: int, now: float) -> None:
        """Tell every receiver of the incident again, as if it had never been told: an
        acknowledgement lapsed, and what it was told before was answered by someone
        who no longer holds it. Forgetting what was sent makes the next look send it
        (after ``group_interval``, as any change)."""
        self.conn.execute(
            "UPDATE incident_receivers SET last_notified_hash = NULL, due_at = ?"
            " WHERE incident_id = ?",
            (now, incident_id),
        )

    def wake_muted_receivers(self, now: float) -> int:
        """Make due at ``now`` every receiver whose last look held alerts back (``muted``)
        and whose next look is later; returns how many."""
        cursor = self.conn.execute(
            "UPDATE incident_receivers SET due_at = ? WHERE muted != '[]' AND due_at > ?",
            (now, now),
        )
        return cursor.rowcount

    def due_snoozes(self, now: float, limit: int) -> list[int]:
        """Incidents whose acknowledgement lapses at or before ``now``, earliest first:
        ids only, as ``due_escalations``."""
        cursor = self.conn.execute(
            "SELECT id FROM incidents WHERE snoozed_until IS NOT NULL AND snoozed_until <= ?"
            " ORDER BY snoozed_until LIMIT ?",
            (now, limit),
        )
        return [row[0] for row in cursor.fetchall()]

    # escalations -------------------------------------------------------------

    def escalation(self, incident_id: int) -> dict | None:
        row = _one(self.conn.execute("SELECT * FROM escalations WHERE id = ?", (incident_id,)))
        return _decode_escalation(row) if row else None

    def due_escalations(self, now: float, limit: int) -> list[int]:
        """The incidents whose escalation step is due, earliest first: ids only, each
        row read as its own item (``escalation``), so one whose JSON a fault left
        malformed fails alone, not the whole round."""
        cursor = self.conn.execute(
            "SELECT id FROM escalations WHERE due_at IS NOT NULL AND due_at <= ?"
            " ORDER BY due_at LIMIT ?",
            (now, limit),
        )
        return [row[0] for row in cursor.fetchall()]

    def unhold_escalations(self, now: float) -> int:
        """Make every held step (``held_at``) due at ``now``; returns how many."""
        cursor = self.conn.execute(
            "UPDATE escalations SET due_at = ? WHERE held_at IS NOT NULL AND due_at > ?",
            (now, now),
        )
        return cursor.rowcount

    # heartbeats --------------------------------------------------------------

    def heartbeat(self, name: str) -> dict | None:
        row = _one(self.conn.execute("SELECT * FROM heartbeats WHERE name = ?", (name,)))
        return _decode_heartbeat(row) if row else None

    def due_heartbeats(self, now: float, limit: int) -> list[str]:
        """The heartbeats whose deadline passed, earliest first: names only, each row
        read as its own item (``heartbeat``), as ``due_escalations``."""
        cursor = self.conn.execute(
            "SELECT name FROM heartbeats WHERE deadline IS NOT NULL AND deadline <= ?"
            " ORDER BY deadline LIMIT ?",
            (now, limit),
        )
        return [row[0] for row in cursor.fetchall()]

    def postpone_heartbeat(self, name: str, deadline: float) -> None:
        """Move a heartbeat's deadline alone, without reading its row, which may be
        what failed."""
        self.conn.execute("UPDATE heartbeats SET deadline = ? WHERE name = ?", (deadline, name))

    def save_heartbeat(self, row: dict) -> None:
        """Insert or replace one heartbeat row (definition and ping state)."""
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{column} = excluded.{column}" for column in row)
        self.conn.execute(
            f"INSERT INTO heartbeats ({columns}) VALUES ({marks})"
            f" ON CONFLICT (name) DO UPDATE SET {updates}",
            _encode_values(row),
        )

    def delete_heartbeat(self, name: str) -> None:
        self.conn.execute("DELETE FROM heartbeats WHERE name = ?", (name,))

    def config_heartbeats(self) -> list[dict]:
        """The stored heartbeats that came from the config file."""
        cursor = self.conn.execute("SELECT * FROM heartbeats WHERE origin = 'config'")
        return [_decode_heartbeat(row) for row in _all(cursor)]

    # retention ---------------------------------------------------------------

    def prune_deliveries(self, before: float, limit: int) -> dict[str, int]:
        """Delete up to ``limit`` deliveries received before ``before``, with their events
        (history rows outlive them and lose only the link to the event); returns the
        rows deleted by kind, as each ``prune_*`` does.

        Ids grow with the receive time, so the oldest ``limit`` by id are read and the
        run received before ``before`` is deleted; no index on the receive time is
        kept for this. A clock stepped back delays, never widens, what is deleted.
        """
        oldest = self.conn.execute(
            "SELECT id, received_at FROM deliveries ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        ids = [row[0] for row in itertools.takewhile(lambda row: row[1] < before, oldest)]
        if not ids:
            return {"deliveries": 0}
        events = f"SELECT id FROM events WHERE delivery_id IN ({_marks(ids)})"
        self.conn.execute(
            f"UPDATE alert_history SET event_id = NULL WHERE event_id IN ({events})", ids
        )
        with self._floors_kept("deliveries", "events"):
            self.conn.execute(f"DELETE FROM events WHERE delivery_id IN ({_marks(ids)})", ids)
            self.conn.execute(f"DELETE FROM deliveries WHERE id IN ({_marks(ids)})", ids)
        return {"deliveries": len(ids)}

    def prune_history(self, before: float, limit: int) -> dict[str, int]:
        ids = self._ids("SELECT id FROM alert_history WHERE recorded_at < ? LIMIT ?", before, limit)
        if ids:
            with self._floors_kept("alert_history"):
                self.conn.execute(f"DELETE FROM alert_history WHERE id IN ({_marks(ids)})", ids)
        return {"history": len(ids)}

    def prune_silences(self, before: float, limit: int) -> dict[str, int]:
        """Delete the API's silences that ended before ``before``: one made for every
        deploy would otherwise stay in the unpaged silence list for ever (Alertmanager
        drops expired ones after its retention too). Ids are random: none to keep."""
        sql = "SELECT id FROM silences WHERE ends_at < ? LIMIT ?"
        ids = [row[0] for row in self.conn.execute(sql, (before, limit))]
        if ids:
            self.conn.execute(f"DELETE FROM silences WHERE id IN ({_marks(ids)})", ids)
        return {"silences": len(ids)}

    def prune_incidents(self, before: float, limit: int) -> dict[str, int]:
        """Delete resolved incidents resolved before ``before`` with everything hanging off
        them: timeline, grouping and escalation state, notifications and their attempts,
        and their alerts that are resolved too (with those alerts' events and history).

        One with a message still queued or being sent stays until it is sent or
        dead-lettered: a receiver down past the age (or a hub down that long) must not
        lose the messages it was owed, unseen."""
        ids = self._ids(
            "SELECT id FROM incidents WHERE status = 'resolved' AND resolved_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM notifications WHERE incident_id = incidents.id"
            "   AND state IN ('pending', 'sending'))"
            " LIMIT ?",
            before,
            limit,
        )
        if not ids:
            return {"incidents": 0}
        marks = _marks(ids)
        notifications = f"SELECT id FROM notifications WHERE incident_id IN ({marks})"
        with self._floors_kept("incidents", "notifications", "timeline"):
            for sql in (
                f"DELETE FROM notification_attempts WHERE notification_id IN ({notifications})",
                f"DELETE FROM notifications WHERE incident_id IN ({marks})",
                f"DELETE FROM timeline WHERE incident_id IN ({marks})",
                f"DELETE FROM incident_receivers WHERE incident_id IN ({marks})",
                f"DELETE FROM escalations WHERE id IN ({marks})",
            ):
                self.conn.execute(sql, ids)
            alerts = self._delete_alerts(f"incident_id IN ({marks}) AND status = 'resolved'", ids)
            for sql in (
                f"UPDATE alerts SET incident_id = NULL WHERE incident_id IN ({marks})",
                f"DELETE FROM incidents WHERE id IN ({marks})",
            ):
                self.conn.execute(sql, ids)
        return {"incidents": len(ids), **alerts}

    def prune_alerts(self, before: float, limit: int) -> dict[str, int]:
        """Delete up to ``limit`` resolved alerts of no incident resolved before
        ``before``, with their events and history. Such alerts no incident's pruning
        reaches: one created already resolved (a resolve hub had no alert for), or one
        whose incident was pruned while it still fired and that resolved later."""
        ids = self._ids(
            "SELECT id FROM alerts WHERE incident_id IS NULL AND status = 'resolved'"
            " AND resolved_at < ? LIMIT ?",
            before,
            limit,
        )
        return self._delete_alerts(f"id IN ({_marks(ids)})", ids) if ids else {"alerts": 0}

    def _delete_alerts(self, where: str, params: list[int]) -> dict[str, int]:
        """Delete the alerts ``where`` selects, their history and events first, as
        those rows refer to them; returns how many alerts and history rows went."""
        alerts = f"SELECT id FROM alerts WHERE {where}"
        with self._floors_kept("alerts", "alert_history", "events"):
            history = self.conn.execute(
                f"DELETE FROM alert_history WHERE alert_id IN ({alerts})", params
            ).rowcount
            self.conn.execute(f"DELETE FROM events WHERE alert_id IN ({alerts})", params)
            deleted = self.conn.execute(f"DELETE FROM alerts WHERE {where}", params).rowcount
        return {"alerts": deleted, "history": history}

    @contextlib.contextmanager
    def _floors_kept(self, *tables: str) -> Iterator[None]:
        """Where the deletes in the block take a table's newest row, keep its id as the
        table's floor (``_next_id_sql``), in their transaction: a crash keeps both or
        neither. Only then: deleting old rows below a newer one writes nothing more.
        A floor only rises: older rows going after it was kept (a long-open incident
        pruned after a newer one) leave it where it is. One the table's ids have passed
        is dropped: it can no longer matter, and inserts into a table without one need
        not probe for it (``Tx.floored``)."""
        newest = {table: self._newest_id(table) for table in tables}
        yield
        for table, top in newest.items():
            left, floor = self._newest_id(table), self._floor(table)
            if left < top and top > floor:
                self.put_setting(_floor_setting(table), str(top))
            elif floor and left >= floor:
                self.delete_setting(_floor_setting(table))
        self._floors = None

    def _newest_id(self, table: str) -> int:
        return self.conn.execute(f"SELECT IFNULL(MAX(id), 0) FROM {table}").fetchone()[0]

    def _floor(self, table: str) -> int:
        return int(self.get_setting(_floor_setting(table)) or 0)

    def _ids(self, sql: str, *params: object) -> list[int]:
        return [row[0] for row in self.conn.execute(sql, params).fetchall()]

    def get_setting(self, name: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def settings_under(self, prefix: str) -> dict[str, str]:
        """Every setting whose name starts with ``prefix``, keyed by the rest of the name."""
        rows = self.conn.execute(
            "SELECT name, value FROM settings WHERE substr(name, 1, ?) = ?", (len(prefix), prefix)
        ).fetchall()
        return {name[len(prefix) :]: value for name, value in rows}

    def delete_setting(self, name: str) -> None:
        self.conn.execute("DELETE FROM settings WHERE name = ?", (name,))

    def put_setting(self, name: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO settings (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def insert(self, table: str, row: dict) -> int:
        """Insert a row into one of hub's tables; dict and list values are stored as JSON.
        A ``NUMBERED`` table's row without an id takes the next one (``_next_id_sql``)."""
        sql = _insert_sql(table, tuple(row), self.floored(table))
        return self.conn.execute(sql, _encode_values(row)).lastrowid  # type: ignore[return-value]

    def update(self, table: str, row_id: int, changes: dict) -> None:
        sql = _update_sql(table, tuple(changes))
        self.conn.execute(sql, (*_encode_values(changes), row_id))

    def touch_alert(
        self,
        state: dict,
        last_seen: float,
        occurred_at: float,
        ends_at: float | None,
        annotations: dict[str, str] | None = None,
    ) -> None:
        """The cheap repeat path: one counter and a timestamp or two in one statement, plus
        the alert's end when the sender moved it and its annotations when they changed.

        A repeat still moves ``last_change`` forward: the alert was in this state at
        ``occurred_at``, so anything older arriving later is stale. A repeat dated no
        later (a Prometheus re-send keeps its ``startsAt``) leaves it out of the
        statement: SQLite looks at the index entries (``m026``, of a resolved alert) of
        every column set, even to its own value. An end moved later
        (every Prometheus re-send) leaves the indexed ``end_check_at`` alone; an end
        that appears, goes or comes nearer moves it too. A sender's resolve repeating
        the expirer's clears the end that resolution kept (``alerts.refires``). The
        latest annotations win, as in Alertmanager (a value in a description, Grafana's
        ``values``); ``None`` (a status-only event, or one without annotations) keeps them.
        """
        assignments = "duplicates = duplicates + 1, last_seen = ?"
        values: list[Any] = [last_seen]
        if occurred_at > state["last_change"]:
            assignments += ", last_change = ?"
            values.append(occurred_at)
        check = state["end_check_at"]
        if ends_at != state["ends_at"]:
            assignments += ", ends_at = ?"
            values.append(ends_at)
            if ends_at is None or check is None or ends_at < check:
                assignments += ", end_check_at = ?"
                values.append(ends_at)
        if (
            annotations is not None
            and (encoded := _json.encode(annotations)) != state["annotations"]
        ):
            assignments += ", annotations = ?"
            values.append(encoded)
        self.conn.execute(f"UPDATE alerts SET {assignments} WHERE id = ?", (*values, state["id"]))

    def ended_alerts(self, now: float, limit: int) -> list[int]:
        """The ids of alerts whose end check is due and whose end has passed, the
        earliest first: each is read on its own (``ended_alert``), so one whose row a
        fault left malformed fails alone."""
        cursor = self.conn.execute(
            "SELECT id FROM alerts WHERE end_check_at <= ? AND ends_at <= ?"
            " ORDER BY end_check_at LIMIT ?",
            (now, now, limit),
        )
        return [row[0] for row in cursor.fetchall()]

    def ended_alert(self, alert_id: int) -> dict:
        cursor = self.conn.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return _decode_alert(_all(cursor)[0])

    def postpone_end_check(self, alert_id: int, at: float) -> None:
        """Check the alert's end again ``at``: resolving it raised."""
        self.conn.execute("UPDATE alerts SET end_check_at = ? WHERE id = ?", (at, alert_id))

    def move_end_checks(self, now: float, limit: int) -> int:
        """Alerts whose end check is due but whose sender moved the end later since:
        the next check is at the new end. One statement, no row leaves SQLite."""
        cursor = self.conn.execute(
            "UPDATE alerts SET end_check_at = ends_at WHERE id IN (SELECT id FROM alerts"
            " WHERE end_check_at <= ? AND ends_at > ? ORDER BY end_check_at LIMIT ?)",
            (now, now, limit),
        )
        return cursor.rowcount

    def insert_event(
        self,
        delivery_id: int,
        alert_id: int,
        status: str,
        severity: str,
        occurred_at: float,
        outcome: str,
    ) -> int:
        cursor = self.conn.execute(
            _INSERT_EVENT[self.floored("events")],
            (delivery_id, alert_id, status, severity, occurred_at, outcome),
        )
        return cursor.lastrowid  # type: ignore[return-value]

    def add_history(self, alert_id: int, event_id: int, row: dict) -> None:
        self.conn.execute(
            _INSERT_HISTORY[self.floored("alert_history")],
            (
                alert_id,
                event_id,
                row["at"],
                row["recorded_at"],
                row["status"],
                row["severity"],
                row["summary"],
                int(row["applied"]),
            ),
        )

    def enqueue_notification(
        self,
        incident_id: int,
        target: Target,
        kind: str,
        payload: bytes,
        due_at: float,
        changed_at: float | None = None,
    ) -> int:
        """Write a notification intent in the caller's transaction (the outbox).

        ``payload`` is the encoded message context, rendered per channel at send time;
        ``changed_at`` when hub received the change it reports (None for a page).
        """
        cursor = self.conn.execute(
            _INSERT_NOTIFICATION[self.floored("notifications")],
            (incident_id, *target.columns(), kind, payload, due_at, due_at, changed_at),
        )
        return cursor.lastrowid  # type: ignore[return-value]

    def dead_letter(
        self,
        incident_id: int,
        target: Target,
        kind: str,
        payload: bytes,
        at: float,
        error: str,
    ) -> dict:
        """Write a notification that cannot be sent straight to the dead letters (a
        receiver the config lacks has no URL to try), where it shows and can be
        retried; returns its row, as a claim returns one."""
        cursor = self.conn.execute(
            _INSERT_DEAD_LETTER[self.floored("notifications")],
            (incident_id, *target.columns(), kind, payload, at, at, error),
        )
        return _decode_notification(dict(cursor.fetchone()))

    def notifying_unknown(self, known: list[str]) -> list[dict]:
        """The receivers outside ``known`` that open or acknowledged incidents still
        notify: (``incident_id``, ``receiver``), and ``lettered``, whether a dead
        letter holds the newest message to it: a row ``dead`` or ``dismissed`` with
        the newest row's payload, which the rows of one message share (one per URL,
        and those a retry of a letter queued for the receiver's other URLs)."""
        cursor = self.conn.execute(
            "SELECT r.incident_id, r.receiver, EXISTS (SELECT 1 FROM notifications n"
            "   WHERE n.incident_id = r.incident_id AND n.receiver = r.receiver"
            "   AND n.state IN ('dead', 'dismissed') AND n.payload = (SELECT payload"
            "     FROM notifications WHERE incident_id = r.incident_id"
            "     AND receiver = r.receiver ORDER BY id DESC LIMIT 1)) AS lettered"
            " FROM incidents i JOIN incident_receivers r ON r.incident_id = i.id"
            " WHERE i.status IN ('open', 'acknowledged')"
            " AND r.receiver NOT IN (SELECT value FROM json_each(?))"
            " ORDER BY r.receiver, r.incident_id",
            (_json.encode(known).decode(),),
        )
        return _all(cursor)

    def retry_notification(
        self, notification_id: int, now: float, target: Target | None = None
    ) -> bool:
        """Put a dead letter back in the queue with a fresh attempt budget, counted from
        the attempts it has (``attempts`` keeps counting them all), to the URL of
        ``target`` if given (one written for a receiver the config lacked had none)."""
        moved = target.columns()[1:] if target else (None,) * 3
        cursor = self.conn.execute(
            "UPDATE notifications SET state = 'pending', retried_attempts = attempts,"
            " due_at = ?, channel = COALESCE(?, channel), integration = COALESCE(?, integration),"
            " url_keys = COALESCE(?, url_keys) WHERE id = ? AND state = 'dead'",
            (now, *moved, notification_id),
        )
        return cursor.rowcount == 1

    def unbound_notifications(self, unsent_integration: str) -> list[dict]:
        """The notifications that may still be sent (pending, claimed, dead) and name no
        URLs (``url_keys``): those an older hub queued, which named the URL by its
        position alone; a letter through ``unsent_integration`` never had one."""
        cursor = self.conn.execute(
            "SELECT id, receiver, channel FROM notifications"
            " WHERE state IN ('pending', 'sending', 'dead') AND url_keys IS NULL"
            " AND integration != ?",
            (unsent_integration,),
        )
        return _all(cursor)

    def bind_notification_urls(self, notification_id: int, url_keys: list[str]) -> None:
        self.conn.execute(
            "UPDATE notifications SET url_keys = ? WHERE id = ?",
            (_json.encode(url_keys).decode(), notification_id),
        )

    def dismiss_notification(self, notification_id: int) -> bool:
        """Mark a dead letter ``dismissed``: a person decided it needs no sending; False
        if it is not dead."""
        cursor = self.conn.execute(
            "UPDATE notifications SET state = 'dismissed' WHERE id = ? AND state = 'dead'",
            (notification_id,),
        )
        return cursor.rowcount == 1

    def set_aside_waiting(self, incident_id: int, receiver: str, reason: str) -> None:
        """Mark the incident's messages to ``receiver`` still waiting in the outbox
        ``dismissed`` with ``reason``: they are never sent, retried or counted as dead."""
        self.conn.execute(
            "UPDATE notifications SET state = 'dismissed', claimed_until = NULL, last_error = ?"
            " WHERE incident_id = ? AND receiver = ? AND state IN ('pending', 'sending')",
            (reason, incident_id, receiver),
        )

    def claim_notifications(
        self, now: float, lease: float, limit: int, sending: Collection[int] = ()
    ) -> list[int]:
        """Claim due rows, and rows whose claimer's lease ran out (it died mid-send) but
        those this process is ``sending``: only one process sends, so a lease that ran
        out on a row still in flight here means the clock stepped forward (an NTP
        correction, a machine resumed), and claiming it would send it twice. Returns
        their ids: each row is read as its own item (``claimed_notification``), so one
        a fault left unreadable (a text column that is not UTF-8) fails alone, not every
        claim; one whose JSON is malformed is read (``Unreadable``) and dead-lettered."""
        cursor = self.conn.execute(
            "UPDATE notifications SET state = 'sending', claimed_until = ?,"
            " attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM notifications"
            "   WHERE (state = 'pending' AND due_at <= ?)"
            "      OR (state = 'sending' AND claimed_until <= ?"
            "          AND id NOT IN (SELECT value FROM json_each(?)))"
            "   ORDER BY due_at LIMIT ?)"
            " RETURNING id",
            (now + lease, now, now, _json.encode(sorted(sending)).decode(), limit),
        )
        return sorted(row[0] for row in cursor.fetchall())

    def claimed_notification(self, notification_id: int) -> dict:
        """One row this transaction claimed, decoded."""
        cursor = self.conn.execute("SELECT * FROM notifications WHERE id = ?", (notification_id,))
        return _decode_notification(_all(cursor)[0])

    def unclaim_notification(self, notification_id: int, due_at: float) -> None:
        """Put a claimed row back in the queue, due at ``due_at``, its claim not counted
        as an attempt: it was never sent."""
        self.conn.execute(
            "UPDATE notifications SET state = 'pending', claimed_until = NULL,"
            " attempts = attempts - 1, due_at = ? WHERE id = ?",
            (due_at, notification_id),
        )

    def release_claims(self) -> int:
        """Put rows claimed by an earlier process back in the queue, due at once.

        Only one process sends (see ``hub.app``), so at its start every row still
        marked 'sending' belongs to a claimer that died mid-send; waiting for its
        lease to run out would hold a page back for the lease's length.
        """
        cursor = self.conn.execute(
            "UPDATE notifications SET state = 'pending', claimed_until = NULL"
            " WHERE state = 'sending'"
        )
        return cursor.rowcount

    def record_attempt(
        self,
        notification_id: int,
        started_at: float,
        duration_ms: float,
        outcome: str,
        error: str | None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO notification_attempts"
            " (notification_id, started_at, duration_ms, outcome, error) VALUES (?, ?, ?, ?, ?)",
            (notification_id, started_at, duration_ms, outcome, error),
        )

    def finish_notification(
        self, notification_id: int, state: str, error: str | None, at: float, due_at: float
    ) -> bool:
        """Settle a claimed row: sent, back to pending with a later due time, or dead;
        False if it was no longer claimed."""
        cursor = self.conn.execute(
            "UPDATE notifications SET state = ?, last_error = ?, due_at = ?,"
            " claimed_until = NULL, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END"
            " WHERE id = ? AND state = 'sending'",
            (state, error, due_at, state, at, notification_id),
        )
        return cursor.rowcount == 1

    def get_silence(self, silence_id: str) -> Silence | UnreadableSilence | None:
        """The silence whose id, as lists show it, is ``silence_id`` (``_silence_with_id``)."""
        return _silence_with_id(_all(self.conn.execute(SILENCE_BY_ID, (silence_id,))), silence_id)

    def unexpired_silences(self, at: float) -> int:
        """How many of the API's silences end after ``at``: pending and active ones."""
        return self.conn.execute(
            "SELECT COUNT(*) FROM silences WHERE ends_at > ?", (at,)
        ).fetchone()[0]

    def insert_silence(self, silence: Silence) -> None:
        self.conn.execute(
            "INSERT INTO silences"
            " (id, matchers, starts_at, ends_at, created_by, created_via, comment, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                silence.id,
                _json.encode(silence.matchers),
                _epoch(silence.starts_at),
                _epoch(silence.ends_at),
                silence.created_by,
                silence.created_via,
                silence.comment,
                _epoch(silence.created_at),
            ),
        )

    def update_silence(self, changed: Silence) -> None:
        """Store a silence changed in place (``hub.silencing.update``): its matchers, time
        range and comment, and who changed it (through which token) when; its id and
        creator stay."""
        self.conn.execute(
            "UPDATE silences SET matchers = ?, starts_at = ?, ends_at = ?, comment = ?,"
            " updated_by = ?, updated_via = ?, updated_at = ? WHERE id = ?",
            (
                _json.encode(changed.matchers),
                _epoch(changed.starts_at),
                _epoch(changed.ends_at),
                changed.comment,
                changed.updated_by,
                changed.updated_via,
                _epoch(changed.updated_at),
                changed.id,
            ),
        )

    def remove_silence(self, unreadable: UnreadableSilence) -> None:
        """Delete a silence that cannot be read, by its id as stored."""
        self.conn.execute("DELETE FROM silences WHERE id = ?", (unreadable.stored["id"],))

    def expire_silence(self, expired: Silence, at: datetime) -> None:
        """Store a silence ended early (``hub.silences.expire``) and when that happened."""
        self.conn.execute(
            "UPDATE silences SET starts_at = ?, ends_at = ?, expired_at = ? WHERE id = ?",
            (_epoch(expired.starts_at), _epoch(expired.ends_at), _epoch(at), expired.id),
        )


class Store:
    """Owns the SQLite file: migrations, the writer thread and a read connection."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "FULL",
        batch_max: int = 512,
        queue_max: int = 10_000,
        on_commit: Callable[[int, float], None] | None = None,
        lock_wait: float = 30.0,
        aside_max: int = 2,
        on_aside_refused: Callable[[], None] | None = None,
    ) -> None:
        """``lock_wait``: how long writes wait for a write lock another connection holds
        (a backup, an operator's sqlite3 shell) before they are refused. ``aside_max``:
        most reads run aside (``read_aside``) at once; ``on_aside_refused`` is told of
        each one refused past it."""
        self.path = path
        self.synchronous = synchronous
        self.batch_max = batch_max
        self.queue_max = queue_max
        self.on_commit = on_commit
        self.lock_wait = lock_wait
        # Unbounded: queue_max is checked in ``write`` for the writes it may refuse.
        self._pending: deque[tuple[Callable[[Tx], Any], asyncio.Future]] = deque()
        self._writing = False  # a batch is being applied or committed
        self._began: float | None = None  # when the batch now applied took the write lock
        self._lock_probe: asyncio.Future[bool] | None = None  # ``writable``'s, under way
        self._lock_noted = False  # the log said writes wait for a lock held elsewhere
        self._writer: sqlite3.Connection | None = None
        self._loop_reader: sqlite3.Connection | None = None
        self.aside_max = aside_max
        self._on_aside_refused = on_aside_refused
        self._aside: ThreadPoolExecutor | None = None
        self._aside_slots = threading.BoundedSemaphore(aside_max)
        self._aside_local = threading.local()  # ``conn``: a read thread's own connection
        self._aside_readers: list[sqlite3.Connection] = []
        self._scrapes: ThreadPoolExecutor | None = None  # ``read_scrape``'s one thread
        self._commits: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._committer: threading.Thread | None = None
        self._unreadable: set[tuple[str, str]] = set()
        """Silences (id, column) logged as unreadable: each is logged once per process."""

    # lifecycle -------------------------------------------------------------

    def open(self) -> None:
        """Migrate the schema, then start the committer; raises if the file is unusable."""
        if Path(self.path).parent.is_dir():  # else connecting says the folder is missing
            create_private(self.path)
        writer = self._connect()
        try:
            _migrate(sqlite_utils.Database(writer), self.path)
        except Exception:
            writer.close()
            raise
        writer.isolation_level = None
        # The loop never waits on SQLite's busy handler: a locked file is retried later.
        writer.execute("PRAGMA busy_timeout = 0")
        self._writer = writer
        self._loop_reader = self._read_connection()
        self._aside = ThreadPoolExecutor(self.aside_max, "hub-store-read")
        self._scrapes = ThreadPoolExecutor(1, "hub-store-scrape")
        self._committer = threading.Thread(
            target=self._run_commits, name="hub-store-commit", daemon=True
        )
        self._committer.start()

    def close(self) -> None:
        """Finish the commit in flight; writes not yet begun are refused (never answered)."""
        if self._committer is not None:
            self._commits.put(None)
            self._committer.join(timeout=30)
            self._committer = None
        closed = Unavailable("the store is closed")
        while self._pending:
            _, future = self._pending.popleft()
            _settle(future, None, closed)
        for reads in (self._aside, self._scrapes):
            if reads is not None:
                # Reads under way end first, on connections still open. One just submitted
                # waits for a thread finishing another: it runs too, where cancelling it
                # handed its request a CancelledError (a traceback in the server's log).
                reads.shutdown()
        self._aside = self._scrapes = None
        for conn in (self._writer, self._loop_reader, *self._aside_readers):
            if conn is not None:
                conn.close()
        self._writer = self._loop_reader = None
        self._aside_readers.clear()

    @property
    def is_open(self) -> bool:
        return self._loop_reader is not None

    @property
    def _reader(self) -> sqlite3.Connection | None:
        """The read connection of this thread: a read thread's own (``read_aside``,
        ``read_scrape``), else the event loop's."""
        return getattr(self._aside_local, "conn", None) or self._loop_reader

    def _read_connection(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute("PRAGMA query_only = ON")
        return conn

    def _aside_reader(self) -> sqlite3.Connection:
        """This read thread's own connection, so a long read holds no snapshot the loop's
        reads would share; opened at the thread's first read, so that one failing to
        open (no file descriptor left) fails that read alone: failing the thread's
        start broke every read aside for good, and kept its slot."""
        conn = getattr(self._aside_local, "conn", None)
        if conn is None:
            conn = self._aside_local.conn = self._read_connection()
            self._aside_readers.append(conn)
        return conn

    @property
    def writer_alive(self) -> bool:
        return self._committer is not None and self._committer.is_alive()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        return conn

    # writing ---------------------------------------------------------------

    async def write(
        self, fn: Callable[[Tx], T], *, background: bool = False, long: bool = False
    ) -> T:
        """Run ``fn`` in the next group commit; return its result once committed.

        With ``queue_max`` writes already waiting, a request's write is refused with
        Unavailable (503, the client retries). A ``background`` write (dispatcher,
        outbox) is always queued: nobody would retry it, and there are only a fixed
        few of those tasks, so they cannot grow the queue without bound.

        A ``long`` write (10,000 new alerts take most of a second; so may a look at an
        incident of many alerts) is applied with its batch in the commit thread, so the
        loop meanwhile goes on answering probes, scrapes and other senders, whose writes
        wait for the next batch as they would behind any other.
        """
        if long:
            fn = _Long(fn)
        if not background and len(self._pending) >= self.queue_max:
            raise Unavailable("the store's write queue is full; retry shortly")
        if self._writer is None:
            raise Unavailable("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, future))
        if not self._writing:
            self._writing = True
            loop.call_soon(self._apply_next, loop, time.monotonic())
        return await future

    def _apply_next(self, loop: asyncio.AbstractEventLoop, since: float) -> None:
        """Apply every waiting write in one transaction, then hand its COMMIT to the
        committer thread; writes arriving meanwhile wait for the next batch.

        Write functions run here, on the event loop, so a write costs no thread
        hand-off; only the COMMIT (the fsync) leaves the loop, once per batch.
        """
        if not self._pending or self._writer is None:
            self._writing = False
            return
        try:
            self._begin()
        except sqlite3.OperationalError as e:
            if _locked(e) and time.monotonic() - since < self.lock_wait:
                self._note_lock(since)
                loop.call_later(LOCKED_RETRY_SECONDS, self._apply_next, loop, since)
                return
            self._lock_noted = False
            batch = self._take_batch()
            self._settle_batch(loop, self._failed(batch, e), len(batch), time.perf_counter())
            return
        self._began = time.monotonic()
        if self._lock_noted:
            self._lock_noted = False
            log.info("event=store_unlocked waited=%.1f", self._began - since)
        batch = self._take_batch()
        started = time.perf_counter()
        if any(isinstance(fn, _Long) for fn, _ in batch):
            self._commits.put(lambda: self._apply_then_commit(loop, batch, started))
            return
        try:
            outcomes, logged = self._apply_batch(batch)
        except sqlite3.Error as e:
            self._settle_batch(loop, self._failed(batch, e), len(batch), started)
            return
        self._commits.put(lambda: self._commit(loop, batch, outcomes, logged, started))

    def _begin(self) -> None:
        """BEGIN IMMEDIATE. Refused as SQLITE_BUSY_SNAPSHOT, the write connection still
        reads a snapshot older than another connection's last write: a statement hub
        left open on it, which no wait for a lock cures. A collection ends one only a
        cycle keeps (an error's traceback), so BEGIN is tried again at once after one;
        refused again, the batch fails now, not after ``lock_wait``, and the log says
        why."""
        try:
            self._writer.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if not _stale(e):
                raise
        else:
            return
        gc.collect()
        try:
            self._writer.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if _stale(e):
                log.error(
                    "event=store_snapshot_stale pending=%d detail=%s",
                    len(self._pending),
                    logs.value(STALE_SNAPSHOT),
                )
            raise

    def _note_lock(self, since: float) -> None:
        """Say once, after ``LOCK_NOTED_SECONDS``, that writes wait for a write lock
        another connection holds (a backup, an operator's shell); ``store_unlocked``
        says when they go on, ``store_commit_failed`` when ``lock_wait`` ran out."""
        waited = time.monotonic() - since
        if waited >= LOCK_NOTED_SECONDS and not self._lock_noted:
            self._lock_noted = True
            log.warning(
                "event=store_locked waited=%.1f lock_wait=%g pending=%d"
                ' detail="another connection holds the write lock; writes wait for it"',
                waited,
                self.lock_wait,
                len(self._pending),
            )

    def _take_batch(self) -> list[tuple[Callable[[Tx], Any], asyncio.Future]]:
        count = min(len(self._pending), self.batch_max)
        return [self._pending.popleft() for _ in range(count)]

    def _apply_batch(self, batch: list) -> tuple[list, list[Logged]]:
        """Run the batch optimistically without savepoints around each write; returns
        each write's outcome and the lines they log once committed (``Tx.log``).

        Write functions rarely fail, and two statements per write are a real share of
        the cost; when one does fail the batch is undone and run again with a
        savepoint around each function, so only the failing one is refused. That
        includes a statement SQLite refused (a unique key taken); only an error that
        ended the transaction itself (an I/O error, a full disk) fails the batch. The
        lines of the undone run go with it.
        """
        conn = self._writer
        tx = Tx(conn, self._unreadable)
        conn.execute("SAVEPOINT batch")
        try:
            outcomes = [(future, fn(tx), None) for fn, future in batch]
        except Exception as e:
            if isinstance(e, sqlite3.Error) and not conn.in_transaction:
                raise
            _clear_frames(e)  # dropped here, but a cycle may keep it (``_run_in_savepoint``)
            conn.execute("ROLLBACK TO batch")
        else:
            conn.execute("RELEASE batch")
            return outcomes, tx.logged
        conn.execute("RELEASE batch")
        tx = Tx(conn, self._unreadable)
        return [(future, *_run_in_savepoint(conn, tx, fn)) for fn, future in batch], tx.logged

    def _apply_then_commit(
        self, loop: asyncio.AbstractEventLoop, batch: list, started: float
    ) -> None:
        """In the commit thread: a batch holding a ``long`` write, applied as the loop
        applies the others, then committed. Any error fails the batch here: one that
        escaped would end the thread, and with it every write."""
        try:
            outcomes, logged = self._apply_batch(batch)
        except Exception as e:
            loop.call_soon_threadsafe(self._commit_failed, loop, batch, e, started)
            return
        self._commit(loop, batch, outcomes, logged, started)

    def _run_commits(self) -> None:
        while (commit := self._commits.get()) is not None:
            commit()

    def _commit(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list,
        outcomes: list,
        logged: list[Logged],
        started: float,
    ) -> None:
        """In the commit thread: the fsync waits here, the loop goes on serving."""
        try:
            self._writer.execute("COMMIT")
        except sqlite3.Error as e:
            loop.call_soon_threadsafe(self._commit_failed, loop, batch, e, started)
        else:
            loop.call_soon_threadsafe(
                self._settle_batch, loop, outcomes, len(batch), started, logged
            )

    def _commit_failed(
        self, loop: asyncio.AbstractEventLoop, batch: list, error: Exception, started: float
    ) -> None:
        self._settle_batch(loop, self._failed(batch, error), len(batch), started)

    def _settle_batch(
        self,
        loop: asyncio.AbstractEventLoop,
        outcomes: list,
        size: int,
        started: float,
        logged: Sequence[Logged] = (),
    ) -> None:
        """Answer the batch's writes; ``logged``: the lines of a committed batch."""
        self._began = None
        if self.on_commit is not None:
            self.on_commit(size, time.perf_counter() - started)
        for logger, level, message, args in logged:
            logger.log(level, message, *args)
        for future, result, error in outcomes:
            _settle(future, result, error)
        self._apply_next(loop, time.monotonic())

    def _failed(self, batch: list, error: Exception) -> list:
        log.exception("event=store_commit_failed batch=%d", len(batch), exc_info=error)
        with contextlib.suppress(sqlite3.Error):
            self._writer.execute("ROLLBACK")
        failure = Unavailable(f"the store could not commit: {error}")
        return [(future, None, failure) for _, future in batch]

    # reading ---------------------------------------------------------------

    async def read_aside(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, a read over many rows, in a read thread rather than on the event
        loop, which meanwhile goes on answering webhooks and probes; every read of the
        store ``fn`` makes goes through that thread's own connection.

        At most ``aside_max`` run at once (memory, and the loop's share of the GIL);
        one more is refused with Unavailable (503), not queued. A slot is given back
        when ``fn`` ends, even if its caller stopped waiting.
        """
        if self._aside is None:
            raise Unavailable("the store is closed")
        if not self._aside_slots.acquire(blocking=False):
            if self._on_aside_refused is not None:
                self._on_aside_refused()
            raise Unavailable(
                f"hub is answering {self.aside_max} reads of this size at once, as many as"
                " [server] read_concurrency allows; retry shortly"
            )
        try:
            future = self._aside.submit(self._in_slot, fn)
        except BaseException:
            self._aside_slots.release()
            raise
        return await asyncio.wrap_future(future)

    def _in_slot(self, fn: Callable[[], T]) -> T:
        """``fn`` in one read transaction, then the slot ``read_aside`` took given back."""
        try:
            return self._in_snapshot(fn)
        finally:
            self._aside_slots.release()

    async def read_scrape(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, which builds the metrics exposition, off the event loop as
        ``read_aside`` runs a read, but in a thread of its own, taking none of its slots
        and never refused: Prometheus must get its scrape however busy the reads aside
        are. One thread, as ``hub.metrics.Exposition`` runs one build at a time."""
        if self._scrapes is None:
            raise Unavailable("the store is closed")
        return await asyncio.wrap_future(self._scrapes.submit(self._in_snapshot, fn))

    def _in_snapshot(self, fn: Callable[[], T]) -> T:
        """``fn`` in one read transaction on this thread's own connection: every read it
        makes sees the store as its first did, though the loop commits writes meanwhile,
        so a list agrees with its counts and an alert's mutes with the alerts they were
        worked out from."""
        conn = self._aside_reader()
        conn.execute("BEGIN")
        try:
            return fn()
        finally:
            conn.execute("ROLLBACK")

    def reading(self) -> Tx:
        """The write path's reads on the read connection, for what-if questions (a
        replay dry run): SQLite refuses any write through it (``query_only``)."""
        assert self._reader is not None, "the store is not open"
        return Tx(self._reader, self._unreadable)

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict]:
        assert self._reader is not None, "store is not open"
        return _all(self._reader.execute(sql, params))

    def query_one(self, sql: str, params: tuple | dict = ()) -> dict | None:
        assert self._reader is not None, "store is not open"
        return _one(self._reader.execute(sql, params))

    def _stream(self, sql: str, params: tuple | dict = ()) -> Iterator[dict]:
        """Rows one at a time, for a reader that may stop early (a page filtered by
        labels); the statement ends when the iterator is exhausted, closed or dropped."""
        assert self._reader is not None, "store is not open"
        with contextlib.closing(self._reader.execute(sql, params)) as cursor:
            for row in cursor:
                yield _as_dict(row)

    def _page(
        self,
        select: str,
        where: str,
        params: dict,
        order: tuple[str, ...],
        after: Position | None,
        limit: int,
        parts: tuple[str, ...] = ("1",),
    ) -> Iterator[dict]:
        """``select`` filtered by ``where``, in ``order`` descending, from just after the
        row whose key is ``after``: a keyset page, stable under concurrent inserts.

        Each of ``parts`` (disjoint conditions) is read on its own and SQLite merges
        them in order: a part read in the order of an index needs no sort, where their
        union would sort all the matching rows."""
        keyset, position = _keyset(order, after)
        descending = ", ".join(f"{column} DESC" for column in order)
        selects = " UNION ALL ".join(
            f"{select} WHERE {part} AND ({where}) AND {keyset}" for part in parts
        )
        return self._stream(
            f"{selects} ORDER BY {descending} LIMIT :limit",
            {**params, **position, "limit": limit},
        )

    async def writable(self) -> bool:
        """Readiness: the writer runs and the file takes writes.

        While hub's own batch holds the write lock, it plainly does (unless the batch has
        held it ``lock_wait``, as long as a lock held elsewhere may keep writes waiting).
        Else a probe takes the lock in a thread, waiting up to a second for one another
        connection holds (a backup, an operator's shell); probes at the same moment
        share it. Taken on the loop, that wait stalled every request whenever a probe
        came during a commit, and a probe during a write of over a second (10,000 new
        alerts in one POST) was answered 503 by a hub taking writes."""
        if not self.writer_alive:
            return False
        if self._holding_lock():
            return True
        if self._lock_probe is None:
            self._lock_probe = asyncio.ensure_future(asyncio.to_thread(self._lock_free))
            self._lock_probe.add_done_callback(self._lock_probed)
        return await asyncio.shield(self._lock_probe) or self._holding_lock()

    def _holding_lock(self) -> bool:
        return self._began is not None and time.monotonic() - self._began < self.lock_wait

    def _lock_free(self) -> bool:
        """Whether a connection of its own takes the write lock, or hub's writer holds it,
        within ``LOCK_PROBE_SECONDS``: a probe waiting on SQLite's busy handler would wait
        out a long batch of hub's own that took the lock first."""
        deadline = time.monotonic() + LOCK_PROBE_SECONDS
        try:
            with contextlib.closing(sqlite3.connect(self.path, timeout=0)) as probe:
                while not _took_lock(probe):
                    if self._holding_lock():
                        return True
                    if time.monotonic() >= deadline:
                        return False
                    time.sleep(LOCKED_RETRY_SECONDS)
        except sqlite3.Error:
            return False
        return True

    def _lock_probed(self, _: asyncio.Future[bool]) -> None:
        self._lock_probe = None

    def checkpoint(self) -> None:
        """A passive WAL checkpoint, run from the scheduler: SQLite checkpoints only in
        a COMMIT, so the last writes before a quiet spell would stay in the WAL."""
        with contextlib.closing(sqlite3.connect(self.path, timeout=5)) as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # queries used by the API and metrics -------------------------------------

    def alerts(
        self, where: str, params: dict, limit: int, after: Position | None = None
    ) -> Iterator[dict]:
        """Alerts newest change first (``ALERT_ORDER``), read as they are taken: each
        status on its own (the one ``params`` name, else both, merged in order), the
        resolved ones through their index in that order (``m026``)."""
        status = params.get("status")
        parts = (_ALERT_STATUS_PARTS[status],) if status else tuple(_ALERT_STATUS_PARTS.values())
        rows = self._page("SELECT * FROM alerts", where, params, ALERT_ORDER, after, limit, parts)
        return (_decode_alert(row) for row in rows)

    def alert(self, alert_id: int) -> dict | None:
        row = self.query_one("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return _decode_alert(row) if row else None

    def alert_history(self, alert_id: int) -> list[dict]:
        return self.query(
            "SELECT at, recorded_at, status, severity, summary, applied, event_id"
            " FROM alert_history WHERE alert_id = ? ORDER BY id",
            (alert_id,),
        )

    def active_alert_counts(self) -> dict[str, int]:
        rows = self.query(
            "SELECT severity, COUNT(*) AS n FROM alerts WHERE status = 'firing' GROUP BY severity"
        )
        return {row["severity"]: row["n"] for row in rows}

    def notification_state_counts(self) -> dict[str, int]:
        rows = self.query(
            "SELECT state, COUNT(*) AS n FROM notifications"
            " WHERE state IN ('pending', 'sending', 'dead') GROUP BY state"
        )
        return {row["state"]: row["n"] for row in rows}

    def next_notification_due(self) -> float | None:
        row = self.query_one("SELECT MIN(due_at) AS due FROM notifications WHERE state = 'pending'")
        return row["due"] if row else None

    def due_alerts_reach(self, due: str, now: float, alerts: int) -> bool:
        """Whether the incidents due at ``now`` in ``due`` (``incident_receivers``: a
        message; ``escalations``: a step) hold ``alerts`` alerts or more between them,
        past episodes' included: counted through the index no further than that, so a
        worker learns cheaply whether its round reads many."""
        column = _DUE_INCIDENT_COLUMNS[due]
        row = self.query_one(
            f"SELECT 1 FROM {due} JOIN alerts ON alerts.incident_id = {due}.{column}"
            f" WHERE {due}.due_at IS NOT NULL AND {due}.due_at <= ? LIMIT 1 OFFSET ?",
            (now, alerts - 1),
        )
        return row is not None

    def next_receiver_due(self) -> float | None:
        row = self.query_one(
            "SELECT MIN(due_at) AS due FROM incident_receivers WHERE due_at IS NOT NULL"
        )
        return row["due"] if row else None

    def next_escalation_due(self) -> float | None:
        row = self.query_one("SELECT MIN(due_at) AS due FROM escalations WHERE due_at IS NOT NULL")
        return row["due"] if row else None

    def next_snooze_due(self) -> float | None:
        row = self.query_one(
            "SELECT MIN(snoozed_until) AS due FROM incidents WHERE snoozed_until IS NOT NULL"
        )
        return row["due"] if row else None

    def next_heartbeat_deadline(self) -> float | None:
        row = self.query_one(
            "SELECT MIN(deadline) AS due FROM heartbeats WHERE deadline IS NOT NULL"
        )
        return row["due"] if row else None

    def next_alert_end(self) -> float | None:
        row = self.query_one(
            "SELECT MIN(end_check_at) AS due FROM alerts WHERE end_check_at IS NOT NULL"
        )
        return row["due"] if row else None

    def heartbeats(self) -> list[dict]:
        rows = self.query("SELECT * FROM heartbeats ORDER BY name")
        return [_decode_heartbeat(row) for row in rows]

    def heartbeat(self, name: str) -> dict | None:
        row = self.query_one("SELECT * FROM heartbeats WHERE name = ?", (name,))
        return _decode_heartbeat(row) if row else None

    def escalation(self, incident_id: int) -> dict | None:
        """The incident's escalation as its page and the API show it: a plan or paged
        list a hand edit left unreadable is shown as its text (the escalator, reading it
        through ``Tx.escalation``, sets the incident aside instead)."""
        row = self.query_one("SELECT * FROM escalations WHERE id = ?", (incident_id,))
        if row is None:
            return None
        return {**row, "plan": _json_or_text(row["plan"]), "paged": _json_or_text(row["paged"])}

    def notifications(
        self, filters: dict[str, object], limit: int = 100, after: Position | None = None
    ) -> list[dict]:
        """The delivery log, newest first; ``filters`` are column -> value equalities.

        An incident's are read through its index: SQLite, which cannot tell that an
        incident has few notifications and a state many, would take the state's
        (``m027``) and walk every notification in that state to find the incident's."""
        where = " AND ".join(f"{column} = :{column}" for column in filters) or "1"
        table = "notifications"
        if "incident_id" in filters:
            table += " INDEXED BY notifications_incident"
        rows = self._page(f"SELECT * FROM {table}", where, filters, ID_ORDER, after, limit)
        return [_decode_notification(row) for row in rows]

    def notification(self, notification_id: int) -> dict | None:
        row = self.query_one("SELECT * FROM notifications WHERE id = ?", (notification_id,))
        return _decode_notification(row) if row else None

    def incidents(
        self, where: str, params: dict, limit: int, after: Position | None = None
    ) -> Iterator[dict]:
        """Incidents most recently changed first (``INCIDENT_ORDER``), read as taken."""
        rows = self._page("SELECT * FROM incidents", where, params, INCIDENT_ORDER, after, limit)
        return (_decode_incident(row) for row in rows)

    def incident(self, incident_id: int) -> dict | None:
        row = self.query_one("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        return _decode_incident(row) if row else None

    def incident_alerts(self, incident_id: int) -> list[dict]:
        rows = self.query("SELECT * FROM alerts WHERE incident_id = ? ORDER BY id", (incident_id,))
        return [_decode_alert(row) for row in rows]

    def incident_alert_counts(self, incident_ids: list[int]) -> dict[int, int]:
        """How many alerts each incident holds, resolved ones included, in one query."""
        rows = self.query(
            "SELECT incident_id, COUNT(*) AS n FROM alerts"
            f" WHERE incident_id IN ({_marks(incident_ids)}) GROUP BY incident_id",
            tuple(incident_ids),
        )
        return {row["incident_id"]: row["n"] for row in rows}

    def alerts_by_fingerprint(self, fingerprints: list[str]) -> dict[str, dict]:
        """The alerts with the given fingerprints, keyed by fingerprint, in one query."""
        rows = self.query(
            f"SELECT * FROM alerts WHERE fingerprint IN ({_marks(fingerprints)})",
            tuple(fingerprints),
        )
        return {row["fingerprint"]: _decode_alert(row) for row in rows}

    def firing_alerts(self) -> list[dict]:
        """Every firing alert, through the status index (as many as fire at once), with
        only what deciding its mutes takes: its labels, severity and recent changes."""
        rows = self.query(
            "SELECT id, incident_id, fingerprint, status, severity, labels, changes"
            " FROM alerts WHERE status = 'firing' ORDER BY id"
        )
        return [
            row | {"labels": _decode_json(row["labels"]), "changes": _decode_json(row["changes"])}
            for row in rows
        ]

    def firing_alerts_in_full(self) -> list[dict]:
        """Every firing alert, each with the receivers and group labels of its incident
        as ``incident_receivers`` and ``incident_labels`` (None once retention pruned
        the incident): the lists the Alertmanager API answers, which have no pages, as
        Alertmanager's have none."""
        rows = self.query(
            "SELECT a.*, i.receivers AS incident_receivers, i.labels AS incident_labels"
            " FROM alerts a LEFT JOIN incidents i ON i.id = a.incident_id"
            " WHERE a.status = 'firing' ORDER BY a.id"
        )
        return [
            _decode_alert(row)
            | {
                "incident_receivers": _decoded_or_none(row["incident_receivers"]),
                "incident_labels": _decoded_or_none(row["incident_labels"]),
            }
            for row in rows
        ]

    def firing_alerts_of(self, incident_ids: list[int]) -> list[dict]:
        """The firing alerts of the given incidents, in one query."""
        rows = self.query(
            f"SELECT * FROM alerts WHERE incident_id IN ({_marks(incident_ids)})"
            " AND status = 'firing' ORDER BY id",
            tuple(incident_ids),
        )
        return [_decode_alert(row) for row in rows]

    def dismissals(self, incident_ids: list[int]) -> dict[int, dict]:
        """Who dismissed each dead letter of the given incidents, when and why (the
        timeline entry ``outbox.dismiss`` wrote), keyed by notification id."""
        rows = self.query(
            "SELECT at, actor, detail FROM timeline WHERE kind = 'dead_letter_dismissed'"
            f" AND incident_id IN ({_marks(incident_ids)})",
            tuple(incident_ids),
        )
        found = [{**row, "detail": _decode_json(row["detail"])} for row in rows]
        return {row["detail"]["notification"]: row for row in found}

    def timeline(self, incident_id: int) -> list[dict]:
        rows = self.query(
            "SELECT at, kind, actor, detail FROM timeline WHERE incident_id = ? ORDER BY id",
            (incident_id,),
        )
        return [{**row, "detail": _decode_json(row["detail"])} for row in rows]

    def incident_counts(
        self, where: str = "1", params: dict | None = None
    ) -> dict[tuple[str, str], int]:
        """Unresolved incidents by (severity, status), from the status index; only those
        ``where`` keeps (a list's filter) when given."""
        rows = self.query(
            "SELECT status, severity, COUNT(*) AS n FROM incidents"
            f" WHERE status IN ('open', 'acknowledged') AND ({where}) GROUP BY status, severity",
            params or {},
        )
        return {(row["severity"], row["status"]): row["n"] for row in rows}

    def deliveries(
        self, source: str | None, limit: int, after: Position | None = None
    ) -> list[dict]:
        """Recent deliveries, newest first, without their bodies (the audit log)."""
        rows = self._page(
            "SELECT id, source, delivery_key, received_at, headers, status_code, response,"
            " mode, replay_of FROM deliveries",
            "source = :source" if source is not None else "1",
            {"source": source},
            ID_ORDER,
            after,
            limit,
        )
        return [_decode_delivery(row) for row in rows]

    def delivery(self, delivery_id: int) -> dict | None:
        """One delivery with its raw body (bytes) as received."""
        row = self.query_one("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        return _decode_delivery(row) if row else None

    def delivery_events(self, delivery_id: int) -> list[dict]:
        """The events a delivery produced, with the alert each one went to."""
        return self.query(
            "SELECT events.id, events.alert_id, alerts.fingerprint, events.status,"
            " events.severity, events.occurred_at, events.outcome"
            " FROM events JOIN alerts ON alerts.id = events.alert_id"
            " WHERE events.delivery_id = ? ORDER BY events.id",
            (delivery_id,),
        )

    def delivery_outcomes(self, delivery_ids: list[int]) -> dict[int, dict[str, int]]:
        """How many of each delivery's events had each outcome: what it changed. A repeat
        of a known alert (``duplicate``) and an ignored event record no event, so a
        delivery with none changed no alert; a repeated delivery stores no row at all."""
        rows = self.query(
            "SELECT delivery_id, outcome, count(*) AS n FROM events"
            " WHERE delivery_id IN (SELECT value FROM json_each(?))"
            " GROUP BY delivery_id, outcome",
            (_json.encode(delivery_ids).decode(),),
        )
        found: dict[int, dict[str, int]] = {}
        for row in rows:
            found.setdefault(row["delivery_id"], {})[row["outcome"]] = row["n"]
        return found

    def notification_attempts(self, notification_id: int) -> list[dict]:
        return self.query(
            "SELECT started_at, duration_ms, outcome, error FROM notification_attempts"
            " WHERE notification_id = ? ORDER BY id",
            (notification_id,),
        )

    def silences(self) -> list[Silence | UnreadableSilence]:
        """Every silence created through the API, newest first (one whose creation time
        is no time last), those that cannot be read among them."""
        rows = self.query("SELECT * FROM silences ORDER BY created_at DESC, id")
        found = [_decode_silence(row) for row in rows]
        _report(found, self._unreadable)
        return found

    def active_silences(self, now: datetime) -> list[Silence]:
        """The API's silences in force at ``now``: what the send-time mute stage applies."""
        at = now.timestamp()
        return _in_force(self.query(ACTIVE_SILENCES, (at, at)), self._unreadable)

    def silence(self, silence_id: str) -> Silence | UnreadableSilence | None:
        """The silence created through the API whose id is ``silence_id``, by its key:
        found among every silence, one lookup read and decoded all 20,000 of a store."""
        return _silence_with_id(self.query(SILENCE_BY_ID, (silence_id,)), silence_id)


class _Long:
    """A write function marked ``long`` (``Store.write``): its batch is applied in the
    commit thread rather than on the event loop."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Tx], Any]) -> None:
        self.fn = fn

    def __call__(self, tx: Tx) -> Any:
        return self.fn(tx)


def _run_in_savepoint(
    conn: sqlite3.Connection, tx: Tx, fn: Callable[[Tx], Any]
) -> tuple[Any, Exception | None]:
    conn.execute("SAVEPOINT request")
    kept = len(tx.logged)
    try:
        result = fn(tx)
    except Exception as e:
        # The error outlives this write (logged, set aside, answered), and its
        # traceback is a cycle: a cursor its frames hold would keep its statement open
        # on this connection past the COMMIT, with the snapshot it read, until a
        # collection. Once another connection wrote (an operator's repair), every
        # BEGIN here would be refused (SQLITE_BUSY_SNAPSHOT). The frames' lines stay.
        _clear_frames(e)
        conn.execute("ROLLBACK TO request")
        conn.execute("RELEASE request")
        del tx.logged[kept:]
        return None, e
    conn.execute("RELEASE request")
    return result, None


def _clear_frames(error: BaseException) -> None:
    """Clear the frames of ``error``'s traceback and of every error it chains to: one
    raised while handling another (``__context__``) or from it (``__cause__``) keeps
    that one, and a cursor in its frames, alive as long as itself. A chain can loop
    (an error raised again while handling itself), so each error is cleared once."""
    seen: set[int] = set()
    waiting = [error]
    while waiting:
        chained = waiting.pop()
        if id(chained) in seen:
            continue
        seen.add(id(chained))
        traceback.clear_frames(chained.__traceback__)
        waiting += [e for e in (chained.__cause__, chained.__context__) if e is not None]


def _label_value(name: str) -> str:
    """Label ``name`` (a plain one: ``inhibit.source_filter``) of an alert, in SQL, NULL
    when missing. Labels a hand edit left as bytes are read as their text, as Python
    reads them; labels that are not JSON read as NULL rather than failing the statement,
    so that no write of such a row fails on an index of it."""
    labels = "CAST(labels AS TEXT)"
    value = f"CASE WHEN json_valid({labels}) THEN json_extract({labels}, '$.\"{name}\"') END"
    return f"COALESCE({value}, severity)" if name == "severity" else value


def _label_index(name: str) -> str:
    """The index of label ``name``: SQLite's names ignore case, labels' do not."""
    digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
    return f"{_SOURCE_INDEX_PREFIX}{name}_{digest}"


_SOURCE_INDEX_PREFIX = "alerts_firing_label_"
MAX_PROBED_VALUES = 1000
"""Values of a label a regex matches, past which its rule reads every firing alert (one
statement names them all)."""
_SOURCE_INDEXES = (
    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alerts'"
    f" AND substr(name, 1, {len(_SOURCE_INDEX_PREFIX)}) = '{_SOURCE_INDEX_PREFIX}'"
)


def _took_lock(conn: sqlite3.Connection) -> bool:
    """Take the write lock and let it go at once; False if another connection holds it."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        if _locked(e):
            return False
        raise
    conn.execute("ROLLBACK")
    return True


def _locked(error: sqlite3.OperationalError) -> bool:
    """Another connection holds the write lock (a CLI, a backup): worth retrying. The
    extended codes count too (``SQLITE_BUSY_RECOVERY`` while another connection
    rebuilds the WAL's index), but for a stale snapshot (``Store._begin``)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None or _stale(error):
        return False
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _stale(error: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY_SNAPSHOT: this connection reads an older snapshot than the file's."""
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY_SNAPSHOT


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _marks(values: list) -> str:
    return ", ".join("?" for _ in values)


# Literal, not bound: SQLite takes a partial index only for a condition it can see.
_ALERT_STATUS_PARTS = {status: f"status = '{status}'" for status in ALERT_STATUSES}


def _keyset(order: tuple[str, ...], after: Position | None) -> tuple[str, dict]:
    """The rows strictly after ``after`` in ``order`` descending, as a row-value
    comparison SQLite answers from the key alone (no OFFSET to count through)."""
    if after is None:
        return "1", {}
    names = {f"after_{column}": value for column, value in zip(order, after, strict=True)}
    return f"({', '.join(order)}) < ({', '.join(':' + name for name in names)})", names


def _one(cursor: sqlite3.Cursor) -> dict | None:
    """The first row; the statement ends here, not when the cursor is collected (see
    ``_run_in_savepoint``)."""
    with contextlib.closing(cursor):
        row = cursor.fetchone()
    return _as_dict(row) if row else None


def _all(cursor: sqlite3.Cursor) -> list[dict]:
    """Every row; the statement ends here, also when a value cannot be read. The column
    names are taken once, not for each row (200,000 rows: 953 ms against 1,013)."""
    with contextlib.closing(cursor):
        rows = cursor.fetchall()
    if not rows:
        return []
    names = rows[0].keys()
    return [dict(zip(names, row, strict=True)) for row in rows]


def _as_dict(row: sqlite3.Row) -> dict:
    """The row as a dict, its values taken by position: ``dict(row)`` looks each column
    up by name, comparing it with every name before it (an incident's row has 23)."""
    return dict(zip(row.keys(), row, strict=True))


_JSON_VALUES = (dict, list)
"""Values stored as JSON; a tuple built once (``dict | list`` in the loop below built a
union for every value written)."""


def _encode_values(row: dict) -> tuple:
    return tuple(
        _json.encode(value) if isinstance(value, _JSON_VALUES) else value for value in row.values()
    )


@functools.lru_cache(maxsize=256)
def _insert_sql(table: str, columns: tuple[str, ...], floored: bool) -> str:
    """The INSERT for these columns, built once: the same string object each time also
    spares hashing it again for SQLite's statement cache. A ``floored`` table's row
    without an id takes one past its floor (``_next_id_sql``)."""
    names, marks = ", ".join(columns), ", ".join("?" for _ in columns)
    if floored and table in NUMBERED and "id" not in columns:
        names, marks = f"id, {names}", f"{_next_id_sql(table)}, {marks}"
    return f"INSERT INTO {table} ({names}) VALUES ({marks})"


@functools.lru_cache(maxsize=256)
def _update_sql(table: str, columns: tuple[str, ...]) -> str:
    """The UPDATE of these columns by id, built once (``_insert_sql``)."""
    assignments = ", ".join(f"{column} = ?" for column in columns)
    return f"UPDATE {table} SET {assignments} WHERE id = ?"


def _decode_incident(row: dict) -> dict:
    return {
        **row,
        "labels": _decode_json(row["labels"]),
        "receivers": _decode_json(row["receivers"]),
        "timing": _decode_json(row["timing"]),
    }


def _decode_heartbeat(row: dict) -> dict:
    return {**row, "labels": _decode_json(row["labels"])}


def _decode_escalation(row: dict) -> dict:
    return {**row, "plan": _decode_json(row["plan"]), "paged": _decode_json(row["paged"])}


_BOOKKEEPING = ("end_check_at", "past_episode")
_DUE_INCIDENT_COLUMNS = {"incident_receivers": "incident_id", "escalations": "id"}
"""The tables of due work by incident, and the column naming the incident."""
_EPISODE_COLUMNS = (
    "id, fingerprint, status, severity, summary, labels, changes, first_seen, fired_at, resolved_at"
)
"""What the dispatcher and escalation read of each alert of an incident's episode."""
_SEVERITY_RANK = (
    "CASE severity "
    + " ".join(f"WHEN '{name}' THEN {rank}" for rank, name in enumerate(SEVERITIES))
    + " END"
)
"""An alert's severity as a number to order by, the most severe first."""


def _json_or_text(value: str | bytes) -> Any:
    """A JSON column decoded, or, where a hand edit left no JSON, its text (``logs.text``)
    for a read to show: failing it hid the whole row from the operator repairing it."""
    try:
        return _decode_json(value)
    except msgspec.DecodeError:
        return logs.text(value)


def _decoded_or_none(text: str | None) -> Any:
    return None if text is None else _decode_json(text)


def _decode_alert(row: dict) -> dict:
    """An alert row as readers see it: JSON decoded, ``flapping`` a boolean (SQLite
    stores it as 0 or 1; ``stored.flag`` reads a hand edit's text), the expirer's and
    the episodes' bookkeeping left out."""
    decoded = {key: value for key, value in row.items() if key not in _BOOKKEEPING}
    decoded["labels"] = _decode_json(row["labels"])
    decoded["annotations"] = _decode_json(row["annotations"])
    if "flapping" in row:
        decoded["flapping"] = stored.flag(row, "flapping")
    if "changes" in row:
        decoded["changes"] = _decode_json(row["changes"])
    return decoded


def _decode_episode_alert(row: dict) -> dict:
    """An alert read with ``_EPISODE_COLUMNS``, its JSON decoded."""
    row["labels"] = _decode_json(row["labels"])
    row["changes"] = _decode_json(row["changes"])
    return row


def _decode_delivery(row: dict) -> dict:
    decoded = {
        **row,
        "headers": _decode_json(row["headers"]),
        "response": _decode_json(row["response"]),
    }
    if row.get("decision") is not None:
        decoded["decision"] = _decode_json(row["decision"])
    return decoded


def _decode_notification(row: dict) -> dict:
    keys = _stored_json(row["url_keys"] or "[]")
    return {**row, "payload": _stored_json(row["payload"]), "url_keys": keys}


def _stored_json(value: bytes | str) -> object:
    """A notification's JSON column, or ``Unreadable`` in its place: the row is still
    listed, and the sender dead-letters it (``hub.outbox.message``)."""
    try:
        return _decode_json(value)
    except msgspec.DecodeError as e:
        return Unreadable(f"not JSON ({e})")


_MATCHER_TEXTS = msgspec.json.Decoder(list[str])


class _Unread(Exception):
    """A silence's column holds what hub cannot read (``_decode_silence``)."""

    def __init__(self, column: str) -> None:
        super().__init__(column)
        self.column = column


def _read(row: dict, column: str, convert: Callable[[Any], T]) -> T:
    try:
        return convert(row[column])
    except (TypeError, ValueError, OverflowError, OSError, msgspec.DecodeError):
        raise _Unread(column) from None


SILENCE_BY_ID = "SELECT * FROM silences WHERE id = ? OR typeof(id) = 'blob'"


def _silence_with_id(rows: list[dict], silence_id: str) -> Silence | UnreadableSilence | None:
    """The silence among ``rows`` (``SILENCE_BY_ID``'s) whose id, as lists show it, is
    ``silence_id``: one whose id a hand edit left as bytes is found by its text too, so
    that it can be expired."""
    found = (_decode_silence(row) for row in rows)
    return next((s for s in found if s.id == silence_id), None)


def _decode_silence(row: dict) -> Silence | UnreadableSilence:
    """A silence row as hub reads it, or ``UnreadableSilence`` naming the first column a
    hand edit left unreadable: raising here failed every read that lists silences or
    mutes, and every round of the dispatcher. Bytes in its author or comment are shown
    as text (``logs.text``); they do not change what it mutes."""
    try:
        silence = Silence(
            id=_read(row, "id", _text_id),
            matchers=_read(row, "matchers", _MATCHER_TEXTS.decode),
            starts_at=_read(row, "starts_at", _datetime),
            ends_at=_read(row, "ends_at", _datetime),
            created_by=logs.text(row["created_by"]),
            created_via=_text_or_none(row["created_via"]),
            comment=logs.text(row["comment"]),
            created_at=_read(row, "created_at", _moment),
            updated_by=_text_or_none(row["updated_by"]),
            updated_via=_text_or_none(row["updated_via"]),
            updated_at=_read(row, "updated_at", _datetime),
        )
        _compile(silence)
    except _Unread as e:
        return UnreadableSilence(id=logs.text(row["id"]), column=e.column, stored=row)
    return silence


def _text_id(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("a silence's id is text")
    return value


def _compile(silence: Silence) -> None:
    """Compile the matchers now, once (``Silence.parsed`` keeps them for the mute
    stage); unreadable when one is no matcher or there is none (none mutes every alert)."""
    with contextlib.suppress(ValueError):
        if silence.parsed:
            return
    raise _Unread("matchers")


def _text_or_none(value: object) -> str | None:
    return None if value is None else logs.text(value)


def _report(found: list[Silence | UnreadableSilence], reported: set[tuple[str, str]]) -> None:
    """Log each unreadable silence once per process, not at every read or round."""
    for silence in found:
        if (
            isinstance(silence, UnreadableSilence)
            and (key := (silence.id, silence.column)) not in reported
        ):
            reported.add(key)
            log.warning(
                "event=silence_unreadable id=%s column=%s in_force=false",
                logs.value(silence.id),
                silence.column,
            )


def _in_force(rows: list[dict], reported: set[tuple[str, str]]) -> list[Silence]:
    """The silences of ``rows`` that can be read; those that cannot are not in force."""
    found = [_decode_silence(row) for row in rows]
    _report(found, reported)
    return [silence for silence in found if isinstance(silence, Silence)]


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _datetime(value: float | None) -> datetime | None:
    return None if value is None else _moment(value)


def _moment(value: float) -> datetime:
    """Epoch seconds as a datetime; TypeError for text or bytes (a hand edit)."""
    return datetime.fromtimestamp(value, UTC)


def _migrate(db: sqlite_utils.Database, path: str) -> None:
    """Apply the pending migrations in one transaction, and say which in one log line:
    the operator reading an upgrade's log sees the schema change, and a later start that
    changed nothing. One transaction, so that an upgrade failing midway leaves the store
    as the older hub left it (and a new store takes one commit, not one a migration)."""
    _refuse_newer(db, path)
    pending = [migration.name for migration in migrations.pending(db)]
    try:
        with db.atomic():
            migrations.apply(db)
    except sqlite3.Error as e:  # the store's state (a full disk, a hand-edited schema)
        raise ConfigError([_failed_upgrade(path, pending, e)]) from e
    if pending:
        log.info("event=store_migrated applied=%s", logs.listed(pending))


def _failed_upgrade(path: str, pending: list[str], error: sqlite3.Error) -> str:
    """What ``hub serve`` says of an upgrade SQLite refused, as it says a config's
    problems: the migration that failed (the one its traceback runs through), SQLite's
    words, and that the older hub still runs on the store, none having been applied."""
    frames = traceback.extract_tb(error.__traceback__)
    failed = next((frame.name for frame in reversed(frames) if frame.name in pending), None)
    return (
        f"storage.path: {path} could not be upgraded: {failed or 'the upgrade'} failed"
        f" ({error}); none of the {len(pending)} pending migrations was applied, so the"
        " store is as the older hub left it and that hub still runs on it"
    )


def _refuse_newer(db: sqlite_utils.Database, path: str) -> None:
    """Refuse a store a newer hub migrated: what this hub wrote there would lack what the
    newer one keeps, and no later upgrade mends such rows (upgrades only go forward)."""
    # Nothing is applied to an empty database: every migration this hub knows is pending.
    known = [migration.name for migration in migrations.pending(sqlite_utils.Database(memory=True))]
    applied = [migration.name for migration in migrations.applied(db)]
    if set(applied) <= set(known):
        return
    raise ConfigError(
        [
            f"storage.path: {path} was upgraded by a newer hub (its newest migration is"
            f" {applied[-1]}, this hub's is {known[-1]}): run that hub or a newer one, or"
            " restore the backup taken before the upgrade"
        ]
    )


class Claim(NamedTuple):
    """A store taken for this process (``claim``): the lock file held open, and what it
    held before this start (None if this start created it)."""

    holder: IO[str]
    lock_path: str
    earlier: str | None

    def give_up(self) -> None:
        """Let the store go when the start fails after ``claim`` (a port in use), leaving
        the lock file as it was: removed if this start created it, else holding again
        the pid a hub before left in it, not this start's. It is removed while still
        locked, and a hub that opened it meanwhile takes the new one instead
        (``claim``)."""
        if self.earlier is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock_path)
        else:
            _rewrite(self.holder, self.earlier)
        self.holder.close()


def claim(path: str) -> Claim:
    """Take the store at ``path`` for this process alone, until it exits (the kernel
    drops the lock then, SIGKILL included): a second hub serving the same store would
    run its own escalator, dispatcher and expirer beside the first and page twice.
    SQLite's locks last a transaction; this one lasts the process. It is on a file of
    its own, beside the store, so that it never meets SQLite's locks on the store.
    A path no store can be at is refused first, as ``path_problems`` names it."""
    problems = path_problems(path)
    if problems:
        raise ConfigError(problems)
    lock_path = _lock_path(path)
    while True:
        created = not os.path.exists(lock_path)
        # held open for the process's life; any bytes a fault left are kept as they were
        holder = open(lock_path, "a+", encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
        try:
            fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _served_elsewhere(path, holder) from None
        if _still_at(holder, lock_path):
            break
        holder.close()  # a failed start removed it after this one opened it
    holder.seek(0)
    earlier = None if created else holder.read()
    _rewrite(holder, str(os.getpid()))
    return Claim(holder, lock_path, earlier)


def _lock_path(path: str) -> str:
    """The lock file ``claim`` holds for the store at ``path``: beside it."""
    return f"{path}.lock"


def _rewrite(holder: IO[str], text: str) -> None:
    """Make the locked file ``holder`` hold ``text`` alone, written through at once so
    that a start refused meanwhile reads it."""
    holder.truncate(0)
    holder.write(text)
    holder.flush()


def _served_elsewhere(path: str, holder: IO[str]) -> ConfigError:
    """The refusal of a store another hub holds, naming its pid; closes ``holder``."""
    holder.seek(0)
    pid = logs.text(holder.read().strip().encode("utf-8", "surrogateescape")) or "unknown"
    holder.close()
    return ConfigError(
        [
            f"storage.path: {path} is served by another hub (pid {pid}, holding"
            f" {holder.name}); one store takes one hub: stop that one, or give this one"
            " its own storage.path"
        ]
    )


def _still_at(opened: IO[str], path: str) -> bool:
    """Whether the file ``opened`` is still the one at ``path``."""
    try:
        return os.path.samestat(os.fstat(opened.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def path_problems(path: str) -> list[str]:
    """Why no store can be at ``path``, in the terms of ``[storage] path``: else the
    lock file or SQLite would fail with an error naming neither the key nor the cause
    (SQLite says "unable to open database file" for a folder and a missing one alike).
    hub creates the file, not its folder."""
    store, folder = Path(path), Path(path).parent
    if store.is_dir():
        return [f"storage.path: {path} is a folder, not a file (name the file, as {path}/hub.db)"]
    if not folder.is_dir():
        missing = "is not a folder" if folder.exists() else "does not exist"
        return [f"storage.path: {path}: the folder {folder} {missing}"]
    if not os.access(folder, os.W_OK | os.X_OK):
        return [
            f"storage.path: the folder {folder} is not writable by this user (SQLite keeps"
            " its write-ahead log and lock files beside the store)"
        ]
    if store.exists() and not os.access(store, os.R_OK | os.W_OK):
        return [f"storage.path: {path} is not readable and writable by this user"]
    lock = _lock_path(path)
    if os.path.exists(lock) and not os.access(lock, os.R_OK | os.W_OK):
        return [
            f"storage.path: its lock file {lock} is not readable and writable by this user"
            " (a hub run as another user left it; while no hub serves the store, remove it"
            " or give it to this user)"
        ]
    return []


@contextlib.contextmanager
def opened(path: str, **options: Any) -> Iterator[Store]:
    """A store opened for the duration of a block (CLI commands, tests)."""
    store = Store(path, **options)
    store.open()
    try:
        yield store
    finally:
        store.close()


def create_private(path: str | Path) -> None:
    """Create ``path`` empty, readable and writable by this user only, unless it exists.

    A store holds the key that signs ack links and console sessions: whoever reads it
    can forge an acknowledgement. SQLite gives its WAL and shared-memory files the
    mode of the database file, so these take it too.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def backup(path: str, dest: Path) -> int:
    """Copy the store at ``path`` to ``dest``, consistent while a hub runs and writes;
    returns the copy's size in bytes.

    Copying the file itself can miss the writes still in the WAL or catch a page half
    written. SQLite's online backup reads one snapshot (a read transaction, which in
    WAL mode never blocks the hub's writer), WAL included. The copy is made beside
    ``dest`` and renamed over it, so ``dest`` is never a partial file.
    """
    partial = dest.with_name(f".{dest.name}.partial")
    partial.unlink(missing_ok=True)
    create_private(partial)
    # mode=rw: a missing store is an error, not a new empty file backed up.
    uri = f"{Path(path).resolve().as_uri()}?mode=rw"
    try:
        with (
            contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as source,
            contextlib.closing(sqlite3.connect(partial)) as copy,
        ):
            source.backup(copy)
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest.stat().st_size
