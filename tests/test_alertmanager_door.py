"""A source's Alertmanager API door (``POST /webhooks/{source}/api/v2/alerts``) answers
each refusal and failure as Alertmanager's API does, status by status, with the real
amtool and a real hub: a 400 and a 500, the two statuses that API gives a post of
alerts a text for, are that text (a JSON string), which amtool prints; amtool reports
any other by its status alone, and Prometheus reads only the status, so those stay
hub's problem document typed ``application/json``, with their ``Retry-After``. A
refused post stores nothing. The 401 has its own test in ``test_alertmanager_api``.

amtool comes with Debian's ``prometheus-alertmanager``; see ``programs.require``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from conftest import mail_url, wait_for
from test_alertmanager_api import CONFIG, PROM_TOKEN, SHOP, Amtool, amtool_for

PROM = {"Authorization": f"Bearer {PROM_TOKEN}"}
DOOR = "/webhooks/{source}/api/v2/alerts"
LIMITED = """
[[sources]]
name = "limited"
format = "prometheus"
auth = {{ type = "none" }}
max_body_bytes = 1024
rate_limit = 0.001
burst = 1
"""
SMOKE = [{"labels": {"alertname": "Smoke"}}]
QUEUE_OF_ONE = CONFIG.replace('path = "{db}"', 'path = "{db}"\nqueue_max = 1')


@pytest.fixture
def hub(hub_factory, smtp):
    return hub_factory(CONFIG + LIMITED, mail_url=mail_url(smtp[1]))


@pytest.fixture
def amtool(hub, tmp_path: Path) -> Amtool:
    return amtool_for(hub, tmp_path)


def post(hub, source: str = "prom", body: object = SMOKE, **headers: str) -> httpx.Response:
    with hub.client(headers={**PROM, "content-type": "application/json", **headers}) as http:
        return http.post(DOOR.format(source=source), content=json.dumps(body))


def add(amtool: Amtool, hub, source: str = "prom", *labels: str) -> subprocess.CompletedProcess:
    """``amtool alert add`` at the source's door, as README shows it, with its token."""
    url = f"--alertmanager.url={hub.url}/webhooks/{source}"
    return amtool("alert", "add", "alertname=Smoke", *labels, url, token=PROM_TOKEN)


def printed(answer: subprocess.CompletedProcess) -> str:
    """amtool's last line, its error; it failed."""
    assert answer.returncode != 0, answer.stdout
    return answer.stderr.strip().splitlines()[-1]


def status_only(status: int) -> str:
    """What amtool prints for a status Alertmanager's API gives no text: the status."""
    return (
        "amtool: error: response status code does not match any response statuses defined"
        f" for this endpoint in the swagger spec (status {status}): {{}}"
    )


def stored(hub) -> tuple[int, int]:
    """Deliveries and alerts in the store."""

    def count(table: str) -> int:
        return hub.runtime.store.query_one(f"SELECT count(*) AS n FROM {table}")["n"]

    return count("deliveries"), count("alerts")


def assert_text(answer: httpx.Response, status: int, text: str) -> None:
    assert (answer.status_code, answer.headers["content-type"]) == (status, "application/json")
    assert answer.json() == text


def assert_problem(answer: httpx.Response, status: int, detail: str) -> None:
    assert (answer.status_code, answer.headers["content-type"]) == (status, "application/json")
    assert (answer.json()["status"], answer.json()["detail"]) == (status, detail)


def test_a_bad_body_is_a_400_text_amtool_prints(hub, amtool):
    answer = post(hub, body=[{"labels": {}}])
    backwards = ("--start=2030-01-02T00:00:00Z", "--end=2030-01-01T00:00:00Z")
    by_amtool = add(amtool, hub, "prom", *backwards)
    assert_text(answer, 400, "no valid item: $[0].labels: at least one label pair is required")
    assert printed(by_amtool) == (
        "amtool: error: [POST /alerts][400] postAlertsBadRequest"
        "  no valid item: $[0].endsAt: endsAt is before startsAt"
    )
    assert stored(hub) == (0, 0)


def test_a_failure_is_a_500_text_amtool_prints_and_stores_nothing(hub, amtool, tmp_path, caplog):
    """A store that refuses every new alert (a trigger, as a hand edit could leave one):
    the 500 was a problem document, which amtool failed to decode as the text its API
    declares ("cannot unmarshal object into Go value of type string")."""
    with contextlib.closing(sqlite3.connect(tmp_path / "hub.db")) as db, db:
        db.execute(
            "CREATE TRIGGER refused BEFORE INSERT ON alerts"
            " BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
        )
    with caplog.at_level(logging.ERROR, logger="hub.http"):
        answer = post(hub)
        by_amtool = add(amtool, hub)
    told = "the hub failed to handle this request; see its log"
    assert_text(answer, 500, told)
    assert printed(by_amtool) == (
        f"amtool: error: [POST /alerts][500] postAlertsInternalServerError  {told}"
    )
    assert "refused by a trigger" not in answer.text
    assert stored(hub) == (0, 0)
    logged = [record.getMessage() for record in caplog.records]
    assert logged == ["event=unhandled_error path=/webhooks/prom/api/v2/alerts"] * 2


@pytest.mark.parametrize(
    ("source", "headers", "status", "detail"),
    [
        ("nope", {}, 404, "unknown source 'nope': no [[sources]] entry has this name"),
        (
            "shop",
            {},
            404,
            "source 'shop' has format 'native'; /webhooks/shop/api/v2/alerts serves only"
            " sources of format 'prometheus'",
        ),
        (
            "prom",
            {"content-type": "application/xml"},
            415,
            "content type 'application/xml' is not JSON: send application/json",
        ),
    ],
)
def test_a_refusal_amtool_has_no_text_for_is_a_json_problem(hub, source, headers, status, detail):
    answer = post(hub, source, **headers)
    assert_problem(answer, status, detail)
    assert stored(hub) == (0, 0)


def test_an_unknown_source_is_a_404_amtool_reports(hub, amtool):
    assert printed(add(amtool, hub, "nope")) == status_only(404)


def test_a_body_over_the_limit_is_a_413_amtool_reports(hub, amtool):
    huge = "description=" + "x" * 2000
    body = [{"labels": {"alertname": "Smoke"}, "annotations": {"d": huge}}]
    answer = post(hub, "limited", body)
    size = len(json.dumps(body))
    assert_problem(answer, 413, f"body of {size} bytes is over the limit of 1024 bytes")
    assert printed(add(amtool, hub, "limited", f"--annotation={huge}")) == status_only(413)
    assert stored(hub) == (0, 0)


def test_a_sender_over_its_rate_is_a_429_with_retry_after(hub, amtool):
    assert add(amtool, hub, "limited").returncode == 0
    before = stored(hub)
    by_amtool = add(amtool, hub, "limited", "service=second")
    answer = post(hub, "limited")
    assert printed(by_amtool) == status_only(429)
    assert_problem(answer, 429, "limited: over the rate limit of 0.001 requests/s (burst 1)")
    assert int(answer.headers["retry-after"]) >= 1
    assert stored(hub) == before == (1, 1)


def test_a_full_write_queue_is_a_503_with_retry_after(hub_factory, smtp, tmp_path, caplog):
    """A write waits on a lock another connection holds (a backup, an operator's shell)
    and the queue holds one: the next post is pushed back, and the first, once the lock
    is let go, is applied."""
    hub = hub_factory(QUEUE_OF_ONE, mail_url=mail_url(smtp[1]))
    amtool = amtool_for(hub, tmp_path)
    locked = contextlib.closing(sqlite3.connect(tmp_path / "hub.db", isolation_level=None))
    with locked as db, caplog.at_level(logging.INFO, logger="hub.store"):
        db.execute("BEGIN IMMEDIATE")
        first = threading.Thread(target=post, args=(hub,))
        first.start()
        wait_for(lambda: "event=store_locked" in caplog.text)  # the first post waits
        answer = post(hub, body=[{"labels": {"alertname": "Second"}}])
        by_amtool = add(amtool, hub, "prom", "service=third")
        db.execute("ROLLBACK")
    first.join()
    assert printed(by_amtool) == status_only(503)
    assert_problem(answer, 503, "the store's write queue is full; retry shortly")
    assert answer.headers["retry-after"] == "1"
    assert stored(hub) == (1, 1)


def test_the_openapi_document_declares_the_doors_answers_as_they_come(hub):
    """Texts for a 400 and a 500, as Alertmanager's API declares them; plain JSON
    problems for the rest; the plain door's refusals stay problem+json."""
    with hub.client() as http:
        document = http.get("/schema/openapi.json").json()
        plain = http.post("/webhooks/shop", json={}, headers=SHOP)
    declared = document["paths"]["/webhooks/{source}/api/v2/alerts"]["post"]["responses"]
    for status in ("400", "500"):
        assert declared[status]["content"] == {"application/json": {"schema": {"type": "string"}}}
    for status in ("401", "404", "413", "415", "422", "429", "503"):
        problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
        assert declared[status]["content"] == {"application/json": problem}, status
    assert plain.headers["content-type"] == "application/problem+json"
