"""Routes reached through ``continue``, on a real server with real email, as a team
coming from Alertmanager writes them: a route that also tells the DBAs in front of the
route that pages on critical alerts. Every alert's routes are heard, whichever alert
opened the incident, and the paging route's escalation pages on-call. Each route's
time intervals mute the receiver it brings, as Alertmanager mutes each route's group:
a receiver is held back only while every route bringing it is muted, and what the API,
the console, the CLI and the Alertmanager API call muted is an alert no route tells."""

from __future__ import annotations

import json

from conftest import MovedClock, RunningHub, wait_for
from console_support import sign_in
from notify_support import WRITER, fire, mail_to, metric, receiver, route, start_hub
from test_config import ROOT, run_hub

PAGE = '[[escalations]]\nname = "page"\nsteps = [{ after = "0s", notify = ["oncall"] }]\n'
DBA_THEN_PAGER = route("dba", 'service="postgres"', continue_=True) + route(
    "pager", 'severity="critical"', escalation="page"
)
NIGHTS = """
[[time_intervals]]
name = "nights"
[[time_intervals.time_intervals]]
times = [{ start_time = "00:00", end_time = "06:00" }]
"""
OFFICE_HOURS = """
[[time_intervals]]
name = "office"
[[time_intervals.time_intervals]]
times = [{ start_time = "08:00", end_time = "18:00" }]
"""
AT_NIGHT = ["nights"]
DBA_QUIET_AT_NIGHT = route(
    "dba", 'service="postgres"', continue_=True, mute_time_intervals=AT_NIGHT
)
"""The team's route, in front of the paging route, muted at night."""
DAY = 12 * 3600
"""From the night the tests move the clock to (02:00 UTC) to the afternoon."""


def dba_and_pager(hub_factory, port: int, routes: str = DBA_THEN_PAGER, **values):
    """ops at the root; postgres alerts also to dba (continue); critical ones to pager,
    whose route escalates to oncall (or ``routes`` as given)."""
    receivers = "".join(
        receiver(name, mail_to(port, f"{name}@example.com"))
        for name in ("ops", "dba", "pager", "oncall")
    )
    tables = PAGE + NIGHTS + OFFICE_HOURS
    return start_hub(hub_factory, receivers, routes=routes, tables=tables, **values)


def at_night(hub_factory, port: int, routes: str) -> tuple[RunningHub, MovedClock]:
    """A hub on ``routes`` whose clock reads 02:00 UTC, inside ``nights``; a repeat is
    not due within the day the tests move on."""
    clock = MovedClock()
    clock.advance((2 * 3600 - clock()) % (24 * 3600))
    hub = dba_and_pager(hub_factory, port, routes, clock=clock, repeat_interval="48h")
    return hub, clock


def held_by_intervals(http) -> float | None:
    """Alerts grouping held back from a receiver by a window or time interval (each
    counted once per receiver, when first held)."""
    text = http.get("/metrics").text
    return metric(text, "hub_notifications_suppressed_total", reason="maintenance")


def told(mailbox) -> list[str]:
    """Who was sent a message, in order."""
    return [str(m["To"]).split("@")[0] for m in mailbox.messages]


def test_a_continue_route_in_front_keeps_the_paging_routes_escalation(hub_factory, smtp):
    mailbox, port = smtp
    hub = dba_and_pager(hub_factory, port)
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "postgres down", severity="critical", service="postgres")[
            "incident_id"
        ]
        wait_for(lambda: len(mailbox.messages) == 3)
        incident = http.get(f"/api/v1/incidents/{incident_id}").json()
    assert sorted(told(mailbox)) == ["dba", "oncall", "pager"]
    assert incident["receivers"] == ["dba", "pager"]
    assert incident["escalation"] == "page"
    assert [e["kind"] for e in incident["timeline"]].count("escalated") == 1


def test_a_critical_alert_joining_a_warnings_incident_reaches_the_paging_route(hub_factory, smtp):
    mailbox, port = smtp
    hub = dba_and_pager(hub_factory, port)
    with hub.client(headers=WRITER) as http:
        first = fire(http, "replica lag", service="postgres", instance="r1")
        wait_for(lambda: told(mailbox) == ["dba"])
        second = fire(http, "primary lag", severity="critical", service="postgres", instance="p1")
        assert second["incident_id"] == first["incident_id"]
        wait_for(lambda: len(mailbox.messages) == 4)
        incident = http.get(f"/api/v1/incidents/{first['incident_id']}").json()
    with hub.client() as browser:
        sign_in(browser, "write-token")
        page = browser.get(f"/incidents/{first['incident_id']}").text
    assert f"alert #{second['id']} reaches pager; escalation page starts" in page
    assert sorted(told(mailbox)[1:]) == ["dba", "oncall", "pager"]
    paged = mailbox.messages[told(mailbox).index("pager")]
    assert str(paged["Subject"]) == f"[FIRING:2] #{first['incident_id']} primary lag"
    assert incident["receivers"] == ["dba", "pager"]
    assert incident["escalation"] == "page"
    joined = [e for e in incident["timeline"] if e["kind"] == "receivers_added"]
    reached = {"receivers": ["pager"], "alert_id": second["id"], "escalation": "page"}
    assert [e["detail"] for e in joined] == [reached]


def test_a_team_route_muted_at_night_does_not_hold_the_paging_route_after_it(hub_factory, smtp):
    """Its intervals mute the team's receiver only: the page still goes out at night."""
    mailbox, port = smtp
    routes = DBA_QUIET_AT_NIGHT + route("pager", 'severity="critical"')
    hub, clock = at_night(hub_factory, port, routes)
    with hub.client(headers=WRITER) as http:
        fire(http, "postgres down", severity="critical", service="postgres")
        wait_for(lambda: told(mailbox) == ["pager"] and held_by_intervals(http) == 1.0)
        clock.advance(DAY)
        wait_for(lambda: len(mailbox.messages) == 2)
    assert told(mailbox) == ["pager", "dba"]
    assert "postgres down" in str(mailbox.messages[1]["Subject"])


def test_a_team_route_muted_at_night_does_not_hold_the_paging_routes_escalation(hub_factory, smtp):
    """The steps are the paging route's: they were held by the team route's intervals,
    the first matched route's, so on-call was paged only in the morning."""
    mailbox, port = smtp
    routes = DBA_QUIET_AT_NIGHT + route("pager", 'severity="critical"', escalation="page")
    hub, _ = at_night(hub_factory, port, routes)
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "postgres down", severity="critical", service="postgres")[
            "incident_id"
        ]
        wait_for(lambda: sorted(told(mailbox)) == ["oncall", "pager"])
        timeline = http.get(f"/api/v1/incidents/{incident_id}").json()["timeline"]
    kinds = [entry["kind"] for entry in timeline]
    assert (kinds.count("escalated"), kinds.count("escalation_held")) == (1, 0)


def test_a_continue_routes_own_mute_interval_holds_back_its_receiver(hub_factory, smtp):
    mailbox, port = smtp
    routes = route("dba", 'service="postgres"', continue_=True) + route(
        "pager", 'severity="critical"', mute_time_intervals=AT_NIGHT
    )
    hub, clock = at_night(hub_factory, port, routes)
    with hub.client(headers=WRITER) as http:
        fire(http, "postgres down", severity="critical", service="postgres")
        wait_for(lambda: told(mailbox) == ["dba"] and held_by_intervals(http) == 1.0)
        clock.advance(DAY)
        wait_for(lambda: len(mailbox.messages) == 2)
    assert told(mailbox) == ["dba", "pager"]


def test_a_receiver_two_routes_bring_is_told_while_one_of_them_is_muted(hub_factory, smtp):
    """As in Alertmanager, where each route's group notifies it on its own."""
    mailbox, port = smtp
    routes = route(
        "pager", 'service="postgres"', continue_=True, mute_time_intervals=AT_NIGHT
    ) + route("pager", 'severity="critical"')
    hub, _ = at_night(hub_factory, port, routes)
    with hub.client(headers=WRITER) as http:
        incident_id = fire(http, "postgres down", severity="critical", service="postgres")[
            "incident_id"
        ]
        wait_for(lambda: told(mailbox) == ["pager"])
        incident = http.get(f"/api/v1/incidents/{incident_id}").json()
        assert held_by_intervals(http) in (None, 0.0)
    assert incident["receivers"] == ["pager"]


def muted_ids(http, path: str, muted: bool) -> list[int]:
    """The ids a list shows under ``muted``."""
    return [row["id"] for row in http.get(path, params={"muted": str(muted).lower()}).json()]


def console_marks_muted(hub: RunningHub, incident_id: int) -> bool:
    """Whether the console marks the incident, in the list or on its page, "muted"."""
    with hub.client() as browser:
        sign_in(browser, "write-token")
        pages = browser.get("/").text + browser.get(f"/incidents/{incident_id}").text
    return '<span class="badge st-muted">muted</span>' in pages


def test_an_alert_a_paging_route_still_pages_for_at_night_is_shown_as_not_muted(hub_factory, smtp):
    """The team's route is muted, but pager is told: nothing calls the alert muted."""
    mailbox, port = smtp
    routes = DBA_QUIET_AT_NIGHT + route("pager", 'severity="critical"')
    hub, _ = at_night(hub_factory, port, routes)
    with hub.client(headers=WRITER) as http:
        alert = fire(http, "postgres down", severity="critical", service="postgres")
        wait_for(lambda: told(mailbox) == ["pager"])
        shown = http.get(f"/api/v1/alerts/{alert['id']}").json()
        lists = {
            (path, muted): muted_ids(http, path, muted)
            for path in ("/api/v1/alerts", "/api/v1/incidents")
            for muted in (True, False)
        }
        (am_alert,) = http.get("/api/v2/alerts").json()
    assert shown["mutes"] == []
    assert lists["/api/v1/alerts", False] == [alert["id"]]
    assert lists["/api/v1/incidents", False] == [alert["incident_id"]]
    assert lists["/api/v1/alerts", True] == lists["/api/v1/incidents", True] == []
    assert am_alert["status"]["state"] == "active"
    assert not console_marks_muted(hub, alert["incident_id"])


def test_an_alert_every_route_of_which_is_muted_is_muted_by_all_their_intervals(hub_factory, smtp):
    """Nobody is told at night: the alert is muted, by the intervals of both routes."""
    mailbox, port = smtp
    routes = DBA_QUIET_AT_NIGHT + route(
        "pager", 'severity="critical"', active_time_intervals=["office"]
    )
    hub, _ = at_night(hub_factory, port, routes)
    with hub.client(headers=WRITER) as http:
        alert = fire(http, "postgres down", severity="critical", service="postgres")
        wait_for(lambda: held_by_intervals(http) == 2.0)
        shown = http.get(f"/api/v1/alerts/{alert['id']}").json()
        lists = {muted: muted_ids(http, "/api/v1/alerts", muted) for muted in (True, False)}
        (am_alert,) = http.get("/api/v2/alerts").json()
    listed = run_hub(
        "--url", hub.url, "--token", "write-token", "alerts", "--muted", "-o", "json", cwd=ROOT
    )
    by = ["mute_time_intervals:nights", "active_time_intervals:office"]
    assert shown["mutes"] == [{"reason": "maintenance", "by": by}]
    assert (lists[True], lists[False]) == ([alert["id"]], [])
    assert am_alert["status"] == {"state": "suppressed", "silencedBy": [], "inhibitedBy": []}
    assert [row["id"] for row in json.loads(listed.stdout)] == [alert["id"]]
    assert console_marks_muted(hub, alert["incident_id"])
    assert mailbox.messages == []
