"""The shipped Prometheus config, rules and dashboards against a real Prometheus
scraping a real hub: every dashboard query returns data, every rule loads and
evaluates, and a dead letter fires HubDeadLetters.

Needs the ``prometheus`` and ``promtool`` programs (Debian package ``prometheus``,
installed by ``.ci/run``). Outside CI the tests skip when they are absent; in CI
(the ``CI`` environment variable set) they fail instead.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import AUTH, BASE_CONFIG, TLS_CONTEXT, free_port, mail_url, wait_for
from hub_process import hub_process
from programs import Program, require
from test_dashboards import (
    DASHBOARDS,
    GRAFANA,
    load,
    panel,
    panel_exprs,
    shipped_rules,
    variable_queries,
    with_variables,
)
from test_floods import WEBHOOK_HEAD, answer, connect, with_server_keys

PROMETHEUS_DIR = GRAFANA / "prometheus"
SHIPPED_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
SHIPPED_RULES = PROMETHEUS_DIR / "hub-rules.yml"
SCRAPE_WAIT_SECONDS = 30

# One receiver with two channels: mail that is delivered and mail to a closed port.
TWO_CHANNELS = BASE_CONFIG.replace('urls = ["{mail_url}"]', 'urls = ["{mail_url}", "{dead_url}"]')
HEARTBEATS = """
[[heartbeats]]
name = "nightly-backup"
period = "1d"

[[heartbeats]]
name = "weekly-report"
period = "7d"
"""
WITH_HEARTBEAT = TWO_CHANNELS + HEARTBEATS
WRITER_TOKEN = """
[api]
tokens = [{{ name = "will", token = "write-token", role = "write" }}]
"""


class RunningPrometheus(Program):
    """A real Prometheus scraping hubs every second with the shipped scrape job and rules."""

    def __init__(self, binary: str, workdir: Path, targets: list[str]) -> None:
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(scrape_config(targets)))
        args = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}"]
        super().__init__(args, workdir)

    def api(self, path: str, **params: str) -> dict:
        answer = httpx.get(
            f"{self.url}/api/v1/{path}", params=params, timeout=10, verify=TLS_CONTEXT
        )
        answer.raise_for_status()
        body = answer.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def rules(self) -> list[dict]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]


def scrape_config(targets: list[str]) -> dict:
    """The shipped config, pointed at ``targets``, scraping and evaluating every second."""
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_DIR / path) for path in config["rule_files"]]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": targets}]
    return config


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator:
    binary = require("prometheus", "prometheus")
    started: list[RunningPrometheus] = []

    def start(hub, *more_targets: str) -> RunningPrometheus:
        workdir = tmp_path / "prometheus"
        workdir.mkdir()
        targets = [hub.url.removeprefix("http://"), *more_targets]
        prometheus = RunningPrometheus(binary, workdir, targets)
        started.append(prometheus)
        wait_for(prometheus.ready, timeout=SCRAPE_WAIT_SECONDS)
        return prometheus

    yield start
    for prometheus in started:
        prometheus.stop()


def record_heartbeat_ping(hub, name: str) -> None:
    """A job's ping, so the heartbeat panels have a pinged one to show beside one that
    never pinged."""
    with hub.client() as http:
        assert http.get(f"/ping/{name}").status_code == 200


def send_traffic(hub) -> None:
    """A new alert, a duplicate, a rejected token and an unknown source."""
    event = {"status": "firing", "summary": "disk almost full", "dedup_key": "disk-full"}
    with hub.client() as http:
        assert http.post("/webhooks/shop", json=event, headers=AUTH).status_code == 202
        assert http.post("/webhooks/shop", json=event, headers=AUTH).status_code == 202
        assert http.post("/webhooks/shop", json=event).status_code == 401
        assert http.post("/webhooks/nowhere", json=event, headers=AUTH).status_code == 404


def scraped_at_least(prometheus: RunningPrometheus, samples: int) -> bool:
    """Enough scrapes in the last minute that ``rate(...[1m])`` has points to use."""
    result = prometheus.query('count_over_time(hub_build_info{job="hub"}[1m])')
    return bool(result) and float(result[0]["value"][1]) >= samples


def rules_evaluated(prometheus: RunningPrometheus) -> list[dict] | None:
    rules = prometheus.rules()
    done = all(rule["lastEvaluation"] > "0001-01-01T00:00:00Z" for rule in rules)
    return rules if rules and done else None


def dead_letters_firing(prometheus: RunningPrometheus) -> list[dict]:
    return prometheus.query('ALERTS{alertname="HubDeadLetters", alertstate="firing"}')


def test_dashboards_and_rules_work_against_a_real_prometheus(hub_factory, smtp, prometheus_for):
    mailbox, smtp_port = smtp
    hub = hub_factory(
        WITH_HEARTBEAT,
        mail_url=mail_url(smtp_port),
        dead_url=mail_url(free_port()),
        max_attempts=2,
    )
    record_heartbeat_ping(hub, "nightly-backup")
    prometheus = prometheus_for(hub)
    wait_for(lambda: scraped_at_least(prometheus, 2), timeout=SCRAPE_WAIT_SECONDS)
    send_traffic(hub)
    wait_for(lambda: mailbox.messages)
    firing = wait_for(lambda: dead_letters_firing(prometheus), timeout=SCRAPE_WAIT_SECONDS)
    assert firing[0]["metric"]["receiver"] == "ops"
    assert firing[0]["metric"]["integration"] == "mailto"
    wait_for(lambda: scraped_at_least(prometheus, 3), timeout=SCRAPE_WAIT_SECONDS)

    for path in DASHBOARDS:
        dashboard = load(path)
        for expr in panel_exprs(dashboard):
            assert prometheus.query(with_variables(expr, dashboard)), f"{path.name}: {expr}"

    rules = wait_for(lambda: rules_evaluated(prometheus), timeout=SCRAPE_WAIT_SECONDS)
    shipped = yaml.safe_load(SHIPPED_RULES.read_text())
    names = {rule["alert"] for group in shipped["groups"] for rule in group["rules"]}
    assert {rule["name"] for rule in rules} == names
    assert [rule for rule in rules if rule["health"] != "ok"] == []


@pytest.mark.parametrize(
    ("command", "path"),
    [("config", SHIPPED_CONFIG), ("rules", SHIPPED_RULES)],
    ids=["config", "rules"],
)
def test_promtool_accepts_the_shipped_files(command, path):
    promtool = require("promtool", "prometheus")
    checked = subprocess.run(
        [promtool, "check", command, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_hub_up_is_red_and_lists_a_hub_that_is_down(hub_factory, smtp, prometheus_for):
    """With two hubs scraped and one down, the Hub up stat reads 0 (red) and the
    instance selector offers the down one: a sum read 1, green, with a hub down."""
    _, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    down = f"127.0.0.1:{free_port()}"
    prometheus = prometheus_for(hub, down)
    wait_for(lambda: len(prometheus.query('up{job="hub"}')) == 2, timeout=SCRAPE_WAIT_SECONDS)
    dashboard = load(DASHBOARDS[0])
    (hub_up,) = [p for p in dashboard["panels"] if p["title"] == "Hub up"]
    (stat,) = prometheus.query(with_variables(hub_up["targets"][0]["expr"], dashboard))
    steps = hub_up["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert float(stat["value"][1]) == 0.0
    assert [s["color"] for s in steps if s["value"] is None or s["value"] <= 0] == ["red"]
    (selector,) = variable_queries(dashboard)
    listed = prometheus.api("label/instance/values", **{"match[]": 'up{job="hub"}'})
    assert selector == 'label_values(up{job="hub"}, instance)'
    assert down in listed


# A sender posting every 2 minutes whose secret was rotated: every delivery refused.
# A busy sender with a few refusals among many accepted ones does not fire.
REJECTION_RULE_TEST = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'hub_webhooks_received_total{{job="hub",source="github",outcome="unauthorized"}}'
        values: '0+0.5x40'
      - series: 'hub_webhooks_received_total{{job="hub",source="github",outcome="accepted"}}'
        values: '0x40'
      - series: 'hub_webhooks_received_total{{job="hub",source="shop",outcome="invalid"}}'
        values: '0+1x40'
      - series: 'hub_webhooks_received_total{{job="hub",source="shop",outcome="accepted"}}'
        values: '0+100x40'
    alert_rule_test:
      - eval_time: 30m
        alertname: HubIngestRejectionsSpiking
        exp_alerts:
          - exp_labels: {{severity: warning, source: github}}
            exp_annotations:
              summary: "hub is rejecting webhooks from github"
              description: >-
                More than 10% of the deliveries from source github, and at least 3, were
                rejected in each 15-minute window for 10 minutes (see
                hub_webhooks_received_total by outcome and hub_auth_failures_total by
                reason): a sender is misconfigured, its secret was rotated, or someone is
                probing the endpoint.
"""


def promtool_test_rules(tmp_path: Path, tests: str) -> None:
    """Run promtool's unit tests ``tests`` (a test file's text, ``{rules}`` standing for
    the shipped rules) and fail with its output unless they pass."""
    promtool = require("promtool", "prometheus")
    test_file = tmp_path / "rule-tests.yml"
    test_file.write_text(tests.format(rules=SHIPPED_RULES))
    tested = subprocess.run(
        [promtool, "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_low_volume_sender_refused_every_time_fires_the_rejection_rule(tmp_path):
    """The rule once asked for 0.1 refusals a second: a sender posting every few minutes
    with a rotated secret was refused every time and never alerted on."""
    promtool_test_rules(tmp_path, REJECTION_RULE_TEST)


# 200 notifications pending for 40 minutes, flat, fire after 15 minutes; a backlog
# growing by 4 a minute passes 50 at minute 13 and fires 15 minutes later; a spike of
# 200 for 10 minutes never fires.
BACKLOG_RULE_TEST = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'hub_outbox_notifications{{job="hub",instance="flat",state="pending"}}'
        values: '200x40'
    alert_rule_test:
      - eval_time: 14m
        alertname: HubOutboxBacklogHigh
        exp_alerts: []
      - eval_time: 15m
        alertname: HubOutboxBacklogHigh
        exp_alerts:
          - exp_labels: {{severity: warning, instance: flat, job: hub, state: pending}}
            exp_annotations:
              summary: "hub outbox backlog is high (200 pending)"
              description: >-
                More than 50 notifications have been pending in hub's outbox on flat for
                15 minutes: a channel is slow or failing, or sends cannot keep up, and
                notifications are delayed. See GET /api/v1/notifications for the errors.
  - interval: 1m
    input_series:
      - series: 'hub_outbox_notifications{{job="hub",instance="growing",state="pending"}}'
        values: '0+4x40'
    alert_rule_test:
      - eval_time: 27m
        alertname: HubOutboxBacklogHigh
        exp_alerts: []
      - eval_time: 28m
        alertname: HubOutboxBacklogHigh
        exp_alerts:
          - exp_labels: {{severity: warning, instance: growing, job: hub, state: pending}}
            exp_annotations:
              summary: "hub outbox backlog is high (112 pending)"
              description: >-
                More than 50 notifications have been pending in hub's outbox on growing
                for 15 minutes: a channel is slow or failing, or sends cannot keep up, and
                notifications are delayed. See GET /api/v1/notifications for the errors.
  - interval: 1m
    input_series:
      - series: 'hub_outbox_notifications{{job="hub",instance="spike",state="pending"}}'
        values: '200x10 0x30'
    alert_rule_test:
      - eval_time: 10m
        alertname: HubOutboxBacklogHigh
        exp_alerts: []
      - eval_time: 30m
        alertname: HubOutboxBacklogHigh
        exp_alerts: []
"""


def test_the_backlog_rule_fires_on_a_high_backlog_flat_or_growing_and_not_on_a_spike(tmp_path):
    """It asked for growth too: 200 pending for 40 minutes, flat, never fired, and a
    backlog growing by 4 a minute fired only 17 minutes after passing 50."""
    promtool_test_rules(tmp_path, BACKLOG_RULE_TEST)


# A reload refused at minute 5 and never fixed fires 5 minutes later; one fixed within
# 3 minutes does not fire.
RELOAD_RULE_TEST = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'hub_config_last_reload_successful{{job="hub",instance="broken"}}'
        values: '1x4 0x20'
      - series: 'hub_config_last_reload_successful{{job="hub",instance="fixed"}}'
        values: '1x4 0x2 1x20'
    alert_rule_test:
      - eval_time: 9m
        alertname: HubConfigReloadFailed
        exp_alerts: []
      - eval_time: 10m
        alertname: HubConfigReloadFailed
        exp_alerts:
          - exp_labels: {{severity: critical, instance: broken, job: hub}}
            exp_annotations:
              summary: "hub broken refused its config file"
              description: >-
                The last config reload on hub broken (POST /-/reload or SIGHUP) was
                refused at least 5 minutes ago: hub still runs the config it had, the
                edits are not in force, and hub would not start with the file as it is.
                The reload's answer and hub's log (event=config_reload outcome=failure)
                list the problems; so does hub check-config on the file.
"""


def test_a_reload_refused_for_five_minutes_fires_and_one_fixed_sooner_does_not(tmp_path):
    promtool_test_rules(tmp_path, RELOAD_RULE_TEST)


# A worker failing every second from minute 5 fires 5 minutes after it passes 10 failures;
# a burst of 30 failures in one minute, over at once, does not fire.
WORKER_RULE_TEST = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'hub_worker_round_failures_total{{job="hub",instance="a",worker="outbox"}}'
        values: '0x4 60+60x20'
      - series: 'hub_worker_round_failures_total{{job="hub",instance="a",worker="watchdog"}}'
        values: '0x4 30x20'
    alert_rule_test:
      - eval_time: 9m
        alertname: HubWorkerRoundsFailing
        exp_alerts: []
      - eval_time: 10m
        alertname: HubWorkerRoundsFailing
        exp_alerts: &failing
          - exp_labels: {{severity: critical, instance: a, worker: outbox}}
            exp_annotations:
              summary: "hub's outbox worker is failing"
              description: >-
                The outbox worker on hub a has failed round after round for 5 minutes:
                while the outbox worker fails nobody is notified, while the dispatcher
                fails no message is queued, and the escalator, watchdog and expirer stop
                escalating, watching heartbeats and ending alerts. hub's log has each
                failure with its traceback (event=worker_round_failed).
      - eval_time: 20m
        alertname: HubWorkerRoundsFailing
        exp_alerts: *failing  # still failing ten minutes later
"""


def test_a_worker_failing_for_five_minutes_fires_and_a_burst_does_not(tmp_path):
    """A worker's failed rounds were only logged: a sender failing every second, nobody
    notified, fired nothing."""
    promtool_test_rules(tmp_path, WORKER_RULE_TEST)


# An item broken from minute 5 keeps its last try failed, tried ever more rarely, and fires
# 10 minutes later; one that failed twice and then went through does not.
ITEM_RULE_TEST = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'hub_worker_items_failing{{job="hub",instance="a",worker="escalator"}}'
        values: '0x4 1x30'
      - series: 'hub_worker_items_failing{{job="hub",instance="a",worker="outbox"}}'
        values: '0x4 1 1 1 0x30'
    alert_rule_test:
      - eval_time: 14m
        alertname: HubWorkerItemsFailing
        exp_alerts: []
      - eval_time: 15m
        alertname: HubWorkerItemsFailing
        exp_alerts:
          - exp_labels: {{severity: critical, instance: a, worker: escalator}}
            exp_annotations:
              summary: "hub's escalator worker keeps setting an item aside"
              description: >-
                The escalator worker on hub a has set aside an item it could not handle,
                try after try, for 10 minutes: the other incidents go on, but this
                one (an incident's message or escalation step, a notification, a
                heartbeat, an alert's end) does not. hub's log names each item
                (event=worker_item_failed): repair or resolve it.
"""


def test_an_item_set_aside_for_ten_minutes_fires_and_one_that_healed_does_not(tmp_path):
    """Items a worker set aside were only logged and counted: one incident that never
    paged again fired nothing."""
    promtool_test_rules(tmp_path, ITEM_RULE_TEST)


# Refused 3 times a minute from minute 5 (every connection held busy) fires 10 minutes
# later; a burst of 50 refusals in one minute, over at once, does not.
REFUSED_RULE_TEST = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'hub_connections_refused_total{{job="hub",instance="busy"}}'
        values: '0x4 3+3x40'
      - series: 'hub_connections_refused_total{{job="hub",instance="burst"}}'
        values: '0x4 50x40'
    alert_rule_test:
      - eval_time: 14m
        alertname: HubConnectionsRefused
        exp_alerts: []
      - eval_time: 15m
        alertname: HubConnectionsRefused
        exp_alerts:
          - exp_labels: {{severity: warning, instance: busy}}
            exp_annotations:
              summary: "hub busy is refusing connections at its cap"
              description: >-
                hub busy answered 15 new connections 503 in the last 5 minutes, and has
                kept refusing them for 10 minutes: all of its [server] max_connections
                were open, none idle between requests to close for them (its log's
                event=connections_capped lines say when). Look for a client holding
                connections open (many unfinished requests from one address); if the
                load is real, raise the cap: [server] max_connections, and the
                open-files limit it stays under (LimitNOFILE of the service; the default
                cap is that limit less 256), then restart hub.
"""


def test_refusals_for_ten_minutes_fire_and_a_burst_does_not(tmp_path):
    """Refusals at the cap were only counted and logged: clients turned away for an hour
    fired nothing."""
    promtool_test_rules(tmp_path, REFUSED_RULE_TEST)


# 950 of 1000 connections open from minute 5 fires 5 minutes later; 1000 for 3 minutes,
# then 100, does not.
NEAR_CAP_RULE_TEST = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'hub_connections_open{{job="hub",instance="near"}}'
        values: '0x4 950x20'
      - series: 'hub_connections_max{{job="hub",instance="near"}}'
        values: '1000x25'
      - series: 'hub_connections_open{{job="hub",instance="spike"}}'
        values: '0x4 1000x3 100x20'
      - series: 'hub_connections_max{{job="hub",instance="spike"}}'
        values: '1000x25'
    alert_rule_test:
      - eval_time: 9m
        alertname: HubConnectionsNearCap
        exp_alerts: []
      - eval_time: 10m
        alertname: HubConnectionsNearCap
        exp_alerts:
          - exp_labels: {{severity: warning, instance: near, job: hub}}
            exp_annotations:
              summary: "hub near holds 950 connections, near its cap"
              description: >-
                More than 90% of [server] max_connections have been open on hub near for
                5 minutes. At the cap, idle keep-alive connections are closed to make
                room, and with none idle new clients are answered 503
                (HubConnectionsRefused). Look for a client holding connections open
                (many unfinished requests from one address); if the load is real, raise
                [server] max_connections and the open-files limit it stays under
                (LimitNOFILE of the service), then restart hub.
"""


def test_connections_near_the_cap_for_five_minutes_fire_and_a_spike_does_not(tmp_path):
    promtool_test_rules(tmp_path, NEAR_CAP_RULE_TEST)


def test_the_heartbeat_panels_show_one_never_pinged_one_paused_and_no_data_for_a_hub_that_is_down(
    hub_factory, smtp, prometheus_for
):
    """A heartbeat that never pinged was missing from "time since last ping"; the
    overdue stat read a green 0 with hub stopped, while the counts beside it had no data;
    a paused heartbeat read overdue 0 like a healthy one."""
    _, smtp_port = smtp
    hub = hub_factory(BASE_CONFIG + HEARTBEATS + WRITER_TOKEN, mail_url=mail_url(smtp_port))
    record_heartbeat_ping(hub, "nightly-backup")
    with hub.client(headers={"Authorization": "Bearer write-token"}) as http:
        http.post("/api/v1/heartbeats/weekly-report/pause").raise_for_status()
    prometheus = prometheus_for(hub)
    wait_for(lambda: scraped_at_least(prometheus, 2), timeout=SCRAPE_WAIT_SECONDS)
    dashboard = load(DASHBOARDS[0])
    (overdue,) = panel(dashboard, "Heartbeats overdue", "stat")["targets"]
    since = panel(dashboard, "Heartbeats: time since last ping", "timeseries")["targets"]
    each_overdue, paused = panel(dashboard, "Heartbeats overdue and paused", "timeseries")[
        "targets"
    ]

    def shown(target: dict) -> dict[str, float]:
        result = prometheus.query(with_variables(target["expr"], dashboard))
        return {s["metric"].get("heartbeat", ""): float(s["value"][1]) for s in result}

    pinged, never = (shown(target) for target in since)
    assert list(pinged) == ["nightly-backup"]
    assert list(never) == ["weekly-report"] and never["weekly-report"] >= 0
    assert shown(overdue) == {"": 0}
    assert shown(each_overdue) == {"nightly-backup": 0, "weekly-report": 0}
    assert shown(paused) == {"nightly-backup": 0, "weekly-report": 1}
    hub.stop()
    wait_for(lambda: prometheus.query('up{job="hub"} == 0'), timeout=SCRAPE_WAIT_SECONDS)
    assert shown(overdue) == {}


def test_the_connections_panel_and_rules_see_a_real_hub_near_and_at_its_cap(
    tmp_path, prometheus_for
):
    """The cap was not exported: nothing could show how close hub was to it, and its
    refusals were counted with nothing to chart or alert on them."""
    cap = 20
    hub = hub_process(tmp_path, with_server_keys(f"max_connections = {cap}")).start()
    try:
        prometheus = prometheus_for(hub)
        instance = hub.url.removeprefix("http://")
        dashboard = load(DASHBOARDS[0])
        open_now, most, refused = panel(dashboard, "Connections", "timeseries")["targets"]
        rules = shipped_rules()

        def shown(expr: str) -> dict[str, float]:
            result = prometheus.query(with_variables(expr, dashboard))
            return {s["metric"]["instance"]: float(s["value"][1]) for s in result}

        wait_for(lambda: scraped_at_least(prometheus, 2), timeout=SCRAPE_WAIT_SECONDS)
        # unfinished requests, held by the hub until request_timeout (30 s)
        busy = [connect(hub, WEBHOOK_HEAD) for _ in range(cap - 1)]
        # with the scrape's own connection, the hub is at its cap
        wait_for(lambda: shown(open_now["expr"]) == {instance: cap}, SCRAPE_WAIT_SECONDS)
        assert shown(most["expr"]) == {instance: cap}
        assert list(shown(rules["HubConnectionsNearCap"]["expr"])) == [instance]
        assert shown(refused["expr"]) == {instance: 0}

        # the first closes the idle scrape connection to make room, the others are refused
        busy += [connect(hub, WEBHOOK_HEAD) for _ in range(3)]
        status, _, _ = answer(busy[-1])
        assert status == "HTTP/1.1 503 Service Unavailable"
        # while every place is taken, the scrapes come in past the cap and see it
        wait_for(lambda: shown(refused["expr"]).get(instance, 0) > 0, SCRAPE_WAIT_SECONDS)
        assert shown(rules["HubConnectionsRefused"]["expr"])[instance] >= 1
        assert shown(open_now["expr"]) == {instance: cap}
        for conn in busy:
            conn.close()
    finally:
        hub.stop()
