"""Limits checked before a body is decoded: request rate, content type, body size.

All pure: the rate limiter takes its clock, so tests step time by hand.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from hub.errors import PayloadTooLarge, RateLimited, UnsupportedMedia

if TYPE_CHECKING:
    from litestar.types import Message, Receive

    from hub.config import Server, Source

_JSON_CHARSETS = ("utf-8", "utf8", "us-ascii")


class RateLimiter:
    """Token buckets, one per key (a source name): ``rate`` tokens a second refill a
    bucket of ``burst``; each request takes one. Limits are passed on every call, so
    a config reload changes them without losing the buckets' state."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def wait(self, key: str, rate: float, burst: int) -> float:
        """Take a token: 0 when there was one, else the seconds until there will be."""
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - at) * rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / rate

    def check(self, key: str, rate: float, burst: int) -> None:
        """Take a token or raise RateLimited with a whole Retry-After of at least 1."""
        wait = self.wait(key, rate, burst)
        if wait > 0:
            raise RateLimited(
                f"{key}: over the rate limit of {rate:g} requests/s (burst {burst})",
                retry_after=max(1, math.ceil(wait)),
            )


def check_source_rate(limiter: RateLimiter, source: Source) -> None:
    """Apply the source's ``rate_limit``/``burst``; ``burst`` defaults to one second's worth."""
    if source.rate_limit:
        burst = source.burst or max(1, math.ceil(source.rate_limit))
        limiter.check(source.name, source.rate_limit, burst)


def check_content_type(content_type: str | None) -> None:
    """Accept JSON: ``application/json``, ``application/*+json``, and ``text/plain``
    (some senders label JSON so; the body must parse as JSON anyway). No header is
    accepted too. A form or any other type is a 415 naming it."""
    problem = _content_type_problem(content_type) if content_type else None
    if problem is not None:
        raise UnsupportedMedia(problem)


def check_content_encoding(encoding: str | None) -> None:
    """Accept a body as sent (no ``Content-Encoding``, or ``identity``): hub decodes no
    compression, and a compressed body would be refused as JSON malformed at byte 0,
    which names neither the encoding nor the fix. HTTP answers an unsupported content
    coding with 415."""
    coding = (encoding or "").strip().lower()
    if coding not in ("", "identity"):
        raise UnsupportedMedia(
            f"content encoding {coding!r} is not supported: send the body uncompressed"
        )


@functools.lru_cache(maxsize=256)
def _content_type_problem(content_type: str) -> str | None:
    """What is wrong with a Content-Type, if anything. Cached: a sender sends the same
    header every time, and taking it apart costs about as much as decoding a small body."""
    media, *params = (part.strip() for part in content_type.split(";"))
    media = media.lower()
    if not _is_json(media):
        return f"content type {media!r} is not JSON: send application/json"
    for param in params:
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in _JSON_CHARSETS:
            return f"charset {charset!r} is not supported: JSON must be UTF-8"
    return None


def _is_json(media: str) -> bool:
    if media in ("application/json", "text/plain"):
        return True
    return media.startswith("application/") and media.endswith("+json")


def body_limit(source: Source, server: Server) -> int:
    """The most bytes a request body may have: the source's limit, else the server's."""
    return source.max_body_bytes or server.max_body_bytes


def check_body_size(size: int, limit: int) -> None:
    """Call with the Content-Length, and again with the bytes read so far when streaming."""
    if size > limit:
        raise PayloadTooLarge(f"body of {size} bytes is over the limit of {limit} bytes")


def limited(receive: Receive, declared: str, limit: int) -> Receive:
    """``receive`` refusing a body over ``limit`` bytes with PayloadTooLarge: by its
    declared length (``declared``, the Content-Length header) before any of it is
    read, then by the bytes received so far. A request whose body nobody reads is
    never refused."""
    declared_size = int(declared) if declared.isdigit() else 0
    received = 0

    async def receive_limited() -> Message:
        nonlocal received
        if not received:
            check_body_size(declared_size, limit)
        message = await receive()
        received += len(message.get("body", b""))
        check_body_size(received, limit)
        return message

    return receive_limited


def problems(source: Source, where: str) -> list[str]:
    """Config faults of a source's limit keys, each naming ``where`` and the key."""
    found = []
    if source.rate_limit is not None and source.rate_limit <= 0:
        found.append(f"{where}.rate_limit: must be above 0 (requests per second)")
    if source.burst is not None and source.burst < 1:
        found.append(f"{where}.burst: must be at least 1")
    if source.burst is not None and source.rate_limit is None:
        found.append(f"{where}.burst: only means something with rate_limit")
    if source.max_body_bytes is not None and source.max_body_bytes < 1:
        found.append(f"{where}.max_body_bytes: must be at least 1")
    return found
