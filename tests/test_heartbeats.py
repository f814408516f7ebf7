"""Heartbeats on a real server with real email: a missed deadline raises an alert, the
next ping resolves it, /fail and an unfinished /start fire, a started run shows as
started, a HEAD is a ping, deadlines survive a stop, heartbeats can be managed through
the API, paused and resumed, and a reload removes config ones cleanly but never takes
over an API one."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest
from conftest import BASE_CONFIG, MovedClock, mail_url, wait_for
from notify_support import when
from test_config import run_hub
from test_snooze import after_a_worker_round

from hub import config
from hub.app import Runtime
from hub.errors import ConfigError

WRITE = {"Authorization": "Bearer write-token"}
READ = {"Authorization": "Bearer read-token"}
ADMIN = {"Authorization": "Bearer admin-token"}
HEARTBEATS = """
[api]
tokens = [
  {{ name = "will", token = "write-token", role = "write" }},
  {{ name = "ada", token = "admin-token", role = "admin" }},
  {{ name = "rita", token = "read-token", role = "read" }},
]

[[heartbeats]]
name = "nightly-backup"
period = "{period}"
grace = "{grace}"
labels = {{ team = "db" }}
summary = "nightly backup did not report"
"""


def start_hub(
    hub_factory,
    smtp_port: int,
    period: str = "1h",
    grace: str = "300ms",
    more: str = "",
    clock=time.time,
):
    return hub_factory(
        BASE_CONFIG + HEARTBEATS + more,
        clock=clock,
        mail_url=mail_url(smtp_port),
        period=period,
        grace=grace,
    )


def subjects(mailbox, word: str) -> list[str]:
    return [s for s in mailbox.subjects() if word in s]


def gauge(http, name: str) -> float:
    prefix = f'{name}{{heartbeat="nightly-backup"}} '
    lines = http.get("/metrics").text.splitlines()
    return float(next(line for line in lines if line.startswith(prefix)).split()[-1])


def heartbeat_alert(http) -> dict:
    return http.get("/api/v1/alerts", params={"source": "heartbeat"}).json()[0]


def shown(http, name: str) -> dict:
    (row,) = [h for h in http.get("/api/v1/heartbeats").json() if h["name"] == name]
    return row


def test_a_missed_deadline_emails_an_alert_and_the_next_ping_resolves_it(hub_factory, smtp, caplog):
    """On a moved clock: with a period of 700 ms the next deadline, a second after the
    ping, was missed too now and then on a loaded machine before the test had read what
    the ping did."""
    mailbox, smtp_port = smtp
    caplog.set_level(logging.INFO, logger="hub.heartbeats")
    clock = MovedClock()
    hub = start_hub(hub_factory, smtp_port, clock=clock)
    with hub.client(headers=WRITE) as http:
        clock.advance(3601)  # past the first deadline, a period and grace after the start
        wait_for(lambda: subjects(mailbox, "FIRING"))
        assert "nightly backup did not report" in subjects(mailbox, "FIRING")[0]
        alert = heartbeat_alert(http)
        assert alert["fingerprint"] == "heartbeat:nightly-backup"
        assert alert["labels"] == {
            "alertname": "HeartbeatDown",
            "team": "db",
            "heartbeat": "nightly-backup",
        }
        assert gauge(http, "hub_heartbeat_overdue") == 1

        assert http.post("/ping/nightly-backup").status_code == 200
        wait_for(lambda: subjects(mailbox, "RESOLVED"))
        assert heartbeat_alert(http)["status"] == "resolved"
        assert gauge(http, "hub_heartbeat_overdue") == 0
        assert gauge(http, "hub_heartbeat_last_ping_timestamp_seconds") > 0
    changes = [r.getMessage() for r in caplog.records if r.name == "hub.heartbeats"]
    assert changes == [
        'event=heartbeat_down name=nightly-backup reason="deadline missed"',
        "event=heartbeat_up name=nightly-backup reason=pinged",
    ]


def test_a_heartbeats_own_alertname_names_its_alert(hub_factory, smtp):
    mailbox, smtp_port = smtp
    hub = hub_factory(
        BASE_CONFIG + HEARTBEATS.replace('team = "db"', 'team = "db", alertname = "BackupMissing"'),
        mail_url=mail_url(smtp_port),
        period="700ms",
        grace="300ms",
    )
    with hub.client(headers=WRITE) as http:
        wait_for(lambda: subjects(mailbox, "FIRING"))
        assert heartbeat_alert(http)["labels"]["alertname"] == "BackupMissing"


def test_a_deadline_that_passed_while_the_hub_was_stopped_fires_on_start(hub_factory, smtp):
    """On a moved clock: with a period of a second, a loaded machine now and then missed
    the deadline before the hub had stopped."""
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start_hub(hub_factory, smtp_port, grace="0s", clock=clock)
    with hub.client(headers=WRITE) as http:
        http.get("/ping/nightly-backup").raise_for_status()
    hub.stop()
    clock.advance(3601)  # the period passes while the hub is stopped
    assert mailbox.messages == []
    hub.start()
    wait_for(lambda: subjects(mailbox, "FIRING"))


def test_a_fail_ping_fires_at_once_and_a_ping_resolves_it(hub_factory, smtp):
    mailbox, smtp_port = smtp
    hub = start_hub(hub_factory, smtp_port)
    with hub.client(headers=WRITE) as http:
        http.post("/ping/nightly-backup/fail").raise_for_status()
        wait_for(lambda: subjects(mailbox, "FIRING"))
        http.get("/ping/nightly-backup").raise_for_status()
        wait_for(lambda: subjects(mailbox, "RESOLVED"))


def test_a_start_without_a_completion_fires_after_grace_and_one_with_it_does_not(hub_factory, smtp):
    """A grace of a minute on a moved clock: with 300 ms, a loaded machine now and then
    took longer than that between the start and the completion it was sent right after."""
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start_hub(hub_factory, smtp_port, grace="1m", clock=clock)
    with hub.client(headers=WRITE) as http:
        http.get("/ping/nightly-backup/start").raise_for_status()
        http.get("/ping/nightly-backup").raise_for_status()
        clock.advance(61)
        after_a_worker_round()
        assert mailbox.messages == [], "a run that finished within grace is fine"
        http.get("/ping/nightly-backup/start").raise_for_status()
        started = when(shown(http, "nightly-backup")["started_at"])
        clock.advance(61)
        wait_for(lambda: subjects(mailbox, "FIRING"))
        alert = heartbeat_alert(http)
    assert when(alert["fired_at"]) >= started + 60, "not before the grace ran out"
    assert alert["annotations"]["reason"] == "started run did not finish"


def test_a_run_started_after_a_failure_and_not_finished_is_one_outage(hub_factory, smtp, caplog):
    """The heartbeat stays down as it was: its alert, its page and its log line are
    those of the failure, not a second outage."""
    mailbox, smtp_port = smtp
    caplog.set_level(logging.INFO, logger="hub.heartbeats")
    clock = MovedClock()
    hub = start_hub(hub_factory, smtp_port, grace="1m", clock=clock)
    with hub.client(headers=WRITE) as http:
        http.post("/ping/nightly-backup/fail").raise_for_status()
        wait_for(lambda: subjects(mailbox, "FIRING"))
        http.get("/ping/nightly-backup/start").raise_for_status()
        clock.advance(61)
        wait_for(lambda: shown(http, "nightly-backup")["deadline"] is None)
        assert shown(http, "nightly-backup")["state"] == "down"
        assert heartbeat_alert(http)["annotations"]["reason"] == "failure reported"
    downs = [r.getMessage() for r in caplog.records if "heartbeat_down" in r.getMessage()]
    assert downs == ['event=heartbeat_down name=nightly-backup reason="failure reported"']
    assert len(subjects(mailbox, "FIRING")) == 1


def test_a_started_run_shows_as_started_until_it_finishes_or_is_overdue(hub_factory, smtp):
    """A grace of a minute on a moved clock: with a second, a loaded machine now and then
    read the run after its grace had run out."""
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start_hub(hub_factory, smtp_port, grace="1m", clock=clock)
    with hub.client(headers=WRITE) as http:
        http.post("/api/v1/heartbeats", json={"name": "etl", "period": "1h"}).raise_for_status()
        assert shown(http, "etl")["state"] == "new"
        http.get("/ping/etl/start").raise_for_status()
        started = shown(http, "etl")
        assert (started["state"], started["last_ping"]) == ("started", None), "a first run"
        assert started["started_at"] is not None
        http.get("/ping/etl").raise_for_status()
        assert shown(http, "etl")["state"] == "up"

        http.get("/ping/nightly-backup/start").raise_for_status()
        assert shown(http, "nightly-backup")["state"] == "started"
        clock.advance(61)
        wait_for(lambda: subjects(mailbox, "FIRING"))
        overdue = shown(http, "nightly-backup")
        assert (overdue["state"], overdue["started_at"] is not None) == ("down", True)


def test_an_unknown_heartbeat_is_a_404_problem(hub_factory, smtp):
    _, smtp_port = smtp
    hub = start_hub(hub_factory, smtp_port)
    with hub.client(headers=WRITE) as http:
        answer = http.get("/ping/no-such-job")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "no-such-job" in answer.json()["detail"]


def test_heartbeats_are_created_listed_and_deleted_through_the_api(hub_factory, smtp):
    _, smtp_port = smtp
    hub = start_hub(hub_factory, smtp_port)
    with hub.client(headers=WRITE) as http:
        body = {"name": "deploy-check", "period": "1h", "labels": {"team": "web"}}
        created = http.post("/api/v1/heartbeats", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["state"] == "new"
        assert created.json()["summary"] == "heartbeat deploy-check is down", "its alert's"
        assert http.post("/api/v1/heartbeats", json=body).status_code == 409
        bad = http.post("/api/v1/heartbeats", json={**body, "name": "x", "period": "soon"})
        assert bad.status_code == 422 and bad.json()["field"] == "$.period"
        endless = http.post("/api/v1/heartbeats", json={**body, "name": "y", "grace": "99999w"})
        assert (endless.status_code, endless.json()["detail"]) == (
            422,
            "grace: at most 3650d, got 99999w",
        )

        http.get("/ping/deploy-check").raise_for_status()
        listed = {h["name"]: h for h in http.get("/api/v1/heartbeats").json()}
        assert listed["deploy-check"]["state"] == "up"
        assert listed["nightly-backup"]["origin"] == "config"
        assert listed["nightly-backup"]["summary"] == "nightly backup did not report"
        durations = [(h["period"], h["grace"]) for h in listed.values()]
        assert durations == [("1h", "1m"), ("1h", "0.3s")], "shortest exact text, file or API alike"
        assert http.get("/api/v1/heartbeats/deploy-check").json() == listed["deploy-check"]
        assert http.get("/api/v1/heartbeats/nightly-backup").json() == listed["nightly-backup"]

        assert http.delete("/api/v1/heartbeats/nightly-backup").status_code == 409
        http.post("/ping/deploy-check/fail").raise_for_status()
        deleted = http.delete("/api/v1/heartbeats/deploy-check")
        assert deleted.status_code == 200
        assert deleted.json()["state"] == "down", "the answer shows what was deleted"
        (alert,) = [
            a
            for a in http.get("/api/v1/alerts").json()
            if a["labels"].get("heartbeat") == "deploy-check"
        ]
        assert alert["status"] == "resolved"
        assert alert["summary"] == deleted.json()["summary"]
        assert http.get("/ping/deploy-check").status_code == 404
        gone = http.get("/api/v1/heartbeats/deploy-check")
        assert gone.status_code == 404
        assert gone.json()["detail"] == "no heartbeat named 'deploy-check'"


def test_a_heartbeat_read_from_the_api_can_be_posted_back_as_it_reads(hub_factory, smtp):
    """A client copying a heartbeat (or a person comparing it with the config) reads
    its durations in the form POST and the file take, the shortest that is exact."""
    hub = start_hub(hub_factory, smtp[1], period="1d", grace="1h30m")
    with hub.client(headers=WRITE) as http:
        made = http.post("/api/v1/heartbeats", json={"name": "etl", "period": "1w1s"}).json()
        listed = {h["name"]: h for h in http.get("/api/v1/heartbeats").json()}
        fields = ("period", "grace", "labels", "severity", "summary")
        copies = [
            http.post(
                "/api/v1/heartbeats",
                json={field: read[field] for field in fields} | {"name": f"{name}-copy"},
            )
            for name, read in listed.items()
        ]
        deleted = http.delete("/api/v1/heartbeats/etl").json()
    assert (made["period"], made["grace"]) == ("1w1s", "1m")
    assert (listed["nightly-backup"]["period"], listed["nightly-backup"]["grace"]) == ("1d", "90m")
    assert [copy.status_code for copy in copies] == [201, 201]
    for copy, read in zip(copies, listed.values(), strict=True):
        assert {f: copy.json()[f] for f in fields} == {f: read[f] for f in fields}
    assert (deleted["period"], deleted["grace"]) == ("1w1s", "1m")


def test_a_heartbeat_body_of_the_wrong_shape_names_the_field_and_the_choices(hub_factory, smtp):
    hub = start_hub(hub_factory, smtp[1])
    with hub.client(headers=WRITE) as http:
        no_period = http.post("/api/v1/heartbeats", json={"name": "etl"})
        urgent = http.post(
            "/api/v1/heartbeats", json={"name": "etl", "period": "1h", "severity": "urgent"}
        )
    assert (no_period.status_code, no_period.json()["field"]) == (422, "$.period")
    assert (urgent.status_code, urgent.json()["field"]) == (422, "$.severity")
    assert "(one of: critical, error, warning, info)" in urgent.json()["detail"]


PING_TOKEN = "payroll-ping-token-1234"
PAYROLL = """
[[heartbeats]]
name = "payroll"
period = "1h"
token = "${{PAYROLL_PING_TOKEN}}"
"""


def test_a_heartbeat_with_a_token_takes_only_pings_that_carry_it(hub_factory, smtp, monkeypatch):
    monkeypatch.setenv("PAYROLL_PING_TOKEN", PING_TOKEN)
    hub = start_hub(hub_factory, smtp[1], more=PAYROLL)
    with hub.client(headers=WRITE) as http:
        refused = [
            http.get("/ping/payroll", headers={"Authorization": ""}),
            http.post("/ping/payroll/fail", headers={"Authorization": "Bearer wrong"}),
            http.get("/ping/payroll/start", params={"token": PING_TOKEN[:-1]}),
        ]
        assert [answer.status_code for answer in refused] == [401, 401, 401]
        assert {answer.headers["WWW-Authenticate"] for answer in refused} == {'Bearer realm="hub"'}
        assert "needs its token" in refused[0].json()["detail"]
        row = shown(http, "payroll")
        assert (row["last_ping"], row["started_at"], row["overdue"]) == (None, None, False)
        assert row["token_required"] is True
        assert PING_TOKEN not in http.get("/api/v1/heartbeats").text

        assert http.get("/ping/payroll", params={"token": PING_TOKEN}).status_code == 200
        assert shown(http, "payroll")["state"] == "up"
        bearer = {"Authorization": f"Bearer {PING_TOKEN}"}
        assert http.post("/ping/payroll/fail", headers=bearer).status_code == 200
        assert shown(http, "payroll")["state"] == "down"


def test_a_head_ping_counts_as_a_get_and_answers_without_a_body(hub_factory, smtp, monkeypatch):
    """Uptime tools and cron wrappers ping with HEAD (``curl -I``), as healthchecks.io allows."""
    monkeypatch.setenv("PAYROLL_PING_TOKEN", PING_TOKEN)
    mailbox, smtp_port = smtp
    hub = start_hub(hub_factory, smtp_port, more=PAYROLL)
    with hub.client(headers=WRITE) as http:
        got, checked = http.get("/ping/nightly-backup"), http.head("/ping/nightly-backup/start")
        assert (got.status_code, checked.status_code, checked.content) == (200, 200, b"")
        assert checked.headers["content-type"] == got.headers["content-type"]
        first = shown(http, "nightly-backup")
        assert first["started_at"] is not None
        assert http.head("/ping/nightly-backup").status_code == 200
        row = shown(http, "nightly-backup")
        assert row["started_at"] is None and row["last_ping"] > first["last_ping"]
        assert http.head("/ping/nightly-backup/fail").status_code == 200
        wait_for(lambda: subjects(mailbox, "FIRING"))

        missing = http.head("/ping/no-such-job")
        assert (missing.status_code, missing.content) == (404, b"")
        refused = http.head("/ping/payroll", headers={"Authorization": ""})
        assert (refused.status_code, refused.content) == (401, b"")
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="hub"'
        assert shown(http, "payroll")["last_ping"] is None
        assert http.head("/ping/payroll", params={"token": PING_TOKEN}).status_code == 200
        assert shown(http, "payroll")["state"] == "up"


def test_the_ping_operations_are_described_as_they_answer(hub_factory, smtp):
    hub = start_hub(hub_factory, smtp[1])
    with hub.client() as http:
        answer = http.post("/ping/nightly-backup")
        paths = http.get("/schema/openapi.json").json()["paths"]
    assert (answer.status_code, answer.text) == (200, "OK\n")
    for path in ("/ping/{name}", "/ping/{name}/fail", "/ping/{name}/start"):
        assert set(paths[path]) == {"get", "head", "post"}, path
        for method, operation in paths[path].items():
            assert list(operation["responses"]["200"]["content"]) == ["text/plain"], method
            assert "201" not in operation["responses"], method


def test_an_api_heartbeat_may_have_a_token_and_a_short_one_is_refused(hub_factory, smtp):
    hub = start_hub(hub_factory, smtp[1])
    with hub.client(headers=WRITE) as http:
        short = {"name": "etl", "period": "1h", "token": "short"}
        answer = http.post("/api/v1/heartbeats", json=short)
        assert answer.status_code == 422
        assert "token: use at least 16 characters" in answer.json()["detail"]

        made = http.post("/api/v1/heartbeats", json={**short, "token": PING_TOKEN})
        assert made.status_code == 201
        assert made.json()["token_required"] is True
        assert PING_TOKEN not in made.text
        assert http.get("/ping/etl", headers={"Authorization": ""}).status_code == 401
        assert http.get("/ping/etl", params={"token": PING_TOKEN}).status_code == 200
        assert shown(http, "nightly-backup")["token_required"] is False


def without_heartbeat_blocks(text: str) -> str:
    return text[: text.index("[[heartbeats]]")]


def overdue_series(http) -> list[str]:
    return [line for line in http.get("/metrics").text.splitlines() if "nightly-backup" in line]


@pytest.mark.parametrize("apply", ["reload", "restart"])
def test_removing_a_down_config_heartbeat_resolves_its_alert(hub_factory, smtp, apply):
    mailbox, smtp_port = smtp
    hub = start_hub(hub_factory, smtp_port)
    with hub.client(headers=WRITE) as http:
        http.post("/ping/nightly-backup/fail").raise_for_status()
        wait_for(lambda: subjects(mailbox, "FIRING"))
        hub.config_path.write_text(without_heartbeat_blocks(hub.config_path.read_text()))
        if apply == "reload":
            reloaded = http.post("/-/reload", headers=ADMIN).json()
            assert reloaded == {"status": "reloaded", "needs_restart": [], "warnings": []}
        else:
            hub.restart()

        wait_for(lambda: subjects(mailbox, "RESOLVED"))
        alert = heartbeat_alert(http)
        assert (alert["status"], alert["annotations"]["reason"]) == (
            "resolved",
            "removed from the config",
        )
        assert [i["status"] for i in http.get("/api/v1/incidents").json()] == ["resolved"]
        assert http.get("/api/v1/heartbeats").json() == []
        assert overdue_series(http) == []


def test_a_config_heartbeat_may_not_take_an_api_heartbeats_name(hub_factory, smtp):
    hub = start_hub(hub_factory, smtp[1])
    text = hub.config_path.read_text()
    clashing = text.replace('name = "nightly-backup"', 'name = "deploy-check"')
    with hub.client(headers=WRITE) as http:
        made = http.post("/api/v1/heartbeats", json={"name": "deploy-check", "period": "1h"})
        assert made.status_code == 201
        hub.config_path.write_text(clashing)
        answer = http.post("/-/reload", headers=ADMIN)
        assert answer.status_code == 400
        assert answer.json()["problems"] == [
            "heartbeats[0] (deploy-check).name: taken by a heartbeat created through the API;"
            " rename this one or delete that one"
        ]
        assert shown(http, "deploy-check")["origin"] == "api"
        assert shown(http, "nightly-backup")["origin"] == "config", "the old config runs"
    hub.stop()
    with pytest.raises(ConfigError, match="deploy-check"):
        asyncio.run(Runtime(config.load(hub.config_path)).start())
    served = run_hub("serve", "--config", str(hub.config_path), cwd=hub.config_path.parent)
    assert served.returncode == 2, "refused as a config problem, not a failed startup"
    assert "  - heartbeats[0] (deploy-check).name: taken by a heartbeat" in served.stderr
    assert "Traceback" not in served.stderr


def pause(http, name: str, **body: str):
    return http.post(f"/api/v1/heartbeats/{name}/pause", json=body or None)


def heartbeat_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hub.heartbeats"]


def test_pausing_a_down_heartbeat_resolves_its_alert_and_nothing_fires_while_paused(
    hub_factory, smtp, caplog
):
    mailbox, smtp_port = smtp
    caplog.set_level(logging.INFO, logger="hub.heartbeats")
    clock = MovedClock()
    hub = start_hub(hub_factory, smtp_port, clock=clock)
    with hub.client(headers=WRITE) as http:
        clock.advance(3601)
        wait_for(lambda: subjects(mailbox, "FIRING"))
        paused = pause(http, "nightly-backup", reason="backup host in maintenance")
        assert paused.status_code == 200, paused.text
        row = paused.json()
        assert (row["state"], row["paused_by"], row["paused_via"], row["deadline"]) == (
            "paused",
            "will",
            None,
            None,
        )
        assert row["pause_reason"] == "backup host in maintenance"
        assert when(row["paused_at"]) >= when(heartbeat_alert(http)["fired_at"])
        wait_for(lambda: subjects(mailbox, "RESOLVED"))
        alert = heartbeat_alert(http)
        assert (alert["status"], alert["annotations"]["reason"]) == ("resolved", "paused")
        assert gauge(http, "hub_heartbeat_overdue") == 0

        again = pause(http, "nightly-backup", reason="another reason")
        assert again.json() == row, "the first pause stands"
        clock.advance(7 * 86400)
        after_a_worker_round()
        assert shown(http, "nightly-backup")["state"] == "paused"
        assert len(subjects(mailbox, "FIRING")) == 1, "no alert while paused"
        assert heartbeat_alert(http)["status"] == "resolved"
    assert heartbeat_lines(caplog) == [
        'event=heartbeat_down name=nightly-backup reason="deadline missed"',
        "event=heartbeat_up name=nightly-backup reason=paused",
        "event=heartbeat_paused name=nightly-backup by=will via=api"
        ' reason="backup host in maintenance"',
    ]


def test_a_ping_resumes_a_paused_heartbeat_with_a_new_deadline(hub_factory, smtp, caplog):
    """As on healthchecks.io: a job that pings again is watched again."""
    mailbox, smtp_port = smtp
    caplog.set_level(logging.INFO, logger="hub.heartbeats")
    clock = MovedClock()
    hub = start_hub(hub_factory, smtp_port, clock=clock)
    with hub.client(headers=WRITE) as http:
        pause(http, "nightly-backup").raise_for_status()
        clock.advance(86400)
        http.get("/ping/nightly-backup").raise_for_status()
        row = shown(http, "nightly-backup")
        assert (row["state"], row["paused_at"], row["paused_by"]) == ("up", None, None)
        assert when(row["deadline"]) == pytest.approx(when(row["last_ping"]) + 3600.3)
        assert row["resumed_at"] == row["last_ping"]
        clock.advance(3601)
        wait_for(lambda: subjects(mailbox, "FIRING"))
    assert heartbeat_lines(caplog)[:2] == [
        "event=heartbeat_paused name=nightly-backup by=will via=api",
        "event=heartbeat_resumed name=nightly-backup via=ping",
    ]


def test_resume_starts_a_fresh_deadline_from_now_and_one_not_paused_is_a_409(
    hub_factory, smtp, caplog
):
    """A heartbeat last pinged a day before its resume gets a whole period from the
    resume, and keeps it across a reload, which recomputes config deadlines."""
    mailbox, smtp_port = smtp
    caplog.set_level(logging.INFO, logger="hub.heartbeats")
    clock = MovedClock()
    hub = start_hub(hub_factory, smtp_port, clock=clock)
    with hub.client(headers=WRITE) as http:
        http.get("/ping/nightly-backup").raise_for_status()
        pause(http, "nightly-backup").raise_for_status()
        clock.advance(86400)
        resumed = http.post("/api/v1/heartbeats/nightly-backup/resume")
        assert resumed.status_code == 200, resumed.text
        row = resumed.json()
        assert (row["state"], row["paused_at"]) == ("up", None)
        assert when(row["deadline"]) == pytest.approx(when(row["resumed_at"]) + 3600.3)
        assert when(row["resumed_at"]) >= when(row["last_ping"]) + 86400
        assert http.post("/-/reload", headers=ADMIN).status_code == 200
        assert shown(http, "nightly-backup")["deadline"] == row["deadline"]
        after_a_worker_round()
        assert mailbox.messages == []

        refused = http.post("/api/v1/heartbeats/nightly-backup/resume")
        assert refused.status_code == 409
        assert refused.json()["detail"] == "heartbeat 'nightly-backup' is not paused"
        clock.advance(3601)
        wait_for(lambda: subjects(mailbox, "FIRING"))
    assert "event=heartbeat_resumed name=nightly-backup by=will via=api" in heartbeat_lines(caplog)


def test_pausing_needs_a_write_token_and_a_known_heartbeat(hub_factory, smtp):
    hub = start_hub(hub_factory, smtp[1])
    with hub.client(headers=WRITE) as http:
        for path in ("pause", "resume"):
            read = http.post(f"/api/v1/heartbeats/nightly-backup/{path}", headers=READ)
            assert read.status_code == 403, path
            unknown = http.post(f"/api/v1/heartbeats/no-such-job/{path}")
            assert unknown.status_code == 404, path
            assert unknown.json()["detail"] == "no heartbeat named 'no-such-job'"
        as_bob = pause(http, "nightly-backup", by="bob")
        assert as_bob.status_code == 403
        assert 'by "bob" is not this token\'s name "will"' in as_bob.json()["detail"]
        assert shown(http, "nightly-backup")["state"] == "new", "nothing refused changed it"
        made = http.post("/api/v1/heartbeats", json={"name": "etl", "period": "1h"})
        assert made.json()["paused_at"] is None
        assert pause(http, "etl").json()["state"] == "paused", "API heartbeats pause too"


@pytest.mark.parametrize("apply", ["reload", "restart"])
def test_a_pause_survives_a_reload_and_a_restart(hub_factory, smtp, apply):
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start_hub(hub_factory, smtp_port, clock=clock)
    with hub.client(headers=WRITE) as http:
        paused = pause(http, "nightly-backup", reason="decommissioned").json()
        if apply == "reload":
            assert http.post("/-/reload", headers=ADMIN).status_code == 200
        else:
            hub.restart()
        clock.advance(7 * 86400)
        after_a_worker_round()
        assert shown(http, "nightly-backup") == paused
        assert gauge(http, "hub_heartbeat_overdue") == 0
    assert mailbox.messages == []


def paused_gauges(http) -> dict[str, float]:
    """Each heartbeat's ``hub_heartbeat_paused`` as /metrics shows it."""
    scraped = http.get("/metrics").text
    found = re.findall(r'^hub_heartbeat_paused\{heartbeat="([^"]+)"\} (\S+)$', scraped, re.M)
    return {name: float(value) for name, value in found}


def test_the_paused_gauge_follows_pause_ping_resume_reload_restart_and_delete(hub_factory, smtp):
    """A paused heartbeat read overdue 0 like a healthy one: Prometheus could not tell
    them apart."""
    hub = start_hub(hub_factory, smtp[1])
    with hub.client(headers=WRITE) as http:
        http.post("/api/v1/heartbeats", json={"name": "etl", "period": "1h"}).raise_for_status()
        assert paused_gauges(http) == {"nightly-backup": 0, "etl": 0}
        for name in ("nightly-backup", "etl"):
            pause(http, name).raise_for_status()
        assert paused_gauges(http) == {"nightly-backup": 1, "etl": 1}
        assert gauge(http, "hub_heartbeat_overdue") == 0
        http.get("/ping/nightly-backup").raise_for_status()
        assert paused_gauges(http) == {"nightly-backup": 0, "etl": 1}, "a ping resumes"

        pause(http, "nightly-backup").raise_for_status()
        assert http.post("/-/reload", headers=ADMIN).status_code == 200
        after_a_worker_round()
        assert paused_gauges(http) == {"nightly-backup": 1, "etl": 1}
        hub.restart()
        assert paused_gauges(http) == {"nightly-backup": 1, "etl": 1}, "from the store"
        http.post("/api/v1/heartbeats/nightly-backup/resume").raise_for_status()
        assert paused_gauges(http) == {"nightly-backup": 0, "etl": 1}
        http.delete("/api/v1/heartbeats/etl").raise_for_status()
        assert paused_gauges(http) == {"nightly-backup": 0}
