"""The audit log: every accepted delivery as it arrived, what it was answered and what
it did. ``GET /api/v1/events`` lists recent deliveries (without bodies);
``GET /api/v1/events/{id}`` shows one with its raw body and the events it produced,
or, for a delivery to a test-mode source, the routing decision it was given instead.

Headers are stored without credentials (``hub.ingest.audit_headers``), so nothing
here can leak a secret to a reader of the API.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.params import FromQuery

from hub import paging
from hub.access import BEARER, require
from hub.api import RowId, present
from hub.errors import NotFound
from hub.problems import read_refusals, refusals
from hub.store import ID_ORDER

EVENTS = paging.Listing("events", ID_ORDER)


@get(
    "/api/v1/events",
    summary="Recent webhook deliveries",
    guards=[require("read")],
    security=BEARER,
    responses=read_refusals(400, 401),
    response_headers=[paging.NEXT_LINK],
)
async def list_events(
    request: Request,
    source: FromQuery[str | None] = None,
    limit: paging.Limit = 100,
    cursor: paging.Cursor = None,
) -> Response[list[dict[str, Any]]]:
    """Newest first, a page at a time (``Link: rel="next"``), without bodies;
    ``GET /api/v1/events/{id}`` has the rest. Read aside (``Store.read_aside``): a
    sender's headers may reach 64 KiB a delivery, and a page of 1,000 such, 61 MB,
    held the event loop for a quarter of a second."""
    store = request.app.state.hub.store

    def listed() -> tuple[list[dict[str, Any]], str | None]:
        found = EVENTS.page(functools.partial(store.deliveries, source), cursor, limit)
        return [_present(row) for row in found.rows], found.next

    return paging.respond(request, *await store.read_aside(listed))


@get(
    "/api/v1/events/{delivery_id:str}",
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
    events = [present(event) for event in store.delivery_events(delivery_id)]
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
    shown = {key: row[key] for key in _SHOWN}
    return present({**shown, "answer": row["response"]})


_SHOWN = (
    "id",
    "source",
    "delivery_key",
    "received_at",
    "headers",
    "status_code",
    "mode",
    "replay_of",
)


HANDLERS = [list_events, get_event]
