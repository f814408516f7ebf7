"""Durations as people write them ("30s", "5m", "1h30m"): in the config file, on the
command line and in the API. A module of its own, so that the command line's client
commands read them without loading the config's validation and what it imports.
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Iterator

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d|w))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Duration(float):
    """Seconds, written in the file as "30s", "5m", "4h", "1h30m", "250ms"."""

    written: str = ""

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Seconds from a duration's text; a text of so many digits that its seconds
        overflow to infinity is refused like any other bad one."""
        if not isinstance(text, str) or not _DURATION.match(text):
            raise ValueError(f"expected a duration like '30s', '5m' or '4h', got {text!r}")
        parsed = cls(sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text)))
        if not math.isfinite(parsed):
            raise ValueError(f"expected a duration like '30s', '5m' or '4h', got {text!r}")
        parsed.written = text  # what the file said, for errors that quote it
        return parsed

    def text(self) -> str:
        """As the file wrote it, else the shortest text that parses back to exactly these
        seconds ("5m", "90s", "1w1s"): what an error message quotes, and what the API
        answers, so that a client can post a value back as it read it."""
        if self.written:
            return self.written
        exact = [text for text in _spellings(float(self)) if Duration.parse(text) == self]
        return min(exact, key=len)


def _spellings(seconds: float) -> Iterator[str]:
    """Ways to write ``seconds``, some maybe inexact: in one unit ("90m"), in whole
    units from the largest down ("1h30m"), and in decimal seconds, which is always exact."""
    units = sorted(_UNIT_SECONDS.items(), key=lambda item: -item[1])
    for unit, size in units:
        if seconds and (seconds / size).is_integer():
            yield f"{int(seconds / size)}{unit}"
    millis, parts = round(seconds * 1000), []
    for unit, size in units:
        count, millis = divmod(millis, round(size * 1000))
        parts += [f"{count}{unit}"] if count else []
    yield "".join(parts) or "0s"
    yield f"{decimal.Decimal(repr(seconds)):f}s"
