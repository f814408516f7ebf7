"""The loop every background worker shares: do a round of work; when a round finds
nothing to do, sleep until poked, until the next due time, or the idle poll. A round
that fails, or a look for the next due time that fails, is logged and counted, and the
loop goes on after the idle poll: a store error for a moment must not stop a worker for
good (the sender, and nobody is notified again until a restart)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

log = logging.getLogger("hub.worker")

IDLE_POLL_SECONDS = 1.0


class Worker:
    """Subclasses implement ``round`` (True when it did something) and ``next_due``."""

    name = "worker"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._wake = asyncio.Event()
        self._stopping = False

    def poke(self) -> None:
        """New work exists: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, failed: Callable[[], None] = lambda: None) -> None:
        """Work until stopped; ``failed`` counts each round that raised."""
        while not self._stopping:
            self._wake.clear()  # a poke during the round is kept, so no wake-up is lost
            try:
                if not await self.round():
                    await self._sleep()
            except Exception:
                log.exception("event=worker_round_failed worker=%s", self.name)
                failed()
                await self._pause(IDLE_POLL_SECONDS)

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
