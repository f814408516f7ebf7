"""hub's clock: the wall time, except that it never steps back.

Every due time hub keeps (an escalation step, a heartbeat deadline, a retry, a
snooze's end) is stored as a wall time, so that it survives a restart. Were the
running hub to read the wall clock as it is, a step back (a virtual machine resumed
from a snapshot, a one-off ``ntpdate``, an operator's ``date -s``) would hold every
due time back by as much: an hour's step, an hour without pages. ``SteadyClock``
follows the wall clock forward, as NTP corrections and resumed machines move it.
When the wall clock steps back, it goes on from where it was, at nine tenths of the
monotonic clock's pace, until the wall clock meets it again: a step back of an hour
is taken up over ten hours, during which hub's waits last a ninth longer, and no
due time is held back by the step. A restart takes the wall clock as it is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("hub.clock")

CATCH_UP_PACE = 0.9
"""How fast hub's clock runs, against real time, while the wall clock is behind it."""
NOTED_STEP_SECONDS = 1.0
"""A step back longer than this is logged; shorter ones are the clocks' jitter."""


class SteadyClock:
    """Epoch seconds that follow ``wall`` forward and never step back (see the module).

    Read by the event loop and by the store's read threads (``Store.read_aside``) at
    once: each reading is taken whole under a lock, else one begun before a step back
    and ended after another saw it undid the slowing down, logging the step twice and
    a catching up that never happened."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._anchor = (wall(), monotonic(), 1.0)  # (time, monotonic time, pace) in one
        self._noted = False  # a step back was logged, and its catching up will be
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._read()

    def _read(self) -> float:
        now, elapsed = self._wall(), self._monotonic()
        at, since, pace = self._anchor
        steady = at + (elapsed - since) * pace
        if now >= steady:
            self._anchor = (now, elapsed, 1.0)
            if self._noted:
                log.info("event=clock_caught_up")
                self._noted = False
            return now
        if pace == 1.0:  # the wall clock just fell behind: slow down from here
            self._anchor = (steady, elapsed, CATCH_UP_PACE)
            if steady - now > NOTED_STEP_SECONDS:
                log.warning("event=clock_stepped_back seconds=%.1f", steady - now)
                self._noted = True
        return steady
