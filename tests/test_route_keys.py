"""An incident stays with the route that opened it when a reload inserts or reorders
routes, and across the upgrade from group keys that named routes by their position.

Found by an audit: the group key began with the owning route's position, so after a
reload put a new route first, an alert of the route now at that position joined the
incident another route had opened there, and its own receiver was never paged."""

from __future__ import annotations

import sqlite3

import httpx
from conftest import AUTH, BASE_CONFIG, RunningHub, mail_url, wait_for
from test_reload import ADMIN, TOKENS

NOBODY_ROUTE = """
[[route.routes]]
matchers = ['team="nobody"']
escalation = "nobody"
"""
ROUTES = (
    'group_by = ["alertname", "service"]\n'
    + NOBODY_ROUTE
    + """
[[route.routes]]
matchers = ['team="fragile"']
receiver = "fragile"
"""
)
INSERTED_FIRST = """
[[route.routes]]
matchers = ['team="new"']
receiver = "fragile"
"""
RECEIVERS = """
[[receivers]]
name = "fragile"
urls = ["mailto://127.0.0.1:{smtp_port}?from=hub@example.com&to=fragile@example.com&mode=insecure"]

[[receivers]]
name = "pager"
urls = ["mailto://127.0.0.1:{smtp_port}?from=hub@example.com&to=pager@example.com&mode=insecure"]

[[escalations]]
name = "nobody"
steps = [{{ after = "0s", notify = ["pager"] }}]
"""
# Group alertname="F". Keyed by position, team="fragile"'s was 0.1:{alertname="F",service=""},
# and so was team="nobody"'s once the reload put that route at 0.1.
ALERT = {"status": "firing", "summary": "F is down", "labels": {"alertname": "F"}}


def start(hub_factory, smtp_port: int, extra: str = "") -> RunningHub:
    return hub_factory(
        BASE_CONFIG + ROUTES + TOKENS + RECEIVERS + extra,
        smtp_port=smtp_port,
        mail_url=mail_url(smtp_port),
    )


def fire(http: httpx.Client, team: str, host: str, **more: str) -> int:
    """An alert of group alertname="F" for ``team``; returns its incident's id."""
    labels = {**ALERT["labels"], "team": team, "host": host, **more}
    answer = http.post("/webhooks/shop", json={**ALERT, "labels": labels}, headers=AUTH)
    assert answer.status_code == 202, answer.text
    return answer.json()["alerts"][0]["incident_id"]


def incident(http: httpx.Client, incident_id: int) -> dict:
    return http.get(f"/api/v1/incidents/{incident_id}", headers=ADMIN).json()


def recipients(mailbox) -> set[str]:
    return {str(m["To"]).split("@")[0] for m in mailbox.messages}


def test_after_a_route_is_inserted_first_each_route_keeps_its_own_incident(hub_factory, smtp):
    mailbox, smtp_port = smtp
    hub = start(hub_factory, smtp_port)
    with hub.client() as http:
        fragile = fire(http, "fragile", "a")
        wait_for(lambda: recipients(mailbox) == {"fragile"})
        hub.config_path.write_text(
            hub.config_path.read_text().replace(NOBODY_ROUTE, INSERTED_FIRST + NOBODY_ROUTE)
        )
        assert http.post("/-/reload", headers=ADMIN).status_code == 200

        nobody = fire(http, "nobody", "b")
        assert nobody != fragile
        opened = incident(http, nobody)
        assert (opened["route_id"], opened["receivers"], opened["escalation"]) == (
            "0.1",
            ["ops"],
            "nobody",
        )
        assert opened["escalation_state"]["policy"] == "nobody"
        wait_for(lambda: recipients(mailbox) == {"fragile", "ops", "pager"})

        assert fire(http, "fragile", "c") == fragile
        joined = incident(http, fragile)
        assert (joined["route_id"], joined["receivers"], joined["escalation"]) == (
            "0.1",
            ["fragile"],
            None,
        )
        assert [a["labels"]["host"] for a in joined["alerts"]] == ["a", "c"]


def test_an_upgrade_rekeys_the_incidents_alerts_may_join_so_their_group_still_does(
    hub_factory, smtp
):
    """Incidents an older hub keyed ``<position>:{...}`` take the key of the route now at
    that position when the hub starts, the open ones and those it may still reopen; one
    whose position the config no longer has keeps its key."""
    hub = start(hub_factory, smtp[1], '[incidents]\nreopen_window = "1h"\n')
    with hub.client(headers=ADMIN) as http:
        fragile, nobody = fire(http, "fragile", "a"), fire(http, "nobody", "b")
        gone = fire(http, "fragile", "c", service="x")
        assert http.post(f"/api/v1/incidents/{nobody}/resolve", json={}).status_code == 200
    hub.stop()
    older = {
        fragile: '0.1:{alertname="F",service=""}',
        nobody: '0.0:{alertname="F",service=""}',
        gone: '0.9:{alertname="F",service="x"}',
    }
    with sqlite3.connect(hub.config_path.parent / "hub.db") as db:
        db.executemany(
            "UPDATE incidents SET group_key = ? WHERE id = ?",
            [(key, incident_id) for incident_id, key in older.items()],
        )
    db.close()
    hub.start()
    with hub.client(headers=ADMIN) as http:
        assert fire(http, "fragile", "d") == fragile
        assert fire(http, "nobody", "e") == nobody
        rekeyed = incident(http, fragile)
        assert rekeyed["group_key"] == '{}/{team="fragile"}:{alertname="F",service=""}'
        assert [a["labels"]["host"] for a in rekeyed["alerts"]] == ["a", "d"]
        reopened = incident(http, nobody)
        assert (reopened["status"], reopened["episode"]) == ("open", 2)
        assert reopened["group_key"] == '{}/{team="nobody"}:{alertname="F",service=""}'
        assert incident(http, gone)["group_key"] == older[gone]
