"""hub's log, read back from a real run as an operator's log pipeline reads it: every
line strict logfmt (double quotes only), the events an operator needs there (refused
API calls, who acted on an incident, a heartbeat or a dead letter, who reloaded), at
the level they deserve, and no token anywhere."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conftest import TLS_CONTEXT, wait_for
from console_support import csrf_in, sign_in
from hub_process import hub_process
from logfmt_support import events, pairs

from hub import acklinks

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
            _refused_calls(http)
            _incident_actions(http)
            _heartbeats(http)
            _dead_letter_retried(http)
            _nobody_on_call_and_an_ended_alert(http)
            _partly_refused_batches(http)
            wait_for(lambda: "event=nobody_on_call" in hub.log())
            assert http.post("/-/reload", headers=bearer(ADMIN)).status_code == 200
            assert hub.process is not None
            hub.process.send_signal(signal.SIGHUP)
            wait_for(lambda: "by=sighup" in hub.log())
    finally:
        hub.stop()
    return hub.log()


def _refused_calls(http: httpx.Client) -> None:
    assert http.get("/api/v1/alerts", headers=bearer(WRONG)).status_code == 401
    assert http.get("/api/v1/incidents").status_code == 401
    silence = {"matchers": ['service="nothing"'], "duration": "1h", "comment": "quiet"}
    assert http.post("/api/v1/silences", json=silence, headers=bearer(READER)).status_code == 403
    assert http.post("/-/reload", headers=bearer(WRITER)).status_code == 403
    answer = http.post("/api/v1/silences", json=silence, headers=bearer(WRITER))
    assert answer.status_code == 201, answer.text
    narrowed = {**silence, "matchers": ['service="nothing"', 'env="prod"']}
    path = f"/api/v1/silences/{answer.json()['id']}"
    changed = http.put(path, json=narrowed, headers=bearer(ADMIN))
    assert changed.status_code == 200, changed.text


def _incident_actions(http: httpx.Client) -> None:
    """Ack, snooze, unack and resolve through the API; an ack link; the console."""
    incident = fire(http, "checkout")["incident_id"]
    path = f"/api/v1/incidents/{incident}"
    actions = (("ack", None), ("ack", None), ("snooze", {"duration": "30m"}), ("unack", None))
    for action, body in actions:  # the second ack is the holder's retry: it logs nothing
        answer = http.post(f"{path}/{action}", json=body, headers=bearer(WRITER))
        assert answer.status_code == 200, answer.text
    later = datetime.now(UTC) + timedelta(hours=1)
    link = acklinks.sign(ACK_SECRET.encode(), incident, 1, later)
    assert http.post(f"/ack/{link}").status_code == 303
    with httpx.Client(base_url=str(http.base_url), timeout=30, verify=TLS_CONTEXT) as browser:
        sign_in(browser, WRITER)
        page = browser.get(f"/incidents/{incident}")
        done = browser.post(f"/incidents/{incident}/resolve", data={"_csrf": csrf_in(page.text)})
        assert done.status_code == 303, done.text
    again = http.post(f"{path}/resolve", headers=bearer(WRITER))  # a retry: logs nothing
    assert again.status_code == 200, again.text


def _heartbeats(http: httpx.Client) -> None:
    made = http.post(
        "/api/v1/heartbeats", json={"name": "nightly", "period": "1d"}, headers=bearer(WRITER)
    )
    assert made.status_code == 201, made.text
    assert http.delete("/api/v1/heartbeats/nightly", headers=bearer(WRITER)).status_code == 200
    assert http.get("/ping/backup", params={"token": WRONG}).status_code == 401
    assert http.get("/ping/backup/fail", headers=bearer(PING_TOKEN)).status_code == 200


def _dead_letter_retried(http: httpx.Client) -> None:
    fire(http, "broken")
    admin = bearer(ADMIN)

    def dead() -> list[dict]:
        return http.get("/api/v1/notifications", params={"state": "dead"}, headers=admin).json()

    [letter] = wait_for(dead, timeout=30)
    assert (
        http.post(f"/api/v1/notifications/{letter['id']}/retry", headers=admin).status_code == 200
    )


def _nobody_on_call_and_an_ended_alert(http: httpx.Client) -> None:
    fire(http, "paged")
    now = datetime.now(UTC)
    ending = {
        "labels": {"alertname": "NodeDown", "instance": "db1"},
        "annotations": {"summary": "db1 is down"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (now + timedelta(seconds=0.5)).isoformat(),
    }
    assert http.post("/webhooks/prom/api/v2/alerts", json=[ending]).status_code == 200
    reader = bearer(READER)

    def ended() -> bool:
        found = http.get("/api/v1/alerts", params={"label": 'instance="db1"'}, headers=reader)
        return found.json()[0]["status"] == "resolved"

    wait_for(ended, timeout=30)


def _partly_refused_batches(http: httpx.Client) -> None:
    """Prometheus posts an alert hub cannot read beside a new one, then beside a repeat."""
    unreadable = {"annotations": {"summary": "no labels"}}
    for name in ("DiskFull", "DiskFull"):
        alert = {"labels": {"alertname": name, "instance": "db2"}}
        answer = http.post("/webhooks/prom/api/v2/alerts", json=[alert, unreadable])
        assert answer.status_code == 400, answer.text


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


def test_refused_api_calls_are_logged_with_the_reason_and_the_token_name(log):
    refused = [
        (e["status"], e["path"], e["reason"], e.get("token"), e.get("needs"))
        for e in events(log, "api_refused")
    ]
    assert refused == [
        ("401", "/api/v1/alerts", "bad_token", None, None),
        ("401", "/api/v1/incidents", "missing_header", None, None),
        ("403", "/api/v1/silences", "role_too_low", "rita", "write"),
        ("403", "/-/reload", "role_too_low", "will", "admin"),
    ]
    assert {e["level"] for e in events(log, "api_refused")} == {"warning"}


def test_incident_actions_are_logged_with_who_and_how(log):
    actions = [
        (line["event"], line["by"], line["via"])
        for line in map(pairs, log.splitlines())
        if line.get("event", "").startswith("incident_")
    ]
    assert actions == [
        ("incident_acknowledged", "will", "api"),
        ("incident_snoozed", "will", "api"),
        ("incident_unacknowledged", "will", "api"),
        ("incident_acknowledged", "ack-link", "ack_link"),
        ("incident_resolved", "will", "console"),
    ]
    [snoozed] = events(log, "incident_snoozed")
    assert snoozed["until"].endswith("Z")


def test_heartbeats_made_and_removed_through_the_api_and_refused_pings_are_logged(log):
    assert [(e["name"], e["by"]) for e in events(log, "heartbeat_created")] == [("nightly", "will")]
    assert [(e["name"], e["by"]) for e in events(log, "heartbeat_deleted")] == [("nightly", "will")]
    [refused] = events(log, "heartbeat_ping_refused")
    assert (refused["level"], refused["name"], refused["status"], refused["reason"]) == (
        "warning",
        "backup",
        "401",
        "bad_token",
    )


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


def test_a_failed_send_is_one_line_carrying_apprises_reason(log):
    """Apprise's own warning about each failed attempt was logged too, beside
    notification_dead: two warnings per attempt, one of them unstructured."""
    dead = events(log, "notification_dead")
    assert dead and all("Connection error" in e["error"] for e in dead)
    assert [line for line in log.splitlines() if pairs(line)["logger"] == "apprise"] == []


def test_a_retried_dead_letter_names_who_retried_it(log):
    [retried] = events(log, "notification_retried")
    first_dead = events(log, "notification_dead")[0]
    assert (retried["id"], retried["by"], retried["via"]) == (first_dead["id"], "ada", "api")


def test_reloads_name_who_asked(log):
    reloads = [(e["outcome"], e["by"]) for e in events(log, "config_reload")]
    assert reloads == [("success", "ada"), ("success", "sighup")]
    assert all("needs_restart" not in e for e in events(log, "config_reload")), (
        "a key with nothing to say is left out"
    )


def test_nobody_on_call_names_the_incident_and_ended_alerts_are_named(log):
    [nobody] = events(log, "nobody_on_call")
    assert (nobody["target"], nobody["step"]) == ("schedule:primary", "1")
    assert nobody["incident"].isdigit()
    [ended] = events(log, "alerts_ended")
    assert ended["count"] == "1"
    assert ended["alerts"].isdigit()


def test_a_delivery_with_refused_items_says_how_many_even_when_the_rest_repeated(log):
    applied = [line for line in events(log, "delivery_applied") if line["source"] == "prom"]
    assert [(line["outcomes"], line["rejected"]) for line in applied[-2:]] == [
        ("new", "1"),
        ("duplicate", "1"),
    ]
    assert all(line["level"] == "info" for line in applied)


def test_a_silence_is_logged_with_its_matchers_as_one_value(log):
    [created] = events(log, "silence_created")
    assert (created["by"], created["matchers"]) == ("will", 'service="nothing"')
    [updated] = events(log, "silence_updated")
    assert updated["id"] == created["id"]
    assert (updated["by"], updated["matchers"]) == ("ada", 'service="nothing",env="prod"')
