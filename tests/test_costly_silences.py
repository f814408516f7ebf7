"""Many silences cannot hold up webhooks, against a real ``hub serve``: expired ones
are kept for months (``[retention] expired_silences``), and the lists of every
silence, hub's and the Alertmanager API's (which amtool, karma and Grafana poll), and
the console's page are worked out in a read thread (``Store.read_aside``), while each
silence's matchers are compiled once, not at every read.

Measured before, with 5,000 silences: ``GET /api/v2/silences`` held the event loop for
0.7 s, ``GET /api/v1/silences`` 0.5 s, the console's page 0.9 s, one silence by id
0.2 s; every dispatcher round 0.6 s, re-compiling each silence's regexes.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import TLS_CONTEXT
from console_support import sign_in
from hub_process import HubProcess, hub_process
from test_redos import READ, WRITE, beside_a_webhook, timed

SILENCES = 20_000

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
group_wait = "0s"
group_interval = "1s"
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> HubProcess:
    """A hub whose store holds ``SILENCES`` silences in force, each with a regex, as
    an API that made them one by one would have stored them."""
    process = hub_process(tmp_path_factory.mktemp("silences"), CONFIG)
    process.start().stop()  # the store, migrated
    _store_silences(Path(process.config_path.parent, "hub.db"), SILENCES)
    process.start()
    yield process
    process.stop()


def _store_silences(db: Path, count: int) -> None:
    now = time.time()
    rows = [
        (
            str(uuid.uuid4()),
            json.dumps([f'team="t{i}"', f'service=~"s{i}|web-.*"']),
            now - 60,
            now + 86_400,
            "will",
            "maintenance " * 100,
            now - 60,
        )
        for i in range(count)
    ]
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO silences"
            " (id, matchers, starts_at, ends_at, created_by, comment, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def begun_after_a_webhook(hub: HubProcess, client: httpx.Client, path: str) -> httpx.Response:
    """``GET path``'s answer, once checked to have begun (its status and headers sent)
    after a webhook sent 50 ms into it was answered. Worked out on the event loop, the
    list is answered before the loop takes the webhook; off it, the webhook is answered
    while the list is worked out. An order, not a time: a loaded machine slows both."""
    begun: list[float] = []

    def read() -> httpx.Response:
        with client.stream("GET", path) as answer:
            begun.append(time.monotonic())
            answer.read()
        return answer

    beside = beside_a_webhook(hub, read)
    assert beside.webhook_answered < begun[0], "the list began before the webhook was answered"
    return beside.answer


@pytest.mark.parametrize("path", ["/api/v2/silences", "/api/v1/silences"])
def test_a_list_of_many_silences_leaves_webhooks_prompt(hub, path):
    with httpx.Client(base_url=hub.url, headers=READ, timeout=120, verify=TLS_CONTEXT) as client:
        answer = begun_after_a_webhook(hub, client, path)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()) == SILENCES


def test_one_silence_among_many_is_looked_up_by_its_id_in_both_apis(hub):
    """Found among every silence before, one took about as long as the whole list:
    0.5-2.4 s with 20,000 stored, against 10 ms for a lookup by its id. Timed against
    the list in the same run, as a loaded machine slows both; each lookup's fastest of
    three, as one can wait behind the hub's other work (1.7 s against a 16 s list)."""
    with httpx.Client(base_url=hub.url, headers=READ, timeout=120, verify=TLS_CONTEXT) as client:
        listed, list_seconds = timed(lambda: client.get("/api/v2/silences"))
        silence_id = listed.json()[-1]["id"]
        lookups = {
            path: min(
                (timed(lambda path=path: client.get(path)) for _ in range(3)), key=lambda t: t[1]
            )
            for path in (
                f"/api/v2/silence/{silence_id}",
                f"/api/v1/silences/{silence_id}",
                "/api/v2/silence/unknown",
                "/api/v1/silences/unknown",
            )
        }
    shown = [answer.json()["id"] for answer, _ in list(lookups.values())[:2]]
    assert shown == [silence_id, silence_id]
    assert [answer.status_code for answer, _ in lookups.values()] == [200, 200, 404, 404]
    slowest = max(seconds for _, seconds in lookups.values())
    assert slowest < list_seconds / 5, (slowest, list_seconds)


def test_the_consoles_silences_page_leaves_webhooks_prompt(hub):
    """Read and rendered in a read thread: rendered on the event loop, the page of
    20,000 silences (30 MB) held every webhook meanwhile."""
    with hub.client() as client:
        sign_in(client, "read-token")
        page = begun_after_a_webhook(hub, client, "/silences")
    assert page.status_code == 200
    assert page.text.count('data-silence="') == SILENCES


def test_a_silence_past_max_silences_is_refused_naming_the_key(hub):
    """The store holds 20,000 in force, over the default of 1,000 (a limit only stops
    new ones): a new silence is refused as Alertmanager's ``--silences.max-silences``
    refuses it, in each API's form, and none is stored."""
    body = {"matchers": ['team="new"'], "duration": "1h", "comment": "deploy"}
    am_body = {
        "matchers": [{"name": "team", "value": "new", "isRegex": False, "isEqual": True}],
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "2999-01-01T00:00:00Z",
        "createdBy": "will",
        "comment": "deploy",
    }
    with hub.client(headers=WRITE) as client:
        ours = client.post("/api/v1/silences", json=body)
        theirs = client.post("/api/v2/silences", json=am_body)
        listed = client.get("/api/v1/silences", params={"matcher": 'team="new"'})
    assert ours.status_code == 409, ours.text
    assert ours.json()["detail"] == (
        f"there are {SILENCES} pending or active silences, as many as [server] max_silences"
        " allows (1000): expire one, or raise the limit"
    )
    assert (theirs.status_code, theirs.json()) == (409, ours.json()["detail"])
    assert listed.json() == []
