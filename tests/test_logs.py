"""hub's log, read back from a real run as an operator's log pipeline reads it: every
line strict logfmt (double quotes only), at the level it deserves, and no token
anywhere."""

from __future__ import annotations

import httpx
import pytest
from conftest import wait_for
from hub_process import hub_process
from logfmt_support import events, pairs

ACK_SECRET = "log-test-ack-secret"
READER = "read-token-0001"
WRITER = "write-token-0002"
ADMIN = "admin-token-0003"
PING_TOKEN = "backup-ping-token-0004"
WRONG = "wrong-token-value-0005"
TOKENS = [READER, WRITER, ADMIN, PING_TOKEN, WRONG, "shop-token-0006"]

CONFIG = f"""
[server]
host = "127.0.0.1"
port = {{port}}
ack_secret = "{ACK_SECRET}"

[storage]
path = "{{db}}"

[api]
tokens = [
  {{ name = "rita", token = "{READER}", role = "read" }},
  {{ name = "will", token = "{WRITER}", role = "write" }},
  {{ name = "ada", token = "{ADMIN}", role = "admin" }},
]

[notifier]
max_attempts = 1
backoff = "100ms"
max_backoff = "200ms"

[[sources]]
name = "shop"
auth = {{ type = "bearer", tokens = ["shop-token-0006"] }}

[[sources]]
name = "prom"
format = "prometheus"
auth = {{ type = "none" }}

[[heartbeats]]
name = "backup"
period = "1h"
token = "{PING_TOKEN}"

[[receivers]]
name = "ops"
urls = ["logfile://notifications.log"]

[[receivers]]
name = "broken"
urls = ["json://127.0.0.1:9/"]
timeout = "1s"

[[schedules]]
name = "primary"
people = [{{ name = "alice", urls = ["logfile://alice.log"] }}]
rotations = [{{ participants = ["alice"], start = 2099-01-05 }}]

[[escalations]]
name = "page"
steps = [{{ notify = ["schedule:primary"] }}]

[route]
receiver = "ops"
group_by = ["service"]
group_wait = "0s"
group_interval = "200ms"
repeat_interval = "1h"

[[route.routes]]
matchers = ['service="broken"']
receiver = "broken"

[[route.routes]]
matchers = ['service="paged"']
receiver = "ops"
escalation = "page"
"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fire(http: httpx.Client, service: str) -> dict:
    event = {"status": "firing", "summary": f"{service} is 'down'", "labels": {"service": service}}
    answer = http.post("/webhooks/shop", json=event, headers=bearer("shop-token-0006"))
    assert answer.status_code == 202, answer.text
    return answer.json()["alerts"][0]


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> str:
    """The log of one run that did everything the tests below read about."""
    hub = hub_process(tmp_path_factory.mktemp("logs"), CONFIG)
    hub.start()
    try:
        with hub.client() as http:
            _silenced(http)
            fire(http, "checkout")
            assert http.get("/ping/backup/fail", headers=bearer(PING_TOKEN)).status_code == 200
            _dead_letter(http)
    finally:
        hub.stop()
    return hub.log()


def _silenced(http: httpx.Client) -> None:
    silence = {"matchers": ['service="nothing"'], "duration": "1h", "comment": "quiet"}
    answer = http.post("/api/v1/silences", json=silence, headers=bearer(WRITER))
    assert answer.status_code == 201, answer.text


def _dead_letter(http: httpx.Client) -> None:
    fire(http, "broken")
    admin = bearer(ADMIN)

    def dead() -> list[dict]:
        return http.get("/api/v1/notifications", params={"state": "dead"}, headers=admin).json()

    wait_for(dead, timeout=30)


def test_every_line_of_a_run_reads_as_strict_logfmt(log):
    """Values used to be Python reprs (reason='deadline missed', error=None,
    matchers=['service="x"']) that logfmt parsers misread."""
    lines = log.splitlines()
    assert len(lines) > 10
    for line in lines:
        read = pairs(line)
        assert {"ts", "level", "logger"} <= read.keys(), line
        assert not [value for value in read.values() if value.startswith("'")], line
        assert read.get("error") != "None", line


def test_no_token_shows_in_the_log(log):
    assert not [token for token in TOKENS if token in log]


def test_a_silence_is_logged_with_its_matchers_as_one_value(log):
    [created] = events(log, "silence_created")
    assert (created["by"], created["matchers"]) == ("will", 'service="nothing"')


def test_a_heartbeat_down_and_a_dead_letter_warn(log):
    """Someone was not told, or a job did not run: info would hide both among the rest."""
    [down] = events(log, "heartbeat_down")
    assert (down["level"], down["name"], down["reason"]) == (
        "warning",
        "backup",
        "failure reported",
    )
    dead = events(log, "notification_dead")
    assert dead and {e["level"] for e in dead} == {"warning"}
    assert all(e["error"] for e in dead)
    sent = events(log, "notification_sent")
    assert sent and not [e for e in sent if "error" in e]
