"""The outbox sender: delivers notification rows written by ingest, at least once.

Rows are claimed with a lease (a conditional update in the store), sent through
Apprise in worker threads with connect/read timeouts, and settled as sent, retried
later with exponential backoff and jitter, or dead-lettered. A claimer that dies
leaves its rows to be claimed again when the lease runs out. Every attempt is
recorded with its duration and Apprise's own error text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import apprise

from hub.config import Config, Receiver
from hub.metrics import Metrics
from hub.store import Store, Tx

log = logging.getLogger("hub.outbox")

CLAIM_BATCH = 64
IDLE_POLL_SECONDS = 1.0


def integration(url: str) -> str:
    """The channel kind of an Apprise URL, e.g. "mailto", "slack", "twilio"."""
    return urlsplit(url).scheme.lower() or "unknown"


def channels(config: Config) -> set[tuple[str, str]]:
    """Every (receiver, integration) the config can send to: the notification series."""
    return {(r.name, integration(url)) for r in config.receivers for url in r.urls}


def backoff_delay(attempts: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Exponential backoff with full jitter on the upper half: spreads retries out."""
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay * (0.5 + rand() / 2)


def send_apprise(url: str, title: str, body: str, timeout: float) -> str | None:
    """Send one message to one Apprise URL; None on success, else the reason given.

    The plugin is instantiated directly and called in this worker thread, with its
    throttle off (the outbox owns pacing and retries), so the reason can be taken
    from Apprise's log lines emitted by this thread.
    """
    service = apprise.Apprise.instantiate(_with_timeouts(url, timeout))
    if not service:
        return "the Apprise URL is not valid or its plugin is not available"
    service.request_rate_per_sec = 0
    capture = _ThreadLogCapture()
    _APPRISE_LOG.addHandler(capture)
    try:
        ok = service.notify(title=title, body=body)
    finally:
        _APPRISE_LOG.removeHandler(capture)
    if ok:
        return None
    return "; ".join(capture.lines) or "Apprise reported a failure without a reason"


def _with_timeouts(url: str, timeout: float) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}cto={timeout:g}&rto={timeout:g}"


_APPRISE_LOG = logging.getLogger("apprise")


def route_apprise_logs() -> None:
    """Let Apprise's debug detail reach the per-send capture, but only its warnings
    reach hub's log (as ``hub.apprise``): the reason a send failed is often only in a
    debug line ("Socket Exception: [Errno 111] Connection refused")."""
    if any(isinstance(h, _ForwardWarnings) for h in _APPRISE_LOG.handlers):
        return
    _APPRISE_LOG.setLevel(logging.DEBUG)
    _APPRISE_LOG.propagate = False
    _APPRISE_LOG.addHandler(_ForwardWarnings())


class _ForwardWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger("hub.apprise").handle(record)


class _ThreadLogCapture(logging.Handler):
    """Collects the failure detail Apprise logs from the current thread only."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        message = record.getMessage()
        if record.levelno >= logging.WARNING or "xception" in message or "esponse" in message:
            self.lines.append(message.strip())


def render(payload: dict, base_url: str) -> tuple[str, str]:
    """A plain title and body for an alert notification."""
    status = payload["status"].upper()
    title = f"[{status}:{payload['severity']}] {payload['summary']}"
    labels = ", ".join(f"{k}={v}" for k, v in sorted(payload["labels"].items()))
    body = "\n".join(
        [
            payload["summary"],
            f"status: {payload['status']}  severity: {payload['severity']}",
            f"source: {payload['source']}",
            f"labels: {labels}",
            f"alert: {base_url}/api/v1/alerts/{payload['alert_id']}",
        ]
    )
    return title, body


class Sender:
    """The background task that drains the outbox."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], Config],
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        lease: float = 60.0,
    ) -> None:
        self.store = store
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self.lease = lease
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: set[asyncio.Task] = set()
        route_apprise_logs()
        metrics.precreate_channels(channels(config()))
        self.concurrency = config().notifier.concurrency
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="hub-send")

    def poke(self) -> None:
        """Something was enqueued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            claimed = await self._claim()
            for row in claimed:
                task = asyncio.create_task(self._deliver(row))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            if not claimed:
                await self._sleep()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming, give in-flight sends a moment, then let leases do the rest."""
        self._stopping = True
        self._wake.set()
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
        return await self.store.write(lambda tx: tx.claim_notifications(now, self.lease, free))

    async def _sleep(self) -> None:
        """Wait for a poke, a finished send, the next due row, or the idle poll."""
        self._wake.clear()
        wait = IDLE_POLL_SECONDS
        if len(self._inflight) < self.concurrency:
            due = self.store.next_notification_due()
            if due is not None:
                wait = min(wait, due - self.clock())
            if wait <= 0:
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def _deliver(self, row: dict) -> None:
        config = self.config()
        receiver = config.receiver(row["receiver"])
        started = self.clock()
        error = await self._send(config, receiver, row)
        duration = self.clock() - started
        self.metrics.attempt_seconds.labels(row["integration"]).observe(max(duration, 0))
        duration_ms = duration * 1000
        await self._settle(config, row, started, duration_ms, error)
        self._wake.set()

    async def _send(self, config: Config, receiver: Receiver | None, row: dict) -> str | None:
        if receiver is None or row["channel"] >= len(receiver.urls):
            return f"receiver {row['receiver']!r} no longer has this channel in the config"
        title, body = render(row["payload"], config.server.base_url)
        url = receiver.urls[row["channel"]]
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self._pool, send_apprise, url, title, body, receiver.timeout)
        try:
            return await asyncio.wait_for(call, timeout=receiver.timeout * 2 + 5)
        except TimeoutError:
            return f"no answer within {receiver.timeout * 2 + 5:g}s"

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

        await self.store.write(settle)
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
            latency = now - row["payload"]["received_at"]
            self.metrics.delivery_seconds.labels(row["receiver"]).observe(max(latency, 0))
