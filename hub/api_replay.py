"""``POST /api/v1/events/{id}/replay``: send a stored delivery's body through again.

The body is decoded with the *current* config's decoder for its source, so an operator
who fixed a mapping or a route sees what the delivery does now. ``?dry_run=true``
(role ``write``) answers with the routing decision (``hub.decision``) and changes
nothing: it reads through the store's read connection, which refuses writes. A real
replay (role ``admin``, since it can page people) is a new delivery, marked as a
replay of the original and without a delivery key (it is no sender's retry, so it is
never refused as a repeat), committed as a webhook would be (``webhooks.commit``).
It is not authenticated again: the stored headers lack the credentials, and the API
token is what vouches for the request. hub's own deliveries (a heartbeat's alert, an
alert resolved at its end) are refused: no sender sent them, so none can be sent again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery

from hub import decision, expiry, heartbeats
from hub.access import BEARER, ensure_role, require
from hub.api import RowId
from hub.config import Source
from hub.decoders.common import Decoded
from hub.errors import Conflict, InvalidPayload, MalformedBody, NotFound
from hub.ingest import Delivery
from hub.problems import refusal, refusals
from hub.webhooks import commit, decode_aside


@post(
    "/api/v1/events/{delivery_id:str}/replay",
    summary="Replay a stored delivery through the current config (dry_run: decision only)",
    guards=[require("write")],
    status_code=202,
    security=BEARER,
    responses={
        200: ResponseSpec(None, description="dry_run: the decision only"),  # api_schema: its body
        **refusals(400, 401, 404, 503),
        403: refusal("The token's role is too low: a dry run needs write, a replay admin"),
        409: refusal(
            "The delivery's source is no longer configured, or hub made the delivery"
            " itself (a heartbeat's alert, an alert's end): no sender sent it"
        ),
        422: refusal("The current config's decoder refuses the stored body"),
    },
)
async def replay(
    request: Request, delivery_id: RowId, dry_run: FromQuery[bool] = False
) -> Response:
    """200 with the decision on a dry run; else the webhook's answer for a new delivery.
    404 for an unknown delivery, 409 when its source is no longer configured or
    hub made it."""
    if not dry_run:
        ensure_role(request, "admin")
    status_code, body = await run(request.app.state.hub, delivery_id, dry_run=dry_run)
    return _json(status_code, body)


async def run(hub: Any, delivery_id: int, *, dry_run: bool) -> tuple[int, dict[str, Any]]:
    """Replay a stored delivery: its decision, or a new delivery through the webhook
    path; shared by the API and the console (the caller checks the role)."""
    row = hub.store.delivery(delivery_id)
    if row is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    source = _source(hub, row["source"])
    now = hub.clock()
    decoded = await _decode(row["body"], source, now)
    if dry_run:
        return 200, _dry_run(hub, delivery_id, source, decoded, now)
    delivery = Delivery(
        source=source.name,
        key=None,
        received_at=now,
        headers=row["headers"],
        body=row["body"],
        mode=source.mode,
        replay_of=delivery_id,
    )
    answer = await commit(hub, delivery, decoded, responder=None)
    return answer.status_code, answer.body


HUB_MADE = (heartbeats.SOURCE, expiry.SOURCE)
"""The sources of the deliveries hub makes itself: no sender's body, no decoder."""


def _source(hub: Any, name: str) -> Source:
    if name in HUB_MADE:
        raise Conflict(
            f"this delivery was made by hub itself ({name}); no sender sent it,"
            " so there is nothing to replay"
        )
    source = hub.config.source(name)
    if source is None:
        raise Conflict(f"source {name!r} is no longer configured; nothing can decode this body")
    return source


async def _decode(body: bytes, source: Source, now: float) -> Decoded:
    """The stored body as the source reads it now. A refusal names the source and its
    format: the body was accepted once, so it is the config that changed since (a new
    format or mapping), which the decoder's words alone do not say."""
    try:
        return await decode_aside(body, source, datetime.fromtimestamp(now, UTC))
    except (InvalidPayload, MalformedBody) as e:
        e.detail = (
            f"source {source.name!r} ({source.format} format) refuses this body now: {e.detail}"
        )
        raise


def _dry_run(
    hub: Any, delivery_id: int, source: Source, decoded: Decoded, now: float
) -> dict[str, Any]:
    active = hub.active_silences(datetime.fromtimestamp(now, UTC))
    decisions = decision.decide_in(
        hub.store.reading(), hub.rules, active, decoded.events, source.name, now
    )
    return {
        "dry_run": True,
        "replay_of": delivery_id,
        "source": source.name,
        "mode": source.mode,
        **decision.summary(decoded, decisions),
    }


def _json(status_code: int, body: Any) -> Response:
    return Response(
        msgspec.json.encode(body), status_code=status_code, media_type="application/json"
    )


HANDLERS = [replay]
