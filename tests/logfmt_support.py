"""A strict reading of hub's log lines: ``key=bare`` or ``key="JSON string"`` pairs
separated by single spaces, as standard logfmt parsers take them (double quotes only)."""

from __future__ import annotations

import json
import re

_PAIR = re.compile(r'([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?: |$)')


def pairs(line: str) -> dict[str, str]:
    """The line's keys and values; ValueError where it is not logfmt."""
    found: dict[str, str] = {}
    position = 0
    while position < len(line):
        match = _PAIR.match(line, position)
        if match is None:
            raise ValueError(f"not logfmt at {position}: {line[position : position + 60]!r}")
        raw = match[2]
        found[match[1]] = json.loads(raw) if raw.startswith('"') else raw
        position = match.end()
    return found


def events(log: str, event: str) -> list[dict[str, str]]:
    """The pairs of every line of ``log`` about ``event``."""
    read = [pairs(line) for line in log.splitlines() if f"event={event} " in line + " "]
    return [line for line in read if line.get("event") == event]
