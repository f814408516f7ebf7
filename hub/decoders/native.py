"""hub's own format, the public contract: one event object or a JSON array of them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from hub.decoders.common import Decoded, make_event, parse_json
from hub.errors import InvalidPayload
from hub.events import Severity

if TYPE_CHECKING:
    from hub.config import Source

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]


class NativeEvent(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["firing", "resolved"]
    summary: NonEmpty
    severity: Severity | msgspec.UnsetType = msgspec.UNSET  # left out: not rated
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    dedup_key: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    occurred_at: AwareTime | None = None


def decode(body: bytes, source: Source) -> Decoded:
    """Decode one event or a list of events; an empty list is refused."""
    parsed = parse_json(body, NativeEvent | list[NativeEvent])
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items:
        raise InvalidPayload("expected at least one event, got an empty array", field="$")
    events = [
        make_event(
            source,
            status=item.status,
            summary=item.summary,
            severity=item.severity or "warning",
            rated=item.severity is not msgspec.UNSET,
            labels=item.labels,
            annotations=item.annotations,
            dedup_key=item.dedup_key,
            occurred_at=item.occurred_at,
        )
        for item in items
    ]
    return Decoded(events)
