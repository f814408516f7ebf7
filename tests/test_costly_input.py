"""Requests built to make one request cost the hub a great deal, against a real ``hub
serve``: within the body and header limits, each is answered as any other request of
its kind, and costs the hub work in line with its size, not more, so it cannot hold
up the webhooks of every other sender."""

from __future__ import annotations

import json

import pytest
from conftest import wait_for
from console_support import sign_in
from hub_process import hub_process
from logfmt_support import events

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}

[storage]
path = "{db}"

[[sources]]
name = "shop"
format = "native"
auth = { type = "none" }

[[receivers]]
name = "ops"
urls = ["logfile://sent.jsonl"]

[route]
receiver = "ops"
group_wait = "0s"
group_interval = "1s"

[[route.routes]]
matchers = ['kind="huge"']
group_by = ["..."]

[api]
tokens = [{ name = "ops", token = "ops-token", role = "write" }]
"""

WRITE = {"Authorization": "Bearer ops-token"}
SLACK_TEXT_LIMIT = 40_000  # characters Slack takes in one message
# Whitespace in a matcher once cost time in the square of its length: 200,000
# characters held the event loop for some fifteen minutes. Far under the body limit.
SPACES = 200_000
# A query string stays under the header limit (64 KiB); ``+`` is a space there.
QUERY_SPACES = 60_000
PAGE_BOUND = 100_000
"""Bytes a console page about one alert cut short stays under: shown whole, one of
2,000 labels, a value of 300 KB and 100 annotations of 5 KB made a page of 1.5 MB."""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    process = hub_process(tmp_path_factory.mktemp("costly"), CONFIG).start()
    yield process
    process.stop()


def test_a_silence_matcher_with_a_long_run_of_spaces_is_stored_as_sent(hub):
    matcher = 'service="x' + " " * SPACES + 'y"'
    body = {"matchers": [matcher], "duration": "1h", "comment": "spaces"}
    with hub.client(headers=WRITE) as client:
        response = client.post("/api/v1/silences", json=body)
        assert response.status_code == 201, response.text
        assert response.json()["matchers"] == [matcher]
        # Its log line names it by its start and its length: one readable line.
        [created] = events(hub.log(), "silence_created")
        assert created["matchers"] == f"{matcher[:2000]}... ({len(matcher)} characters)"
        # Every later send reads the stored silence again: it must not cost more.
        posted = client.post("/webhooks/shop", json={"status": "firing", "summary": "after"})
        assert posted.status_code == 202


@pytest.mark.parametrize(
    "matcher",
    ["-" + " " * SPACES + "x", "service" + " " * SPACES + "x", '"' + " " * SPACES],
    ids=["bare-name", "no-operator", "unclosed-quote"],
)
def test_a_long_bad_silence_matcher_is_refused_naming_it(hub, matcher):
    body = {"matchers": [matcher], "duration": "1h", "comment": "bad"}
    with hub.client(headers=WRITE) as client:
        response = client.post("/api/v1/silences", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("matchers[0]: bad matcher")
    # The refusal quotes at most the start of the text, not 200,000 characters.
    assert len(detail) < 600, detail[:600]
    assert " " * 3_000 not in hub.log()


def test_a_label_filter_with_a_long_run_of_spaces_is_answered(hub):
    query = "label=service%3Dx" + "+" * QUERY_SPACES + "y"
    with hub.client(headers=WRITE) as client:
        response = client.get(f"/api/v1/alerts?{query}")
    assert response.status_code == 200, response.text
    assert response.json() == []


def test_a_message_shows_a_huge_alerts_labels_and_annotations_cut_short(hub):
    labels = {f"l{i:04d}": "v" for i in range(2000)} | {"big": "b" * 300_000}
    annotations = {f"a{i:04d}": "w" * 5000 for i in range(100)}
    event = {"status": "firing", "summary": "huge", "labels": labels, "annotations": annotations}
    with hub.client() as client:
        assert client.post("/webhooks/shop", json=event).status_code == 202
    sent = hub.config_path.parent / "sent.jsonl"
    message = wait_for(lambda: _message_about(sent, "huge"))
    assert len(message["body"]) < SLACK_TEXT_LIMIT
    assert "`big=bbb" in message["body"]
    assert "+1951 more" in message["body"]  # 2001 labels, 50 shown


def test_the_console_shows_a_huge_alert_cut_short_as_a_message_does(hub):
    labels = {f"l{i:04d}": "v" for i in range(2000)} | {"big": "b" * 300_000, "kind": "huge"}
    annotations = {f"a{i:04d}": "w" * 5000 for i in range(100)}
    event = {"status": "firing", "summary": "huge", "labels": labels, "annotations": annotations}
    with hub.client() as client:
        posted = client.post("/webhooks/shop", json=event)
        assert posted.status_code == 202, posted.text
        incident_id = posted.json()["alerts"][0]["incident_id"]
        sign_in(client, "ops-token")
        incident = client.get(f"/incidents/{incident_id}")
        listed = client.get("/")
        form = client.get(f"/silences/new?incident={incident_id}")
    assert incident.status_code == listed.status_code == form.status_code == 200
    assert len(incident.content) < PAGE_BOUND and len(listed.content) < PAGE_BOUND
    # Its 2,002 labels, the first 50 by name shown; its group labels so too.
    assert "+1952 more<" in incident.text and "+1953 more<" in incident.text
    assert "+80 more annotations" in incident.text
    assert "big=" + "b" * 190 in incident.text and "b" * 300 not in incident.text
    assert "+1953 more<" in listed.text
    # "Silence alerts like this" names the incident; its form holds the labels whole.
    assert f'href="/silences/new?incident={incident_id}"' in incident.text
    assert "big=&#34;" + "b" * 300_000 + "&#34;" in form.text  # HTML-escaped quotes


def _message_about(sent, summary: str) -> dict | None:
    lines = sent.read_text().splitlines() if sent.exists() else []
    return next((m for m in map(json.loads, lines) if summary in m["body"]), None)
