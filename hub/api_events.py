"""The audit log: every accepted delivery as it arrived, what it was answered and what
it did. ``GET /api/v1/events`` lists recent deliveries (without bodies);
``GET /api/v1/events/{id}`` shows one with its raw body and the events it produced,
or, for a delivery to a test-mode source, the routing decision it was given instead.

Headers are stored without credentials (``hub.ingest.audit_headers``), so nothing
here can leak a secret to a reader of the API.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.params import FromQuery, QueryParameter

from hub.access import BEARER, require
from hub.api import RowId, iso
from hub.errors import NotFound
from hub.problems import refusals


@get(
    "/api/v1/events",
    summary="Recent webhook deliveries",
    guards=[require("read")],
    security=BEARER,
    responses=refusals(400, 401),
)
async def list_events(
    request: Request,
    source: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Newest first, without bodies; ``GET /api/v1/events/{id}`` has the rest."""
    return [_present(row) for row in request.app.state.hub.store.deliveries(source, limit)]


@get(
    "/api/v1/events/{delivery_id:int}",
    summary="One webhook delivery: raw body, headers, answer and the events it produced",
    guards=[require("read")],
    security=BEARER,
    responses=refusals(400, 401, 404),
)
async def get_event(request: Request, delivery_id: RowId) -> dict[str, Any]:
    store = request.app.state.hub.store
    row = store.delivery(delivery_id)
    if row is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    body, is_base64 = body_text(row.pop("body"))
    events = [
        {**event, "occurred_at": iso(event["occurred_at"])}
        for event in store.delivery_events(delivery_id)
    ]
    return {
        **_present(row),
        "body": body,
        "body_base64": is_base64,
        "events": events,
        "decision": row["decision"],
    }


def body_text(body: bytes) -> tuple[str, bool]:
    """The body as text when it is UTF-8 JSON (readable as sent), else base64 (exact)."""
    try:
        msgspec.json.decode(body)
        return body.decode("utf-8"), False
    except (msgspec.DecodeError, UnicodeDecodeError):
        return base64.b64encode(body).decode("ascii"), True


def _present(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "source": row["source"],
        "delivery_key": row["delivery_key"],
        "received_at": iso(row["received_at"]),
        "headers": row["headers"],
        "status_code": row["status_code"],
        "answer": row["response"],
        "mode": row["mode"],
        "replay_of": row["replay_of"],
    }


HANDLERS = [list_events, get_event]
