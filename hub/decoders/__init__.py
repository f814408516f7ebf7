"""Decoders: one pure function per sender format, ``decode(body, source) -> Decoded``.

Each raises MalformedBody (400) when the body does not parse and InvalidPayload (422,
naming the field) when it parses to the wrong shape. Register new formats here.

Most formats are answered with hub's native answer. A format whose senders read
the answer (PagerDuty's clients read ``dedup_key``) has a Responder in RESPONDERS:
the HTTP layer calls ``accepted(decoded)`` after the events are committed, and
``rejected(error)`` for any HubError, falling back to hub's answer when it
returns None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from hub.decoders import alertmanager, generic, grafana, native, pagerduty, prometheus

if TYPE_CHECKING:
    from hub.config import Source
    from hub.decoders.common import Decoded
    from hub.errors import HubError

Decoder = Callable[[bytes, "Source"], "Decoded"]


class Responder(Protocol):
    """The HTTP answers of a format whose senders expect their platform's answers."""

    def accepted(self, decoded: Decoded) -> tuple[int, dict[str, Any]]: ...

    def rejected(self, error: HubError) -> tuple[int, dict[str, Any]] | None: ...


DECODERS: dict[str, Decoder] = {
    "native": native.decode,
    "alertmanager": alertmanager.decode,
    "prometheus": prometheus.decode,
    "grafana": grafana.decode,
    "pagerduty": pagerduty.decode,
    "generic": generic.decode,
}

RESPONDERS: dict[str, Responder] = {
    "pagerduty": pagerduty.RESPONDER,
}
