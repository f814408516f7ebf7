"""The loop every background worker shares: do a round of work; when a round finds
nothing to do, sleep until poked, until the next due time, or the idle poll. A round
that fails, or a look for the next due time that fails, is logged and counted, and the
loop goes on after the idle poll: a store error for a moment must not stop a worker for
good (the sender, and nobody is notified again until a restart).

A round that handles several items (incidents' receivers, escalation chains,
heartbeats, alerts that ended) handles each in a savepoint of its own (``Isolation``): one item that
raises is set aside for a while, longer at each failure in a row, and the others go on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from hub import logs

if TYPE_CHECKING:
    from hub.store import Store, Tx

log = logging.getLogger("hub.worker")
R = TypeVar("R")

IDLE_POLL_SECONDS = 1.0
RETRY_SECONDS = 60.0
"""How long an item whose handling raised is set aside the first time: long enough
that it does not take a share of every round, short enough that a cause that heals by
itself (a repaired row, a config put right) costs at most a minute's delay."""
MAX_RETRY_SECONDS = 3600.0
"""The longest an item is set aside, however often it failed in a row: a row that stays
broken for days runs its failing code and logs its error once an hour, not every
minute, and is still tried within the hour once someone repairs it."""
LATE_SECONDS = 300.0
"""How late past its retry (or as late as its retry's wait, if longer) a set-aside
item may be tried before it is taken for gone (``Streak.forgotten``): room for a send
in flight and a busy round."""


def doubled(base: float, times: int, cap: float) -> float:
    """``base`` doubled ``times`` times, at most ``cap``: the delay of an exponential
    backoff (this module's set-aside items, the outbox's failed sends). The exponent
    stops at 64, so a streak of any length cannot overflow a float."""
    return min(cap, base * 2.0 ** min(max(times, 0), 64))


def retry_delay(failures: int) -> float:
    """How long an item that failed ``failures`` times in a row is set aside: a minute,
    then 2, 4, 8 ... up to an hour, as alerting tools back off a retry loop."""
    return doubled(RETRY_SECONDS, failures - 1, MAX_RETRY_SECONDS)


class Streak(NamedTuple):
    """An item's failures in a row, and the clock's time at the last of them."""

    failures: int
    at: float

    def forgotten(self, now: float) -> bool:
        """Whether the item is gone: it was due again ``retry_delay`` after its last
        failure, and ``LATE_SECONDS`` more passed with no news of it (its incident
        resolved, its alert ended by a re-send). Kept two hours, it stayed gauged
        failing, and HubWorkerItemsFailing paged for a fault long gone; one whose due
        time something else moved later merely starts again at a minute."""
        delay = retry_delay(self.failures)
        return now > self.at + delay + max(delay, LATE_SECONDS)


@dataclass
class Isolation:
    """The items of one round, each handled in a savepoint of its own (``Tx.isolated``).

    An item that raises (a bug, a row an older hub or a hand edit left malformed, a
    time past what a datetime holds) is undone alone, logged as ``worker_item_failed``
    once the round commits, counted (``failed``) and postponed (``retry_delay``: a
    minute, doubled at each failure in a row, up to an hour); the round's other items
    commit as usual. Without it such an item failed the round's whole write, came first
    again in the next round, and nobody was notified or paged for any incident. It is
    postponed, never dropped, so it is retried.

    An item is known by its worker and its name in the log (``incident=7``): the
    failures in a row before this round come from ``streaks`` (the worker's memory),
    and ``outcomes`` holds what this round changed, for the worker to keep once the
    round's write commits."""

    worker: str
    now: float
    streaks: Mapping[str, Streak] = field(default_factory=dict)
    failed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    """Item -> its failures in a row after this round; 0 for one that went through."""

    def run(
        self,
        tx: Tx,
        item: str,
        handle: Callable[[Tx], R],
        postpone: Callable[[Tx, float], None],
        *,
        last: bool = True,
    ) -> R | None:
        """``handle`` one item, named in the log by ``item`` (logfmt pairs such as
        ``incident=7``); None if it raised, once ``postpone`` set its next try. A step
        that another round's step follows (``last`` False: the outbox's claim, then the
        send's outcome) going through leaves the item's failures in a row as they were:
        it is only through once its last step is."""
        result, error = tx.isolated(handle)
        if error is None:
            if last:
                self.succeeded(item)
            return result
        failures = self._failures(item) + 1
        self.outcomes[item] = failures
        delay = retry_delay(failures)
        postpone(tx, self.now + delay)
        tx.log(
            log,
            logging.ERROR,
            "event=worker_item_failed worker=%s %s error=%s at=%s failures=%d retry_in=%g",
            self.worker,
            item,
            logs.value(f"{type(error).__name__}: {error}"[:300]),
            _where(error),
            failures,
            delay,
        )
        self.failed += 1
        return None

    def succeeded(self, item: str) -> None:
        """``item`` went through, here or in a round's batch that held it: its next
        failure is set aside a minute again. A failure of the same item earlier in the
        round (an incident's lapsed acknowledgement, then its step) stands."""
        if item in self.streaks:
            self.outcomes.setdefault(item, 0)

    def _failures(self, item: str) -> int:
        """The item's failures in a row before this round: a second failure in the
        same round (its step after its wake-up) is set aside as long as the first."""
        streak = self.streaks.get(item)
        return 0 if streak is None else streak.failures


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
        self._set_aside: Callable[[int, int], None] = lambda count, failing: None
        self._streaks: dict[str, Streak] = {}
        """The failures in a row of each item whose last try failed (``Isolation``):
        in memory, so a restart starts every item over at a minute."""

    def poke(self) -> None:
        """New work exists: look now instead of at the next poll."""
        self._wake.set()

    async def run(
        self,
        failed: Callable[[], None] = lambda: None,
        set_aside: Callable[[int, int], None] = lambda count, failing: None,
    ) -> None:
        """Work until stopped; ``failed`` counts each round that raised, ``set_aside``
        the items a round set aside (``Isolation``) and how many items' last try failed
        after it, when a round changed either."""
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

    async def write_round(
        self, store: Store, now: float, fn: Callable[[Tx, Isolation], R], *, long: bool = False
    ) -> R:
        """Run ``fn`` as this round's store write, its items isolated; the items it set
        aside are counted, and their streaks kept, once the write committed (a batch
        run again after another write failed runs ``fn`` twice). A ``long`` round is
        applied off the event loop (``Store.write``)."""

        def write(tx: Tx) -> tuple[R, Isolation]:
            isolation = Isolation(self.name, now, self._streaks)
            return fn(tx, isolation), isolation

        result, isolation = await store.write(write, background=True, long=long)
        failing = len(self._streaks)
        self._remember(isolation.outcomes, now)
        if isolation.failed or len(self._streaks) != failing:
            self._set_aside(isolation.failed, len(self._streaks))
        return result

    def _remember(self, outcomes: dict[str, int], now: float) -> None:
        """Keep each item's failures in a row as the round left them: forget one that
        went through, and one not heard of for long (``Streak.forgotten``)."""
        for item, failures in outcomes.items():
            if failures:
                self._streaks[item] = Streak(failures, now)
            else:  # another of this worker's writes in flight may have forgotten it
                self._streaks.pop(item, None)
        for item in [item for item, streak in self._streaks.items() if streak.forgotten(now)]:
            del self._streaks[item]

    def forget(self, item: str) -> None:
        """``item`` left this worker (a heartbeat paused or deleted): a set-aside one
        will not be tried again, so it no longer counts as failing."""
        if self._streaks.pop(item, None) is not None:
            self._set_aside(0, len(self._streaks))

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
