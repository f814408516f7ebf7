"""A ``logfile://`` Apprise channel: appends each notification as one JSON line.

It lets the example config run on a fresh machine with no mail server or chat
account, and gives operators a local audit trail. ``logfile://notifications.log``
writes to ``notifications.log`` beside the config file, ``logfile:///var/log/hub.jsonl``
to that absolute path: the config loader anchors every relative path (``anchor``).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from apprise import NotificationManager
from apprise.decorators import notify

SCHEMA = "logfile"
_write_lock = threading.Lock()


def register() -> None:
    """Teach Apprise the ``logfile://`` schema once per process."""
    if SCHEMA not in NotificationManager().schemas():
        notify(on=SCHEMA, name="hub log file")(_append)


def anchor(url: str, folder: Path) -> str:
    """A ``logfile://`` URL with its path made absolute from ``folder``; others as given.

    Apprise drops the leading slash of an absolute path, so the channel cannot tell
    ``logfile:///var/log/x`` from ``logfile://var/log/x``: paths are settled here,
    once, and the channel reads every path as absolute.
    """
    prefix = f"{SCHEMA}://"
    if url[: len(prefix)].lower() != prefix:
        return url
    path, mark, query = url[len(prefix) :].partition("?")
    return f"{prefix}{(folder / path).as_posix()}{mark}{query}"


def problem(url: str) -> str | None:
    """Why a send to an anchored ``logfile://`` URL would fail, said at config load
    rather than as Apprise's error at the first send; None if it can append."""
    path = Path(unquote(url[len(SCHEMA) + 3 :].partition("?")[0]))
    if path.is_dir():
        return f"{path} is a folder: name the file to append to (logfile://notifications.log)"
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist (for the file {path.name})"
    return None


def _append(body: str, title: str, notify_type: str, meta: dict[str, Any], **_: Any) -> bool:
    path = Path("/" + unquote((meta.get("host") or "") + (meta.get("fullpath") or "")))
    line = json.dumps(
        {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "type": str(notify_type),
            "title": title,
            "body": body,
        }
    )
    with _write_lock, path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return True
