"""``POST /webhooks/{source}``: check limits, authenticate, decode, apply in one commit, answer.

Every step before the commit is pure or read-only, so any rejection (400, 401, 413,
415, 422, 429, ...) changes nothing. The answer is sent only after the commit.
``POST /webhooks/{source}/api/v2/alerts`` is the same flow for sources of format
``prometheus``: it is where Prometheus posts when ``path_prefix`` points it at hub.
Both are served by ``WebhookDoor``, in front of Litestar (``hub.webhooks_openapi``
describes them in the OpenAPI document).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Litestar
from litestar.types import Receive, Scope, Send

from hub import logs
from hub.alerts import Outcome
from hub.auth import authenticate, delivery_id_header, refusals
from hub.config import Source
from hub.decoders import RESPONDERS, Responder, decode
from hub.decoders.common import Decoded
from hub.errors import (
    AuthError,
    HubError,
    InvalidPayload,
    KeyReused,
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
from hub.limits import (
    body_limit,
    check_body_size,
    check_content_encoding,
    check_content_type,
    check_source_rate,
    limited,
)
from hub.methods import MethodDoor, answer_options, full
from hub.metrics import (
    EVENT_OUTCOMES,
    SOURCE_OUTCOMES,
    UNKNOWN_SOURCE,
    UNKNOWN_SOURCE_OUTCOME,
    SourceSeries,
)
from hub.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from hub.problems import alertmanager_body, hub_error_problem, problem_body, unexpected_problem

log = logging.getLogger("hub.webhooks")

ALERTMANAGER_API_FORMAT = "prometheus"

# Formats whose batches keep their valid items while refusing the others ("rejected").
BATCH_FORMATS = frozenset({"alertmanager", "grafana", "prometheus", "generic"})
# What any event can do to its alert, whatever its format.
_EVERY_FORMATS_EVENTS = frozenset({"new", "duplicate", "changed", "updated", "stale"})

LONG_BODY_BYTES = 128 * 1024
"""A body longer than this is decoded in a thread (10,000 Prometheus alerts, 900 KB,
take 50-150 ms to decode): the loop meanwhile answers probes and other senders."""
LONG_DELIVERY_EVENTS = 256
"""A delivery of more events than this is written as a ``long`` write, off the loop
(10,000 new alerts took 0.65 s on it, with nothing else answered meanwhile). Prometheus
posts at most 256 alerts a request by default: its re-sends stay on the loop, which
costs them no thread hand-off."""

# Outcomes that leave every incident as it was: the workers need not look.
QUIET_OUTCOMES = frozenset({Outcome.DUPLICATE.value, Outcome.STALE.value, Outcome.IGNORED.value})

_OUTCOME_BY_ERROR: dict[type[HubError], str] = {
    AuthError: "unauthorized",
    MalformedBody: "malformed",
    InvalidPayload: "invalid",
    KeyReused: "key_reused",
    NotFound: "unknown_endpoint",  # the Alertmanager API path of a source of another format
    PayloadTooLarge: "too_large",
    UnsupportedMedia: "unsupported_media",
    RateLimited: "rate_limited",
    Unavailable: "unavailable",
}


class WebhookDoor:
    """The ASGI app uvicorn serves: webhook paths are answered here (``OPTIONS``
    included), every other request goes on to Litestar through ``MethodDoor``, which
    answers ``OPTIONS`` and ``HEAD`` (``hub.methods``); the lifespan goes to Litestar.

    Why not Litestar handlers: on one core, Litestar's per-request machinery (routing,
    middleware, kwargs, Request and Response objects) costs more CPU than everything
    hub does for a repeated event, and ingest is the path whose rate matters
    (``python -m bench.ingest``). A webhook needs none of that machinery.
    """

    def __init__(self, app: Litestar) -> None:
        self.app = app
        self.hub = app.state.hub
        self.rest = MethodDoor(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = WEBHOOK_PATH.fullmatch(scope["path"])
        if route is None or _reads_alertmanager_api(route, scope["method"]):
            await self.rest(scope, self._limited(scope, receive), send)
            return
        if scope["method"] == "OPTIONS":
            await answer_options(send, WEBHOOK_METHODS)
            return
        try:
            reply = await self._answer(scope, receive, route)
        except _Disconnected:
            return
        except Exception:
            reply = _problem(500, *unexpected_problem(scope["path"]))
        if route["alertmanager"] is not None:
            reply = _as_alertmanager_api(reply)
        await _send(send, reply)

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        """The body of an API or console request limited by the running config's
        ``[server] max_body_bytes``, so that a reload changes it there as for webhooks
        (Litestar's own limit is read once per handler, and would keep the first), and
        its 413 names the limit as a webhook's does."""
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        return limited(receive, declared.decode("latin-1"), self.hub.config.server.max_body_bytes)

    async def _answer(self, scope: Scope, receive: Receive, route: re.Match[str]) -> Reply:
        if scope["method"] != "POST":
            detail = f"{scope['method']} is not allowed on {scope['path']}; it takes POST"
            allow = {"Allow": ", ".join(WEBHOOK_METHODS)}
            return _problem(405, *problem_body(405, "Method not allowed", detail, allow))
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        only_format = ALERTMANAGER_API_FORMAT if route["alertmanager"] else None
        return await _receive(self.hub, route["source"], headers, receive, only_format)


def _reads_alertmanager_api(route: re.Match[str], method: str) -> bool:
    """amtool given a source's door as its URL, reading alerts there: Litestar's 404
    for this path is answered as the Alertmanager API answers it, naming hub's root."""
    return route["alertmanager"] is not None and method in ("GET", "HEAD")


def _as_alertmanager_api(reply: Reply) -> Reply:
    """A refusal or failure at the Alertmanager API door as that API answers it
    (``alertmanager_body``): its 400s are the format's own texts already. The status
    and headers (Retry-After, WWW-Authenticate) stay."""
    status, body, media_type, headers = reply
    if media_type != PROBLEM_MEDIA_TYPE:
        return reply
    return status, alertmanager_body(status, msgspec.json.decode(body)), "application/json", headers


# A path as uvicorn gives it (percent-decoded); a trailing slash is allowed, as Litestar allows it.
WEBHOOK_PATH = re.compile(r"/webhooks/(?P<source>[^/]+)(?P<alertmanager>/api/v2/alerts)?/?")
WEBHOOK_METHODS = full(["POST"])

Reply = tuple[int, bytes, str | None, dict[str, str]]
"""Status, body, media type (None for an empty body) and extra headers of an answer."""


class _Disconnected(Exception):
    """The client went away before its body arrived: there is nobody to answer."""


async def _receive(
    hub, name: str, headers: dict[str, str], receive: Receive, only_format: str | None
) -> Reply:
    """Accept one delivery: 202 when applied, 200 with the first answer on a repeat
    (422 when its key came first with another body)."""
    started = time.perf_counter()
    source = hub.config.source(name)
    if source is None:
        hub.metrics.webhook_series(UNKNOWN_SOURCE, UNKNOWN_SOURCE_OUTCOME).inc()
        error = NotFound(f"unknown source {name!r}: no [[sources]] entry has this name")
        _log_refusal(name, error.status, UNKNOWN_SOURCE_OUTCOME, error)
        return _problem(error.status, *hub_error_problem(error))
    responder = RESPONDERS.get(source.format)
    try:
        if only_format is not None and source.format != only_format:
            raise NotFound(
                f"source {name!r} has format {source.format!r}; "
                f"/webhooks/{name}/api/v2/alerts serves only sources of format {only_format!r}"
            )
        answer = await _ingest(hub, headers, receive, source, responder)
    except HubError as e:
        reply = _rejection(responder, e)
        _note_rejection(hub, source.name, reply[0], e)
        return reply
    outcome = "repeated" if answer.repeated else "accepted"
    hub.metrics.webhook_series(source.name, outcome).inc()
    hub.metrics.ingest_series(source.name).observe(time.perf_counter() - started)
    return _json(answer.status_code, answer.body)


async def _ingest(
    hub, headers: dict[str, str], receive: Receive, source: Source, responder: Responder | None
) -> Answer:
    check_content_type(headers.get("content-type"))
    check_content_encoding(headers.get("content-encoding"))
    body = await _read_body(receive, headers, body_limit(source, hub.config.server))
    now = hub.clock()
    moment = datetime.fromtimestamp(now, UTC)
    authenticated_id = authenticate(source.auth, headers, body, moment)
    # After authentication: the source's name is in its URL, and requests anyone may
    # send must not spend the sender's allowance and get its alerts refused.
    check_source_rate(hub.limiter, source)
    decoded = await decode_aside(body, source, moment)
    key_header, key = delivery_key(
        headers, authenticated_id, delivery_id_header(source.auth, headers)
    )
    delivery = Delivery(
        source=source.name,
        key=key,
        received_at=now,
        headers=audit_headers(headers, source.auth.headers),
        body=body,
        mode=source.mode,
        key_header=key_header,
    )
    return await commit(hub, delivery, decoded, responder)


async def decode_aside(body: bytes, source: Source, moment: datetime) -> Decoded:
    """``decode``, in a thread for a body over ``LONG_BODY_BYTES``."""
    if len(body) <= LONG_BODY_BYTES:
        return decode(body, source, moment)
    return await asyncio.to_thread(decode, body, source, moment)


async def commit(hub, delivery: Delivery, decoded: Decoded, responder: Responder | None) -> Answer:
    """Write one decoded delivery as its mode says (a live one wakes the workers);
    shared with replay, so a replayed body takes exactly the path of a webhook."""
    rules = hub.rules
    long = len(decoded.events) > LONG_DELIVERY_EVENTS
    if delivery.mode == "test":
        # Silences read in the write, as the workers read them: an expiry queued just
        # ahead is applied before, and the decision does not show it still muting.
        moment = datetime.fromtimestamp(delivery.received_at, UTC)
        answer = await hub.store.write(
            lambda tx: apply_test_delivery(
                tx, delivery, decoded, rules, hub.active_silences(moment, tx)
            ),
            long=long,
        )
    else:
        answer = await hub.store.write(
            lambda tx: apply_delivery(tx, delivery, decoded, rules, responder), long=long
        )
        if not QUIET_OUTCOMES.issuperset(answer.outcomes):
            hub.changed()
    hub.metrics.count_events(delivery.source, answer.outcomes)
    if answer.rejected:  # the valid items were applied: the delivery counts as accepted
        hub.metrics.event_series(delivery.source, "rejected").inc(answer.rejected)
    _log_applied(delivery.source, answer)
    return answer


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The body, refused as soon as the declared or the received size is over ``limit``.

    Written out rather than through ``limits.limited`` (which the other requests take):
    this is the ingest path, and a wrapper around each ``receive`` is work on every
    webhook (``python -m bench.ingest``)."""
    declared = headers.get("content-length", "")
    if declared.isdigit():
        check_body_size(int(declared), limit)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        check_body_size(size, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _rejection(responder: Responder | None, error: HubError) -> Reply:
    """The format's own answer to a rejected delivery, else hub's problem details."""
    answer = responder.rejected(error) if responder is not None else None
    if answer is None:
        return _problem(error.status, *hub_error_problem(error))
    return _json(*answer)


def _json(status_code: int, body: Any) -> Reply:
    """A JSON answer; None is an empty body (Alertmanager's 200)."""
    if body is None:
        return status_code, b"", None, {}
    return status_code, msgspec.json.encode(body), "application/json", {}


def _problem(status: int, body: dict[str, object], headers: dict[str, str]) -> Reply:
    return status, msgspec.json.encode(body), PROBLEM_MEDIA_TYPE, headers


async def _send(send: Send, reply: Reply) -> None:
    status, body, media_type, extra = reply
    headers = [(b"content-length", str(len(body)).encode())]
    if media_type is not None:
        headers.append((b"content-type", media_type.encode()))
    for name, value in extra.items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _note_rejection(hub, source: str, status: int, error: HubError) -> None:
    """Count a refused delivery; log it too, unless it is pushback under load (429,
    503): a flood of those would make the log the bottleneck, and they are counted."""
    outcome = _OUTCOME_BY_ERROR.get(type(error), "invalid")
    hub.metrics.webhook_series(source, outcome).inc()
    if isinstance(error, AuthError):
        hub.metrics.auth_failures.labels(source, error.reason).inc()
    if not isinstance(error, RateLimited | Unavailable):
        _log_refusal(source, status, outcome, error)


def _log_refusal(source: str, status: int, outcome: str, error: HubError) -> None:
    """One line per refused delivery, with the detail the sender was told: hub's errors
    carry no secret, and the body is never logged. A failed authentication warns."""
    reason = f" reason={error.reason}" if isinstance(error, AuthError) else ""
    log.log(
        logging.WARNING if isinstance(error, AuthError) else logging.INFO,
        "event=webhook_refused source=%s status=%d outcome=%s%s detail=%s",
        logs.value(source),
        status,
        outcome,
        reason,
        logs.value(error.detail),
    )


def _log_applied(source: str, answer: Answer) -> None:
    """A line for a delivery that changed something or had items refused (``rejected``:
    a sender sending some alerts hub cannot read is worth knowing even when the rest
    only repeated); a delivery of repeats alone is too common to log. Its values are
    formatted only when the line is written: a hub logging warnings only (as under
    load) skips that work on every new alert."""
    changes = [o for o in answer.outcomes if o != "duplicate"]
    if (changes or answer.rejected) and log.isEnabledFor(logging.INFO):
        log.info(
            "event=delivery_applied source=%s events=%d outcomes=%s rejected=%d",
            logs.value(source),
            len(answer.outcomes),
            logs.listed(sorted(set(changes or answer.outcomes))),
            answer.rejected,
        )


def source_series(source: Source) -> SourceSeries:
    """The series a delivery to ``source`` can move, so only those are created: a
    series that can never move would only mislead a dashboard. No ``unauthorized``
    without an auth that refuses, no ``rate_limited`` without a ``rate_limit``, no
    ``unknown_endpoint`` for a source the Alertmanager API path serves."""
    reasons = refusals(source.auth)
    never = set()
    if not reasons:
        never.add("unauthorized")
    if not source.rate_limit:
        never.add("rate_limited")
    if source.format == ALERTMANAGER_API_FORMAT:
        never.add("unknown_endpoint")
    outcomes = tuple(outcome for outcome in SOURCE_OUTCOMES if outcome not in never)
    return SourceSeries(reasons, outcomes, _event_outcomes(source))


def _event_outcomes(source: Source) -> tuple[str, ...]:
    """What the events of the source's format can do: a batch's refused items are
    ``rejected``; an acknowledgement is ``acknowledged``, or ``ignored`` without an
    alert, as is PagerDuty's resolve of none and a ``generic`` status word mapped to
    ``ignore`` (read from the body, as an acknowledgement is). Native batches are
    all-or-nothing and say firing or resolved only; a native resolve without a summary
    of an alert hub does not have is ``ignored``."""
    can = set(_EVERY_FORMATS_EVENTS)
    if source.format in BATCH_FORMATS:
        can.add("rejected")
    if _acknowledges(source):
        can |= {"acknowledged", "ignored"}
    if source.format == "native":
        can.add("ignored")
    return tuple(outcome for outcome in EVENT_OUTCOMES if outcome in can)


def _acknowledges(source: Source) -> bool:
    """PagerDuty's ``acknowledge``; a ``generic`` source's status when its mapping reads
    one from the body (it may say ``acknowledged``) or defaults to ``acknowledged``."""
    if source.format == "pagerduty":
        return True
    mapping = source.mapping if source.format == "generic" else None
    return mapping is not None and (
        bool(mapping.status) or mapping.defaults.status == "acknowledged"
    )
