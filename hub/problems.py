"""Every error as ``application/problem+json`` (RFC 9457): status, title, and a detail
that names what was wrong. No stack trace and no secret ever reaches a client.
"""

from __future__ import annotations

import logging
import traceback
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    PathItem,
    Reference,
    Schema,
)

from hub import logs, methods
from hub.access import CHALLENGE
from hub.api_params import explain_invalid
from hub.errors import (
    AuthError,
    Conflict,
    HubError,
    InvalidPayload,
    MalformedBody,
    RateLimited,
    Unavailable,
)

log = logging.getLogger("hub.http")

MEDIA_TYPE = "application/problem+json"


class Problem(msgspec.Struct):
    """An error's body as the OpenAPI document describes it; ``problem_body`` builds it."""

    type: str
    status: int
    title: str
    detail: str
    field: (
        Annotated[str, msgspec.Meta(description="422: where the fault is ($.path or a parameter)")]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    problems: (
        Annotated[list[str], msgspec.Meta(description="every fault in the config file")]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    incident_status: (
        Annotated[
            Literal["open", "acknowledged", "resolved"],
            msgspec.Meta(description="409 of an incident action: the incident's status now"),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    acknowledged_by: (
        Annotated[str, msgspec.Meta(description="409 of an ack or snooze: who holds it")]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    acknowledged_at: (
        Annotated[
            datetime,
            msgspec.Meta(tz=True, description="409 of an ack or snooze: since when they hold it"),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    acknowledged_until: (
        Annotated[
            datetime | None,
            msgspec.Meta(
                description="409 of an ack or snooze: when it lapses; null: when it resolves"
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET


REFUSALS = {
    400: (
        "A query parameter the operation does not take, a path or query parameter value out"
        " of range or not one of its choices, or a body that is not JSON"
    ),
    401: (
        "Authorization: Bearer with a token from [api] tokens is missing or not valid"
        " (WWW-Authenticate: Bearer)"
    ),
    403: (
        "The token's role is too low for this operation; with no [api] tokens configured,"
        " every change is refused"
    ),
    404: "Nothing has this id or name",
    409: "The request contradicts the current state; detail says how",
    413: "The body is over [server] max_body_bytes",
    422: "A value of the wrong shape or out of bounds; field names where",
    503: "The store's write queue is full; retry after Retry-After seconds",
}
READS_BUSY = (
    "As many reads over every firing alert as [server] read_concurrency allows are being"
    " answered; retry after Retry-After seconds"
)
"""The 503 of the reads ``Store.read_aside`` runs, in place of ``REFUSALS``' (writes')."""


RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER), description="Seconds to wait before a retry"
)
REFUSAL_HEADERS = {
    "401": {
        "WWW-Authenticate": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING), description=f"The challenge: {CHALLENGE}"
        )
    },
    "429": {"Retry-After": RETRY_AFTER},
    "503": {"Retry-After": RETRY_AFTER},
}
"""The headers hub's refusals carry, by status (``hub_error_problem`` sets them)."""


def refusal(description: str) -> ResponseSpec:
    """A documented error answer: a problem document, described for one operation."""
    return ResponseSpec(
        Problem, description=description, media_type=MEDIA_TYPE, generate_examples=False
    )


def refusals(*statuses: int) -> dict[int, ResponseSpec]:
    """The errors an operation can answer with, for its ``responses=``: each listed code
    replaces Litestar's own description (its 400 says plain JSON; hub answers a problem)."""
    return {status: refusal(REFUSALS[status]) for status in statuses}


def read_refusals(*statuses: int) -> dict[int, ResponseSpec]:
    """``refusals`` of a read run aside (``Store.read_aside``), with its 503."""
    return refusals(*statuses) | {503: refusal(READS_BUSY)}


def declare_refusal_headers(openapi: OpenAPI) -> None:
    """Declare ``REFUSAL_HEADERS`` on the problem answers of the operations Litestar
    describes, which a ``ResponseSpec`` cannot carry: problem documents, whatever their
    media type (the Alertmanager API types them as plain JSON). Other answers of those
    codes (``/readyz``'s 503) carry none; ``hub.webhooks_openapi`` declares its own."""
    for item in (openapi.paths or {}).values():
        for operation in operations(item):
            for status, answer in (operation.responses or {}).items():
                if not isinstance(answer, OpenAPIResponse) or status not in REFUSAL_HEADERS:
                    continue
                if any(_is_problem(media.schema) for media in (answer.content or {}).values()):
                    answer.headers = REFUSAL_HEADERS[status]


def _is_problem(schema: object) -> bool:
    return isinstance(schema, Reference) and schema.ref.endswith(f"/{Problem.__name__}")


def operations(item: PathItem) -> list[Operation]:
    methods = (item.get, item.put, item.post, item.delete, item.head, item.patch)
    return [operation for operation in methods if operation is not None]


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: object
) -> Response:
    body, headers = problem_body(status, title, detail, headers, **extra)
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def problem_body(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: object
) -> tuple[dict[str, object], dict[str, str]]:
    """The problem document and its response headers (``Retry-After`` from ``retry_after``)."""
    headers = dict(headers or {})
    retry_after = extra.pop("retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    body = {"type": "about:blank", "status": status, "title": title, "detail": detail, **extra}
    return body, headers


def hub_error_problem(exc: HubError) -> tuple[dict[str, object], dict[str, str]]:
    """The problem document and headers for one of hub's errors: the invalid field, the
    state a conflict hit, how long to wait before a retry, how to authenticate."""
    extra: dict[str, object] = {}
    if isinstance(exc, InvalidPayload):
        extra["field"] = exc.field
    if isinstance(exc, Conflict):
        extra |= exc.members
    if isinstance(exc, RateLimited | Unavailable):
        extra["retry_after"] = exc.retry_after
    if isinstance(exc, AuthError) and exc.challenge:
        extra["headers"] = {"WWW-Authenticate": exc.challenge}
    return problem_body(exc.status, exc.title, exc.detail, **extra)


def handle_hub_error(_: Request, exc: HubError) -> Response:
    body, headers = hub_error_problem(exc)
    return Response(body, status_code=exc.status, media_type=MEDIA_TYPE, headers=headers)


def handle_http_exception(request: Request, exc: HTTPException) -> Response:
    """Litestar's own errors (unknown path, wrong method, a body or parameter it refuses),
    with their headers: a 405 names the methods the path takes in ``Allow`` (RFC 9110)."""
    words = http_exception_words(request, exc)
    return problem(exc.status_code, *words, headers=http_exception_headers(request, exc))


def http_exception_headers(request: Request, exc: HTTPException) -> dict[str, str]:
    """The headers of one of Litestar's errors; a 405's ``Allow`` as ``OPTIONS`` on the
    path says it (``hub.methods``), where Litestar's leaves out the HEAD hub takes."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers = {name: value for name, value in headers.items() if name.lower() != "allow"}
        headers["Allow"] = ", ".join(_allowed(request))
    return headers


def http_exception_words(request: Request, exc: HTTPException) -> tuple[str, str]:
    """The title and detail of one of Litestar's own errors, a bad parameter named as
    the client wrote it: the same words in a problem document and on a console page.
    A body Litestar could not decode (an action's, a pause's) says so as a webhook's
    does (``parse_json``): msgspec's words alone ("Input data was truncated" for a
    lone surrogate) did not say that the body was at fault."""
    detail = exc.detail
    if exc.status_code == 405:
        detail = _not_allowed(request)
    elif isinstance(exc.__cause__, SerializationException):
        detail = f"body is not valid JSON: {detail}"
    elif exc.extra:
        explained = explain_invalid(request, exc.extra)
        detail = f"invalid {explained}" if explained else f"{detail}: {exc.extra}"
    title = {404: "Not found", 405: "Method not allowed"}.get(
        exc.status_code, "Bad request" if exc.status_code == 400 else "Error"
    )
    return title, detail


def _not_allowed(request: Request) -> str:
    """A 405's detail: the methods the path takes, so a client sees what to send."""
    methods = [method for method in _allowed(request) if method != "OPTIONS"]
    return f"{request.method} is not allowed on {request.url.path}; it takes {', '.join(methods)}"


def _allowed(request: Request) -> list[str]:
    """The methods a path that answered 405 takes: a route has it, so never None."""
    return methods.allowed(request.app, request.url.path) or []


def handle_recursion(request: Request, exc: RecursionError) -> Response:
    """A JSON body nested thousands deep, which Litestar's decoding of an action's or a
    pause's body let escape as a RecursionError (it turns only msgspec's DecodeError
    into a 400): refused as ``parse_json`` refuses it for a webhook. Any other
    RecursionError is hub's own failure."""
    if not _decoding_a_body(exc):
        return handle_unexpected(request, exc)
    return handle_hub_error(request, MalformedBody("body is not valid JSON: nested too deeply"))


_BODY_DECODERS = frozenset({"decode_json", "decode_msgpack"})
"""Litestar's functions that decode a request's body; its ``encode_json`` beside them
encodes hub's answer, and a RecursionError there is hub's own failure."""


def _decoding_a_body(exc: BaseException) -> bool:
    return any(
        frame.f_globals.get("__name__") == "litestar.serialization.msgspec_hooks"
        and frame.f_code.co_name in _BODY_DECODERS
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )


ALERTMANAGER_TEXT_STATUSES = frozenset({400, 500})
"""The statuses Alertmanager's API answers with a text (a JSON string) wherever it
declares them: amtool decodes such a body as a string, and fails on an object."""


def alertmanager_body(status: int, document: dict[str, object]) -> bytes:
    """A problem document as Alertmanager's API answers it, to send typed as plain JSON
    (the only type amtool reads: problem+json fails as "no consumer", hiding even the
    status): a 400 or 500 as its detail, a text amtool prints; any other status as the
    document, of which amtool prints the status alone, as Prometheus reads it."""
    shown = document["detail"] if status in ALERTMANAGER_TEXT_STATUSES else document
    return msgspec.json.encode(shown)


def handle_unexpected(request: Request, exc: Exception) -> Response:
    body, _ = unexpected_problem(request.url.path)
    return Response(body, status_code=500, media_type=MEDIA_TYPE)


def unexpected_problem(path: str) -> tuple[dict[str, object], dict[str, str]]:
    """Log the exception being handled; answer without its details (they are in the log)."""
    log.exception("event=unhandled_error path=%s", logs.value(path))
    return problem_body(500, "Internal error", "the hub failed to handle this request; see its log")
