"""The outbox sender: delivers notification rows written by the dispatcher, at least once.

Rows are claimed with a lease (a conditional update in the store), sent through
Apprise in worker threads with connect/read timeouts, and settled as sent, retried
later with exponential backoff and jitter, or dead-lettered. A claimer that dies
leaves its rows to be claimed again when the lease runs out, or at once when the
hub starts again (``recover``). Every attempt is recorded with its duration and
Apprise's own error text.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from hub import channels, incidents, logs
from hub.config import SCHEDULE_PREFIX, Config, Receiver
from hub.errors import Unavailable
from hub.metrics import Metrics
from hub.rules import Rules
from hub.store import Store, Tx, Unreadable
from hub.templates import NotificationContext, Templates
from hub.worker import Isolation, Worker, doubled

log = logging.getLogger("hub.outbox")

CLAIM_BATCH = 64
RECORD_RETRY_SECONDS = 1.0
"""How long a refused record of an attempt waits before it is written again."""
NO_INTEGRATION = "none"
JITTER = random.Random()
"""Backoff jitter's own generator: drawing from the module's shared one would move the
sequence of any code in the process that seeded it (a test's generator, a library)."""
"""The integration of a dead letter to a receiver the config does not have: there is
no URL, so no scheme (``dispatch._dead_letter``)."""
SHORT_ERROR = 120
"""The most characters of an error the timeline keeps; the delivery log has it all."""
UNREADABLE = "its stored message could not be read"
UNREADABLE_URLS = "its stored URL digests (url_keys) could not be read"
UNFORESEEN = "reading it or finding its URL failed"
LONG_ERROR = 300
"""The most characters of an unforeseen error a notification keeps (``readable``)."""
T = TypeVar("T")
_OS_CAUSE = re.compile(r"\[Errno -?\d+\] ([^\"'()]+)")


@dataclass(frozen=True)
class Failure:
    """Why one send failed, and whether trying the same row again may help."""

    reason: str
    retryable: bool = True


@dataclass(frozen=True)
class Sent:
    """A send the channel accepted; ``template_error`` when the receiver's own template
    failed on this incident and the default message went in its place."""

    template_error: str | None = None


def render_and_send(
    templates: Templates, url: str, timeout: float, context: NotificationContext
) -> Sent | Failure:
    """The message shaped for this channel, then sent; what came of it.

    Runs in a sender thread; ``hub notify-test`` calls it too, so a test goes out
    exactly as a real notification would.

    A URL Apprise cannot load fails the same way every time: such a row goes straight
    to the dead letters, where a fixed config and a retry help it. A receiver's
    template that fails on this incident does not stop the page: the default message
    goes instead (``Templates.render``).
    """
    try:
        channel = channels.open_channel(url, timeout)
    except ValueError as e:
        return Failure(str(e), retryable=False)
    rendered = templates.render(context, channel.kind, channel.limit)
    try:
        error = channel.send(rendered)
    except Exception as e:  # an Apprise plugin bug must not leave the row claimed
        return Failure(f"Apprise raised {_describe(e)}")
    return Sent(rendered.template_error) if error is None else Failure(error)


def _describe(error: Exception) -> str:
    """An exception as a failure's reason, its URLs cut as Apprise's reasons are."""
    return channels.without_url_paths(f"{type(error).__name__}: {error}")


def send_targets(config: Config) -> set[tuple[str, str]]:
    """Every (receiver, integration) the config can send to, on-call people as the
    escalation pages them (``schedule:NAME/PERSON``): the notification series."""
    people = [
        (f"{SCHEDULE_PREFIX}{schedule.name}/{person.name}", person.urls)
        for schedule in config.schedules
        for person in schedule.people
    ]
    receivers = [(r.name, r.urls) for r in config.receivers]
    return {(name, channels.schema(url)) for name, urls in receivers + people for url in urls}


def destination(config: Config, row: dict) -> tuple[Receiver, str] | None:
    """The notification's receiver as ``config`` has it, and the URL to send it to:
    the one it was queued for, found by its digest wherever a reload moved it among
    the receiver's URLs; else the URL now at its position if that one is new to the
    receiver (its own was edited in place: a typo fixed, a token rotated). None if a
    reload removed the receiver or the URL: never another URL the receiver had when
    the message was queued, which has a copy of its own and would be told twice
    while this one is told nothing."""
    receiver = config.receiver(row["receiver"])
    queued, position = row["url_keys"], row["channel"]
    if receiver is None or not queued:
        return None
    keys = [channels.url_key(url) for url in receiver.urls]
    if queued[position] in keys:
        return receiver, receiver.urls[keys.index(queued[position])]
    if position < len(keys) and keys[position] not in queued:
        return receiver, receiver.urls[position]
    return None


def readable(
    config: Config, row: dict, find: Callable[[Config, dict], T | None]
) -> tuple[NotificationContext, T] | str:
    """The row's message and where ``find`` says it goes (``destination`` for a send,
    ``reachable`` for a retry), or why it cannot go: the row cannot be read
    (``message``), its receiver or URL is gone (``unreachable``), or anything on the
    way raised that no check foresaw (a receiver stored as bytes, a bug). Such a row
    fails the same way at every try, so it is a dead letter, and a retry is refused
    until it is repaired. Without this guard the send task died, and the row stayed
    claimed until its lease ran out and was claimed again, forever: neither sent nor
    dead, and nobody saw why. An error's reason names its type and message, URLs cut
    to their hosts, never a traceback's values."""
    try:
        context = message(row)
        if isinstance(context, str):
            return context
        found = find(config, row)
        return unreachable(config, row) if found is None else (context, found)
    except Exception as e:
        return _cut(f"{UNFORESEEN}: {_describe(e)}", LONG_ERROR)


def message(row: dict) -> NotificationContext | str:
    """The row's stored message, or why the row cannot be read: its message or the
    digests naming its URLs (``url_keys``, which ``destination`` reads) not JSON, JSON
    of another shape (a field missing or of another type), or no digest at its
    ``channel``, as a fault, a hand edit or an older hub may leave them. Nothing in hub
    repairs them, so such a row fails the same way at every try: it is dead-lettered
    at its first, where it counts and shows as someone not told, and a retry is
    refused until the row is repaired. Read before ``destination``."""
    keys = _read(row, "url_keys", list[str], UNREADABLE_URLS)
    if isinstance(keys, str):
        return keys
    channel = row["channel"]
    if keys and not (isinstance(channel, int) and 0 <= channel < len(keys)):
        return f"{UNREADABLE_URLS}: it has {len(keys)}, none at channel {channel!r}"
    return _read(row, "payload", NotificationContext, UNREADABLE)


def _read(row: dict, column: str, shape: type[T], unreadable: str) -> T | str:
    """The row's JSON ``column`` (``Unreadable`` if the store could not decode it) as
    ``shape``, or ``unreadable`` and the problem: msgspec's, which names a field and a
    type, never a value."""
    value = row[column]
    if isinstance(value, Unreadable):
        return f"{unreadable}: {value.reason}"
    try:
        return msgspec.convert(value, shape)
    except msgspec.ValidationError as e:
        return f"{unreadable}: {e}"


def reachable(config: Config, row: dict) -> Receiver | None:
    """The receiver a dead letter could be sent again to: one with the URL it was queued
    for, or for a letter to a receiver the config lacked (``NO_INTEGRATION``), the
    receiver at all, now that the config has it."""
    if row["integration"] == NO_INTEGRATION:
        return config.receiver(row["receiver"])
    found = destination(config, row)
    return None if found is None else found[0]


def unreachable(config: Config, row: dict) -> str:
    """Why ``reachable`` or ``destination`` found nothing, as the delivery log and a
    refused retry say it."""
    name = row["receiver"]
    if config.receiver(name) is None:
        return f"receiver {name!r} is not in the config"
    return f"receiver {name!r} no longer has the URL this message was queued for"


def bind_older_rows(tx: Tx, config: Config) -> int:
    """Name the URLs (``url_keys``) of each notification an older hub queued that may
    still be sent: the receiver's URLs in ``config``, the one hub starts with, which
    is the config it was queued under unless the upgrade changed both. One whose
    receiver or position is gone names none, so it dies with ``unreachable``'s
    reason, as it would have. Returns the rows bound."""
    bound = 0
    for row in tx.unbound_notifications(NO_INTEGRATION):
        receiver = config.receiver(row["receiver"])
        if receiver is not None and row["channel"] < len(receiver.urls):
            keys = [channels.url_key(url) for url in receiver.urls]
            tx.bind_notification_urls(row["id"], keys)
            bound += 1
    return bound


def claim(
    tx: Tx, now: float, lease: float, limit: int, sending: set[int], isolation: Isolation
) -> list[dict]:
    """Claim the rows due (``Tx.claim_notifications``), each read on its own
    (``isolation``): one SQLite cannot read is put back for later, the others go out
    (one whose JSON is malformed is read, and dead-lettered: ``message``). A claim is
    no row's last step: its failures in a row end once its outcome is written."""
    claimed = []
    for notification_id in tx.claim_notifications(now, lease, limit, sending):
        row = isolation.run(
            tx,
            f"notification={notification_id}",
            functools.partial(Tx.claimed_notification, notification_id=notification_id),
            functools.partial(_unclaim, notification_id=notification_id),
            last=False,
        )
        if row is not None:
            claimed.append(row)
    return claimed


def _unclaim(tx: Tx, at: float, notification_id: int) -> None:
    """Reading the claimed row failed: put it back, due ``at``."""
    tx.unclaim_notification(notification_id, at)


def send_limit(receiver: Receiver) -> float:
    """How long one send to ``receiver`` may take before it counts as failed: its
    connect and read timeouts, and a margin for rendering and the hand-off."""
    return receiver.timeout * 2 + 5


def longest_send(config: Config) -> float:
    """The longest a send may take under ``config``: a claim's lease must outlast it, or
    a row still in flight would be claimed again as if its sender had died, and sent
    twice. On-call people are sent to with a receiver's default timeout."""
    people = Receiver(name="", urls=[])
    return max(send_limit(receiver) for receiver in [*config.receivers, people])


def dismiss(tx: Tx, row: dict, by: str, comment: str, now: float, via: str | None = None) -> bool:
    """Set a dead letter aside (``dismissed``) and say so on its incident's timeline
    with who and why (and ``via`` the token that named them); False if it is not dead.
    A dead letter is someone not told: it counts as one
    (``hub_outbox_notifications{state="dead"}``) until it is sent again or a person
    decides nobody needs it any more, so the count means "needs action"."""
    if not tx.dismiss_notification(row["id"]):
        return False
    if row["incident_id"] is not None:
        letter = {"notification": row["id"], "receiver": row["receiver"]}
        detail = letter | incidents.said(comment, via)
        tx.add_timeline(row["incident_id"], now, "dead_letter_dismissed", by, detail)
    return True


def short_error(error: str | None) -> str:
    """An attempt's error as the timeline says it: the operating system's cause where
    there is one ("connection refused"), else the first of Apprise's lines, which
    name a host at most; any URL cut to its host (``channels.without_url_paths``)."""
    if not error:
        return "no reason given"
    cause = _OS_CAUSE.search(error)
    text = cause.group(1).strip().lower() if cause else error.split("; ")[0].strip()
    return _cut(channels.without_url_paths(text).rstrip("."), SHORT_ERROR)


def _cut(text: str, most: int) -> str:
    """``text`` in at most ``most`` characters, an ellipsis saying it was cut."""
    return text if len(text) <= most else text[: most - 1] + "…"


def settled_entry(tx: Tx, row: dict, state: str, error: str | None, now: float) -> None:
    """The incident's timeline entry for a message that went out (``notified``) or
    died (``notification_dead``, with the attempts made and a short, URL-free error):
    written as it happens, so the timeline never says a person was told who was not.
    The one writer of both, for a message the sender gave up on and for one the
    dispatcher dead-letters unsent (``dispatch._dead_letter``: attempts 0,
    integration none), so that a reader meets one shape per kind: ``alerts`` is left
    out only for a message that could not be read (``message``)."""
    if row["incident_id"] is None or state not in ("sent", "dead"):
        return
    detail = {"receiver": row["receiver"], "integration": row["integration"]}
    detail |= {"status": row["kind"], **_listed(row["payload"])}
    detail |= {"notification": row["id"], "attempts": row["attempts"]}
    if state == "dead":
        detail["error"] = short_error(error)
    kind = "notified" if state == "sent" else "notification_dead"
    tx.add_timeline(row["incident_id"], now, kind, None, detail)


def _listed(payload: object) -> dict[str, int]:
    """How many alerts a stored message lists (``alerts``), if it can be read that far:
    a message that cannot be read (``message``) dies all the same."""
    alerts = payload.get("alerts") if isinstance(payload, dict) else None
    return {"alerts": len(alerts)} if isinstance(alerts, list) else {}


def _next_state(
    config: Config, row: dict, failure: Failure | None, now: float
) -> tuple[str, float]:
    """Where a row goes after an attempt: sent, dead, or pending again after a backoff.
    The budget is ``max_attempts`` since the row's last retry, if any."""
    settings = config.notifier
    if failure is None:
        return "sent", row["due_at"]
    tries = row["attempts"] - row["retried_attempts"]
    if not failure.retryable or tries >= settings.max_attempts:
        return "dead", row["due_at"]
    delay = backoff_delay(tries, settings.backoff, settings.max_backoff, JITTER.random)
    return "pending", now + delay


def backoff_delay(attempts: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Exponential backoff with full jitter on the upper half: spreads retries out."""
    return doubled(base, attempts - 1, cap) * (0.5 + rand() / 2)


class Sender(Worker):
    """The background task that drains the outbox."""

    name = "outbox"

    def __init__(
        self,
        store: Store,
        rules: Callable[[], Rules],
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        lease: float = 60.0,
    ) -> None:
        super().__init__(clock)
        self.store = store
        self.rules = rules
        self.metrics = metrics
        self.lease = lease
        self._inflight: set[asyncio.Task] = set()
        self._sending: set[int] = set()  # the notifications those tasks send
        channels.route_apprise_logs()
        metrics.precreate_channels(send_targets(rules().config))
        self.concurrency = rules().config.notifier.concurrency
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="hub-send")

    async def recover(self) -> None:
        """Before the first round: take back what a killed predecessor had claimed, and
        name the URL of each notification an older hub queued (``bind_older_rows``)."""
        config = self.rules().config

        def recover(tx: Tx) -> tuple[int, int]:
            return tx.release_claims(), bind_older_rows(tx, config)

        released, bound = await self.store.write(recover, background=True)
        if released:
            log.warning("event=notifications_recovered count=%d", released)
        if bound:
            log.info("event=notifications_bound count=%d", bound)

    async def round(self) -> bool:
        self._resize(self.rules().config.notifier.concurrency)
        claimed = await self._claim()
        if self._stopping:
            # Shutdown began while the claim committed: sending now could outlive the
            # store, leaving a sent row marked 'sending' to be sent again after the
            # restart. The rows stay claimed; the next start's ``recover`` frees them.
            return False
        for row in claimed:
            task = asyncio.create_task(self._deliver(row))
            self._inflight.add(task)
            self._sending.add(row["id"])
            task.add_done_callback(functools.partial(self._sent, row["id"]))
        return bool(claimed)

    def _sent(self, notification_id: int, task: asyncio.Task) -> None:
        self._inflight.discard(task)
        self._sending.discard(notification_id)

    def next_due(self) -> float | None:
        if len(self._inflight) >= self.concurrency:
            return None  # a finished send pokes
        return self.store.next_notification_due()

    async def shutdown(self, grace: float = 5.0) -> None:
        """Stop claiming, give in-flight sends a moment, then let leases do the rest."""
        self.stop()
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=grace)
            for task in pending:
                task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _resize(self, concurrency: int) -> None:
        """A reload may change ``[notifier] concurrency``: later sends run on a pool of
        the new size, and the sends in flight finish on the old one."""
        if concurrency == self.concurrency:
            return
        old = self._pool
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="hub-send")
        old.shutdown(wait=False)
        log.info("event=notifier_resized concurrency=%d was=%d", concurrency, self.concurrency)
        self.concurrency = concurrency

    async def _claim(self) -> list[dict]:
        free = min(CLAIM_BATCH, self.concurrency - len(self._inflight))
        if free <= 0:
            return []
        now = self.clock()
        lease = max(self.lease, longest_send(self.rules().config))
        sending = set(self._sending)
        return await self.write_round(
            self.store, now, lambda tx, isolation: claim(tx, now, lease, free, sending, isolation)
        )

    async def _deliver(self, row: dict) -> None:
        rules = self.rules()
        started = self.clock()
        result = await self._send(rules, row)
        duration = self.clock() - started
        self._time(row, duration)
        await self._settle(rules.config, row, started, duration * 1000, result)
        self.poke()

    def _time(self, row: dict, seconds: float) -> None:
        """Time an attempt under its integration's series, unless a reload left no
        receiver or on-call person using that integration: its series is gone
        (``Runtime._forget_removed``), and an observation would bring it back."""
        used = {integration for _, integration in send_targets(self.rules().config)}
        if row["integration"] in used:
            self.metrics.attempt_seconds.labels(row["integration"]).observe(max(seconds, 0))

    async def _send(self, rules: Rules, row: dict) -> Sent | Failure:
        found = readable(rules.config, row, destination)
        if isinstance(found, str):
            return Failure(found, retryable=False)
        context, (receiver, url) = found
        call = asyncio.get_running_loop().run_in_executor(
            self._pool, render_and_send, rules.templates, url, receiver.timeout, context
        )
        limit = send_limit(receiver)
        try:
            return await asyncio.wait_for(call, timeout=limit)
        except TimeoutError:
            return Failure(f"no answer within {limit:g}s")

    async def _settle(
        self,
        config: Config,
        row: dict,
        started: float,
        duration_ms: float,
        result: Sent | Failure,
    ) -> None:
        """Record the attempt and where the row goes. A message sent in place of a
        receiver's template that failed keeps the template's error on its attempt and
        as its ``last_error``: it was sent, and that template needs fixing."""
        now = self.clock()
        if isinstance(result, Failure):
            failure, error = result, result.reason
        else:
            failure, error = None, result.template_error

        def settle(tx: Tx) -> str:
            state, due = _next_state(config, row, failure, now)
            outcome = "sent" if failure is None else "failed"
            tx.record_attempt(row["id"], started, duration_ms, outcome, error)
            if tx.finish_notification(row["id"], state, error, now, due):
                settled_entry(tx, row, state, error, now)
            tx.log(
                log,
                logging.INFO if state != "dead" and error is None else logging.WARNING,
                "event=notification_%s id=%d receiver=%s integration=%s attempt=%d%s",
                state,
                row["id"],
                logs.value(row["receiver"]),
                logs.value(row["integration"]),
                row["attempts"],
                "" if error is None else f" error={logs.value(error)}",
            )
            return state

        state = await self._record(row["id"], now, settle)
        if state is not None:
            self._count(row, state, now, template_failed=failure is None and error is not None)

    async def _record(
        self, notification_id: int, now: float, settle: Callable[[Tx], str]
    ) -> str | None:
        """Commit an attempt's outcome, again and again while the store refuses it (a
        write lock held past its wait, a failed commit): the send happened, and a row
        left claimed would go out again once its lease ran out, with no trace of this
        attempt. A hub stopping gives up; the next start sends the row again.

        The outcome is one item of the worker's (``Isolation``): if writing it raises
        (a row whose values no check foresaw, as ``readable`` guards the send), it is
        undone, logged as ``worker_item_failed``, counted, and the row put back in the
        queue, its attempt not counted, for the item's next try (a minute, doubled at
        each failure in a row, up to an hour). Before, the send task died, and the row,
        left claimed, was tried again at every lease for ever, counted nowhere. This is
        the simplest bound that needs no write that might raise in turn: a dead letter
        whose entry cannot be written stays queued, not dead, and a sent message goes
        out again (at least once), but each only at the item's pace, each try logged.
        Returns the row's state, None if it was put back."""
        item = f"notification={notification_id}"
        unclaim = functools.partial(_unclaim, notification_id=notification_id)
        while True:
            try:
                return await self.write_round(
                    self.store, now, lambda tx, isolation: isolation.run(tx, item, settle, unclaim)
                )
            except Unavailable:
                if self._stopping:
                    raise
                await asyncio.sleep(RECORD_RETRY_SECONDS)

    def _count(self, row: dict, state: str, now: float, template_failed: bool) -> None:
        """Count an attempt under its receiver's series, and a message sent in place of
        its receiver's template that failed. A receiver a reload removed, or
        one whose URLs no longer include this integration, has lost those series
        (``Runtime._forget_removed``); its notifications left in the outbox (a send in
        flight at the reload, then dead-lettered) are not counted, as a count would
        bring the series back at 1, invisible to ``increase()`` and kept until a
        restart. They stay in hub_outbox_notifications{state="dead"}. A receiver
        stored as other than text (a hand edit, a fault) was never a channel and is
        dead-lettered (``readable``): its dead letter counts under its name as the
        log line shows it (``Metrics.label``). A time stored as other than a number
        is not observed: the attempt is committed, and counting it must not fail."""
        receiver, integration = row["receiver"], row["integration"]
        if isinstance(receiver, str) and (receiver, integration) not in send_targets(
            self.rules().config
        ):
            return
        outcome = {"sent": "sent", "dead": "dead"}.get(state, "failed")
        label = self.metrics.label(receiver)
        self.metrics.notifications.labels(label, self.metrics.label(integration), outcome).inc()
        if template_failed:
            self.metrics.template_errors.labels(label).inc()
        if state != "sent":
            return
        for histogram, since in (
            (self.metrics.delivery_seconds, row["created_at"]),
            (self.metrics.event_latency, row["changed_at"]),
        ):
            if isinstance(since, int | float):
                histogram.labels(label).observe(max(now - since, 0))
