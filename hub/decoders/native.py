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
    summary: NonEmpty | msgspec.UnsetType = msgspec.UNSET  # left out: only on a resolve
    severity: Severity | msgspec.UnsetType = msgspec.UNSET  # left out: not rated
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    dedup_key: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    occurred_at: AwareTime | None = None


def decode(body: bytes, source: Source) -> Decoded:
    """Decode one event or a list of events; an empty list is refused.

    A resolve may leave ``summary`` out, as senders that resolve by ``dedup_key`` know
    no more than "resolved": the alert keeps its own summary (``summarized`` False),
    and a resolve of an alert hub does not have is ignored (``opens`` False), as
    PagerDuty's is, since there is nothing to call it. A firing event needs one.
    """
    parsed = parse_json(body, NativeEvent | list[NativeEvent])
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items:
        raise InvalidPayload("expected at least one event, got an empty array", field="$")
    for index, item in enumerate(items):
        if item.status == "firing" and item.summary is msgspec.UNSET:
            at = f"$[{index}]" if isinstance(parsed, list) else "$"
            where = f" - at `{at}`" if isinstance(parsed, list) else ""
            raise InvalidPayload(
                f"Object missing required field `summary`: a firing event needs one{where}",
                field=f"{at}.summary",
            )
    events = [
        make_event(
            source,
            status=item.status,
            summary=item.summary or "",
            summarized=item.summary is not msgspec.UNSET,
            opens=item.summary is not msgspec.UNSET,
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
