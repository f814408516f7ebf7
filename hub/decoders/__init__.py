"""Decoders: one pure function per sender format, ``decode(body, source) -> Decoded``.

Each raises MalformedBody (400) when the body does not parse and InvalidPayload (422,
naming the field) when it parses to the wrong shape. Register new formats here.

Most formats are answered with hub's native answer. A format whose senders read
the answer (PagerDuty's clients read ``dedup_key``) has a Responder in RESPONDERS:
the HTTP layer calls ``accepted(decoded)`` while committing the events (the answer
is stored with the delivery), and ``rejected(error)`` for any HubError, falling back
to hub's answer when it returns None. An answer body of None means an empty body.

``decode`` is how the HTTP layer calls a decoder: formats whose meaning depends on
the time (a Prometheus alert whose ``endsAt`` has passed is resolved) get the hub's
clock, so that "now" is the same for every stage of a delivery. It also dates no
event later than that "now" (``not_after``): a sender's clock never runs ahead of hub's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from hub.decoders import alertmanager, generic, grafana, native, pagerduty, prometheus
from hub.decoders.common import not_after

if TYPE_CHECKING:
    from hub.config import Source
    from hub.decoders.common import Decoded
    from hub.errors import HubError

Decoder = Callable[[bytes, "Source"], "Decoded"]


class Responder(Protocol):
    """The HTTP answers of a format whose senders expect their platform's answers."""

    def accepted(self, decoded: Decoded) -> tuple[int, Any]: ...

    def rejected(self, error: HubError) -> tuple[int, Any] | None: ...


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
    "prometheus": prometheus.RESPONDER,
}

SHARED_IDENTITY = frozenset({"alertmanager", "prometheus", "grafana"})
"""Formats whose identity is Alertmanager's fingerprint, shared by every source."""

CLOCKED = frozenset({"prometheus"})
"""Formats whose decoder takes ``now``."""


def decode(body: bytes, source: Source, now: datetime) -> Decoded:
    """Decode ``body`` with the source's format, at the hub's ``now``."""
    if source.format in CLOCKED:
        decoded = DECODERS[source.format](body, source, now)  # type: ignore[call-arg]
    else:
        decoded = DECODERS[source.format](body, source)
    return not_after(decoded, now)
