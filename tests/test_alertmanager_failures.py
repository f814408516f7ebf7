"""hub's Alertmanager API at the root (``/api/v2/...``) answers a failure of hub's own
as Alertmanager's API does: a 500 whose body is a text (a JSON string), which amtool
prints, the cause in the log only; a 400 is a text too. Each failure is real, a store
broken as a hand edit could leave it (a table renamed away, a trigger refusing a
write), with the real amtool and a real hub; a failed change changes nothing.

amtool comes with Debian's ``prometheus-alertmanager``; see ``programs.require``.
``/api/v2/status`` and ``/api/v2/receivers`` read only the running config, which no
store fault reaches: they answer through the same handlers.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import mail_url
from test_access import CREDENTIALS
from test_alertmanager_api import CONFIG, Amtool, amtool_for, fire, post_silence, v2
from test_alertmanager_door import assert_text, printed

TOLD = "the hub failed to handle this request; see its log"


@pytest.fixture
def hub(hub_factory, smtp):
    return hub_factory(CONFIG, mail_url=mail_url(smtp[1]))


@pytest.fixture
def amtool(hub, tmp_path: Path) -> Amtool:
    return amtool_for(hub, tmp_path)


def store_edit(tmp_path: Path, statement: str) -> None:
    """An edit of the running hub's store from another connection, as an operator's."""
    with contextlib.closing(sqlite3.connect(tmp_path / "hub.db")) as db, db:
        db.execute(statement)


@contextlib.contextmanager
def table_gone(tmp_path: Path, table: str) -> Iterator[None]:
    """The table renamed away while the block runs: every read of it fails."""
    store_edit(tmp_path, f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        yield
    finally:
        store_edit(tmp_path, f"ALTER TABLE {table}_away RENAME TO {table}")


def refuse(tmp_path: Path, write: str) -> None:
    """A trigger failing every ``write`` (INSERT, UPDATE) of a silence."""
    store_edit(
        tmp_path,
        f"CREATE TRIGGER refused BEFORE {write} ON silences"
        " BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END",
    )


def assert_failed(answer: httpx.Response, caplog: pytest.LogCaptureFixture, path: str) -> None:
    """The 500 as Alertmanager answers it; the cause is in the log alone."""
    assert_text(answer, 500, TOLD)
    assert "trigger" not in answer.text and "no such table" not in answer.text
    assert "event=unhandled_error path=" + path in caplog.messages


def amtool_failed(operation: str, request: str) -> str:
    """amtool's line for a 500 Alertmanager's API gives a text for: it prints the text."""
    return f"amtool: error: {request}[500] {operation}InternalServerError  {TOLD}"


def test_alerts_unreadable_are_a_500_text_amtool_prints(hub, amtool, tmp_path, caplog):
    fire(hub, "checkout")
    with table_gone(tmp_path, "alerts"), caplog.at_level(logging.ERROR, logger="hub.http"):
        answer = v2(hub, "alerts")
        groups = v2(hub, "alerts/groups")
        by_amtool = amtool("alert", "query")
    assert printed(by_amtool) == amtool_failed("getAlerts", "[GET /alerts]")
    assert_failed(answer, caplog, "/api/v2/alerts")
    assert_failed(groups, caplog, "/api/v2/alerts/groups")
    assert [alert["labels"]["service"] for alert in v2(hub, "alerts").json()] == ["checkout"]


def test_silences_unreadable_are_a_500_text_amtool_prints(hub, amtool, tmp_path, caplog):
    silence_id = post_silence(hub).json()["silenceID"]
    before = v2(hub, f"silence/{silence_id}").json()
    with table_gone(tmp_path, "silences"), caplog.at_level(logging.ERROR, logger="hub.http"):
        listed = v2(hub, "silences")
        one = v2(hub, f"silence/{silence_id}")
        by_amtool = amtool("silence", "query")
        updated = amtool("silence", "update", "--duration=3h", silence_id)
    assert printed(by_amtool) == amtool_failed("getSilences", "[GET /silences]")
    assert printed(updated) == amtool_failed("getSilence", "[GET /silence/{silenceID}]")
    assert_failed(listed, caplog, "/api/v2/silences")
    assert_failed(one, caplog, f"/api/v2/silence/{silence_id}")
    assert v2(hub, f"silence/{silence_id}").json() == before  # amtool's update failed


def test_a_silence_the_store_refuses_is_a_500_text_and_stores_nothing(
    hub, amtool, tmp_path, caplog
):
    """Alertmanager's API gives a post of silences no 500: amtool reports the status."""
    refuse(tmp_path, "INSERT")
    with caplog.at_level(logging.ERROR, logger="hub.http"):
        answer = post_silence(hub)
        by_amtool = amtool("silence", "add", "service=cart", "-c", "deploy", "-d", "1h")
    assert printed(by_amtool).endswith("(status 500): {}")
    assert_failed(answer, caplog, "/api/v2/silences")
    assert [s["createdBy"] for s in v2(hub, "silences").json()] == ["config"]


def test_an_expiry_the_store_refuses_is_a_500_text_and_changes_nothing(
    hub, amtool, tmp_path, caplog
):
    silence_id = post_silence(hub).json()["silenceID"]
    before = v2(hub, f"silence/{silence_id}").json()
    refuse(tmp_path, "UPDATE")
    with caplog.at_level(logging.ERROR, logger="hub.http"):
        with hub.client(headers=CREDENTIALS["write"]) as http:
            answer = http.delete(f"/api/v2/silence/{silence_id}")
        by_amtool = amtool("silence", "expire", silence_id)
    assert printed(by_amtool) == amtool_failed("deleteSilence", "[DELETE /silence/{silenceID}]")
    assert_failed(answer, caplog, f"/api/v2/silence/{silence_id}")
    assert v2(hub, f"silence/{silence_id}").json() == before


def test_a_silence_nested_thousands_deep_is_still_a_400_text(hub):
    """Refused as a webhook's body is, before any store is reached, in this API's form."""
    deep = '{"x": ' + "[" * 50_000 + "]" * 50_000 + "}"
    with hub.client(headers={**CREDENTIALS["write"], "content-type": "application/json"}) as http:
        answer = http.post("/api/v2/silences", content=deep)
    assert_text(answer, 400, "body is not valid JSON: nested too deeply")
    assert [s["createdBy"] for s in v2(hub, "silences").json()] == ["config"]


def test_the_openapi_document_declares_the_roots_400_and_500_as_texts(hub):
    """As Alertmanager's API declares them, on every operation, since any can fail."""
    with hub.client() as http:
        paths = http.get("/schema/openapi.json").json()["paths"]
    operations = [
        answers["responses"]
        for path, item in paths.items()
        if path.startswith("/api/v2/")
        for answers in item.values()
        if isinstance(answers, dict) and "responses" in answers
    ]
    assert len(operations) == 8
    for responses in operations:
        for status in ("400", "500"):
            declared = responses[status]["content"]["application/json"]["schema"]
            assert declared == {"type": "string"}, (status, declared)
