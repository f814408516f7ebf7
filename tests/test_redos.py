"""A regular expression cannot hang the hub: matchers are RE2's, as Alertmanager's are
Go's, so a value is matched in time linear in its length however the expression is
written. Python's backtracking ``re`` took 40 s on ``(a+)+$`` against thirty "a" and a
"!", twice as long for each "a" more, and the event loop waited: a ``filter=`` anyone
may send to the read API (open while ``[api] tokens`` is unset), or a silence checked
at every dispatch, stalled every webhook meanwhile.

Each test runs a real ``hub serve`` in its own process, so a blocked event loop shows
as a late answer to a concurrent webhook, as a sender would see it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import NamedTuple

import httpx
from conftest import TLS_CONTEXT
from hub_process import HubProcess, hub_process

from hub.matchers import MAX_LIST_COST

PROMPT = 1.0
"""How long an answer may take, on a loaded test machine, to count as prompt."""
VICTIM = "a" * 40 + "!"
"""A label value on which ``(a+)+$`` backtracked for hours in Python's ``re``."""
CATASTROPHIC = "(a+)+$"
READ = {"Authorization": "Bearer read-token"}
WRITE = {"Authorization": "Bearer write-token"}

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}

[storage]
path = "{db}"

[api]
tokens = [
  { name = "rita", token = "read-token", role = "read" },
  { name = "will", token = "write-token", role = "write" },
]

[[sources]]
name = "app"
format = "native"
auth = { type = "bearer", tokens = ["app-token"] }

[[receivers]]
name = "ops"
urls = ["logfile://sent.jsonl"]

[route]
receiver = "ops"
group_by = ["..."]
group_wait = "0s"
group_interval = "1s"
repeat_interval = "1h"
"""


def post_alert(hub: HubProcess, key: str, **labels: str) -> httpx.Response:
    body = {"status": "firing", "summary": f"{key} down", "dedup_key": key, "labels": labels}
    headers = {"Authorization": "Bearer app-token"}
    return httpx.post(
        f"{hub.url}/webhooks/app", json=body, headers=headers, timeout=120, verify=TLS_CONTEXT
    )


def timed(call) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


class Beside(NamedTuple):
    answer: httpx.Response
    seconds: float
    webhook_seconds: float
    webhook_answered: float
    """When the webhook was answered (``time.monotonic``)."""


def beside_a_webhook(hub: HubProcess, call) -> Beside:
    """``call``'s answer and time, and the time a webhook sent while it runs takes."""
    found: dict[str, tuple[httpx.Response, float]] = {}
    thread = threading.Thread(target=lambda: found.setdefault("call", timed(call)))
    thread.start()
    time.sleep(0.05)
    webhook, webhook_seconds = timed(lambda: post_alert(hub, "bystander", alertname="Other"))
    answered = time.monotonic()
    thread.join(timeout=120)
    assert webhook.status_code == 202, webhook.text
    answer, seconds = found["call"]
    return Beside(answer, seconds, webhook_seconds, answered)


def started(tmp_path: Path) -> HubProcess:
    hub = hub_process(tmp_path, CONFIG)
    hub.start()
    return hub


def sent_titles(tmp_path: Path) -> list[str]:
    sent = tmp_path / "sent.jsonl"
    if not sent.exists():
        return []
    return [json.loads(line)["title"] for line in sent.read_text().splitlines()]


def test_a_catastrophic_filter_answers_at_once_and_a_webhook_beside_it_is_taken(tmp_path):
    hub = started(tmp_path)
    try:
        assert post_alert(hub, "victim", alertname="Victim", victim=VICTIM).status_code == 202
        answer, seconds, webhook_seconds, _ = beside_a_webhook(
            hub,
            lambda: httpx.get(
                f"{hub.url}/api/v2/alerts",
                params={"filter": f'victim=~"{CATASTROPHIC}"'},
                headers=READ,
                timeout=120,
                verify=TLS_CONTEXT,
            ),
        )
    finally:
        hub.stop()
    assert answer.status_code == 200, answer.text
    assert answer.json() == []
    assert seconds < PROMPT
    assert webhook_seconds < PROMPT


def test_a_catastrophic_silence_mutes_nothing_it_should_not_and_holds_up_nothing(tmp_path):
    """The silence is read at every dispatch and every list of alerts: it mutes the
    alert it matches, the one it does not is notified, and webhooks and reads answer
    at once."""
    hub = started(tmp_path)
    try:
        body = {"matchers": [f'victim=~"{CATASTROPHIC}"'], "comment": "odd", "duration": "1h"}
        made = httpx.post(
            f"{hub.url}/api/v1/silences", json=body, headers=WRITE, timeout=30, verify=TLS_CONTEXT
        )
        assert made.status_code == 201, made.text
        assert post_alert(hub, "muted", victim="aaaa").status_code == 202
        posted, post_seconds = timed(lambda: post_alert(hub, "victim", victim=VICTIM))
        listed, seconds, webhook_seconds, _ = beside_a_webhook(
            hub,
            lambda: httpx.get(
                f"{hub.url}/api/v2/alerts", headers=READ, timeout=120, verify=TLS_CONTEXT
            ),
        )
        deadline = time.monotonic() + 10
        while len(sent_titles(tmp_path)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        hub.stop()
    assert (posted.status_code, post_seconds < PROMPT) == (202, True)
    assert listed.status_code == 200
    shown = [a for a in listed.json() if "victim" in a["labels"]]  # not the bystander
    states = {a["labels"]["victim"]: a["status"]["state"] for a in shown}
    assert states == {"aaaa": "suppressed", VICTIM: "active"}
    assert (seconds < PROMPT, webhook_seconds < PROMPT) == (True, True)
    assert sorted(title.split("] ", 1)[1] for title in sent_titles(tmp_path)) == [
        "#2 victim down",
        "#3 bystander down",
    ]


def test_a_thousand_costly_filters_are_refused_before_they_are_all_compiled(tmp_path):
    """Each ``.{0,1000}`` takes RE2 some 6 ms to compile, fine alone: 1,500 of them in
    one request are refused once they pass the list's budget."""
    hub = started(tmp_path)
    filters = [f'a{i}=~"x{i}.{{0,1000}}"' for i in range(1500)]
    try:
        answer, seconds, webhook_seconds, _ = beside_a_webhook(
            hub,
            lambda: httpx.get(
                f"{hub.url}/api/v2/alerts",
                params={"filter": filters},
                headers=READ,
                timeout=120,
                verify=TLS_CONTEXT,
            ),
        )
    finally:
        hub.stop()
    assert answer.status_code == 400
    assert f"too large together: over {MAX_LIST_COST} RE2 instructions" in answer.text
    assert (seconds < PROMPT, webhook_seconds < PROMPT) == (True, True)


def test_python_only_syntax_is_refused_naming_the_matcher_everywhere(tmp_path):
    """Lookaround and backreferences need a backtracking engine: refused as Alertmanager
    refuses them, each answer naming the field and saying why."""
    lookahead = 'service=~"(?=api)api.*"'
    hub = started(tmp_path)
    try:
        with httpx.Client(base_url=hub.url, timeout=30, verify=TLS_CONTEXT) as http:
            v2_filter = http.get("/api/v2/alerts", params={"filter": lookahead}, headers=READ)
            v1_label = http.get("/api/v1/alerts", params={"label": lookahead}, headers=READ)
            receiver = http.get("/api/v2/alerts", params={"receiver": "(ops)\\1"}, headers=READ)
            body = {"matchers": ["env=prod", lookahead], "comment": "x", "duration": "1h"}
            v1_silence = http.post("/api/v1/silences", json=body, headers=WRITE)
            am_body = {
                "matchers": [{"name": "service", "value": "(?<!x)api", "isRegex": True}],
                "startsAt": "2030-01-01T00:00:00Z",
                "endsAt": "2030-01-01T01:00:00Z",
                "createdBy": "will",
                "comment": "x",
            }
            v2_silence = http.post("/api/v2/silences", json=am_body, headers=WRITE)
    finally:
        hub.stop()
    why = "invalid perl operator: (?="
    assert v2_filter.status_code == 400
    assert "bad filter: bad regular expression '(?=api)api.*'" in v2_filter.json()
    assert why in v2_filter.json()
    assert v1_label.status_code == 400
    assert "invalid query parameter 'label': bad regular expression" in v1_label.text
    assert why in v1_label.json()["detail"]
    assert receiver.status_code == 400
    assert "bad receiver: bad regular expression '(ops)\\\\1': invalid escape" in receiver.json()
    assert v1_silence.status_code == 422
    assert v1_silence.json()["field"] == "$.matchers[1]"
    assert "no lookaround or backreferences" in v1_silence.json()["detail"]
    assert v2_silence.status_code == 400
    assert "matchers[0]: bad regular expression '(?<!x)api'" in v2_silence.json()


def test_a_stored_silence_whose_regex_re2_refuses_mutes_nothing_and_is_shown(tmp_path):
    """A hub on Python's regexes took a lookahead; stored, it now reads as unreadable:
    failing open, the alert it was meant to mute is notified (a page sent in error costs
    less than one lost), it is logged once with its id, listed with its stored matchers,
    cannot be changed, and expiring it removes it."""
    hub = started(tmp_path)
    meant = ['service=~"(?!canary)checkout.*"']
    try:
        body = {"matchers": ['service="checkout"'], "comment": "deploy", "duration": "1h"}
        made = httpx.post(
            f"{hub.url}/api/v1/silences", json=body, headers=WRITE, timeout=30, verify=TLS_CONTEXT
        )
        silence = made.json()["id"]
        with sqlite3.connect(tmp_path / "hub.db") as db:  # as the older hub stored it
            db.execute(
                "UPDATE silences SET matchers = ? WHERE id = ?", (json.dumps(meant), silence)
            )
        assert post_alert(hub, "checkout", service="checkout").status_code == 202
        deadline = time.monotonic() + 10
        while not sent_titles(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        with httpx.Client(base_url=hub.url, headers=WRITE, timeout=30, verify=TLS_CONTEXT) as http:
            shown = http.get(f"/api/v1/silences/{silence}").json()
            changed = http.put(f"/api/v1/silences/{silence}", json=body)
            expired = http.delete(f"/api/v1/silences/{silence}")
            after = http.get("/api/v1/silences").json()
    finally:
        hub.stop()
    assert [title.split("] ", 1)[1] for title in sent_titles(tmp_path)] == ["#1 checkout down"]
    logged = [line.partition(" event=")[2] for line in hub.log().splitlines()]
    assert [line for line in logged if line.startswith("silence_unreadable")] == [
        f"silence_unreadable id={silence} column=matchers in_force=false"
    ]
    assert (shown["state"], shown["matchers"]) == ("unreadable", meant)
    assert changed.status_code == 409
    assert "matchers: edited by hand, or a regex RE2 refuses" in changed.json()["detail"]
    assert (expired.status_code, after) == (200, [])
