"""Heartbeats: named dead man's switches. A ping resets the deadline; a missed deadline,
a ``fail`` ping, or a ``start`` ping with no completion within ``grace`` raises a
firing alert; the next ping resolves it.

The alert goes through the normal ingest path (``apply_delivery`` with source
``heartbeat``, fingerprint ``heartbeat:NAME``, ``alertname=HeartbeatDown`` unless its
labels name one, its labels and ``heartbeat=NAME``), so it is routed, grouped,
escalated and silenced like any
other, in the same transaction that records the ping or the missed deadline.

Deadlines are rows in the store: the ``Watchdog`` worker sleeps until the earliest
one, so a deadline that passed while the hub was stopped fires as soon as it starts.
A heartbeat's first deadline counts from when it was created: one that never pings
fires too.

A paused heartbeat (``pause``: a job decommissioned for a while, a host in
maintenance) has no deadline and fires nothing; pausing one that is down resolves its
alert. A ping resumes it, as on healthchecks.io, and so does ``resume``, its deadline
counting from then. Pausing is state, not definition: config heartbeats pause too, and
stay paused across a reload and a restart.

Config heartbeats are copied into the store at start and on reload (``sync``);
the API adds and removes its own. A heartbeat removed either way resolves its open
alert first: no ping could resolve it afterwards. A config heartbeat may not take a
name an API heartbeat holds (``clashes``), as the API refuses a taken name.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import msgspec

from hub import auth, config, logs, stored
from hub.access import CHALLENGE
from hub.decoders.common import Decoded
from hub.errors import AuthError, Conflict, NotFound
from hub.events import Event
from hub.ingest import Delivery, apply_delivery
from hub.rules import Rules
from hub.store import Store, Tx
from hub.worker import Isolation, Worker

SOURCE = "heartbeat"
ALERTNAME = "HeartbeatDown"
"""The ``alertname`` of a heartbeat's alert unless its labels name one: routes and
``group_by`` written for Alertmanager select and group alerts by it."""
BATCH = 100
MIN_TOKEN_LENGTH = 16
Ping = Literal["success", "fail", "start"]
_PAUSE_COLUMNS = ("paused_at", "paused_by", "paused_via", "pause_reason")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_encode = msgspec.json.Encoder().encode
log = logging.getLogger("hub.heartbeats")


def fingerprint(name: str) -> str:
    return f"{SOURCE}:{name}"


def sync(tx: Tx, heartbeats: list[config.Heartbeat], now: float, rules: Rules) -> list[str]:
    """Make the stored config heartbeats match the config, keeping their ping state.

    Returns the names removed (their open alerts resolved, like an API delete). A name
    an API heartbeat holds stays the API's: ``clashes`` refuses such a config, so this
    only happens when the API took the name between the check and the sync.
    """
    wanted = {h.name for h in heartbeats}
    gone = [row for row in tx.config_heartbeats() if row["name"] not in wanted]
    for row in gone:
        _remove(tx, row, now, rules, "removed from the config")
    for heartbeat in heartbeats:
        stored = tx.heartbeat(heartbeat.name)
        if stored is not None and stored["origin"] != "config":
            taken = logs.value(heartbeat.name)
            tx.log(log, logging.WARNING, "event=heartbeat_name_taken name=%s origin=api", taken)
            continue
        tx.save_heartbeat(_defined(heartbeat, "config", stored, now))
    return [row["name"] for row in gone]


def clashes(heartbeats: list[config.Heartbeat], stored: list[dict]) -> list[str]:
    """Config problems: a config heartbeat whose name an API heartbeat holds. The
    config may not silently take it over (nor delete it when the block goes)."""
    taken = {row["name"] for row in stored if row["origin"] == "api"}
    return [
        f"{config.entry(f'heartbeats[{i}]', heartbeat.name)}.name: taken by a heartbeat"
        " created through the API; rename this one or delete that one"
        for i, heartbeat in enumerate(heartbeats)
        if heartbeat.name in taken
    ]


def create(tx: Tx, heartbeat: config.Heartbeat, now: float) -> dict:
    """A heartbeat made through the API; 409 when the name is taken."""
    if tx.heartbeat(heartbeat.name) is not None:
        raise Conflict(f"a heartbeat named {heartbeat.name!r} already exists")
    row = _defined(heartbeat, "api", None, now)
    tx.save_heartbeat(row)
    return row


def delete(tx: Tx, name: str, now: float, rules: Rules) -> dict:
    """Remove an API heartbeat; its open alert, if any, is resolved first."""
    row = _existing(tx, name)
    if row["origin"] == "config":
        raise Conflict(f"heartbeat {name!r} comes from the config file; remove it there")
    return _remove(tx, row, now, rules, "deleted")


def _remove(tx: Tx, row: dict, now: float, rules: Rules, reason: str) -> dict:
    """Delete a heartbeat, resolving its open alert first: once it is gone, its ping
    URL is a 404 and nothing else could resolve the alert. Returns the row as it was,
    so the answer to a delete says what was deleted (a heartbeat that was down)."""
    if row["overdue"]:
        _raise_alert(tx, row, "resolved", now, rules, reason)
    tx.delete_heartbeat(row["name"])
    return row


def ping(
    tx: Tx, name: str, kind: Ping, now: float, rules: Rules, tokens: Sequence[str] = ()
) -> dict:
    """Record a ping: ``success`` resets (resolving an alert), ``fail`` fires at once,
    ``start`` gives the run ``grace`` to finish. Returns the updated row. A heartbeat
    with a token refuses a ping that carries no ``tokens`` matching it (401), changing
    nothing. Any ping resumes a paused heartbeat first, as on healthchecks.io."""
    row = _existing(tx, name)
    _check_token(row, tokens)
    if row["paused_at"] is not None:
        row = _resume(tx, row, now, "via=ping")
    if kind == "fail":
        changes = {"last_ping": now, "started_at": None, "deadline": None, "overdue": 1}
        if not _down(row):
            _raise_alert(tx, row, "firing", now, rules, "failure reported")
    elif kind == "start":
        changes = {"started_at": now, "deadline": now + row["grace"]}
    else:
        deadline = now + row["period"] + row["grace"]
        changes = {"last_ping": now, "started_at": None, "deadline": deadline, "overdue": 0}
        if row["overdue"]:
            _raise_alert(tx, row, "resolved", now, rules, "pinged")
    updated = {**row, **changes}
    tx.save_heartbeat(updated)
    return updated


@dataclass(frozen=True)
class Who:
    """Who pauses or resumes a heartbeat, and the token that named them (None: the
    token itself), as ``access.Caller.naming`` gives them; ``via`` the way they came
    (``api``, ``console``), for the log."""

    by: str
    token: str | None = None
    via: str = "api"

    def logged(self) -> str:
        return f"by={logs.value(self.by)} via={self.via}{logs.vouched(self.token)}"


def pause(tx: Tx, name: str, now: float, rules: Rules, who: Who, reason: str) -> dict:
    """Stop watching the heartbeat until a ping or ``resume``: no deadline, and an open
    alert resolved (reason ``paused``), as nothing would resolve it while paused. One
    paused already stays as its first pause left it (who, when, why), logging nothing."""
    row = _existing(tx, name)
    if row["paused_at"] is not None:
        return row
    if row["overdue"]:
        _raise_alert(tx, row, "resolved", now, rules, "paused")
    updated = {
        **row,
        "paused_at": now,
        "paused_by": who.by,
        "paused_via": who.token,
        "pause_reason": reason or None,
        "started_at": None,
        "deadline": None,
        "overdue": 0,
    }
    tx.save_heartbeat(updated)
    said = who.logged() + (f" reason={logs.value(reason)}" if reason else "")
    tx.log(log, logging.INFO, "event=heartbeat_paused name=%s %s", logs.value(name), said)
    return updated


def resume(tx: Tx, name: str, now: float, who: Who) -> dict:
    """Watch a paused heartbeat again, its next deadline a period and grace from now;
    409 for one not paused, as healthchecks.io answers."""
    row = _existing(tx, name)
    if row["paused_at"] is None:
        raise Conflict(f"heartbeat {name!r} is not paused")
    updated = _resume(tx, row, now, who.logged())
    tx.save_heartbeat(updated)
    return updated


def _resume(tx: Tx, row: dict, now: float, said: str) -> dict:
    """The row unpaused at ``now`` (the anchor of its next deadline), logged with
    ``said``: who resumed it, or that a ping did."""
    updated = {**row, **dict.fromkeys(_PAUSE_COLUMNS), "resumed_at": now}
    tx.log(log, logging.INFO, "event=heartbeat_resumed name=%s %s", logs.value(row["name"]), said)
    return {**updated, "deadline": _deadline(updated)}


def expire_due(tx: Tx, now: float, rules: Rules, isolation: Isolation) -> list[dict]:
    """Every heartbeat whose deadline passed becomes overdue and fires its alert, each
    on its own (``isolation``): one that fails is set aside, the others go down."""
    expired = []
    for name in tx.due_heartbeats(now, BATCH):
        updated = isolation.run(
            tx,
            item(name),
            partial(_expire, name=name, now=now, rules=rules),
            partial(_postpone, name=name),
        )
        if updated is not None:
            expired.append(updated)
    return expired


def item(name: str) -> str:
    """The heartbeat as the watchdog names it in the log, and knows a set-aside one."""
    return f"heartbeat={logs.value(name)}"


def _expire(tx: Tx, name: str, now: float, rules: Rules) -> dict:
    """One heartbeat's deadline passed: it is overdue. One already down (a run started
    after a failure, not finished in time) stays down: its alert fires already, and a
    second ``heartbeat_down`` would count one outage twice."""
    row = _existing(tx, name)
    reason = "started run did not finish" if row["started_at"] else "deadline missed"
    if not _down(row):
        _raise_alert(tx, row, "firing", now, rules, reason)
    updated = {**row, "deadline": None, "overdue": 1}
    tx.save_heartbeat(updated)
    return updated


def _postpone(tx: Tx, at: float, name: str) -> None:
    """Marking the heartbeat overdue failed: try again ``at``."""
    tx.postpone_heartbeat(name, at)


def _down(row: dict) -> bool:
    """Whether the heartbeat is down, to fire it or set no deadline: as every read takes
    the flag (``stored.flag``), so one whose ``overdue`` holds text (a hand edit), shown
    as up, fires when it misses. A ping, pause or delete still resolves the alert for
    such text (``row["overdue"]`` is true), as it may be firing: both fail open."""
    return stored.flag(row, "overdue")


def _check_token(row: dict, given: Sequence[str]) -> None:
    expected = row["token_sha256"]
    if expected is None:
        return
    if not given:
        raise AuthError("missing_token", f"heartbeat {row['name']!r} needs its token", CHALLENGE)
    if not auth.matches_any(expected.encode(), [_sha256(token).encode() for token in given]):
        raise AuthError("bad_token", f"wrong token for heartbeat {row['name']!r}", CHALLENGE)


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _defined(heartbeat: config.Heartbeat, origin: str, stored: dict | None, now: float) -> dict:
    """A row for the heartbeat's definition, keeping ping and pause state from ``stored``."""
    state = stored or {
        "created_at": now,
        "last_ping": None,
        "started_at": None,
        "overdue": 0,
        "resumed_at": None,
        **dict.fromkeys(_PAUSE_COLUMNS),
    }
    row = {
        **state,
        "name": heartbeat.name,
        "origin": origin,
        "period": float(heartbeat.period),
        "grace": float(heartbeat.grace),
        "labels": heartbeat.labels,
        "severity": heartbeat.severity,
        "summary": heartbeat.summary,
        "token_sha256": _sha256(heartbeat.token) if heartbeat.token else None,
    }
    return {**row, "deadline": _deadline(row)}


def _deadline(row: dict) -> float | None:
    """When the heartbeat fires unless pinged: None once it is overdue or while paused;
    a period and grace after its last ping, its creation or its resume, the latest."""
    if _down(row) or row["paused_at"] is not None:
        return None
    if row["started_at"] is not None:
        return row["started_at"] + row["grace"]
    since = max(
        t for t in (row["created_at"], row["last_ping"], row["resumed_at"]) if t is not None
    )
    return since + row["period"] + row["grace"]


def summary(row: dict) -> str:
    """The summary of the heartbeat's alert: its own, else "heartbeat NAME is down"."""
    return row["summary"] or f"heartbeat {row['name']} is down"


def _raise_alert(tx: Tx, row: dict, status: str, now: float, rules: Rules, reason: str) -> None:
    """Feed the heartbeat's alert through ingest like any sender's event."""
    name = row["name"]
    event = Event(
        fingerprint=fingerprint(name),
        status=status,  # type: ignore[arg-type]
        summary=summary(row),
        severity=row["severity"],
        labels={"alertname": ALERTNAME, **row["labels"], "heartbeat": name},
        annotations={"reason": reason},
    )
    body = _encode({"heartbeat": name, "status": status, "reason": reason})
    delivery = Delivery(source=SOURCE, key=None, received_at=now, headers={}, body=body)
    apply_delivery(tx, delivery, Decoded([event]), rules)
    change = "heartbeat_down" if status == "firing" else "heartbeat_up"
    level = logging.WARNING if status == "firing" else logging.INFO
    tx.log(log, level, "event=%s name=%s reason=%s", change, logs.value(name), logs.value(reason))


def _existing(tx: Tx, name: str) -> dict:
    row = tx.heartbeat(name)
    if row is None:
        raise NotFound(f"no heartbeat named {name!r}")
    return row


def problems(heartbeats: list[config.Heartbeat]) -> list[str]:
    """Names that fit in a URL path, a period to wait for, no negative grace."""
    found = []
    for i, heartbeat in enumerate(heartbeats):
        where = config.entry(f"heartbeats[{i}]", heartbeat.name)
        found += [f"{where}.{p}" for p in definition_problems(heartbeat)]
    return found


def definition_problems(heartbeat: config.Heartbeat) -> list[str]:
    """``key: reason`` lines for one definition (config or API)."""
    found = []
    if not _NAME.match(heartbeat.name):
        found.append("name: use letters, digits, '.', '_' and '-' (it is part of the ping URL)")
    if heartbeat.period <= 0:
        found.append("period: must be longer than 0s")
    if heartbeat.grace < 0:
        found.append("grace: must not be negative")
    found += [
        f"{key}: at most {config.LONGEST.text()}, got {getattr(heartbeat, key).text()}"
        for key in ("period", "grace")
        if getattr(heartbeat, key) > config.LONGEST
    ]
    if heartbeat.token is not None and len(heartbeat.token) < MIN_TOKEN_LENGTH:
        found.append(f"token: use at least {MIN_TOKEN_LENGTH} characters")
    return found


class Watchdog(Worker):
    """The background task that fires heartbeats whose deadline passed, and copies the
    config's heartbeats into the store whenever the running config changes."""

    name = "watchdog"

    def __init__(
        self,
        store: Store,
        rules: Callable[[], Rules],
        on_changed: Callable[[list[dict]], None],
        on_removed: Callable[[list[str]], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock)
        self.store = store
        self.rules = rules
        self.on_changed = on_changed
        self.on_removed = on_removed
        self._synced: config.Config | None = None

    async def sync(self) -> None:
        rules, now = self.rules(), self.clock()
        cfg = rules.config
        removed = await self.store.write(
            lambda tx: sync(tx, cfg.heartbeats, now, rules), background=True
        )
        self._synced = cfg
        self.on_removed(removed)
        self.on_changed(self.store.heartbeats())

    async def round(self) -> bool:
        if self.rules().config is not self._synced:
            await self.sync()
        now, rules = self.clock(), self.rules()
        expired = await self.write_round(
            self.store, now, lambda tx, isolation: expire_due(tx, now, rules, isolation)
        )
        self.on_changed(expired)
        return len(expired) >= BATCH

    def next_due(self) -> float | None:
        return self.store.next_heartbeat_deadline()
