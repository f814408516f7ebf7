"""What the console's pages say at a glance, found missing by an on-call audit: an
escalation that reached nobody, muted incidents, dead letters waiting, heartbeats
that are down and why."""

from __future__ import annotations

import re
import sqlite3

from conftest import free_port, mail_url, wait_for
from console_support import CONSOLE_CONFIG, fire, sign_in

NOBODY_AT_THE_END = """escalation = "page"

[[schedules]]
name = "secondary"
people = [{{ name = "zoe", urls = ["{mail_url}"] }}]
rotations = [{{ participants = ["zoe"], length = "1w", start = 2099-01-05 }}]

[[escalations]]
name = "page"
steps = [{{ after = "0s", notify = ["ops"] }}, {{ after = "1s", notify = ["schedule:secondary"] }}]
"""


def start(hub_factory, more: str = ""):
    return hub_factory(CONSOLE_CONFIG + more, mail_url=mail_url(free_port()), max_attempts=1)


def test_a_finished_escalation_whose_last_step_paged_nobody_says_so_in_its_header(hub_factory):
    hub = start(hub_factory, NOBODY_AT_THE_END)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        sign_in(http, "read-token")
        page = wait_for(
            lambda: "finished" in (text := http.get(f"/incidents/{incident_id}").text) and text
        )
    header = re.search(r"<dt>Escalation</dt><dd>(.*?)</dd>", page, re.S).group(1)
    assert " ".join(header.split()) == (
        "page: finished — step 2 paged nobody: schedule secondary has nobody on call"
    )


def test_an_incident_whose_every_firing_alert_is_silenced_is_marked_muted(hub_factory):
    hub = start(hub_factory)
    live = fire(hub.url, "checkout down")["incident_id"]
    muted = fire(hub.url, "test alert", service="test")["incident_id"]
    body = {"matchers": ['service="test"'], "duration": "1h", "comment": "load test"}
    with hub.client(headers={"Authorization": "Bearer write-token"}) as api:
        assert api.post("/api/v1/silences", json=body).status_code == 201
    with hub.client() as http:
        sign_in(http, "read-token")
        listed = http.get("/").text
    rows = dict(re.findall(r'<tr data-incident="(\d+)">(.*?)</tr>', listed, re.S))
    assert '<span class="badge st-muted">muted</span>' in rows[str(muted)]
    assert "muted" not in rows[str(live)]


def test_dead_letters_are_counted_on_their_tab_and_linked_from_every_page(hub_factory):
    hub = start(hub_factory)  # its receiver's mail server is not there: one attempt dies
    fire(hub.url, "checkout down")
    with hub.client() as http:
        sign_in(http, "read-token")
        wait_for(lambda: "1 dead letter<" in http.get("/silences").text)
        pages = {path: http.get(path).text for path in ("/", "/oncall", "/notifications")}
    link = '<a class="dead-letters" href="/notifications?state=dead">1 dead letter</a>'
    for path, text in pages.items():
        assert link in text, path
    assert re.search(r">Dead letters \(1\)</a>", pages["/notifications"])


def test_a_down_heartbeat_says_why_and_links_its_incident_and_only_it_says_down(hub_factory):
    hub = start(hub_factory)
    writer = {"Authorization": "Bearer write-token"}
    with hub.client() as http:
        for name in ("backup", "etl"):
            body = {"name": name, "period": "1h"}
            assert http.post("/api/v1/heartbeats", json=body, headers=writer).status_code == 201
        assert http.post("/ping/backup/fail").status_code == 200
        incident_id = http.get("/api/v1/incidents", headers=writer).json()[0]["id"]
        sign_in(http, "read-token")
        page = http.get("/heartbeats").text
    rows = dict(re.findall(r'<tr data-heartbeat="(\w+)">(.*?)</tr>', page, re.S))
    why = re.search(r"<div class=\"sub\" data-why>(.*?)</div>", rows["backup"]).group(1)
    link = f'<a href="/incidents/{incident_id}">incident #{incident_id}</a>'
    assert why == f"failure reported · {link}"
    assert "heartbeat backup is down" in rows["backup"]
    assert "is down" not in rows["etl"] and "data-why" not in rows["etl"], "etl is new"


def test_the_incident_filter_says_it_matches_group_labels_in_this_hubs_own_labels(hub_factory):
    hub = start(hub_factory)
    with hub.client() as http:
        sign_in(http, "read-token")
        listed = http.get("/").text
    assert 'placeholder="service=&#34;...&#34;"' in listed
    hint = re.search(r'<span class="hint" id="filter-hint">(.*?)</span>', listed).group(1)
    assert hint == "matches an incident's group labels only (service), not the labels of its alerts"


def test_the_sources_page_says_where_refused_requests_are_counted(hub_factory):
    hub = start(hub_factory)
    with hub.client() as http:
        refused = http.post("/webhooks/shop", json={"status": "firing"})
        sign_in(http, "read-token")
        page = http.get("/sources").text
    assert refused.status_code == 401
    assert "Refused requests (401, 413, 415, 422, ...) are not stored" in page
    assert "hub_webhooks_received_total{source, outcome}" in page
    assert "event=webhook_refused" in page
    assert "No deliveries yet." in page


def test_dismissing_from_an_incident_comes_back_to_it_and_the_dismissed_tab_says_who_and_why(
    hub_factory,
):
    hub = start(hub_factory)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        sign_in(http, "admin-token")
        page = wait_for(
            lambda: "/dismiss" in (text := http.get(f"/incidents/{incident_id}").text) and text
        )
        letter = re.search(r'action="/notifications/(\d+)/dismiss"', page).group(1)
        form = re.search(rf'action="/notifications/{letter}/dismiss">(.*?)</form>', page, re.S)
        fields = dict(re.findall(r'name="(_csrf|back)" value="([^"]*)"', form.group(1)))
        done = http.post(
            f"/notifications/{letter}/dismiss", data={**fields, "comment": "mail server retired"}
        )
        dismissed = http.get("/notifications?state=dismissed").text
    assert done.status_code == 303
    assert done.headers["location"] == f"/incidents/{incident_id}?done=dismiss"
    row = re.search(rf'<tr id="notification-{letter}".*?</tr>', dismissed, re.S).group(0)
    said = re.search(r"<div class=\"sub\" data-dismissed>(.*?)</div>", row).group(1)
    assert re.fullmatch(r"by ada <time[^>]*>\d+s ago</time>: <q>mail server retired</q>", said)


def test_a_failure_on_a_console_page_answers_a_page_and_is_logged(hub_factory, caplog):
    """A row the console cannot read (written by hand, or a disk fault) fails the page:
    the person sees the console's error page, not a problem document, and the log has
    the traceback."""
    hub = start(hub_factory)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with sqlite3.connect(hub.runtime.config.storage.path) as db:
        db.execute("UPDATE incidents SET labels = 'not json' WHERE id = ?", (incident_id,))
    with hub.client() as http:
        sign_in(http, "read-token")
        page = http.get(f"/incidents/{incident_id}")
        api = http.get(
            f"/api/v1/incidents/{incident_id}", headers={"Authorization": "Bearer read-token"}
        )
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "the hub failed to handle this request; see its log" in page.text
    assert api.status_code == 500
    assert api.headers["content-type"].startswith("application/problem+json")
    assert f"event=unhandled_error path=/incidents/{incident_id}" in caplog.text
