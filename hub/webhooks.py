"""``POST /webhooks/{source}``: check limits, authenticate, decode, apply in one commit, answer.

Every step before the commit is pure or read-only, so any rejection (400, 401, 413,
415, 422, 429, ...) changes nothing. The answer is sent only after the commit.
``POST /webhooks/{source}/api/v2/alerts`` is the same flow for sources of format
``prometheus``: it is where Prometheus posts when ``path_prefix`` points it at hub.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.params import FromPath

from hub.auth import authenticate
from hub.config import Source
from hub.decoders import RESPONDERS, Responder, decode
from hub.decoders.common import Decoded
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
from hub.ingest import (
    Answer,
    Delivery,
    apply_delivery,
    apply_test_delivery,
    audit_headers,
    delivery_key,
)
from hub.limits import body_limit, check_body_size, check_content_type, check_source_rate
from hub.metrics import UNKNOWN_SOURCE

log = logging.getLogger("hub.webhooks")

ALERTMANAGER_API_FORMAT = "prometheus"

_OUTCOME_BY_ERROR: dict[type[HubError], str] = {
    AuthError: "unauthorized",
    MalformedBody: "malformed",
    InvalidPayload: "invalid",
    PayloadTooLarge: "too_large",
    UnsupportedMedia: "unsupported_media",
    RateLimited: "rate_limited",
    Unavailable: "unavailable",
}


# Each source has its own body limit, checked while streaming (``_read_body``), so the
# app-wide limit is lifted here.
@post(
    "/webhooks/{source:str}",
    summary="Ingest events from a configured source",
    request_max_body_size=None,
)
async def receive(request: Request, source: FromPath[str]) -> Response:
    """Accept one delivery: 202 when applied, 200 with the first answer on a repeat."""
    return await _receive(request, source)


@post(
    "/webhooks/{source:str}/api/v2/alerts",
    summary="Alertmanager API v2 for Prometheus (path_prefix: /webhooks/{source})",
    request_max_body_size=None,
)
async def receive_alertmanager_api(request: Request, source: FromPath[str]) -> Response:
    """Answer as Alertmanager does: 200 with no body; 400 listing invalid alerts."""
    return await _receive(request, source, only_format=ALERTMANAGER_API_FORMAT)


async def _receive(request: Request, name: str, only_format: str | None = None) -> Response:
    hub = request.app.state.hub
    started = time.perf_counter()
    source = _configured(hub, name)
    responder = RESPONDERS.get(source.format)
    try:
        if only_format is not None and source.format != only_format:
            raise NotFound(
                f"source {name!r} has format {source.format!r}; "
                f"{request.url.path} serves only sources of format {only_format!r}"
            )
        answer = await _ingest(hub, request, source, responder)
    except HubError as e:
        _count_rejection(hub, source.name, e)
        return _rejection(responder, e)
    outcome = "repeated" if answer.repeated else "accepted"
    hub.metrics.webhooks.labels(source.name, outcome).inc()
    hub.metrics.ingest_seconds.labels(source.name).observe(time.perf_counter() - started)
    return _response(answer.status_code, answer.body)


def _configured(hub, name: str) -> Source:
    source = hub.config.source(name)
    if source is None:
        hub.metrics.webhooks.labels(UNKNOWN_SOURCE, "unknown_source").inc()
        raise NotFound(f"unknown source {name!r}: no [[sources]] entry has this name")
    return source


async def _ingest(hub, request: Request, source: Source, responder: Responder | None) -> Answer:
    headers = {name.lower(): value for name, value in request.headers.items()}
    check_source_rate(hub.limiter, source)
    check_content_type(headers.get("content-type"))
    body = await _read_body(request, headers, body_limit(source, hub.config.server))
    now = hub.clock()
    moment = datetime.fromtimestamp(now, UTC)
    authenticated_id = authenticate(source.auth, headers, body, moment)
    decoded = decode(body, source, moment)
    delivery = Delivery(
        source=source.name,
        key=delivery_key(headers, authenticated_id),
        received_at=now,
        headers=audit_headers(headers, source.auth.headers),
        body=body,
        mode=source.mode,
    )
    return await commit(hub, delivery, decoded, responder)


async def commit(hub, delivery: Delivery, decoded: Decoded, responder: Responder | None) -> Answer:
    """Write one decoded delivery as its mode says (a live one wakes the workers);
    shared with replay, so a replayed body takes exactly the path of a webhook."""
    rules = hub.rules
    if delivery.mode == "test":
        active = hub.active_silences(datetime.fromtimestamp(delivery.received_at, UTC))
        answer = await hub.store.write(
            lambda tx: apply_test_delivery(tx, delivery, decoded, rules, active)
        )
    else:
        answer = await hub.store.write(
            lambda tx: apply_delivery(tx, delivery, decoded, rules, responder)
        )
        hub.changed()
    for event_outcome in answer.outcomes:
        hub.metrics.events.labels(delivery.source, event_outcome).inc()
    _log_applied(delivery.source, answer)
    return answer


async def _read_body(request: Request, headers: dict[str, str], limit: int) -> bytes:
    """The body, refused as soon as the declared or the received size is over ``limit``."""
    declared = headers.get("content-length", "")
    if declared.isdigit():
        check_body_size(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        check_body_size(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _rejection(responder: Responder | None, error: HubError) -> Response:
    """The format's own answer to a rejected delivery, else hub's problem details."""
    answer = responder.rejected(error) if responder is not None else None
    if answer is None:
        raise error
    return _response(*answer)


def _response(status_code: int, body: Any) -> Response:
    """A JSON answer; None is an empty body (Alertmanager's 200)."""
    content = b"" if body is None else msgspec.json.encode(body)
    return Response(content, status_code=status_code, media_type="application/json")


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


HANDLERS = [receive, receive_alertmanager_api]
