"""How hub writes a length of time for people: the console ("snoozed until 14:30 UTC
(in 4h)") and notification messages ("not acknowledged for 15m") say it alike."""

from __future__ import annotations

import itertools

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def span(seconds: float) -> str:
    """Seconds in the two largest units, rounded at the smaller, so a fresh 4h snooze
    reads "4h", not "3h": 90 -> 1m 30s, 7200 -> 2h, 5400 -> 1h 30m, 93600 -> 1d 2h."""
    for (unit, size), (small_unit, small) in itertools.pairwise(_UNITS):
        total = round(seconds / small)
        if total * small >= size:
            whole, rest = divmod(total, size // small)
            return f"{whole}{unit}" + (f" {rest}{small_unit}" if rest else "")
    return f"{round(seconds)}s"
