"""Structured logs: one line per event worth knowing, ``key=value`` pairs, UTC times.

Every value a standard logfmt parser reads back as written: bare when it is one plain
word, else in double quotes with JSON's escapes (``value``); a list is one such value,
its items joined by commas (``listed``). A key with nothing to say is left out.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable

_BARE = re.compile(r"[\w.:/@+,-]+", re.ASCII)
_EVENT = "event="
VALUE_MAX = 2000  # as long as the longest comment or reason hub takes: those stay whole


class LogfmtFormatter(logging.Formatter):
    """``ts=... level=... logger=... <message>``; hub's messages are already ``event=...
    k=v``, another library's text becomes ``msg="..."``."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        ts = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        line = f"ts={ts} level={record.levelname.lower()} logger={value(record.name)} "
        message = record.getMessage()
        line += message if message.startswith(_EVENT) else f"msg={value(message)}"
        if record.exc_info:
            line += " exc=" + json.dumps(self.formatException(record.exc_info))
        return line


def value(stored: object) -> str:
    """A logfmt value: bare when it is one plain word, else quoted with JSON's escapes,
    so that a space, a quote or a line break a sender chose cannot break the line. What
    is not text is written as ``text`` shows it: a log line must not fail on the row it
    reports. A value over ``VALUE_MAX`` characters (a silence's 200 KB matcher) is cut,
    its length said: one event stays one readable line."""
    shown = text(stored)
    if len(shown) > VALUE_MAX:
        shown = f"{shown[:VALUE_MAX]}... ({len(shown)} characters)"
    return shown if _BARE.fullmatch(shown) else json.dumps(shown)


def text(stored: object) -> str:
    """A stored value as text, the same in a log line, the API and a metric's label:
    bytes a fault or a hand edit left in a text column decoded as UTF-8, a byte that is
    not shown as U+FFFD; any other value (a number) as ``str`` shows it."""
    if isinstance(stored, bytes):
        return stored.decode("utf-8", "replace")
    return stored if isinstance(stored, str) else str(stored)


def vouched(token: str | None) -> str:
    """The ``token=`` of a line whose ``by=`` is a person a token named for them (one
    that speaks for others); nothing when the token acted as itself."""
    return f" token={value(token)}" if token else ""


def listed(items: Iterable[object], most: int | None = None) -> str:
    """A list as one logfmt value, its items joined by commas; past ``most`` items, the
    rest is counted (``1,2,3,+17``) so that one line stays one line."""
    shown = [str(item) for item in items]
    if most is not None and len(shown) > most:
        shown = [*shown[:most], f"+{len(shown) - most}"]
    return value(",".join(shown))


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
