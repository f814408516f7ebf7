"""The outbox sender: delivers notification rows written by the dispatcher, at least once.

Rows are claimed with a lease (a conditional update in the store), sent through
Apprise in worker threads with connect/read timeouts, and settled as sent, retried
later with exponential backoff and jitter, or dead-lettered. A claimer that dies
leaves its rows to be claimed again when the lease runs out. Every attempt is
recorded with its duration and Apprise's own error text.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import msgspec

from hub import channels
from hub.config import Config
from hub.metrics import Metrics
from hub.rules import Rules
from hub.store import Store, Tx
from hub.templates import NotificationContext
from hub.worker import Worker

log = logging.getLogger("hub.outbox")

CLAIM_BATCH = 64


def _render_and_send(
    rules: Rules, url: str, timeout: float, context: NotificationContext
) -> str | None:
    """Runs in a sender thread: the message shaped for this channel, then sent."""
    try:
        channel = channels.open_channel(url, timeout)
    except ValueError as e:
        return str(e)
    rendered = rules.templates.render(context, channel.kind, channel.limit)
    return channel.send(rendered.title, rendered.body, rendered.body_format)


def send_targets(config: Config) -> set[tuple[str, str]]:
    """Every (receiver, integration) the config can send to: the notification series."""
    return {(r.name, channels.schema(url)) for r in config.receivers for url in r.urls}


def backoff_delay(attempts: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Exponential backoff with full jitter on the upper half: spreads retries out."""
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay * (0.5 + rand() / 2)


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
        channels.route_apprise_logs()
        metrics.precreate_channels(send_targets(rules().config))
        self.concurrency = rules().config.notifier.concurrency
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="hub-send")

    async def round(self) -> bool:
        claimed = await self._claim()
        for row in claimed:
            task = asyncio.create_task(self._deliver(row))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return bool(claimed)

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

    async def _claim(self) -> list[dict]:
        free = min(CLAIM_BATCH, self.concurrency - len(self._inflight))
        if free <= 0:
            return []
        now = self.clock()
        return await self.store.write(
            lambda tx: tx.claim_notifications(now, self.lease, free), background=True
        )

    async def _deliver(self, row: dict) -> None:
        rules = self.rules()
        started = self.clock()
        error = await self._send(rules, row)
        duration = self.clock() - started
        self.metrics.attempt_seconds.labels(row["integration"]).observe(max(duration, 0))
        await self._settle(rules.config, row, started, duration * 1000, error)
        self.poke()

    async def _send(self, rules: Rules, row: dict) -> str | None:
        receiver = rules.config.receiver(row["receiver"])
        if receiver is None or row["channel"] >= len(receiver.urls):
            return f"receiver {row['receiver']!r} no longer has this channel in the config"
        context = msgspec.convert(row["payload"], NotificationContext)
        call = asyncio.get_running_loop().run_in_executor(
            self._pool,
            _render_and_send,
            rules,
            receiver.urls[row["channel"]],
            receiver.timeout,
            context,
        )
        limit = receiver.timeout * 2 + 5
        try:
            return await asyncio.wait_for(call, timeout=limit)
        except TimeoutError:
            return f"no answer within {limit:g}s"

    async def _settle(
        self, config: Config, row: dict, started: float, duration_ms: float, error: str | None
    ) -> None:
        now = self.clock()
        settings = config.notifier
        if error is None:
            state, due = "sent", row["due_at"]
        elif row["attempts"] >= settings.max_attempts:
            state, due = "dead", row["due_at"]
        else:
            delay = backoff_delay(
                row["attempts"], settings.backoff, settings.max_backoff, random.random
            )
            state, due = "pending", now + delay

        def settle(tx: Tx) -> None:
            tx.record_attempt(
                row["id"], started, duration_ms, "sent" if error is None else "failed", error
            )
            tx.finish_notification(row["id"], state, error, now, due)

        await self.store.write(settle, background=True)
        self._count(row, state, now)
        log.info(
            "event=notification_%s id=%d receiver=%s integration=%s attempt=%d error=%r",
            state,
            row["id"],
            row["receiver"],
            row["integration"],
            row["attempts"],
            error,
        )

    def _count(self, row: dict, state: str, now: float) -> None:
        outcome = {"sent": "sent", "dead": "dead"}.get(state, "failed")
        self.metrics.notifications.labels(row["receiver"], row["integration"], outcome).inc()
        if state == "sent":
            latency = now - row["created_at"]
            self.metrics.delivery_seconds.labels(row["receiver"]).observe(max(latency, 0))
