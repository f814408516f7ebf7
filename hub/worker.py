"""The loop every background worker shares: do a round of work; when a round finds
nothing to do, sleep until poked, until the next due time, or the idle poll. A round
that fails, or a look for the next due time that fails, is logged and counted, and the
loop goes on after the idle poll: a store error for a moment must not stop a worker for
good (the sender, and nobody is notified again until a restart).

A round that handles several items (incidents' receivers, escalation chains,
heartbeats, alerts that ended) handles each in a savepoint of its own (``Isolation``): one item that
raises is set aside for a while and the others go on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from hub import logs

if TYPE_CHECKING:
    from hub.store import Store, Tx

log = logging.getLogger("hub.worker")
R = TypeVar("R")

IDLE_POLL_SECONDS = 1.0
RETRY_SECONDS = 60.0
"""How long an item whose handling raised is set aside: long enough that it does not
take a share of every round, short enough that a cause that heals by itself (a
repaired row, a config put right) costs at most a minute's delay."""


@dataclass
class Isolation:
    """The items of one round, each handled in a savepoint of its own (``Tx.isolated``).

    An item that raises (a bug, a row an older hub or a hand edit left malformed, a
    time past what a datetime holds) is undone alone, logged as ``worker_item_failed``
    once the round commits, counted (``failed``) and postponed ``RETRY_SECONDS``; the
    round's other items commit as usual. Without it such an item failed the round's
    whole write, came first again in the next round, and nobody was notified or paged
    for any incident. It is postponed, never dropped, so it is retried."""

    worker: str
    now: float
    failed: int = 0

    def run(
        self,
        tx: Tx,
        item: str,
        handle: Callable[[Tx], R],
        postpone: Callable[[Tx, float], None],
    ) -> R | None:
        """``handle`` one item, named in the log by ``item`` (logfmt pairs such as
        ``incident=7``); None if it raised, once ``postpone`` set its next try."""
        result, error = tx.isolated(handle)
        if error is None:
            return result
        postpone(tx, self.now + RETRY_SECONDS)
        tx.log(
            log,
            logging.ERROR,
            "event=worker_item_failed worker=%s %s error=%s at=%s retry_in=%g",
            self.worker,
            item,
            logs.value(f"{type(error).__name__}: {error}"[:300]),
            _where(error),
            RETRY_SECONDS,
        )
        self.failed += 1
        return None


def _where(error: Exception) -> str:
    """The file and line that raised, for whoever fixes it: the traceback's last frame,
    without the message's values a full traceback might repeat."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "unknown"
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}"


class Worker:
    """Subclasses implement ``round`` (True when it did something) and ``next_due``."""

    name = "worker"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._set_aside: Callable[[int], None] = lambda count: None

    def poke(self) -> None:
        """New work exists: look now instead of at the next poll."""
        self._wake.set()

    async def run(
        self,
        failed: Callable[[], None] = lambda: None,
        set_aside: Callable[[int], None] = lambda count: None,
    ) -> None:
        """Work until stopped; ``failed`` counts each round that raised, ``set_aside``
        the items a round set aside (``Isolation``)."""
        self._set_aside = set_aside
        while not self._stopping:
            self._wake.clear()  # a poke during the round is kept, so no wake-up is lost
            try:
                if not await self.round():
                    await self._sleep()
            except Exception:
                log.exception("event=worker_round_failed worker=%s", self.name)
                failed()
                await self._pause(IDLE_POLL_SECONDS)

    async def write_round(self, store: Store, now: float, fn: Callable[[Tx, Isolation], R]) -> R:
        """Run ``fn`` as this round's store write, its items isolated; the items it set
        aside are counted once the write committed (a batch run again after another
        write failed runs ``fn`` twice)."""

        def write(tx: Tx) -> tuple[R, int]:
            isolation = Isolation(self.name, now)
            return fn(tx, isolation), isolation.failed

        result, failed = await store.write(write, background=True)
        if failed:
            self._set_aside(failed)
        return result

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def round(self) -> bool:
        raise NotImplementedError

    def next_due(self) -> float | None:
        """The epoch time the next known work falls due, if any."""
        return None

    async def _sleep(self) -> None:
        due = self.next_due()
        await self._pause(
            IDLE_POLL_SECONDS if due is None else min(IDLE_POLL_SECONDS, due - self.clock())
        )

    async def _pause(self, wait: float) -> None:
        """Sleep ``wait`` seconds, or until poked."""
        if wait <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=wait)
