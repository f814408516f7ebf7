"""What every decoder shares: JSON parsing with clear errors, and building an Event."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from hub.errors import InvalidPayload, MalformedBody
from hub.events import Event
from hub.fingerprints import fingerprint

if TYPE_CHECKING:
    from hub.config import Source

T = TypeVar("T")

_PATH = re.compile(r" - at `(\$[^`]*)`$")


class Decoded(msgspec.Struct):
    """What a decoder made of one body: the events, and the items it had to reject.

    A batch format (Alertmanager, Prometheus) keeps the valid items of a batch and
    lists the invalid ones, each as "<path>: <reason>", as Alertmanager does; it
    raises InvalidPayload only when nothing in the body is usable.
    """

    events: list[Event]
    rejected: list[str] = []


def parse_json(body: bytes, type_: type[T]) -> T:
    """Decode JSON into ``type_``: 400 when it does not parse, 422 naming the field."""
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as e:
        message = str(e)
        match = _PATH.search(message)
        field = match.group(1) if match else "$"
        raise InvalidPayload(message, field=field) from e
    except msgspec.DecodeError as e:
        raise MalformedBody(f"body is not valid JSON: {e}") from e


def make_event(
    source: Source,
    *,
    status: Any,
    summary: str,
    severity: Any = "warning",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    dedup_key: str | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """An Event with the source's default labels applied and its fingerprint computed."""
    merged = {**source.labels, **(labels or {})}
    return Event(
        fingerprint=fingerprint(source.name, dedup_key, merged, source.identity_labels),
        status=status,
        summary=summary,
        severity=severity,
        labels=merged,
        annotations=annotations or {},
        occurred_at=occurred_at,
    )
