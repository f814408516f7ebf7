"""``POST /webhooks/{source}``: authenticate, decode, apply in one commit, answer.

Every step before the commit is pure or read-only, so any rejection (401, 400, 413,
422, ...) changes nothing. The answer is sent only after the commit.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from litestar import Request, Response, post
from litestar.params import FromPath

from hub.auth import authenticate
from hub.config import Source
from hub.decoders import DECODERS
from hub.errors import (
    AuthError,
    HubError,
    InvalidPayload,
    MalformedBody,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    UnsupportedMedia,
)
from hub.ingest import Answer, Delivery, apply_delivery, audit_headers, delivery_key
from hub.metrics import UNKNOWN_SOURCE

log = logging.getLogger("hub.webhooks")

_OUTCOME_BY_ERROR: dict[type[HubError], str] = {
    AuthError: "unauthorized",
    MalformedBody: "malformed",
    InvalidPayload: "invalid",
    PayloadTooLarge: "too_large",
    UnsupportedMedia: "unsupported_media",
    RateLimited: "rate_limited",
    Unavailable: "unavailable",
}


@post("/webhooks/{source:str}", summary="Ingest events from a configured source")
async def receive(request: Request, source: FromPath[str]) -> Response:
    """Accept one delivery: 202 when applied, 200 with the first answer on a repeat."""
    hub = request.app.state.hub
    started = time.perf_counter()
    config = hub.config.source(source)
    if config is None:
        hub.metrics.webhooks.labels(UNKNOWN_SOURCE, "unknown_source").inc()
        raise NotFound(f"unknown source {source!r}: no [[sources]] entry has this name")
    try:
        answer = await _ingest(hub, request, config)
    except HubError as e:
        _count_rejection(hub, config.name, e)
        raise
    hub.changed()
    outcome = "repeated" if answer.repeated else "accepted"
    hub.metrics.webhooks.labels(config.name, outcome).inc()
    for event_outcome in answer.outcomes:
        hub.metrics.events.labels(config.name, event_outcome).inc()
    hub.metrics.ingest_seconds.labels(config.name).observe(time.perf_counter() - started)
    return Response(answer.body, status_code=answer.status_code)


async def _ingest(hub, request: Request, source: Source) -> Answer:
    headers = {name.lower(): value for name, value in request.headers.items()}
    body = await _read_body(
        request, headers, source.max_body_bytes or hub.config.server.max_body_bytes
    )
    now = hub.clock()
    authenticated_id = authenticate(source.auth, headers, body, datetime.fromtimestamp(now, UTC))
    decoded = DECODERS[source.format](body, source)
    delivery = Delivery(
        source=source.name,
        key=delivery_key(headers, authenticated_id),
        received_at=now,
        headers=audit_headers(headers),
        body=body,
    )
    rules = hub.rules
    answer = await hub.store.write(lambda tx: apply_delivery(tx, delivery, decoded, rules))
    _log_applied(source.name, answer)
    return answer


async def _read_body(request: Request, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over this source's limit of {limit}")
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"body of {len(body)} bytes is over this source's limit of {limit}")
    return body


def _count_rejection(hub, source: str, error: HubError) -> None:
    outcome = _OUTCOME_BY_ERROR.get(type(error), "invalid")
    hub.metrics.webhooks.labels(source, outcome).inc()
    if isinstance(error, AuthError):
        hub.metrics.auth_failures.labels(source, error.reason).inc()
        log.warning("event=auth_failed source=%s reason=%s", source, error.reason)


def _log_applied(source: str, answer: Answer) -> None:
    changes = [o for o in answer.outcomes if o not in ("duplicate",)]
    if changes:
        log.info(
            "event=delivery_applied source=%s events=%d outcomes=%s",
            source,
            len(answer.outcomes),
            ",".join(sorted(set(changes))),
        )


HANDLERS = [receive]
