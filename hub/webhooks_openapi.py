"""The webhook operations in the OpenAPI document Litestar serves.

``WebhookDoor`` answers webhooks before Litestar sees them, so Litestar cannot describe
them; they are described here, by hand, as they behave: the 2xx answers, and every
refusal as ``application/problem+json`` (the API's ``Problem`` schema), typed as plain
JSON at the Alertmanager API door, whose clients read no other type; its 400 and 500
are texts, as Alertmanager's API declares them. They declare no security scheme: each
source has its own auth, some of which (HMAC and Standard Webhooks signatures over the
body) OpenAPI cannot express, so the operation's description says it.
"""

from __future__ import annotations

from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
)

from hub.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from hub.problems import REFUSAL_HEADERS, Problem

TAG = "webhooks"

_PROBLEM = Reference(ref=f"#/components/schemas/{Problem.__name__}")
_AUTH = (
    "Authenticated as the source's auth says ([[sources]] auth in alerts.toml): a bearer"
    " token, HTTP basic, an HMAC signature header or a Standard Webhooks signature, or"
    " none. Not the API's tokens, so no security scheme is declared."
)

_REFUSALS = {
    "400": "The body is not JSON, or (Alertmanager API, PagerDuty) the sender's own 400",
    "401": "The sender could not be verified (token, signature, timestamp)",
    "404": "No source of this name (or of format prometheus, for the Alertmanager API)",
    "405": "Only POST is served here",
    "413": "The body is over the source's (or the server's) max_body_bytes",
    "415": "The content type is not JSON, or the body is compressed",
    "422": (
        "JSON of the wrong shape (field names where), or a delivery id (Idempotency-Key,"
        " webhook-id, the source's id_header) sent again with a different body"
    ),
    "429": "Over the source's rate_limit; retry after Retry-After seconds",
    "503": "The write queue is full; retry after Retry-After seconds",
}

_HEADERS = {
    **REFUSAL_HEADERS,
    "401": {
        "WWW-Authenticate": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING),
            description=(
                "The source's auth scheme: Bearer, Basic, HMAC-SHA256 (or -SHA512) naming"
                " the signature header, or Standard-Webhooks"
            ),
        )
    },
}

_TEXT = {"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))}
_ALERTMANAGER_TEXTS = {
    "400": OpenAPIResponse(
        description="A body Alertmanager would refuse (or any 400): what was wrong, as a text",
        content=_TEXT,
    ),
    "500": OpenAPIResponse(
        description="hub failed to handle the post (its log says why): a text saying so",
        content=_TEXT,
    ),
}
"""The answers Alertmanager's API gives a post of alerts a text for (a JSON string,
which amtool decodes as one): the door answers them so (``hub.webhooks``)."""

_SOURCE = Parameter(
    name="source",
    param_in="path",
    required=True,
    schema=Schema(type=OpenAPIType.STRING),
    description="The name of a [[sources]] entry in alerts.toml",
)


def document(openapi: OpenAPI) -> None:
    """Add ``POST /webhooks/{source}`` and its Alertmanager API v2 twin to ``openapi``."""
    paths = openapi.paths if openapi.paths is not None else {}
    paths["/webhooks/{source}"] = PathItem(
        post=_operation(
            "receiveWebhook",
            "Ingest events from a configured source",
            {
                "202": _json(
                    "Applied: every event is stored. hub's answer (formats without one of"
                    ' their own): {"accepted", "duplicates", "stale", "alerts", "delivery_id"}'
                    ' and "rejected" for invalid batch items; "stale" counts the events older'
                    " than their alert's last change, recorded but not applied;"
                    ' "ignored" (when any) the acknowledgements of alerts hub does not have'
                    " and the events a generic mapping ignores, dropped"
                ),
                "200": OpenAPIResponse(
                    description=(
                        "A repeated delivery (same delivery id and body): the first answer"
                        " again, as its 202 was; or, from a source of format prometheus,"
                        " applied and answered as Alertmanager does, with an empty body"
                    )
                ),
            },
        )
    )
    door = _operation(
        "receiveAlertmanagerApi",
        "Alertmanager API v2 for Prometheus (path_prefix: /webhooks/{source})",
        {"200": OpenAPIResponse(description="Applied, answered as Alertmanager does")},
        "application/json",
    )
    door.responses = {**(door.responses or {}), **_ALERTMANAGER_TEXTS}
    paths["/webhooks/{source}/api/v2/alerts"] = PathItem(post=door)
    openapi.paths = paths


def _operation(
    operation_id: str,
    summary: str,
    accepted: dict[str, OpenAPIResponse],
    refusal_type: str = PROBLEM_MEDIA_TYPE,
) -> Operation:
    """A webhook operation; ``refusal_type`` is the media type its problem documents take."""
    refusals = {code: _refusal(code, text, refusal_type) for code, text in _REFUSALS.items()}
    return Operation(
        tags=[TAG],
        summary=summary,
        description=_AUTH,
        operation_id=operation_id,
        parameters=[_SOURCE],
        request_body=RequestBody(
            content={"application/json": OpenAPIMediaType(schema=Schema())},
            description="The sender's payload, in the source's format",
            required=True,
        ),
        responses={**accepted, **refusals},
    )


def _json(description: str) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={"application/json": OpenAPIMediaType(schema=Schema())},
    )


def _refusal(status: str, description: str, media_type: str) -> OpenAPIResponse:
    content = {media_type: OpenAPIMediaType(schema=_PROBLEM)}
    if status == "400":  # Alertmanager's and PagerDuty's own refusals are plain JSON
        content["application/json"] = OpenAPIMediaType(schema=Schema())
    return OpenAPIResponse(
        description=description,
        headers=_HEADERS.get(status),
        content=content,
    )
