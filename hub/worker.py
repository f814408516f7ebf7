"""The loop every background worker shares: do a round of work; when a round finds
nothing to do, sleep until poked, until the next due time, or the idle poll."""

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

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # a poke during the round is kept, so no wake-up is lost
            try:
                busy = await self.round()
            except Exception:
                log.exception("event=worker_round_failed worker=%s", self.name)
                busy = False
            if not busy:
                await self._sleep()

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
        wait = IDLE_POLL_SECONDS if due is None else min(IDLE_POLL_SECONDS, due - self.clock())
        if wait <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=wait)
