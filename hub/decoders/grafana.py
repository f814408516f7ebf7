"""Grafana unified alerting's webhook contact point: Alertmanager's webhook shape plus
links (dashboard, panel, silence) and the evaluated values.

Grafana's per-alert ``fingerprint`` is the identity. The legacy (pre-8) alerting
format has no ``alerts`` list and is refused with a 422 naming that field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from hub.decoders.alertmanager import Alert, decode_alerts
from hub.decoders.common import Decoded, parse_json

if TYPE_CHECKING:
    from hub.config import Source


class GrafanaAlert(Alert, kw_only=True):
    dashboard_url: str = msgspec.field(default="", name="dashboardURL")
    panel_url: str = msgspec.field(default="", name="panelURL")
    silence_url: str = msgspec.field(default="", name="silenceURL")
    value_string: str = msgspec.field(default="", name="valueString")

    def links(self) -> dict[str, str]:
        extra = {
            "dashboard_url": self.dashboard_url,
            "panel_url": self.panel_url,
            "silence_url": self.silence_url,
            "values": self.value_string,
        }
        return {**super().links(), **{k: v for k, v in extra.items() if v}}


class Notification(msgspec.Struct):
    alerts: list[msgspec.Raw]


def decode(body: bytes, source: Source) -> Decoded:
    """Decode a Grafana webhook notification; invalid alerts are listed in ``rejected``."""
    return decode_alerts(parse_json(body, Notification).alerts, source, GrafanaAlert)
