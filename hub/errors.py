"""hub's errors: one tree, each class an answer a client or operator can act on.

HubError                 base; carries the HTTP status and a problem title
 ├── ConfigError         the configuration is invalid; ``problems`` lists every fault found
 ├── MalformedBody       400: the body is not parseable (JSON syntax, encoding)
 ├── InvalidPayload      422: valid JSON of the wrong shape; ``field`` names the path
 ├── KeyReused           422: a delivery id sent again with a different body
 ├── AuthError           401: the sender could not be verified; ``reason`` is a bounded label
 ├── Forbidden           403: authenticated, but the role is too low, a token is invalid,
 │                       or the request would record someone else as its author
 ├── NotFound            404: unknown source, alert, incident, ...
 ├── Conflict            409: the request contradicts the current state; ``members`` are
 │                       the facts a script needs (an incident's ``status``, who holds it)
 ├── PayloadTooLarge     413: the body is over the configured limit
 ├── UnsupportedMedia    415: the content type is not JSON, or the body is compressed
 ├── RateLimited         429: too many requests; ``retry_after`` seconds
 └── Unavailable         503: the hub cannot take the request now (not ready, queue full)

Messages never contain secrets: callers pass field names and reasons, not values.
"""

from __future__ import annotations


class HubError(Exception):
    """Base class: an error with an HTTP status and a short title."""

    status = 500
    title = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ConfigError(HubError):
    """The configuration is invalid; every fault is listed, not just the first."""

    title = "Invalid configuration"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class MalformedBody(HubError):
    status = 400
    title = "Malformed request body"


class InvalidPayload(HubError):
    """The payload parsed but does not have the expected shape."""

    status = 422
    title = "Invalid payload"

    def __init__(self, detail: str, field: str = "$") -> None:
        super().__init__(detail)
        self.field = field


class KeyReused(HubError):
    """A delivery id came again with another body: not a retry, and taking it for one
    would drop its events, so it is refused (as the IETF Idempotency-Key draft says)."""

    status = 422
    title = "Delivery id reused"


class AuthError(HubError):
    """Authentication failed; ``reason`` is one of a small fixed set (a metric label).

    ``challenge`` is the ``WWW-Authenticate`` value telling a client how to log in.
    """

    status = 401
    title = "Unauthorized"

    def __init__(
        self, reason: str, detail: str | None = None, challenge: str | None = None
    ) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.challenge = challenge


class Forbidden(HubError):
    status = 403
    title = "Forbidden"


class NotFound(HubError):
    status = 404
    title = "Not found"


class Conflict(HubError):
    """``members`` go into the problem document beside the detail (RFC 9457 extension
    members), so that a script need not parse English to learn the state it hit."""

    status = 409
    title = "Conflict"

    def __init__(self, detail: str, **members: object) -> None:
        super().__init__(detail)
        self.members = members


class PayloadTooLarge(HubError):
    status = 413
    title = "Payload too large"


class UnsupportedMedia(HubError):
    status = 415
    title = "Unsupported media type"


class RateLimited(HubError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(HubError):
    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
