"""hub read as an Alertmanager: the real amtool against a real hub, and the shapes,
filters, silences and refusals of ``/api/v2/...`` over HTTP, held to the required
fields and types of Alertmanager 0.25's API (``AM_SHAPES``, written from its OpenAPI
document), and the requests Grafana's data source and karma send, which cannot run
here, replayed.

amtool comes with Debian's ``prometheus-alertmanager`` (installed by ``.ci/run``); see
``programs.require`` for when the amtool tests skip.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import schemathesis
import yaml
from conftest import BASE_CONFIG, mail_url
from console_support import sign_in
from logfmt_support import events
from programs import require
from schemathesis.core.failures import Failure
from test_access import CREDENTIALS, TOKENS
from test_silences_api import silence_row

from hub.fingerprints import alertmanager_fingerprint

SHOP = {"Authorization": "Bearer shop-secret-token"}
PROM_TOKEN = "prom-token"
CONFIG = (
    BASE_CONFIG
    + TOKENS
    + f"""
[[sources]]
name = "prom"
format = "prometheus"
auth = {{{{ type = "bearer", tokens = ["{PROM_TOKEN}"] }}}}

[[receivers]]
name = "pager"
urls = ["{{mail_url}}"]

[[route.routes]]
matchers = ['service="payments"']
receiver = "pager"
group_by = ["service"]

[[inhibit_rules]]
source_matchers = ['alertname="DatacenterDown"']
target_matchers = ['service="search"']
equal = ["dc"]

[[route.routes]]
matchers = ['service="batch"']
receiver = "ops"
mute_time_intervals = ["always"]

[[silences]]
matchers = ['service="static"']
comment = "from the file"
created_by = "config"

[[time_intervals]]
name = "always"
[[time_intervals.time_intervals]]
times = [{{{{ start_time = "00:00", end_time = "24:00" }}}}]
"""
)


@pytest.fixture
def hub(hub_factory, smtp):
    return hub_factory(CONFIG, mail_url=mail_url(smtp[1]))


def fire(hub, service: str, status: str = "firing", **labels: str) -> None:
    event = {
        "status": status,
        "summary": f"{service} down",
        "labels": {"alertname": f"{service.title()}Down", "service": service, **labels},
        "annotations": {"runbook": f"https://wiki.example/{service}"},
    }
    with hub.client(headers=SHOP) as http:
        assert http.post("/webhooks/shop", json=event).status_code == 202


def v2(hub, path: str, role: str = "read", **params) -> httpx.Response:
    with hub.client(headers=CREDENTIALS[role]) as http:
        return http.get(f"/api/v2/{path}", params=params)


def post_silence(hub, role: str = "write", **fields) -> httpx.Response:
    now = datetime.now(UTC)
    body = {
        "matchers": [{"name": "service", "value": "checkout", "isRegex": False}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "will",
        "comment": "deploy 4.2",
        **fields,
    }
    with hub.client(headers=CREDENTIALS[role]) as http:
        return http.post("/api/v2/silences", json=body)


# -- amtool --------------------------------------------------------------------------

Amtool = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def amtool(hub, tmp_path: Path) -> Amtool:
    return amtool_for(hub, tmp_path)


def amtool_for(hub, tmp_path: Path) -> Amtool:
    """amtool configured as the README shows: its config file naming hub's URL, the
    HTTP config file with the token, and the token's name as author. Upstream amtool
    reads ``~/.config/amtool/config.yml``, Debian's ``~/.config/prometheus/amtool.yml``:
    both are written."""
    binary = require("amtool", "prometheus-alertmanager")
    home = tmp_path / "home"
    folder = home / ".config" / "amtool"
    folder.mkdir(parents=True)
    (home / ".config" / "prometheus").mkdir()

    def run(*args: str, token: str | None = "write-token") -> subprocess.CompletedProcess:
        http_config = folder / "http.yml"
        http_config.write_text(
            yaml.safe_dump({"authorization": {"credentials": token}} if token else {})
        )
        settings = {
            "alertmanager.url": f"{hub.url}/",
            "http.config.file": str(http_config),
            "author": "will",
        }
        for path in (folder / "config.yml", home / ".config" / "prometheus" / "amtool.yml"):
            path.write_text(yaml.safe_dump(settings))
        return subprocess.run(
            [binary, *args],
            env={"HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


def table(answer: subprocess.CompletedProcess) -> list[str]:
    assert answer.returncode == 0, answer.stderr
    return answer.stdout.splitlines()[1:]


def test_amtool_alert_query_lists_the_firing_alerts_with_their_labels(hub, amtool):
    fire(hub, "checkout", dc="eu")
    fire(hub, "payments")
    fire(hub, "cart")
    fire(hub, "cart", status="resolved")
    rows = table(amtool("alert", "query", "-o", "extended"))
    assert len(rows) == 2, rows
    checkout = next(row for row in rows if "checkout" in row)
    for label in ('alertname="CheckoutDown"', 'service="checkout"', 'dc="eu"'):
        assert label in checkout
    assert 'summary="checkout down"' in checkout and checkout.rstrip().endswith("active")
    only = table(amtool("alert", "query", 'service=~"pay.*"'))
    assert [row.split()[0] for row in only] == ["PaymentsDown"]
    assert table(amtool("alert", "query", "--receiver=pager"))[0].startswith("PaymentsDown")


def test_amtool_silences_an_alert_in_hub_and_expires_the_silence(hub, amtool):
    fire(hub, "checkout")
    added = amtool("silence", "add", 'service="checkout"', "-c", "deploy 4.2", "-d", "1h")
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    with hub.client(headers=CREDENTIALS["read"]) as http:
        stored = http.get(f"/api/v1/silences/{silence_id}").json()
        alert = http.get("/api/v1/alerts").json()[0]
    assert (stored["created_by"], stored["comment"], stored["state"]) == (
        "will",
        "deploy 4.2",
        "active",
    )
    assert stored["matchers"] == ['service="checkout"']
    assert alert["mutes"] == [{"reason": "silence", "by": [silence_id]}]
    listed = table(amtool("silence", "query"))
    assert [row.split()[0] for row in listed] == [silence_id, stored_static(hub)["static"]]
    assert table(amtool("alert", "query")) == []  # amtool leaves silenced alerts out
    assert "suppressed" in table(amtool("alert", "query", "--silenced"))[0]

    assert amtool("silence", "expire", silence_id).returncode == 0
    with hub.client(headers=CREDENTIALS["read"]) as http:
        assert http.get(f"/api/v1/silences/{silence_id}").json()["state"] == "expired"
        assert http.get("/api/v1/alerts").json()[0]["mutes"] == []
    assert [row.split()[0] for row in table(amtool("silence", "query"))] == [
        stored_static(hub)["static"]
    ]
    assert table(amtool("silence", "query", "--expired"))[0].startswith(silence_id)


def stored_static(hub) -> dict[str, str]:
    """The config's silences' ids, by the service their one matcher names."""
    with hub.client(headers=CREDENTIALS["read"]) as http:
        listed = http.get("/api/v1/silences").json()
    return {s["matchers"][0].split('"')[1]: s["id"] for s in listed if s["static"]}


def test_amtool_silence_update_changes_the_silence_in_place(hub, amtool):
    silence_id = amtool("silence", "add", "service=cart", "-c", "deploy", "-d", "1h").stdout
    silence_id = silence_id.strip()
    updated = amtool("silence", "update", "--duration", "3h", silence_id)
    assert table(updated)[0].split()[0] == silence_id
    with hub.client(headers=CREDENTIALS["read"]) as http:
        stored = http.get(f"/api/v1/silences/{silence_id}").json()
    starts, ends = (datetime.fromisoformat(stored[key]) for key in ("starts_at", "ends_at"))
    assert ends - starts == timedelta(hours=3) and stored["updated_by"] == "will"


def test_amtool_reports_hub_refusals_by_status(hub, amtool):
    fire(hub, "checkout")
    assert "status 401" in amtool("alert", "query", token=None).stderr
    refused = amtool("silence", "add", "service=cart", "-c", "x", "-d", "1h", token="read-token")
    assert "status 403" in refused.stderr
    past = ("--start=2020-01-01T00:00:00Z", "--end=2020-01-02T00:00:00Z")
    ended = amtool("silence", "add", "service=cart", "-c", "x", *past)
    assert "[400] postSilencesBadRequest  ends_at: must be in the future" in ended.stderr
    static = amtool("silence", "expire", stored_static(hub)["static"])
    assert static.returncode != 0 and "status 409" in static.stderr
    with hub.client(headers=CREDENTIALS["read"]) as http:
        assert [s["static"] for s in http.get("/api/v1/silences").json()] == [True]


def alert_scene(hub) -> str:
    """An alert in each state amtool tells apart: CheckoutDown silenced, SearchDown
    inhibited (by DatacenterDown), PaymentsDown active (told to pager), BatchDown held
    by a muting time interval, which Alertmanager 0.25 counts as active. Returns the
    silence's id."""
    fire(hub, "checkout")
    fire(hub, "search", dc="eu")
    fire(hub, "datacenter", alertname="DatacenterDown", dc="eu")
    fire(hub, "payments")
    fire(hub, "batch")
    return post_silence(hub).json()["silenceID"]


@pytest.mark.parametrize(
    ("flags", "alertnames"),
    [
        ((), ["BatchDown", "DatacenterDown", "PaymentsDown"]),
        (("--active",), ["BatchDown", "DatacenterDown", "PaymentsDown"]),
        (("--silenced",), ["CheckoutDown"]),
        (("--inhibited",), ["SearchDown"]),
        (("-s", "-i"), ["CheckoutDown", "SearchDown"]),
        (("-a", "-s"), ["BatchDown", "CheckoutDown", "DatacenterDown", "PaymentsDown"]),
        (("--unprocessed",), []),
        (("--receiver=pager",), ["PaymentsDown"]),
        (("--receiver=pag",), []),
        (("--silenced", "--receiver=o.s"), ["CheckoutDown"]),
        (("-a", "-s", "-i", 'service=~"(batch|search)"'), ["BatchDown", "SearchDown"]),
        (("DatacenterDown",), ["DatacenterDown"]),
    ],
)
def test_amtool_alert_query_flags_pick_alerts_as_alertmanager_does(hub, amtool, flags, alertnames):
    """amtool asks for the states it names (no flag: active only), a receiver regex
    (anchored) and matchers (a bare word is the alertname); each answer is what
    Alertmanager would list for the same alerts."""
    alert_scene(hub)
    rows = table(amtool("alert", "query", *flags))
    assert sorted(row.split()[0] for row in rows) == alertnames


def test_amtool_alert_query_shows_what_suppresses_each_alert(hub, amtool):
    silence_id = alert_scene(hub)
    rows = table(amtool("alert", "query", "-a", "-s", "-i", "-o", "extended"))
    states = {row.split()[0].split('"')[1]: row.split()[-1] for row in rows}
    assert states == {
        "BatchDown": "suppressed",
        "CheckoutDown": "suppressed",
        "DatacenterDown": "active",
        "PaymentsDown": "active",
        "SearchDown": "suppressed",
    }
    shown = amtool("alert", "query", "--silenced", "-o", "json")
    (checkout,) = json.loads(shown.stdout)
    assert checkout["status"] == {
        "state": "suppressed",
        "silencedBy": [silence_id],
        "inhibitedBy": [],
    }


ENDED = """
[[silences]]
matchers = ['service="legacy"']
starts_at = {long_ago_start}
ends_at = {long_ago_end}
comment = "ended three hours ago"
created_by = "config"

[[silences]]
matchers = ['service="migration"']
starts_at = {lately_start}
ends_at = {lately_end}
comment = "ended half an hour ago"
created_by = "config"
"""


def test_amtool_silence_query_flags_pick_silences_as_alertmanager_does(hub_factory, smtp, tmp_path):
    """amtool lists every silence and keeps, on its side, those not yet ended (or with
    ``--expired`` those ended, for as long as they are kept), ending or ended
    ``--within`` a duration, by ``--created-by``; so hub lists the ended ones and gives
    each its true end and author."""
    now = datetime.now(UTC).replace(microsecond=0)
    times = {
        "long_ago_start": now - timedelta(hours=5),
        "long_ago_end": now - timedelta(hours=3),
        "lately_start": now - timedelta(hours=2),
        "lately_end": now - timedelta(minutes=30),
    }
    hub = hub_factory(
        CONFIG + ENDED,
        mail_url=mail_url(smtp[1]),
        **{key: when.isoformat() for key, when in times.items()},
    )
    amtool = amtool_for(hub, tmp_path)

    def ids(*args: str) -> set[str]:
        answer = amtool("silence", "query", "-q", *args)
        assert answer.returncode == 0, answer.stderr
        return set(answer.stdout.split())

    def add(*args: str) -> str:
        added = amtool("silence", "add", "-c", "deploy", *args)
        assert added.returncode == 0, added.stderr
        return added.stdout.strip()

    soon = add("service=cart", "-d", "1h")
    later = add("service=search", "-d", "3h")
    pending = add("service=web", f"--start={(now + timedelta(hours=1)).isoformat()}", "-d", "4h")
    expired = add("service=queue", "-d", "1h")
    assert amtool("silence", "expire", expired).returncode == 0
    static = stored_static(hub)

    assert ids() == {soon, later, pending, static["static"]}
    assert ids("--within", "2h") == {soon}
    assert ids("--expired") == {expired, static["migration"], static["legacy"]}
    assert ids("--expired", "--within", "2h") == {expired, static["migration"]}
    assert ids("--created-by", "config") == {static["static"]}
    assert ids("--created-by", "config", "--expired") == {static["migration"], static["legacy"]}
    assert ids("--created-by", "will") == {soon, later, pending}
    assert ids("service=cart") == {soon}
    assert ids("--expired", "queue") == set(), "a bare word is an alertname matcher"
    assert ids("--expired", "service=queue") == {expired}


# -- the shapes, over HTTP -----------------------------------------------------------

TIME = {"type": "string", "format": "date-time"}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
MATCHER = {
    "type": "object",
    "required": ["name", "value", "isRegex"],
    "properties": {
        "name": {"type": "string"},
        "value": {"type": "string"},
        "isRegex": {"type": "boolean"},
        "isEqual": {"type": "boolean"},
    },
}
SILENCE = {
    "type": "object",
    "required": [
        "id",
        "status",
        "updatedAt",
        "matchers",
        "startsAt",
        "endsAt",
        "createdBy",
        "comment",
    ],
    "properties": {
        "id": {"type": "string"},
        "status": {
            "type": "object",
            "required": ["state"],
            "properties": {"state": {"enum": ["expired", "active", "pending"]}},
        },
        "updatedAt": TIME,
        "matchers": {"type": "array", "items": MATCHER, "minItems": 1},
        "startsAt": TIME,
        "endsAt": TIME,
        "createdBy": {"type": "string"},
        "comment": {"type": "string"},
    },
}
ALERT = {
    "type": "object",
    "required": [
        "labels",
        "annotations",
        "receivers",
        "fingerprint",
        "startsAt",
        "updatedAt",
        "endsAt",
        "status",
    ],
    "properties": {
        "labels": LABELS,
        "annotations": LABELS,
        "receivers": {
            "type": "array",
            "items": {"type": "object", "required": ["name"]},
        },
        "fingerprint": {"type": "string"},
        "startsAt": TIME,
        "updatedAt": TIME,
        "endsAt": TIME,
        "generatorURL": {"type": "string"},
        "status": {
            "type": "object",
            "required": ["state", "silencedBy", "inhibitedBy"],
            "properties": {
                "state": {"enum": ["unprocessed", "active", "suppressed"]},
                "silencedBy": {"type": "array", "items": {"type": "string"}},
                "inhibitedBy": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}
GROUP = {
    "type": "object",
    "required": ["labels", "receiver", "alerts"],
    "properties": {
        "labels": LABELS,
        "receiver": {"type": "object", "required": ["name"]},
        "alerts": {"type": "array", "items": ALERT},
    },
}
STATUS = {
    "type": "object",
    "required": ["cluster", "versionInfo", "config", "uptime"],
    "properties": {
        "cluster": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"enum": ["ready", "settling", "disabled"]}},
        },
        "versionInfo": {
            "type": "object",
            "required": ["version", "revision", "branch", "buildUser", "buildDate", "goVersion"],
        },
        "config": {"type": "object", "required": ["original"]},
        "uptime": TIME,
    },
}


def answers(schema: dict) -> dict:
    return {"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}}


AM_SHAPES = schemathesis.openapi.from_dict(
    {
        "openapi": "3.0.3",
        "info": {"title": "Alertmanager API v2, the shapes of its answers", "version": "0.25"},
        "paths": {
            "/api/v2/status": {"get": {"responses": answers(STATUS)}},
            "/api/v2/alerts": {"get": {"responses": answers({"type": "array", "items": ALERT})}},
            "/api/v2/alerts/groups": {
                "get": {"responses": answers({"type": "array", "items": GROUP})}
            },
            "/api/v2/silences": {
                "get": {"responses": answers({"type": "array", "items": SILENCE})},
                "post": {
                    "responses": answers(
                        {
                            "type": "object",
                            "required": ["silenceID"],
                            "properties": {"silenceID": {"type": "string"}},
                        }
                    )
                },
            },
            "/api/v2/silence/{id}": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "get": {"responses": answers(SILENCE)},
            },
        },
    }
)


def am_valid(path: str, answer: httpx.Response, method: str = "GET") -> httpx.Response:
    """``answer`` checked against Alertmanager's shape for ``path``; the check runs (an
    answer without its first required field fails it)."""
    assert answer.status_code == 200, answer.text
    operation = AM_SHAPES[path][method]
    operation.validate_response(answer)
    body = answer.json()
    first = body[0] if isinstance(body, list) else body
    if first:
        broken = [{**first}] if isinstance(body, list) else {**first}
        shown = broken[0] if isinstance(broken, list) else broken
        shown.pop(next(iter(shown)))
        forged = httpx.Response(200, json=broken, request=answer.request)
        forged.elapsed = answer.elapsed
        with pytest.raises(Failure):
            operation.validate_response(forged)
    return answer


def test_status_is_what_amtool_and_grafana_check(hub):
    shown = am_valid("/api/v2/status", v2(hub, "status")).json()
    assert shown["cluster"]["status"] == "ready"
    assert shown["versionInfo"]["version"] == hub.runtime.version
    sketch = yaml.safe_load(shown["config"]["original"])
    assert sketch["route"]["receiver"] == "ops"
    assert [r["name"] for r in sketch["receivers"]] == ["ops", "pager"]
    started = datetime.fromisoformat(shown["uptime"])
    assert timedelta(0) <= datetime.now(UTC) - started < timedelta(minutes=1)
    assert v2(hub, "receivers").json() == [{"name": "ops"}, {"name": "pager"}]


def test_alerts_show_what_mutes_them_in_alertmanager_words(hub):
    fire(hub, "checkout")
    fire(hub, "search", dc="eu")
    fire(hub, "datacenter", alertname="DatacenterDown", dc="eu")
    fire(hub, "payments")
    fire(hub, "cart", status="resolved")
    silence_id = post_silence(hub).json()["silenceID"]
    shown = am_valid("/api/v2/alerts", v2(hub, "alerts")).json()
    by_service = {alert["labels"]["service"]: alert for alert in shown}
    assert set(by_service) == {"checkout", "search", "datacenter", "payments"}
    assert [a["fingerprint"] for a in shown] == sorted(a["fingerprint"] for a in shown)
    checkout = by_service["checkout"]
    assert checkout["status"] == {
        "state": "suppressed",
        "silencedBy": [silence_id],
        "inhibitedBy": [],
    }
    assert by_service["search"]["status"]["inhibitedBy"] == ["inhibit_rules[0]"]
    assert by_service["payments"]["status"]["state"] == "active"
    assert by_service["payments"]["receivers"] == [{"name": "pager"}]
    assert checkout["receivers"] == [{"name": "ops"}]
    assert checkout["labels"]["severity"] == "warning"
    assert checkout["annotations"] == {
        "summary": "checkout down",
        "runbook": "https://wiki.example/checkout",
    }
    assert checkout["fingerprint"] == alertmanager_fingerprint(checkout["labels"])
    assert checkout["endsAt"] == "9999-12-31T23:59:59Z"


@pytest.mark.parametrize(
    ("params", "services"),
    [
        ({"active": "false"}, {"checkout", "search"}),
        ({"silenced": "false"}, {"search", "datacenter", "payments"}),
        ({"inhibited": "false"}, {"checkout", "datacenter", "payments"}),
        ({"silenced": "false", "inhibited": "false"}, {"datacenter", "payments"}),
        ({"filter": ['service=~"s.*|c.*"', 'alertname!="SearchDown"']}, {"checkout"}),
        ({"receiver": "pag.*"}, {"payments"}),
        ({"receiver": "pag"}, set()),  # anchored, as Alertmanager's
        ({"unprocessed": "false"}, {"checkout", "search", "datacenter", "payments"}),
    ],
)
def test_alert_filters_are_alertmanagers(hub, params, services):
    fire(hub, "checkout")
    fire(hub, "search", dc="eu")
    fire(hub, "datacenter", alertname="DatacenterDown", dc="eu")
    fire(hub, "payments")
    post_silence(hub)
    shown = v2(hub, "alerts", **params)
    assert shown.status_code == 200, shown.text
    assert {alert["labels"]["service"] for alert in shown.json()} == services


def test_alert_groups_are_each_incident_as_each_of_its_receivers_is_told_it(hub):
    """karma and Grafana list groups: the payments route groups by service, so its two
    alerts are one group for pager; the root route groups by nothing (no labels)."""
    fire(hub, "payments", instance="a")
    fire(hub, "payments", instance="b")
    fire(hub, "checkout")
    post_silence(hub)
    shown = am_valid("/api/v2/alerts/groups", v2(hub, "alerts/groups")).json()
    summary = [
        (
            group["labels"],
            group["receiver"]["name"],
            [a["labels"].get("instance") for a in group["alerts"]],
        )
        for group in shown
    ]
    payments = sorted(
        (alert for alert in v2(hub, "alerts").json() if alert["labels"]["service"] == "payments"),
        key=lambda alert: alert["fingerprint"],
    )
    assert summary == [
        ({}, "ops", [None]),
        ({"service": "payments"}, "pager", [a["labels"]["instance"] for a in payments]),
    ]
    assert shown[1]["alerts"] == payments, "each alert as GET /api/v2/alerts shows it"
    only = v2(hub, "alerts/groups", silenced="false", filter='instance="a"').json()
    assert [(g["receiver"]["name"], len(g["alerts"])) for g in only] == [("pager", 1)]
    assert v2(hub, "alerts/groups", receiver="ops").json() == [shown[0]]
    assert v2(hub, "alerts/groups", receiver="op").json() == [], "anchored, as Alertmanager's"


def test_prometheus_alerts_keep_their_fingerprint_and_generator_url(hub):
    labels = {"alertname": "DiskFull", "instance": "db1", "severity": "critical"}
    alert = {"labels": labels, "generatorURL": "http://prometheus.example/graph?g0.expr=up"}
    with hub.client(headers={"Authorization": f"Bearer {PROM_TOKEN}"}) as http:
        assert http.post("/webhooks/prom/api/v2/alerts", json=[alert]).status_code == 200
    with hub.client(headers=CREDENTIALS["read"]) as http:
        stored = http.get("/api/v1/alerts").json()[0]
    (shown,) = v2(hub, "alerts").json()
    assert shown["fingerprint"] == stored["fingerprint"] == alertmanager_fingerprint(labels)
    assert shown["generatorURL"] == alert["generatorURL"]
    assert "generator_url" not in shown["annotations"]


def test_silences_are_created_read_changed_and_expired_as_in_alertmanager(hub):
    created = am_valid("/api/v2/silences", post_silence(hub), "POST").json()
    silence_id = created["silenceID"]
    one = am_valid("/api/v2/silence/{id}", v2(hub, f"silence/{silence_id}")).json()
    assert one["matchers"] == [
        {"name": "service", "value": "checkout", "isRegex": False, "isEqual": True}
    ]
    assert (one["createdBy"], one["status"]["state"]) == ("will", "active")
    regex = {"name": "env", "value": "dev|test", "isRegex": True}
    other = {"name": "team", "value": "ops", "isRegex": False, "isEqual": False}
    changed = post_silence(hub, id=silence_id, matchers=[regex, other], comment="later")
    assert changed.json() == {"silenceID": silence_id}
    with hub.client(headers=CREDENTIALS["read"]) as http:
        stored = http.get(f"/api/v1/silences/{silence_id}").json()
    assert stored["matchers"] == ['env=~"dev|test"', 'team!="ops"']
    assert stored["comment"] == "later"

    listed = am_valid("/api/v2/silences", v2(hub, "silences")).json()
    assert [s["createdBy"] for s in listed] == ["will", "config"]
    static = listed[1]
    assert (static["endsAt"], static["status"]["state"]) == ("9999-12-31T23:59:59Z", "active")
    filtered = v2(hub, "silences", filter='team="ops"').json()
    assert [s["id"] for s in filtered] == [silence_id]

    with hub.client(headers=CREDENTIALS["write"]) as http:
        expired = http.delete(f"/api/v2/silence/{silence_id}")
        again = http.delete(f"/api/v2/silence/{silence_id}")
        config_one = http.delete(f"/api/v2/silence/{static['id']}")
    assert (expired.status_code, expired.content) == (200, b"")
    assert v2(hub, f"silence/{silence_id}").json()["status"]["state"] == "expired"
    assert again.status_code == 409 and "already expired" in again.json()
    assert config_one.status_code == 409 and "config file" in config_one.json()
    listed = v2(hub, "silences").json()
    assert [s["status"]["state"] for s in listed] == ["active", "expired"]


@pytest.mark.parametrize(
    ("call", "status", "words"),
    [
        (lambda hub: v2(hub, "alerts", filter="service"), 400, "bad filter"),
        (
            lambda hub: v2(hub, "alerts", receiver="("),
            400,
            "bad receiver: bad regular expression '('",
        ),
        (
            lambda hub: v2(hub, "alerts/groups", receiver="(?<=team-)db"),
            400,
            "bad receiver: bad regular expression '(?<=team-)db': invalid perl operator",
        ),
        (lambda hub: v2(hub, "silences", filter='a=~"(?:a{100}){20}"'), 400, "repetition size"),
        (lambda hub: v2(hub, "alerts", active="maybe"), 400, "expected true or false"),
        (lambda hub: v2(hub, "silence/nope"), 404, "silence nope not found"),
        (lambda hub: post_silence(hub, comment=" "), 400, "comment"),
        (lambda hub: post_silence(hub, matchers=[]), 400, "matchers"),
        (
            lambda hub: post_silence(hub, matchers=[{"name": "a", "value": "(", "isRegex": True}]),
            400,
            "matchers[0]",
        ),
        (lambda hub: post_silence(hub, id="nope"), 404, "no silence with id nope"),
        (
            lambda hub: post_silence(hub, endsAt="9999-12-31T23:59:59-05:00"),
            400,
            "ends_at: 9999-12-31T23:59:59-05:00 is not between 0001-01-01T00:00:00Z and",
        ),
    ],
)
def test_refusals_alertmanager_answers_in_text_come_as_json_strings(hub, call, status, words):
    answer = call(hub)
    assert (answer.status_code, answer.headers["content-type"]) == (status, "application/json")
    assert isinstance(answer.json(), str) and words in answer.json(), answer.text


def test_tokens_and_roles_are_the_apis_with_problems_typed_as_json(hub):
    with hub.client() as http:
        unknown = http.get("/api/v2/alerts")
    assert unknown.status_code == 401
    assert unknown.headers["www-authenticate"] == 'Bearer realm="hub"'
    assert unknown.headers["content-type"] == "application/json"
    assert unknown.json()["title"] == "Unauthorized"
    assert post_silence(hub, role="read").status_code == 403
    other = post_silence(hub, createdBy="alice")
    assert other.status_code == 403 and 'created_by "alice"' in other.json()["detail"]
    assert "set speaks_for_others = true on its token" in other.json()["detail"]
    with hub.client(headers=CREDENTIALS["read"]) as http:
        assert http.delete("/api/v2/silence/nope").status_code == 403
        assert all(s["static"] for s in http.get("/api/v1/silences").json())


def test_the_ingest_door_and_the_read_api_do_not_meet(hub):
    """Prometheus posts under its source; ``/api/v2/alerts`` at the root only reads."""
    with hub.client(headers=CREDENTIALS["write"]) as http:
        posted = http.post("/api/v2/alerts", json=[{"labels": {"alertname": "X"}}])
        options = http.options("/api/v2/alerts")
    assert posted.status_code == 400
    assert options.headers["allow"] == "GET, HEAD, OPTIONS"
    labels = {"alertname": "DiskFull"}
    with hub.client(headers={"Authorization": f"Bearer {PROM_TOKEN}"}) as http:
        assert http.post("/webhooks/prom/api/v2/alerts", json=[{"labels": labels}]).is_success
    (shown,) = v2(hub, "alerts").json()
    assert (shown["labels"]["alertname"], shown["status"]["state"]) == ("DiskFull", "active")


def test_amtool_alert_add_is_told_where_alerts_go_and_adds_them_there(hub, amtool):
    """At the root, amtool printed only "status 405": Alertmanager's API gives a post
    of alerts a text for a 400 alone, so the door's URL comes as one, which it prints."""
    at_root = amtool("alert", "add", "alertname=Smoke")
    assert at_root.returncode != 0
    assert at_root.stderr.strip().splitlines()[-1] == (
        "amtool: error: [POST /alerts][400] postAlertsBadRequest  alerts are not posted to"
        f" hub's root but to a source's door: --alertmanager.url={hub.url}/webhooks/prom"
        " (Prometheus: path_prefix: /webhooks/{source})"
    )
    at_door = amtool(
        "alert",
        "add",
        "alertname=Smoke",
        "service=payments",
        f"--alertmanager.url={hub.url}/webhooks/prom",
        token=PROM_TOKEN,
    )
    assert at_door.returncode == 0, at_door.stderr
    shown = [alert["labels"] for alert in v2(hub, "alerts").json()]
    assert {"alertname": "Smoke", "service": "payments"}.items() <= shown[0].items()


@pytest.mark.parametrize(
    ("token", "detail"),
    [("write-token", "the bearer token is not valid"), (None, "missing header authorization")],
)
def test_amtool_at_a_door_without_its_sources_token_is_told_the_status(hub, amtool, token, detail):
    """The door's refusals were problem+json, which amtool cannot read ("no consumer"):
    typed as plain JSON, amtool reports the 401, and the body still says what was wrong
    without echoing the token sent."""
    door = f"{hub.url}/webhooks/prom"
    refused = amtool("alert", "add", "alertname=Smoke", f"--alertmanager.url={door}", token=token)
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines()[-1] == (
        "amtool: error: response status code does not match any response statuses defined"
        " for this endpoint in the swagger spec (status 401): {}"
    )
    headers = CREDENTIALS["write"] if token else {}
    with hub.client(headers=headers) as http:
        answer = http.post("/webhooks/prom/api/v2/alerts", json=[{"labels": {"a": "b"}}])
    assert (answer.status_code, answer.headers["content-type"]) == (401, "application/json")
    assert answer.headers["www-authenticate"] == 'Bearer realm="hub"'
    assert answer.json()["detail"] == detail
    assert "write-token" not in answer.text
    assert v2(hub, "alerts").json() == []


@pytest.mark.parametrize(
    ("base", "told"),
    [
        (
            "/webhooks/prom",
            "{url}/webhooks/prom is a source's door, which only takes alerts (amtool alert"
            " add, Prometheus); hub's Alertmanager API is at its root: --alertmanager.url={url}/",
        ),
        (
            "/api/v2",
            "hub's Alertmanager API is at its root: --alertmanager.url={url}/, without /api/v2",
        ),
    ],
)
def test_amtool_given_a_url_other_than_the_root_is_told_the_root(hub, amtool, base, told):
    """amtool kept at the door README gives ``alert add``, or given ``/api/v2``, failed
    with "no consumer" or a bare status; where the operation has a text (a 400) it now
    prints where the API is, and every call gets plain JSON naming it."""
    query = amtool("alert", "query", f"--alertmanager.url={hub.url}{base}")
    assert query.returncode != 0
    expected = f"[GET /alerts][400] getAlertsBadRequest  {told.format(url=hub.url)}"
    assert query.stderr.strip().splitlines()[-1] == f"amtool: error: {expected}"
    with hub.client(headers=CREDENTIALS["read"]) as http:
        for path in ("status", "receivers", "alerts/groups", "silences", "silence/x"):
            answer = http.get(f"{base}/api/v2/{path}")
            assert (answer.status_code, answer.headers["content-type"]) == (
                400,
                "application/json",
            )
            assert answer.json() == told.format(url=hub.url)


def test_alerts_posted_as_api_v1_are_told_the_door_and_the_list_still_reads(hub):
    """An old Prometheus (``api_version: v1``) or amtool posts to hub's own alert list,
    which gave a 405 saying nothing of where alerts go; other methods stay as they were."""
    with hub.client(headers=CREDENTIALS["write"]) as http:
        posted = http.post("/api/v1/alerts", json=[{"labels": {"alertname": "X"}}])
        put = http.put("/api/v1/alerts", json=[])
        listed = http.get("/api/v1/alerts")
    assert (posted.status_code, posted.headers["allow"]) == (405, "GET, HEAD, OPTIONS")
    assert posted.headers["content-type"] == "application/problem+json"
    assert posted.json()["detail"] == (
        "POST is not allowed on /api/v1/alerts; it takes GET, HEAD (hub's alert list);"
        " alerts are not posted to hub's root but to a source's door: --alertmanager.url="
        f"{hub.url}/webhooks/prom (Prometheus: path_prefix: /webhooks/{{source}}),"
        " with api_version: v2"
    )
    assert put.json()["detail"] == "PUT is not allowed on /api/v1/alerts; it takes GET, HEAD"
    assert (listed.status_code, listed.json()) == (200, [])


def test_alerts_posted_at_the_root_with_no_source_to_take_them_are_told_to_add_one(
    hub_factory, smtp
):
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    told = (
        "alerts are not posted to hub's root, and no source takes them: add a [[sources]]"
        ' entry of format "prometheus" and post to its door, /webhooks/{source}'
    )
    with hub.client() as http:
        refused = http.post("/api/v2/alerts", json=[{"labels": {"alertname": "X"}}])
        as_v1 = http.post("/api/v1/alerts", json=[{"labels": {"alertname": "X"}}])
    assert (refused.status_code, refused.json()) == (400, told)
    assert as_v1.status_code == 405
    assert as_v1.json()["detail"] == (
        "POST is not allowed on /api/v1/alerts; it takes GET, HEAD (hub's alert list);"
        f" {told}, with api_version: v2"
    )


# -- Grafana's Alertmanager data source and karma, as they ask and read --------------
# Neither runs here: these are the requests their sources send (Grafana's data source
# of implementation "prometheus", through its proxy, which passes the query on; karma's
# client of Alertmanager's API) and the fields their parsers require.


def test_grafanas_health_check_finds_a_prometheus_alertmanager(hub):
    """Grafana tries Mimir's path first: a 200 there fails the check, as a Mimir
    mistaken for a Prometheus Alertmanager."""
    with hub.client(headers=CREDENTIALS["read"]) as http:
        assert http.get("/alertmanager/api/v2/status").status_code == 404
        assert http.get("/api/v2/status").status_code == 200


AWKWARD_RECEIVER = """
[[receivers]]
name = 'night shift: "eu" #1'
urls = ["{mail_url}"]
"""


def test_config_original_is_a_config_alertmanager_loads_and_holds_no_secret(
    hub_factory, smtp, tmp_path
):
    """Grafana reads ``config.original`` with Alertmanager's own config loader (the one
    ``amtool check-config`` runs) to show the route and contact points; one it cannot
    load fails the whole status, so a name YAML would misread is quoted. It is shown to
    every reader, so it names receivers and nothing of how to reach them."""
    hub = hub_factory(CONFIG + AWKWARD_RECEIVER, mail_url=mail_url(smtp[1]))
    answer = v2(hub, "status")
    original = tmp_path / "alertmanager.yml"
    original.write_text(answer.json()["config"]["original"])
    checked = subprocess.run(
        [require("amtool", "prometheus-alertmanager"), "check-config", str(original)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert " - 3 receivers" in checked.stdout
    loaded = yaml.safe_load(answer.json()["config"]["original"])
    assert loaded["receivers"][2] == {"name": 'night shift: "eu" #1'}
    secrets = [mail_url(smtp[1]), "shop-secret-token", PROM_TOKEN, "read-token", "write-token"]
    assert not [secret for secret in secrets if secret in answer.text]


GRAFANA_READS = [
    # the alert groups page, filtered by a matcher and a contact point
    (
        "/api/v2/alerts/groups",
        {
            "filter": ['service="payments"'],
            "receiver": "pager",
            "active": "true",
            "silenced": "false",
            "inhibited": "false",
        },
    ),
    # the silences page: its silences, and the alerts each silence mutes
    ("/api/v2/silences", {"ruleMetadata": "true", "accesscontrol": "true"}),
    ("/api/v2/alerts", {"silenced": "true", "active": "true", "inhibited": "true"}),
    # the silence editor's preview of the alerts its matchers catch
    (
        "/api/v2/alerts",
        {"filter": ['service=~"check.*"'], "silenced": "true", "active": "false"},
    ),
]


@pytest.mark.parametrize(("path", "params"), GRAFANA_READS)
def test_grafanas_reads_are_answered_in_alertmanagers_shapes(hub, path, params):
    """Each request as Grafana builds it, query parameters Alertmanager does not read
    included, answered as Alertmanager would (its required fields and types)."""
    alert_scene(hub)
    shown = am_valid(path, v2(hub, path.removeprefix("/api/v2/"), **params)).json()
    assert shown, "the scene has something for each"


def grafana_silence(created_by: str) -> dict:
    """Grafana's silence form as it posts: the matchers with ``isEqual``, times in
    milliseconds, and the Grafana user as ``createdBy``."""
    now = datetime.now(UTC)
    return {
        "matchers": [
            {"name": "service", "value": "checkout", "isEqual": True, "isRegex": False},
            {"name": "env", "value": "dev|test", "isEqual": False, "isRegex": True},
        ],
        "startsAt": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "endsAt": (now + timedelta(hours=2)).isoformat(timespec="milliseconds"),
        "createdBy": created_by,
        "comment": "checkout deploy",
    }


def test_grafana_makes_and_expires_a_silence_by_its_own_payload(hub):
    """Grafana's own payload, its user named as the token is (hub records the token's
    name); expiring reads no body."""
    payload = grafana_silence("will")
    with hub.client(headers=CREDENTIALS["write"]) as http:
        made = http.post("/api/v2/silences", json=payload)
        silence_id = am_valid("/api/v2/silences", made, "POST").json()["silenceID"]
        listed = http.get("/api/v2/silences", params={"ruleMetadata": "true"}).json()
        assert (listed[0]["id"], listed[0]["matchers"]) == (silence_id, payload["matchers"])
        expired = http.delete(f"/api/v2/silence/{silence_id}")
    assert (expired.status_code, expired.content) == (200, b"")
    assert v2(hub, f"silence/{silence_id}").json()["status"]["state"] == "expired"


def test_grafanas_users_silence_through_its_one_token_that_speaks_for_them(hub, caplog):
    """Grafana reaches hub with one token (``speaks_for_others``) and names its user as
    ``createdBy``: alice's silence is hers where Grafana reads it, and hub's API, console
    and log name the token beside her. bob's change of it is his; Grafana's edit form
    sending her name back (the creator it read) is no claim, so the token is recorded
    as who changed it."""
    with (
        caplog.at_level(logging.INFO, logger="hub.silences"),
        hub.client(headers=CREDENTIALS["grafana"]) as http,
    ):
        made = http.post("/api/v2/silences", json=grafana_silence("alice"))
        silence_id = am_valid("/api/v2/silences", made, "POST").json()["silenceID"]
        created = am_valid("/api/v2/silence/{id}", v2(hub, f"silence/{silence_id}"))
        changed = http.post("/api/v2/silences", json={**grafana_silence("bob"), "id": silence_id})
        by_bob = silence_row(hub, silence_id)
        echoed = http.post("/api/v2/silences", json={**grafana_silence("alice"), "id": silence_id})
    assert (changed.status_code, echoed.status_code) == (200, 200)
    assert created.json()["createdBy"] == "alice"
    assert v2(hub, f"silence/{silence_id}").json()["createdBy"] == "alice"
    assert by_bob == ("alice", "grafana", "bob", "grafana")
    assert silence_row(hub, silence_id) == ("alice", "grafana", "grafana", None)
    with hub.client(headers=CREDENTIALS["read"]) as http:
        shown = http.get(f"/api/v1/silences/{silence_id}").json()
        sign_in(http, "read-token")
        page = http.get("/silences").text
    assert (shown["created_by"], shown["created_via"]) == ("alice", "grafana")
    assert (shown["updated_by"], shown["updated_via"]) == ("grafana", None)
    assert '<td>alice<div class="sub">via grafana</div></td>' in page
    logged = "\n".join(record.getMessage() for record in caplog.records)
    [created_line] = events(logged, "silence_created")
    assert (created_line["by"], created_line["token"]) == ("alice", "grafana")
    updates = [(line["by"], line.get("token")) for line in events(logged, "silence_updated")]
    assert updates == [("bob", "grafana"), ("grafana", None)]


WINDOW = """
[[maintenance]]
name = "reports-upgrade"
starts_at = 2020-01-01T00:00:00Z
ends_at = 2100-01-01T00:00:00Z
matchers = ['service="reports"']
"""


def test_karma_reads_status_silences_and_groups_as_its_client_parses_them(hub_factory, smtp):
    """karma asks for ``/metrics`` (an ``alertmanager_build_info`` version picks its
    mapper; none picks its newest), then status, silences and groups with no query.
    Its client dereferences each required field, takes ``cluster.name`` as the
    Alertmanager's id, and finds each of an alert's ``silencedBy`` among the silences
    to show who silenced it and why: a maintenance window included."""
    hub = hub_factory(CONFIG + WINDOW, mail_url=mail_url(smtp[1]))
    silence_id = alert_scene(hub)
    fire(hub, "reports")
    with hub.client(headers=CREDENTIALS["read"]) as http:
        metrics = http.get("/metrics").text
    assert "alertmanager_build_info" not in metrics
    status = am_valid("/api/v2/status", v2(hub, "status")).json()
    assert (status["cluster"]["name"], status["cluster"]["peers"]) == ("hub", [])
    silences = am_valid("/api/v2/silences", v2(hub, "silences")).json()
    groups = am_valid("/api/v2/alerts/groups", v2(hub, "alerts/groups")).json()
    silenced_by = {
        alert["labels"]["service"]: alert["status"]["silencedBy"]
        for group in groups
        for alert in group["alerts"]
        if alert["status"]["silencedBy"]
    }
    assert silenced_by == {"checkout": [silence_id], "reports": ["maintenance:reports-upgrade"]}
    assert {held for ids in silenced_by.values() for held in ids} <= {s["id"] for s in silences}
