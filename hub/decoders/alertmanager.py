"""Alertmanager's webhook receiver payload (version 4): many alerts per request.

Each alert carries Alertmanager's fingerprint of its labels, the same identity the
``prometheus`` decoder computes, so an alert is one alert whichever way it came; a
source's own labels join the identity as Prometheus' external labels would have.
Unknown fields are accepted: newer Alertmanagers add some (``truncatedAlerts``,
``notification_reason``...), and a receiver must not break on them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import msgspec

from hub.decoders.common import (
    AwareTime,
    Decoded,
    alert_labels,
    decode_batch,
    labelled_event,
    parse_json,
    parse_shape,
)
from hub.errors import InvalidPayload
from hub.events import Event

if TYPE_CHECKING:
    from hub.config import Source

WEBHOOK_VERSION = "4"


class Alert(msgspec.Struct, kw_only=True):
    """One alert of a webhook notification (Grafana's adds fields, see ``grafana``)."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    starts_at: AwareTime | None = msgspec.field(default=None, name="startsAt")
    ends_at: AwareTime | None = msgspec.field(default=None, name="endsAt")
    generator_url: str = msgspec.field(default="", name="generatorURL")
    fingerprint: str = ""

    def links(self) -> dict[str, str]:
        """URLs worth showing in a notification, as annotations."""
        return {"generator_url": self.generator_url} if self.generator_url else {}


class Notification(msgspec.Struct):
    version: str
    alerts: list[msgspec.Raw]


def decode(body: bytes, source: Source) -> Decoded:
    """Decode a webhook notification; invalid alerts are listed in ``rejected``."""
    notification = parse_shape(body, Notification, _prometheus_alerts)
    if notification.version != WEBHOOK_VERSION:
        raise InvalidPayload(
            f"unsupported webhook version {notification.version!r} (expected '4')",
            field="$.version",
        )
    return decode_alerts(notification.alerts, source, Alert)


def _prometheus_alerts(data: Any) -> str | None:
    """A hint for the alerts Prometheus posts (a list of objects with ``labels``)."""
    if isinstance(data, list) and data and isinstance(data[0], dict) and "labels" in data[0]:
        return (
            'this looks like the alerts Prometheus posts: a source of format "prometheus" takes it'
        )
    return None


def decode_alerts(alerts: list[msgspec.Raw], source: Source, type_: type[Alert]) -> Decoded:
    """Decode each alert of ``$.alerts`` as ``type_``; shared with Grafana's webhook."""
    return decode_batch(alerts, "$.alerts", lambda raw: to_event(parse_json(raw, type_), source))


def to_event(alert: Alert, source: Source) -> Event:
    """The alert's own fingerprint is its identity; resolved alerts date from endsAt.
    An alert without labels is refused, as the ``prometheus`` format and Alertmanager
    refuse it."""
    labels = alert_labels(alert.labels)
    return labelled_event(
        source,
        status=alert.status,
        labels=labels,
        annotations={**alert.annotations, **alert.links()},
        fingerprint=alert.fingerprint or None,
        occurred_at=alert.ends_at if alert.status == "resolved" else alert.starts_at,
    )
