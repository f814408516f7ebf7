"""Building blocks shared by the notification tests: a config whose receivers and
routes each test writes, alerts posted over HTTP, and readers for the delivery log
and ``/metrics``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from conftest import AUTH, RunningHub, mail_url
from prometheus_client.parser import text_string_to_metric_families

ACK_SECRET = "test-ack-secret"
WRITER = {"Authorization": "Bearer write-token"}
ADMIN = {"Authorization": "Bearer admin-token"}

NOTIFY_CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
ack_secret = "{ack_secret}"

[storage]
path = "{db}"

[api]
tokens = [
  {{ name = "will", token = "write-token", role = "write" }},
  {{ name = "ada", token = "admin-token", role = "admin" }},
]

[notifier]
max_attempts = {max_attempts}
backoff = "{backoff}"
max_backoff = "{max_backoff}"

[[sources]]
name = "shop"
format = "native"
auth = {{ type = "bearer", tokens = ["shop-secret-token"] }}

{receivers}

[route]
receiver = "{root}"
group_by = ["service"]
group_wait = "{group_wait}"
group_interval = "{group_interval}"
repeat_interval = "{repeat_interval}"

{routes}

{tables}
"""

NOTIFY_DEFAULTS = {
    "ack_secret": ACK_SECRET,
    "backoff": "100ms",
    "max_backoff": "200ms",
    "root": "ops",
    "routes": "",
    "tables": "",
}


def toml_table(header: str, **keys: Any) -> str:
    """One TOML table from Python values (JSON strings and lists are valid TOML)."""
    lines = [header]
    for key, value in keys.items():
        text = str(value).lower() if isinstance(value, bool) else json.dumps(value)
        lines.append(f"{key.rstrip('_')} = {text}")
    return "\n".join(lines) + "\n"


def receiver(name: str, *urls: str, **keys: Any) -> str:
    """A ``[[receivers]]`` table; ``keys`` are send_resolved, timeout, title, body."""
    return toml_table("[[receivers]]", name=name, urls=list(urls), **{"timeout": "2s", **keys})


def route(receiver_name: str, *matchers: str, **keys: Any) -> str:
    """A ``[[route.routes]]`` table; pass ``continue_=True`` for ``continue``."""
    return toml_table("[[route.routes]]", receiver=receiver_name, matchers=list(matchers), **keys)


def mail_to(port: int, address: str) -> str:
    """An email URL for the test SMTP server that sends to ``address``."""
    return mail_url(port).replace("ops@example.com", address)


def start_hub(factory: Callable[..., RunningHub], receivers: str, **values: Any) -> RunningHub:
    """A hub on NOTIFY_CONFIG; ``values`` fill its placeholders over the defaults."""
    return factory(NOTIFY_CONFIG, receivers=receivers, **{**NOTIFY_DEFAULTS, **values})


def fire(
    http: httpx.Client,
    summary: str,
    status: str = "firing",
    severity: str = "warning",
    **labels: str,
) -> dict:
    """Post one native event; the answer's alert (id, fingerprint, incident_id)."""
    labelled = {"service": "checkout", **labels}
    event = {"status": status, "summary": summary, "severity": severity, "labels": labelled}
    answer = http.post("/webhooks/shop", json=event, headers=AUTH)
    assert answer.status_code == 202, answer.text
    return answer.json()["alerts"][0]


def ack_link_in(text: str, base_url: str) -> str:
    """The ack link in a message, with the person it acknowledges as (``?by=``) if any."""
    link = r"/ack/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(?:\?by=[^\s\"<>|]+)?"
    found = re.search(re.escape(base_url) + link, text)
    assert found, f"no ack link in {text!r}"
    return found.group(0)


def deliveries(http: httpx.Client, **params: Any) -> list[dict]:
    """The delivery log, oldest first."""
    answer = http.get("/api/v1/notifications", params=params)
    assert answer.status_code == 200, answer.text
    return list(reversed(answer.json()))


def when(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus exposition, or None if it is absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None
