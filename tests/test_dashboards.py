"""The shipped Grafana dashboards and provisioning are well formed and only chart metrics
hub really exposes, so a renamed metric cannot leave a silently empty panel behind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import mail_url
from test_metrics_catalogue import queryable_names, scrape_hub

GRAFANA = Path(__file__).parent.parent / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
_METRIC = re.compile(r"\bhub_[a-z0-9_]+")
_RANGE = re.compile(r"\[([^\]]+)\]")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def shipped_rules() -> dict[str, dict]:
    """The shipped alerting rules about hub, by alert name."""
    rules = yaml.safe_load((GRAFANA / "prometheus" / "hub-rules.yml").read_text())
    return {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}


def panel(dashboard: dict, title: str, kind: str = "stat") -> dict:
    """The one panel of this title and type (a stat and a graph may share a title)."""
    (found,) = [p for p in dashboard["panels"] if p["title"] == title and p["type"] == kind]
    return found


def panel_exprs(dashboard: dict) -> list[str]:
    """Every PromQL expression of every panel, as written in the dashboard."""
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def variable_queries(dashboard: dict) -> list[str]:
    return [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]


def with_variables(expr: str, dashboard: dict, rate_interval: str = "1m") -> str:
    """The expression as Grafana would send it: intervals filled in, every query
    variable set to "All" (its ``allValue``)."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__interval", "15s")
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            value = variable.get("allValue") or ".*"
            expr = re.sub(rf"\$\{{{variable['name']}\}}|\${variable['name']}\b", value, expr)
    return expr


def test_there_is_a_dashboard_and_every_uid_is_unique():
    assert DASHBOARDS, "no dashboards under grafana/dashboards"
    uids = [load(path)["uid"] for path in DASHBOARDS]
    assert all(uids)
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_a_dashboard_uses_a_current_schema_and_a_datasource_variable(path):
    dashboard = load(path)
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_has_a_unique_id_a_datasource_and_queries(path):
    panels = load(path)["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(set(ids)) == len(ids)
    for panel in panels:
        assert panel["type"] in ("timeseries", "stat"), panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_range_is_the_rate_interval(path):
    for expr in panel_exprs(load(path)):
        assert set(_RANGE.findall(expr)) <= {"$__rate_interval"}, expr


def test_every_metric_a_dashboard_queries_is_exposed_by_hub(hub_factory, smtp):
    _, smtp_port = smtp
    exposed = queryable_names(scrape_hub(hub_factory(mail_url=mail_url(smtp_port))))
    for path in DASHBOARDS:
        dashboard = load(path)
        for expr in panel_exprs(dashboard) + variable_queries(dashboard):
            unknown = set(_METRIC.findall(expr)) - exposed
            assert not unknown, f"{path.name}: {expr} uses {sorted(unknown)}"


def test_provisioning_points_grafana_at_prometheus_and_the_dashboards():
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    assert [d["type"] for d in datasources["datasources"]] == ["prometheus"]
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/hub.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]


def test_the_readme_names_every_shipped_rule():
    """The README's list of hub's own alerting rules is what an operator routes on."""
    names = list(shipped_rules())
    readme = (GRAFANA.parent / "README.md").read_text()
    section = readme.split("## Monitoring hub with Prometheus and Grafana")[1]
    listed = section.split("**Grafana**")[0]
    assert [name for name in names if f"`{name}`" not in listed] == []


def test_the_outbox_stat_shows_what_the_backlog_rule_watches_and_is_red_where_it_fires():
    """The stat summed pending and sending and turned red at 50, while the rule watched
    pending above 50: a stat and a rule about one backlog must agree."""
    rule = shipped_rules()["HubOutboxBacklogHigh"]["expr"]
    stat = panel(load(DASHBOARDS[0]), "Outbox pending")
    selector, threshold = re.fullmatch(r"(hub_outbox_notifications\{.*\}) > (\d+)", rule).groups()
    shown = re.search(r"hub_outbox_notifications\{.*?\}", stat["targets"][0]["expr"]).group()
    assert shown.replace('instance=~"$instance"', 'job="hub"') == selector
    steps = stat["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps if s["color"] == "red"] == [int(threshold) + 1]


def test_the_heartbeat_panel_tells_a_paused_heartbeat_from_a_healthy_one():
    """Both read overdue 0; the panel draws each heartbeat's paused gauge beside it."""
    targets = panel(load(DASHBOARDS[0]), "Heartbeats overdue and paused", "timeseries")["targets"]
    assert [(t["expr"], t["legendFormat"]) for t in targets] == [
        (
            'max by (heartbeat) (hub_heartbeat_overdue{instance=~"$instance"})',
            "{{heartbeat}} overdue",
        ),
        (
            'max by (heartbeat) (hub_heartbeat_paused{instance=~"$instance"})',
            "{{heartbeat}} paused",
        ),
    ]
