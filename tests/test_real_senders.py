"""Real senders posting to a real hub: an Alertmanager webhook receiver, and Prometheus
using hub as its Alertmanager (API v2 under ``path_prefix``).

Needs ``prometheus-alertmanager`` and ``prometheus`` (Debian packages of those names,
installed by ``.ci/run``); see ``programs.require`` for when the tests skip.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import BASE_CONFIG, TLS_CONTEXT, mail_url, wait_for
from programs import Program, require
from prometheus_client.parser import text_string_to_metric_families

SENDER_WAIT_SECONDS = 30
AM_TOKEN = "am-token"
PROM_TOKEN = "prom-token"

SENDERS = (
    BASE_CONFIG
    + f"""
[[sources]]
name = "am"
format = "alertmanager"
[sources.auth]
type = "bearer"
tokens = ["{AM_TOKEN}"]

[[sources]]
name = "prom"
format = "prometheus"
[sources.auth]
type = "bearer"
tokens = ["{PROM_TOKEN}"]
"""
)

ALERTS = [
    {"alertname": "DiskFull", "instance": "db1", "severity": "critical"},
    {"alertname": "DiskFull", "instance": "db2", "severity": "warning"},
]


@pytest.fixture
def programs(tmp_path: Path) -> Iterator[Callable[..., Program]]:
    """Start programs in their own temp dirs; each is waited for and stopped at the end."""
    started: list[Program] = []

    def start(name: str, args: Callable[[Path], list[str]]) -> Program:
        workdir = tmp_path / name
        workdir.mkdir()
        program = Program(args(workdir), workdir)
        started.append(program)
        wait_for(program.ready, timeout=SENDER_WAIT_SECONDS)
        return program

    yield start
    for program in started:
        program.stop()


@pytest.fixture
def hub(hub_factory, smtp):
    _, smtp_port = smtp
    return hub_factory(SENDERS, mail_url=mail_url(smtp_port))


def write_yaml(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content))
    return path


def alertmanager_config(hub_url: str) -> dict:
    return {
        "route": {
            "receiver": "hub",
            "group_by": ["alertname", "instance"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "hub",
                "webhook_configs": [
                    {
                        "url": f"{hub_url}/webhooks/am",
                        "send_resolved": True,
                        "http_config": {"authorization": {"credentials": AM_TOKEN}},
                    }
                ],
            }
        ],
    }


def postable(labels: dict[str, str], ends_at: datetime) -> dict:
    starts_at = datetime.now(UTC) - timedelta(minutes=5)
    return {"labels": labels, "startsAt": starts_at.isoformat(), "endsAt": ends_at.isoformat()}


def hub_alerts(hub, source: str) -> list[dict]:
    with hub.client() as http:
        return http.get("/api/v1/alerts", params={"source": source}).json()


def test_alertmanager_webhooks_store_its_fingerprints_and_resolve(hub, programs):
    binary = require("prometheus-alertmanager", "prometheus-alertmanager")
    alertmanager = programs(
        "alertmanager",
        lambda workdir: [
            binary,
            f"--config.file={write_yaml(workdir / 'am.yml', alertmanager_config(hub.url))}",
            f"--storage.path={workdir / 'data'}",
            "--cluster.listen-address=",
        ],
    )
    api = f"{alertmanager.url}/api/v2/alerts"
    future = datetime.now(UTC) + timedelta(hours=1)
    posted = httpx.post(
        api, json=[postable(labels, future) for labels in ALERTS], timeout=10, verify=TLS_CONTEXT
    )
    assert posted.status_code == 200, posted.text
    expected = {
        alert["fingerprint"] for alert in httpx.get(api, timeout=10, verify=TLS_CONTEXT).json()
    }
    assert len(expected) == len(ALERTS)

    firing = wait_for(lambda: len(hub_alerts(hub, "am")) == 2, timeout=SENDER_WAIT_SECONDS)
    assert firing
    stored = hub_alerts(hub, "am")
    assert {alert["fingerprint"] for alert in stored} == expected
    assert {alert["status"] for alert in stored} == {"firing"}
    assert {alert["severity"] for alert in stored} == {"critical", "warning"}

    past = datetime.now(UTC) - timedelta(seconds=1)
    resolved = httpx.post(
        api, json=[postable(labels, past) for labels in ALERTS], timeout=10, verify=TLS_CONTEXT
    )
    assert resolved.status_code == 200, resolved.text
    wait_for(
        lambda: {a["status"] for a in hub_alerts(hub, "am")} == {"resolved"},
        timeout=SENDER_WAIT_SECONDS,
    )


ALWAYS_FIRING = {
    "groups": [
        {
            "name": "always",
            "interval": "1s",
            "rules": [
                {
                    "alert": "AlwaysFiring",
                    "expr": "vector(1)",
                    "labels": {"severity": "warning", "team": "ops"},
                    "annotations": {"summary": "this rule always fires"},
                }
            ],
        }
    ]
}


def prometheus_config(hub_url: str, rules: Path) -> dict:
    """hub as Prometheus' Alertmanager: the snippet docs/sources.md shows."""
    return {
        "global": {"evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {
            "alertmanagers": [
                {
                    "api_version": "v2",
                    "path_prefix": "/webhooks/prom",
                    "authorization": {"credentials": PROM_TOKEN},
                    "static_configs": [{"targets": [hub_url.removeprefix("http://")]}],
                }
            ]
        },
    }


def prometheus_args(binary: str, hub_url: str) -> Callable[[Path], list[str]]:
    def args(workdir: Path) -> list[str]:
        rules = write_yaml(workdir / "rules.yml", ALWAYS_FIRING)
        config = write_yaml(workdir / "prometheus.yml", prometheus_config(hub_url, rules))
        return [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            "--rules.alert.resend-delay=1s",
        ]

    return args


def sample(url: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus text exposition (0 when absent)."""
    text = httpx.get(url, timeout=10, verify=TLS_CONTEXT).text
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and labels.items() <= found.labels.items():
                return found.value
    return 0.0


def notifications_of(db: Path, alert_id: int) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT COUNT(*) FROM notifications WHERE incident_id ="
            " (SELECT incident_id FROM alerts WHERE id = ?)",
            (alert_id,),
        ).fetchone()[0]


def test_prometheus_resends_are_one_alert_with_one_history_row_and_one_notification(
    hub, programs, smtp, tmp_path
):
    binary = require("prometheus", "prometheus")
    prometheus = programs("prometheus", prometheus_args(binary, hub.url))
    hub_metrics = f"{hub.url}/metrics"

    (alert,) = wait_for(lambda: hub_alerts(hub, "prom"), timeout=SENDER_WAIT_SECONDS)
    assert alert["labels"] == {"alertname": "AlwaysFiring", "severity": "warning", "team": "ops"}
    assert alert["summary"] == "this rule always fires"
    assert alert["status"] == "firing"
    wait_for(
        lambda: sample(hub_metrics, "hub_events_total", source="prom", outcome="duplicate") >= 3,
        timeout=SENDER_WAIT_SECONDS,
    )

    mailbox, _ = smtp
    wait_for(lambda: mailbox.messages)
    with hub.client() as http:
        stored = http.get(f"/api/v1/alerts/{alert['id']}").json()
    assert stored["duplicates"] >= 3
    assert len(stored["history"]) == 1
    assert notifications_of(tmp_path / "hub.db", alert["id"]) == 1
    assert len(mailbox.messages) == 1
    prometheus_metrics = f"{prometheus.url}/metrics"
    assert sample(prometheus_metrics, "prometheus_notifications_sent_total") >= 4
    assert sample(prometheus_metrics, "prometheus_notifications_errors_total") == 0
