"""Escalation on a real server with real email: steps run on time, an ack stops them,
an unack resumes them, repeats repeat, a step that fell due while the hub was
stopped runs as soon as it starts, and whoever a step paged is told when the
incident resolves. Each step's lateness (sent minus due) is printed."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from conftest import AUTH, BASE_CONFIG, WAIT_SECONDS, MovedClock, render_config, wait_for
from console_support import sign_in
from hub_process import hub_process
from test_config import run_hub

from hub import config, dispatch
from hub.clocks import SteadyClock
from hub.errors import ConfigError
from hub.escalation import Plan, Step

WRITE = {"Authorization": "Bearer write-token"}
ADMIN = {"Authorization": "Bearer admin-token"}
POLICY = """escalation = "page"

[api]
tokens = [
  {{ name = "will", token = "write-token", role = "write" }},
  {{ name = "ada", token = "admin-token", role = "admin" }},
]

[[receivers]]
name = "first"
urls = ["mailto://127.0.0.1:{smtp_port}?from=hub@example.com&to=first@example.com&mode=insecure"]
send_resolved = {first_resolved}

[[schedules]]
name = "primary"
time_zone = "Europe/Berlin"
people = [
  {{ name = "alice", urls = [
    "mailto://127.0.0.1:{smtp_port}?from=hub@example.com&to=alice@example.com&mode=insecure"
  ] }},
]
rotations = [{{ participants = ["alice"], length = "1w", handoff = "09:00", start = 2020-01-06 }}]

[[escalations]]
name = "page"
steps = [
  {{ after = "0s", notify = {first_notify} }},
  {{ after = "{second_after}", notify = ["schedule:primary"] }},
]
repeat = {repeat}
repeat_after = "{repeat_after}"
"""
# A schedule whose only rotation has not started: nobody is on call.
NOBODY_ON_CALL = """
[[schedules]]
name = "future"
time_zone = "UTC"
people = [{{ name = "zoe", urls = [
  "mailto://127.0.0.1:{smtp_port}?from=hub@example.com&to=zoe@example.com&mode=insecure"
] }}]
rotations = [{{ participants = ["zoe"], length = "1w", handoff = "09:00", start = 2099-01-05 }}]
"""
FIRING = {"status": "firing", "summary": "checkout down", "labels": {"service": "checkout"}}
SECOND = "schedule:primary/alice"


def start_hub(
    hub_factory,
    smtp_port: int,
    second_after="1s",
    repeat=0,
    repeat_after="5m",
    first_step: str | list[str] = "first",
    first_resolved="true",
    extra="",
    clock=time.time,
    group_wait="0s",
    route="",
):
    """A hub on POLICY; ``extra`` follows the policy's table, so keys it starts with
    (``ack_timeout = ...``) are the policy's; ``route`` is more keys of the root route
    (``group_by = [...]``)."""
    first = [first_step] if isinstance(first_step, str) else first_step
    return hub_factory(
        BASE_CONFIG + route + POLICY + extra,
        clock=clock,
        mail_url=f"mailto://127.0.0.1:{smtp_port}?from=hub@example.com&to=ops@example.com",
        smtp_port=smtp_port,
        second_after=second_after,
        repeat=repeat,
        repeat_after=repeat_after,
        first_notify=json.dumps(first),
        first_resolved=first_resolved,
        group_wait=group_wait,
    )


def recipients(mailbox) -> list[str]:
    return [str(m["To"]).split("@")[0] for m in mailbox.messages]


def told_resolved(mailbox) -> list[str]:
    """Who was sent a RESOLVED message, in order."""
    return [
        str(m["To"]).split("@")[0]
        for m in mailbox.messages
        if str(m["Subject"]).startswith("[RESOLVED")
    ]


def resolve_alert(http) -> None:
    answer = http.post("/webhooks/shop", json={**FIRING, "status": "resolved"}, headers=AUTH)
    assert answer.status_code == 202


def told_entries(http, incident_id: int) -> list[list[str]]:
    timeline = http.get(f"/api/v1/incidents/{incident_id}").json()["timeline"]
    return [t["detail"]["told"] for t in timeline if t["kind"] == "told_resolved"]


def open_incident(http) -> dict:
    answer = http.post("/webhooks/shop", json=FIRING, headers=AUTH)
    assert answer.status_code == 202
    incident_id = answer.json()["alerts"][0]["incident_id"]
    incident = http.get(f"/api/v1/incidents/{incident_id}")
    assert incident.status_code == 200, incident.text
    return incident.json()


REOPEN = '\n[incidents]\nreopen_window = "1h"\n'


@contextlib.contextmanager
def first_paged(hub_factory, smtp, **options) -> Iterator[tuple[Any, Any, Any, dict]]:
    """A hub whose first alert opened an incident that step one has paged ``first`` for:
    the mailbox, the hub, an API client and the incident."""
    mailbox, smtp_port = smtp
    hub = start_hub(hub_factory, smtp_port, **options)
    with hub.client(headers=WRITE) as http:
        incident = open_incident(http)
        wait_for(lambda: "first" in recipients(mailbox))
        yield mailbox, hub, http, incident


def sent_times(http, receiver: str, column: str = "sent_at") -> list[float]:
    """When each sent notification of the receiver was sent (or, with ``created_at``,
    enqueued by its step), oldest first."""
    rows = http.get("/api/v1/notifications", params={"receiver": receiver}).json()
    return sorted(_epoch(row[column]) for row in rows if row["state"] == "sent")


def escalated_entries(http, incident_id: int) -> list[dict]:
    timeline = http.get(f"/api/v1/incidents/{incident_id}").json()["timeline"]
    return [t["detail"] for t in timeline if t["kind"] == "escalated"]


def escalated_steps(http, incident_id: int) -> list[tuple[int, int]]:
    timeline = http.get(f"/api/v1/incidents/{incident_id}").json()["timeline"]
    return [(t["detail"]["run"], t["detail"]["step"]) for t in timeline if t["kind"] == "escalated"]


def step_count(http, outcome: str) -> float:
    text = http.get("/metrics").text
    line = f'hub_escalation_steps_total{{outcome="{outcome}"}} '
    return float(next(row for row in text.splitlines() if row.startswith(line)).split()[-1])


def report(label: str, lateness: list[float]) -> None:
    print(f"\n{label}: " + ", ".join(f"{seconds * 1000:.0f} ms" for seconds in lateness))


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_step_one_goes_out_at_once_and_step_two_to_whoever_is_on_call_after_its_delay(
    hub_factory, smtp
):
    mailbox, smtp_port = smtp
    hub = start_hub(hub_factory, smtp_port, second_after="1s")
    with hub.client(headers=WRITE) as http:
        incident = open_incident(http)
        wait_for(lambda: "alice" in recipients(mailbox))
        wait_for(lambda: sent_times(http, SECOND))  # marked sent after the mail
        opened = _epoch(incident["opened_at"])
        first, second = sent_times(http, "first"), sent_times(http, SECOND)
        assert len(first) == 1 and len(second) == 1
        assert second[0] >= opened + 1.0
        report("step lateness (sent - due)", [first[0] - opened, second[0] - (opened + 1.0)])
        enqueued = sent_times(http, "first", "created_at") + sent_times(http, SECOND, "created_at")
        report("step lateness (enqueued - due)", [enqueued[0] - opened, enqueued[1] - opened - 1])
        assert escalated_steps(http, incident["id"]) == [(1, 1), (1, 2)]
        assert step_count(http, "notified") == 2
        assert "checkout down" in str(mailbox.messages[-1]["Subject"])


def test_a_step_pages_about_an_incident_of_many_alerts_from_its_round_off_the_loop(
    hub_factory, smtp
):
    """A round whose due incidents hold ``LONG_ROUND_ALERTS`` alerts or more runs in the
    commit thread: step two still pages whoever is on call, once, counting every alert.
    Step two an hour out on a moved clock, reached once every alert is in: 3 s out, a
    slow machine paged it while the 30 POSTs were still arriving."""
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start_hub(
        hub_factory,
        smtp_port,
        second_after="1h",
        clock=clock,
        route='group_by = ["alertname"]\n',
    )
    alerts = [
        {"status": "firing", "summary": f"host-{n} down", "labels": {"host": f"h{n}"}}
        for n in range(dispatch.LONG_ROUND_ALERTS + 200)
    ]
    with hub.client(headers=WRITE) as http:
        for start in range(0, len(alerts), 40):  # within the source's max_body_bytes
            answer = http.post("/webhooks/shop", json=alerts[start : start + 40], headers=AUTH)
            assert answer.status_code == 202, answer.text
        clock.advance(3600)
        wait_for(lambda: "alice" in recipients(mailbox))
        incident_id = answer.json()["alerts"][0]["incident_id"]
        assert escalated_steps(http, incident_id) == [(1, 1), (1, 2)]
    paged = [m for m in mailbox.messages if str(m["To"]).startswith("alice@")]
    assert len(paged) == 1
    body = paged[0].get_body(preferencelist=("plain",)).get_content()
    assert f"Alerts: {len(alerts)} firing, 0 resolved" in body


def test_an_ack_before_step_two_means_it_never_arrives_and_an_unack_resumes_it(hub_factory, smtp):
    """Step two a minute out on a moved clock: a second out, a loaded machine now and
    then paged it before the ack sent after the first page arrived."""
    clock = MovedClock()
    with first_paged(hub_factory, smtp, second_after="1m", clock=clock) as (
        mailbox,
        _,
        http,
        incident,
    ):
        acked = http.post(f"/api/v1/incidents/{incident['id']}/ack", headers=WRITE, json={})
        assert acked.status_code == 200
        clock.advance(60)  # step two falls due while acknowledged
        wait_for(lambda: step_count(http, "skipped_acknowledged") == 1)
        time.sleep(0.3)
        assert "alice" not in recipients(mailbox)
        assert escalated_steps(http, incident["id"]) == [(1, 1)]
        paused = http.get(f"/api/v1/incidents/{incident['id']}").json()["escalation_state"]
        assert (paused["policy"], paused["next_step"], paused["due_at"]) == ("page", 1, None)

        http.post(f"/api/v1/incidents/{incident['id']}/unack", headers=WRITE, json={})
        wait_for(lambda: "alice" in recipients(mailbox))
        assert escalated_steps(http, incident["id"]) == [(1, 1), (1, 2)]


def test_repeat_runs_the_chain_again_after_repeat_after(hub_factory, smtp):
    mailbox, smtp_port = smtp
    hub = start_hub(hub_factory, smtp_port, second_after="300ms", repeat=1, repeat_after="300ms")
    with hub.client(headers=WRITE) as http:
        incident = open_incident(http)
        wait_for(lambda: recipients(mailbox).count("alice") == 2, timeout=15)
        wait_for(lambda: len(sent_times(http, "first") + sent_times(http, SECOND)) == 4)
        assert escalated_steps(http, incident["id"]) == [(1, 1), (1, 2), (2, 1), (2, 2)]
        opened = _epoch(incident["opened_at"])
        due = {"first": [0.0, 0.6], SECOND: [0.3, 0.9]}
        for column in ("created_at", "sent_at"):
            lateness = [
                at - (opened + offset)
                for receiver, offsets in due.items()
                for at, offset in zip(sent_times(http, receiver, column), offsets, strict=True)
            ]
            report(f"repeat step lateness ({column} - due)", lateness)
        time.sleep(0.5)
        assert recipients(mailbox).count("first") == 2, "the chain ran exactly twice"


def test_a_step_that_fell_due_while_the_hub_was_stopped_fires_as_soon_as_it_starts(
    hub_factory, smtp
):
    """Step two an hour out on a moved clock: 1.5 s out, a loaded machine now and then
    paged it before the hub had stopped."""
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start_hub(hub_factory, smtp_port, second_after="1h", clock=clock)
    with hub.client(headers=WRITE) as http:
        incident = open_incident(http)
        wait_for(lambda: "first" in recipients(mailbox))
    hub.stop()
    clock.advance(3600)  # step two falls due while the hub is stopped
    assert "alice" not in recipients(mailbox)
    started = time.time()
    hub.start()
    with hub.client(headers=WRITE) as http:
        wait_for(lambda: sent_times(http, SECOND))
        report("step after restart (sent - hub start)", [sent_times(http, SECOND)[0] - started])
        assert escalated_steps(http, incident["id"]) == [(1, 1), (1, 2)]
    wait_for(lambda: "alice" in recipients(mailbox))


def test_steps_that_all_fell_due_while_the_hub_was_stopped_page_each_target_once(hub_factory, smtp):
    """Three late steps at once (run 1 step 2, run 2 steps 1 and 2) page alice and
    first once each, in one timeline entry naming the steps it took along: one by
    one, alice was paged twice in the same second. Steps an hour apart on a moved clock:
    a second apart, a loaded machine now and then ran one before the hub had stopped."""
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start_hub(
        hub_factory, smtp_port, second_after="1h", repeat=1, repeat_after="1h", clock=clock
    )
    with hub.client(headers=WRITE) as http:
        incident = open_incident(http)
        wait_for(lambda: "first" in recipients(mailbox))
    hub.stop()
    clock.advance(3.5 * 3600)  # run 1's step two and run 2's steps fall due meanwhile
    hub.start()
    with hub.client(headers=WRITE) as http:
        wait_for(lambda: len(sent_times(http, "first")) == 2 and sent_times(http, SECOND))
        time.sleep(0.5)  # room for a second page, were one coming
        assert escalated_steps(http, incident["id"]) == [(1, 1), (2, 2)]
        timeline = http.get(f"/api/v1/incidents/{incident['id']}").json()["timeline"]
        steps = [t["detail"] for t in timeline if t["kind"] == "escalated"]
        assert steps[-1]["caught_up"] == [[1, 2], [2, 1]]
        assert sorted(steps[-1]["notified"]) == ["first", SECOND]
        assert step_count(http, "notified") == 3, "each late step counts (since the restart)"
    paged = [name for name in recipients(mailbox) if name in ("alice", "first")]
    assert sorted(paged) == ["alice", "first", "first"], "the incident's own receiver aside"


def test_a_target_a_step_paged_is_told_once_when_the_alert_resolves(hub_factory, smtp):
    with first_paged(hub_factory, smtp, second_after="1h") as (mailbox, _, http, incident):
        resolve_alert(http)
        wait_for(lambda: sorted(told_resolved(mailbox)) == ["first", "ops"])
        time.sleep(0.5)
        assert sorted(told_resolved(mailbox)) == ["first", "ops"], "each told once"
        assert told_entries(http, incident["id"]) == [["first"]]
        assert step_count(http, "told_resolved") == 1
        ended = http.get(f"/api/v1/incidents/{incident['id']}").json()["escalation_state"]
        assert ended["due_at"] is None, "the chain ended: step two never pages"


def test_a_paged_target_without_send_resolved_gets_no_resolved_message(hub_factory, smtp):
    mailbox, smtp_port = smtp
    hub = start_hub(hub_factory, smtp_port, second_after="1h", first_resolved="false")
    with hub.client(headers=WRITE) as http:
        incident = open_incident(http)
        wait_for(lambda: "first" in recipients(mailbox))
        resolve_alert(http)
        wait_for(lambda: step_count(http, "skipped_resolved") == 1)
        wait_for(lambda: told_resolved(mailbox) == ["ops"])
        time.sleep(0.5)
        assert told_resolved(mailbox) == ["ops"]
        assert told_entries(http, incident["id"]) == []


def test_a_step_naming_the_incidents_own_receiver_leaves_it_to_grouping(hub_factory, smtp):
    """The README's policy paged ``ops`` at 0s on a route whose receiver is ``ops``:
    every new incident reached ops twice, from the step and from grouping, and twice
    again, milliseconds apart, when a snooze ended."""
    clock = MovedClock()
    mailbox, smtp_port = smtp
    hub = start_hub(
        hub_factory, smtp_port, second_after="1h", first_step=["ops", "first"], clock=clock
    )
    with hub.client(headers=WRITE) as http:
        incident = open_incident(http)
        wait_for(lambda: sorted(recipients(mailbox)) == ["first", "ops"])
        (entry,) = escalated_entries(http, incident["id"])
        assert (entry["notified"], entry["via_route"]) == (["first"], ["ops"])
        assert (
            http.post(
                f"/api/v1/incidents/{incident['id']}/snooze", json={"duration": "1m"}
            ).status_code
            == 200
        )
        clock.advance(61)
        wait_for(lambda: recipients(mailbox).count("first") == 2)
        wait_for(lambda: recipients(mailbox).count("ops") == 2)
        time.sleep(0.5)  # room for a second page, were one coming
        assert sorted(recipients(mailbox)) == ["first", "first", "ops", "ops"]
        assert [e["via_route"] for e in escalated_entries(http, incident["id"])] == [["ops"]] * 2
        assert step_count(http, "notified") == 2
    with hub.client() as browser:
        sign_in(browser, "write-token")
        page = browser.get(f"/incidents/{incident['id']}").text
    assert "told through the route: ops" in page


def test_a_step_made_only_of_the_incidents_receivers_counts_as_notified(hub_factory, smtp):
    """Its receivers are notified, by grouping, and hear of the resolution once."""
    mailbox, smtp_port = smtp
    hub = start_hub(hub_factory, smtp_port, second_after="1h", first_step="ops")
    with hub.client(headers=WRITE) as http:
        incident = open_incident(http)
        wait_for(lambda: step_count(http, "notified") == 1)
        (entry,) = escalated_entries(http, incident["id"])
        assert (entry["notified"], entry["via_route"]) == ([], ["ops"])
        assert "nobody_on_call" not in entry
        assert step_count(http, "skipped_nobody_on_call") == 0
        wait_for(lambda: recipients(mailbox) == ["ops"])
        resolve_alert(http)
        wait_for(lambda: told_resolved(mailbox) == ["ops"])
        time.sleep(0.5)
        assert told_resolved(mailbox) == ["ops"], "told once, through grouping"
        assert told_entries(http, incident["id"]) == []


OWN_RECEIVERS = """escalation = "page"

[[route.routes]]
matchers = ['team="db"']
receiver = "dba"

[[receivers]]
name = "dba"
urls = ["json://127.0.0.1:9/"]

[[escalations]]
name = "page"
steps = [{{ after = "0s", notify = ["ops", "dba"] }}]
"""


def test_check_config_warns_about_a_step_naming_its_routes_own_receiver(tmp_path):
    text = render_config(
        BASE_CONFIG + OWN_RECEIVERS, port=8080, db="hub.db", mail_url="logfile://x"
    )
    (tmp_path / "alerts.toml").write_text(text)
    checked = run_hub("check-config", "alerts.toml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    warned = [line for line in checked.stdout.splitlines() if "escalations" in line]
    step = "warning: escalations[0] (page).steps[0].notify:"
    tail = (
        "which uses this policy: the route tells it of each incident, so this step does not page it"
    )
    assert warned == [
        f'{step} "ops" is the receiver of route 0, {tail}',
        f'{step} "dba" is the receiver of route 0.0, {tail}',
    ]


def test_hub_serve_logs_the_escalation_warnings_check_config_prints(tmp_path):
    """An operator who reads only the logs sees what ``hub check-config`` would say."""
    text = render_config(
        BASE_CONFIG + OWN_RECEIVERS, port="{port}", db="{db}", mail_url="logfile://x"
    )
    hub = hub_process(tmp_path, text).start()
    try:
        hub.wait_ready()
        warned = [line for line in hub.log().splitlines() if "event=config_warning" in line]
    finally:
        hub.stop()
    assert sum('escalations[0] (page).steps[0].notify: \\"ops\\"' in line for line in warned) == 1


def test_a_person_resolving_the_incident_tells_the_targets_paged(hub_factory, smtp):
    with first_paged(hub_factory, smtp, second_after="1h") as (mailbox, _, http, incident):
        resolved = http.post(f"/api/v1/incidents/{incident['id']}/resolve", json={})
        assert resolved.status_code == 200
        wait_for(lambda: sorted(told_resolved(mailbox)) == ["first", "ops"])
        assert told_entries(http, incident["id"]) == [["first"]]
        text = mailbox.text_of(-1)
        assert "Acknowledge" not in text and f"/incidents/{incident['id']}" in text


def test_the_on_call_person_a_step_paged_is_told_too(hub_factory, smtp):
    mailbox, smtp_port = smtp
    hub = start_hub(hub_factory, smtp_port, second_after="0s")
    with hub.client(headers=WRITE) as http:
        incident = open_incident(http)
        wait_for(lambda: {"first", "alice"} <= set(recipients(mailbox)))
        resolve_alert(http)
        wait_for(lambda: sorted(told_resolved(mailbox)) == ["alice", "first", "ops"])
        assert told_entries(http, incident["id"]) == [["first", SECOND]]


def test_each_resolution_tells_whoever_was_paged_since_the_last_one(hub_factory, smtp):
    with first_paged(hub_factory, smtp, second_after="1h", extra=REOPEN) as (
        mailbox,
        _,
        http,
        incident,
    ):
        resolve_alert(http)
        wait_for(lambda: told_resolved(mailbox).count("first") == 1)
        assert open_incident(http)["id"] == incident["id"], "reopened"
        wait_for(lambda: recipients(mailbox).count("first") == 3)  # page, notice, page
        resolve_alert(http)
        wait_for(lambda: told_resolved(mailbox).count("first") == 2)
        time.sleep(0.5)
        assert told_resolved(mailbox).count("first") == 2
        assert told_entries(http, incident["id"]) == [["first"], ["first"]]
        assert escalated_steps(http, incident["id"]) == [(1, 1), (1, 1)]


def test_a_reopened_incident_is_no_longer_acknowledged_and_pages_again(hub_factory, smtp):
    """The acknowledgement was for the last episode: a problem back within the reopen
    window must page again, not stay quietly acknowledged."""
    with first_paged(hub_factory, smtp, second_after="1h", extra=REOPEN) as (
        mailbox,
        _,
        http,
        incident,
    ):
        ack = http.post(f"/api/v1/incidents/{incident['id']}/ack", json={"comment": "on it"})
        assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
        resolve_alert(http)
        wait_for(lambda: told_resolved(mailbox).count("first") == 1)
        reopened = open_incident(http)
        assert reopened["id"] == incident["id"]
        assert (reopened["status"], reopened["acknowledged_at"]) == ("open", None)
        wait_for(lambda: recipients(mailbox).count("first") == 3)  # page, notice, page
        kinds = [entry["kind"] for entry in reopened["timeline"]]
        assert "acknowledged" in kinds and kinds[-1] != "acknowledged"


def test_a_step_with_nobody_on_call_is_counted_and_shown_and_the_chain_moves_on(hub_factory, smtp):
    """PagerDuty and Grafana OnCall flag an escalation level that paged nobody: so does
    hub, on the metric and the timeline, and the next step still pages."""
    mailbox, smtp_port = smtp
    hub = start_hub(
        hub_factory,
        smtp_port,
        first_step="schedule:future",
        extra=NOBODY_ON_CALL,
    )
    with hub.client(headers=WRITE) as http:
        incident = open_incident(http)
        wait_for(lambda: "alice" in recipients(mailbox))
        assert step_count(http, "skipped_nobody_on_call") == 1
        assert step_count(http, "notified") == 1, "only step two paged"
        nobody, paged = escalated_entries(http, incident["id"])
        assert (nobody["step"], nobody["notified"]) == (1, [])
        assert nobody["nobody_on_call"] == ["schedule:future"]
        assert (paged["step"], paged["notified"]) == (2, [SECOND])
        assert "nobody_on_call" not in paged
        assert recipients(mailbox).count("alice") == 1 and "zoe" not in recipients(mailbox)
    with hub.client() as browser:
        sign_in(browser, "write-token")
        page = browser.get(f"/incidents/{incident['id']}").text
    assert "nobody to page at schedule:future" in page


def test_a_step_that_reaches_someone_is_notified_and_names_the_schedule_that_found_nobody(
    hub_factory, smtp
):
    mailbox, smtp_port = smtp
    hub = start_hub(
        hub_factory,
        smtp_port,
        second_after="1h",
        first_step=["first", "schedule:future"],
        extra=NOBODY_ON_CALL,
    )
    with hub.client(headers=WRITE) as http:
        incident = open_incident(http)
        wait_for(lambda: "first" in recipients(mailbox))
        wait_for(lambda: step_count(http, "notified") == 1)
        assert step_count(http, "skipped_nobody_on_call") == 0
        (entry,) = escalated_entries(http, incident["id"])
        assert (entry["notified"], entry["nobody_on_call"]) == (["first"], ["schedule:future"])


def without_first_and_primary(text: str) -> str:
    """The config with receiver ``first`` and schedule ``primary`` removed, and the
    policy's steps paging ``ops`` instead."""
    text = re.sub(r'\[\[receivers\]\]\nname = "first"\n.*?\n\n', "", text, flags=re.S)
    text = re.sub(r'\[\[schedules\]\]\nname = "primary"\n.*?\n\n', "", text, flags=re.S)
    return text.replace('"schedule:primary"', '"ops"').replace('["first"]', '["ops"]')


def test_targets_a_reload_removed_find_nobody_while_an_open_incident_still_names_them(
    hub_factory, smtp
):
    """The incident keeps the policy it copied; what the new config lacks pages nobody
    and is counted so, rather than vanishing or counting as notified. Steps an hour and
    a minute apart on a moved clock: with step two 2 s out, a loaded machine now and then
    paged it before the reload."""
    clock = MovedClock()
    with first_paged(
        hub_factory, smtp, second_after="1h", repeat=1, repeat_after="1m", clock=clock
    ) as (mailbox, hub, http, incident):
        hub.config_path.write_text(without_first_and_primary(hub.config_path.read_text()))
        assert http.post("/-/reload", headers=ADMIN).status_code == 200
        for ran, later in enumerate((3600, 60, 3600), start=2):  # each step falls due alone
            clock.advance(later)
            wait_for(lambda ran=ran: len(escalated_entries(http, incident["id"])) == ran)
        entries = escalated_entries(http, incident["id"])
        assert [e["notified"] for e in entries] == [["first"], [], [], []]
        assert [e.get("nobody_on_call") for e in entries] == [
            None,
            ["schedule:primary"],
            ["first"],
            ["schedule:primary"],
        ]
        assert step_count(http, "skipped_nobody_on_call") == 3
        assert step_count(http, "notified") == 1
        assert "alice" not in recipients(mailbox)


def test_step_times_count_from_the_start_of_each_run():
    plan = Plan([Step(0.0, ["first"]), Step(60.0, ["second"])], repeat=1, repeat_after=30.0)
    assert [plan.due(1000.0, i) for i in range(5)] == [1000.0, 1060.0, 1090.0, 1150.0, None]


def test_a_route_naming_an_undefined_policy_and_a_step_naming_nobody_are_refused():
    text = render_config(
        BASE_CONFIG
        + 'escalation = "pager"\n'
        + '[[escalations]]\nname = "page"\nsteps = [{{ after = "5m", notify = ["schedule:x"] }}]\n',
        port=8080,
        db="hub.db",
        mail_url="logfile://x.log",
    )
    with pytest.raises(ConfigError) as raised:
        config.parse(text, {})
    assert raised.value.problems == [
        'route.escalation: undefined escalation "pager"; did you mean "page"?',
        'escalations[0] (page).steps[0].notify: undefined receiver or schedule "schedule:x"',
    ]


def test_the_chain_starts_when_the_routes_group_wait_ends(hub_factory, smtp):
    """On-call is paged with the route's first message, not before it: an alert that
    fires and resolves within ``group_wait`` pages nobody, and one still firing when
    the wait ends pages step one then, and step two ``after`` counts from there."""
    mailbox, smtp_port = smtp
    clock = MovedClock()
    hub = start_hub(hub_factory, smtp_port, second_after="10m", clock=clock, group_wait="30s")
    with hub.client(headers=WRITE) as http:
        flap = open_incident(http)
        resolve_alert(http)
        clock.advance(31)
        wait_for(lambda: http.get(f"/api/v1/incidents/{flap['id']}").json()["status"] == "resolved")
        time.sleep(1)  # a page, had the chain started, would be sent by now
        assert recipients(mailbox) == [], "a flap within group_wait pages nobody"
        assert escalated_entries(http, flap["id"]) == []

        clock.advance(3600)  # past the reopen window: the next alert opens an incident
        incident = open_incident(http)
        assert _epoch(incident["escalation_state"]["due_at"]) == pytest.approx(
            _epoch(incident["opened_at"]) + 30, abs=0.01
        )
        clock.advance(20)
        time.sleep(1)
        assert recipients(mailbox) == [], "nobody is paged before the route's first message"
        clock.advance(11)
        wait_for(lambda: sorted(recipients(mailbox)) == ["first", "ops"])
        clock.advance(9 * 60)
        time.sleep(1)
        assert sorted(recipients(mailbox)) == ["first", "ops"], "step two is 10m after the wait"
        clock.advance(61)
        wait_for(lambda: sorted(recipients(mailbox)) == ["alice", "first", "ops"])


def test_a_clock_stepped_back_an_hour_delays_no_step(hub_factory, smtp):
    """hub's default clock (``SteadyClock``) over a wall clock that steps back an hour
    (a machine resumed from a snapshot) just after step one: step two still pages on
    time, and what hub records keeps the pace of real time. Read straight from the
    stepped wall clock, the step would wait an hour."""
    mailbox, smtp_port = smtp
    wall = MovedClock()
    hub = start_hub(hub_factory, smtp_port, second_after="2s", clock=SteadyClock(wall))
    with hub.client(headers=WRITE) as http:
        incident = open_incident(http)
        wait_for(lambda: "first" in recipients(mailbox))
        wall.advance(-3600)
        wait_for(lambda: "alice" in recipients(mailbox))
        wait_for(lambda: sent_times(http, SECOND))
        [paged] = sent_times(http, SECOND)
    opened = _epoch(incident["opened_at"])
    assert opened + 2 <= paged < opened + 2 + WAIT_SECONDS
