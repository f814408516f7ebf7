"""Routes reached through ``continue``, on a real server with real email, as a team
coming from Alertmanager writes them: a route that also tells the DBAs in front of the
route that pages on critical alerts. Every alert's routes are heard, whichever alert
opened the incident, and the paging route's escalation pages on-call."""

from __future__ import annotations

from conftest import wait_for
from console_support import sign_in
from notify_support import WRITER, fire, mail_to, receiver, route, start_hub

PAGE = '[[escalations]]\nname = "page"\nsteps = [{ after = "0s", notify = ["oncall"] }]\n'
DBA_THEN_PAGER = route("dba", 'service="postgres"', continue_=True) + route(
    "pager", 'severity="critical"', escalation="page"
)


def dba_and_pager(hub_factory, port: int):
    """ops at the root; postgres alerts also to dba (continue); critical ones to pager,
    whose route escalates to oncall."""
    receivers = "".join(
        receiver(name, mail_to(port, f"{name}@example.com"))
        for name in ("ops", "dba", "pager", "oncall")
    )
    return start_hub(hub_factory, receivers, routes=DBA_THEN_PAGER, tables=PAGE)


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
