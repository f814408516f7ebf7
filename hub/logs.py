"""Structured logs: one line per event worth knowing, ``key=value`` pairs, UTC times."""

from __future__ import annotations

import json
import logging
import re
import time

_BARE = re.compile(r"[\w.:/@+-]+", re.ASCII)


class LogfmtFormatter(logging.Formatter):
    """``ts=... level=... logger=... <message>``; messages are already ``event=... k=v``."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        ts = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        line = f"ts={ts} level={record.levelname.lower()} logger={record.name} "
        line += record.getMessage()
        if record.exc_info:
            line += " exc=" + repr(self.formatException(record.exc_info))
        return line


def value(text: str) -> str:
    """A logfmt value: bare when it is one plain word, else quoted with JSON's escapes,
    so that a space, a quote or a line break a sender chose cannot break the line."""
    return text if _BARE.fullmatch(text) else json.dumps(text)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
