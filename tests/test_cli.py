"""The command line against a real hub on loopback for the API commands, and from a
config file alone for the others (route-test, notify-test, check-config, backup).
The config-file commands run as ``python -m hub ...`` subprocesses; the API commands
run through ``cli.main``, the function ``python -m hub`` calls, in the test's process
(a few of them, where the process itself matters, as subprocesses too)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import AUTH, free_port, mail_url, wait_for
from notify_support import deliveries
from test_access import WITH_TOKENS
from test_config import ROOT, run_hub
from test_oncall import SCHEDULE_CONFIG

from hub import cli

EVENT = {
    "status": "firing",
    "summary": "checkout API error rate above 5%",
    "severity": "critical",
    "labels": {"service": "checkout", "env": "prod"},
}


class _AnyTime(str):
    """Equal to any RFC 3339 UTC time to the second, as the tables show times."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and len(other) == 20 and other.endswith("Z")

    __hash__ = str.__hash__


ANY_TIME = _AnyTime()


def hub_cli(hub, *args: str, token: str = "write-token") -> subprocess.CompletedProcess:
    """An API command's exit code and output, run in this process: a subprocess would
    start Python and import the client anew for each of the file's some ninety commands
    (about a third of a second each)."""
    return in_process("--url", hub.url, "--token", token, *args)


def in_process(*argv: str) -> subprocess.CompletedProcess:
    """``hub *argv`` run through ``cli.main`` in this process; an exception is raised."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exited:  # argparse's refusals of the command line
            code = exited.code
    return subprocess.CompletedProcess(list(argv), code, out.getvalue(), err.getvalue())


@pytest.fixture
def running(hub_factory, smtp):
    """A hub with read, write and admin tokens, and one firing alert in one incident,
    whose page is sent: a command's change is the last on the incident's timeline."""
    hub = hub_factory(WITH_TOKENS, mail_url=mail_url(smtp[1]))
    with hub.client(headers=AUTH) as http:
        answer = http.post("/webhooks/shop", json=EVENT)
    assert answer.status_code == 202, answer.text
    with hub.client(headers={"Authorization": "Bearer read-token"}) as http:
        wait_for(lambda: [note for note in deliveries(http) if note["state"] == "sent"])
    return hub, answer.json()["alerts"][0]["incident_id"]


def test_alerts_and_incidents_are_shown_as_tables(running):
    hub, incident_id = running
    alerts = hub_cli(hub, "alerts", "--status", "firing", 'service="checkout"', token="read-token")
    assert alerts.returncode == 0, alerts.stderr
    header, row = alerts.stdout.splitlines()
    assert header.split()[:4] == ["ID", "STATUS", "SEVERITY", "SINCE"]
    assert "firing  critical" in row
    assert "checkout API error rate above 5%  env=prod,service=checkout" in row
    incidents = hub_cli(hub, "incidents", "--status", "open", token="read-token")
    assert incidents.returncode == 0, incidents.stderr
    assert incidents.stdout.splitlines()[1].split()[:3] == [str(incident_id), "open", "critical"]


SERVER_LIBRARIES = ("apprise", "jinja2", "litestar", "sqlite_utils", "uvicorn")


def test_an_api_command_starts_without_loading_the_servers_libraries(running):
    """A client command loads none of what serving needs: with it, ``hub alerts`` took
    about 0.9 s to start on every call, against 0.25 s without."""
    hub, _ = running
    script = (
        "import sys; from hub import cli;"
        f" code = cli.main(['--url', {hub.url!r}, '--token', 'read-token', 'alerts']);"
        f" print([name for name in {SERVER_LIBRARIES!r} if name in sys.modules]); sys.exit(code)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert shown.returncode == 0, shown.stderr
    *table, loaded = shown.stdout.splitlines()
    assert "checkout API error rate above 5%" in table[1]
    assert loaded == "[]"


def test_json_output_is_the_api_answer_as_is(running):
    hub, incident_id = running
    shown = hub_cli(hub, "incidents", "--output", "json", token="read-token")
    assert shown.returncode == 0, shown.stderr
    with hub.client(headers={"Authorization": "Bearer read-token"}) as http:
        assert json.loads(shown.stdout) == http.get("/api/v1/incidents").json()
    assert json.loads(shown.stdout)[0]["id"] == incident_id


def test_all_asks_for_page_after_page_until_the_last(running):
    """--limit sizes each request; --all follows the API's next links to the end."""
    hub, _ = running
    more = [{**EVENT, "labels": {"service": f"s{n}"}} for n in range(4)]
    with hub.client(headers=AUTH) as http:
        assert http.post("/webhooks/shop", json=more).status_code == 202
    with hub.client(headers={"Authorization": "Bearer read-token"}) as http:
        every = http.get("/api/v1/alerts", params={"limit": 1000}).json()
    walked = hub_cli(hub, "alerts", "--all", "--limit", "2", "-o", "json", token="read-token")
    first = hub_cli(hub, "alerts", "--limit", "2", "-o", "json", token="read-token")
    table = hub_cli(hub, "alerts", "--all", "--limit", "2", token="read-token")
    assert walked.returncode == 0, walked.stderr
    assert len(every) == 5
    assert json.loads(walked.stdout) == every
    assert json.loads(first.stdout) == every[:2]
    assert len(table.stdout.splitlines()) == 1 + len(every)


def test_ack_records_the_token_name_and_comment_on_the_incident(running):
    hub, incident_id = running
    acked = hub_cli(hub, "ack", str(incident_id), "--comment", "looking into it")
    assert acked.returncode == 0, acked.stderr
    assert acked.stdout.strip() == f"incident {incident_id} is acknowledged by will"
    shown = hub_cli(hub, "incident", str(incident_id), token="read-token")
    assert "status:          acknowledged" in shown.stdout
    assert "acknowledged by: will" in shown.stdout
    timeline = shown.stdout.split("Timeline:")[1].splitlines()
    assert timeline[-1].split(maxsplit=3)[1:] == ["acknowledged", "will", "comment=looking into it"]
    assert "checkout API error rate above 5%" in shown.stdout.split("Alerts:")[1]


def test_ack_of_an_incident_someone_else_holds_fails_naming_them(running):
    hub, incident_id = running
    assert hub_cli(hub, "ack", str(incident_id)).returncode == 0
    taken = hub_cli(hub, "ack", str(incident_id), token="admin-token")
    again = hub_cli(hub, "ack", str(incident_id))
    assert taken.returncode == 1
    assert taken.stdout == ""
    prefix = f"hub: error: 409 Conflict: incident {incident_id} is already acknowledged by will at "
    assert taken.stderr.startswith(prefix)
    assert taken.stderr.strip().removeprefix(prefix) == ANY_TIME
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"incident {incident_id} is acknowledged by will"


def test_unack_then_resolve_and_a_second_resolve_by_anyone_succeeds_changing_nothing(running):
    """A runbook retrying a resolve must not fail; it reads who resolved it."""
    hub, incident_id = running
    hub_cli(hub, "ack", str(incident_id))
    assert hub_cli(hub, "unack", str(incident_id)).stdout.strip().endswith("is open")
    resolved = hub_cli(hub, "resolve", str(incident_id), "--comment", "rolled back")
    assert resolved.stdout.strip() == f"incident {incident_id} is resolved by will"
    again = hub_cli(hub, "resolve", str(incident_id), token="admin-token")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"incident {incident_id} is resolved by will"
    timeline = hub_cli(hub, "incident", str(incident_id), token="read-token").stdout
    kinds = [line.split()[1:2] for line in timeline.split("Timeline:")[1].splitlines()]
    assert kinds.count(["resolved"]) == 1, timeline
    refused = hub_cli(hub, "ack", str(incident_id))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"hub: error: 409 Conflict: incident {incident_id} is already resolved"
    )


def test_snooze_acknowledges_for_a_while_and_a_duration_out_of_bounds_fails(running):
    hub, incident_id = running
    snoozed = hub_cli(hub, "snooze", str(incident_id), "4h", "--comment", "after the deploy")
    assert snoozed.returncode == 0, snoozed.stderr
    prefix = f"incident {incident_id} is snoozed by will until "
    assert snoozed.stdout.startswith(prefix)
    assert snoozed.stdout.strip().removeprefix(prefix) == ANY_TIME
    shown = hub_cli(hub, "incident", str(incident_id), token="read-token")
    assert "status:          acknowledged" in shown.stdout
    assert re.search(r"^ack lapses:\s+\S+Z$", shown.stdout, re.MULTILINE), shown.stdout
    assert re.search(r"^lapses because:\s+snooze$", shown.stdout, re.MULTILINE), shown.stdout
    timeline = shown.stdout.split("Timeline:")[1].splitlines()
    assert timeline[-1].split(maxsplit=3)[1:3] == ["snoozed", "will"]
    too_long = hub_cli(hub, "snooze", str(incident_id), "8d")
    assert too_long.returncode == 1
    assert too_long.stderr.strip() == (
        "hub: error: 422 Invalid payload: duration: must be from 1m to 7d, got '8d'"
    )


def test_acknowledged_incidents_are_listed_with_who_holds_them_and_when_the_ack_lapses(
    hub_factory, smtp
):
    """The list showed neither, as `hub incident ID` does ("acknowledged by", "ack
    lapses"): the on-call had to open every acknowledged incident to see them."""
    by_service = WITH_TOKENS.replace(
        'receiver = "ops"\n', 'receiver = "ops"\ngroup_by = ["service"]\n'
    )
    hub = hub_factory(by_service, mail_url=mail_url(smtp[1]))
    with hub.client(headers=AUTH) as http:
        first = http.post("/webhooks/shop", json=EVENT)
        other = http.post("/webhooks/shop", json={**EVENT, "labels": {"service": "search"}})
    snoozed_id, acked_id = (a.json()["alerts"][0]["incident_id"] for a in (first, other))
    assert hub_cli(hub, "snooze", str(snoozed_id), "4h").returncode == 0
    assert hub_cli(hub, "ack", str(acked_id), token="admin-token").returncode == 0
    listed = hub_cli(hub, "incidents", "--status", "acknowledged", token="read-token")
    assert listed.returncode == 0, listed.stderr
    header, *rows = [line.split() for line in listed.stdout.splitlines()]
    assert header == [
        *("ID", "STATUS", "SEVERITY", "OPENED", "UPDATED"),
        *("ACKNOWLEDGED", "BY", "VIA", "ACK", "LAPSES", "TITLE"),
    ]
    opened = ["acknowledged", "critical", ANY_TIME, ANY_TIME]
    title = EVENT["summary"].split()
    assert rows == [
        [str(acked_id), *opened, "ada", "-", "-", *title],
        [str(snoozed_id), *opened, "will", "-", ANY_TIME, *title],
    ]
    every = hub_cli(hub, "incidents", token="read-token").stdout.splitlines()
    assert every[0].split() == header
    still_open = hub_cli(hub, "incidents", "--status", "open", token="read-token")
    assert "ACK" not in still_open.stdout, "an open incident is acknowledged by nobody"


def test_a_silence_is_added_listed_and_expired(running):
    hub, _ = running
    added = hub_cli(
        hub, "silence", "add", "service=checkout", "--duration", "2h", "--comment", "deploy 4.2"
    )
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    listed = hub_cli(hub, "silence", "list", "--state", "active", token="read-token")
    assert listed.stdout.splitlines()[1].split() == [
        silence_id,
        "active",
        "service=checkout",
        ANY_TIME,
        "will",
        "-",
        "deploy",
        "4.2",
    ]
    expired = hub_cli(hub, "silence", "expire", silence_id)
    assert expired.stdout.strip() == f"silence {silence_id} is expired"
    still_active = hub_cli(hub, "silence", "list", "--state", "active", token="read-token")
    assert silence_id not in still_active.stdout


def test_a_silence_is_added_ahead_of_time_with_amtools_flags(running):
    """As ``amtool silence add -c ... -d ... --start ... [--end ...]``: a maintenance
    silenced in advance is pending until its start, and its duration counts from it."""
    hub, _ = running
    start, end = "2099-01-01T10:00:00+02:00", "2099-01-01T12:30:00Z"
    ahead = ("silence", "add", "service=checkout", "-c", "db upgrade", "--start", start)
    lasting = hub_cli(hub, *ahead, "-d", "2h", "-a", "will", "-o", "json")
    ending = hub_cli(hub, *ahead, "--end", end, "-o", "json")
    both = hub_cli(hub, *ahead, "-d", "2h", "--end", end)
    assert (lasting.returncode, ending.returncode) == (0, 0), lasting.stderr + ending.stderr
    first, second = json.loads(lasting.stdout), json.loads(ending.stdout)
    assert (first["state"], first["starts_at"], first["ends_at"]) == (
        "pending",
        "2099-01-01T08:00:00Z",
        "2099-01-01T10:00:00Z",
    )
    assert (second["comment"], second["ends_at"]) == ("db upgrade", "2099-01-01T12:30:00Z")
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr


def test_a_silence_update_changes_what_is_given_and_keeps_the_rest(running):
    """As ``amtool silence update``: the id is printed and stays; --duration counts from
    the silence's start."""
    hub, _ = running
    add = ("silence", "add", "service=checkout", "--duration", "2h", "--comment", "deploy 4.2")
    silence_id = hub_cli(hub, *add).stdout.strip()
    with hub.client(headers={"Authorization": "Bearer read-token"}) as http:
        made = http.get(f"/api/v1/silences/{silence_id}").json()

        def shown() -> dict:
            return http.get(f"/api/v1/silences/{silence_id}").json()

        longer = hub_cli(hub, "silence", "update", silence_id, "--duration", "3h")
        assert (longer.returncode, longer.stdout) == (0, f"{silence_id}\n"), longer.stderr
        extended = shown()
        words = ("service=checkout", "env=prod", "--comment", "4.2 runs late")
        narrowed = hub_cli(hub, "silence", "update", silence_id, *words, token="admin-token")
        assert narrowed.stdout == f"{silence_id}\n", narrowed.stderr
        changed = shown()
        end = "2099-01-01T10:00:00+02:00"
        as_json = hub_cli(hub, "silence", "update", silence_id, "--end", end, "-o", "json")
        assert json.loads(as_json.stdout) == shown()
    three_hours = datetime.fromisoformat(made["starts_at"]) + timedelta(hours=3)
    assert datetime.fromisoformat(extended["ends_at"]) == three_hours
    kept = ("matchers", "comment", "starts_at", "created_by", "created_at")
    assert {key: extended[key] for key in kept} == {key: made[key] for key in kept}
    assert extended["updated_by"] == "will"
    assert changed["matchers"] == ["service=checkout", "env=prod"]
    assert changed["comment"] == "4.2 runs late"
    assert (changed["ends_at"], changed["updated_by"]) == (extended["ends_at"], "ada")
    ended = json.loads(as_json.stdout)
    assert ended["ends_at"] == "2099-01-01T08:00:00Z"
    assert ended["matchers"] == changed["matchers"] and ended["comment"] == changed["comment"]


def test_a_silence_update_of_an_expired_silence_fails_naming_why(running):
    hub, _ = running
    add = ("silence", "add", "service=checkout", "--comment", "deploy 4.2")
    silence_id = hub_cli(hub, *add).stdout.strip()
    assert hub_cli(hub, "silence", "expire", silence_id).returncode == 0
    refused = hub_cli(hub, "silence", "update", silence_id, "--duration", "3h")
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"hub: error: 409 Conflict: silence {silence_id} has already expired"
    )
    unknown = hub_cli(hub, "silence", "update", "no-such-id", "--duration", "3h")
    assert unknown.stderr == "hub: error: 404 Not found: no silence with id no-such-id\n"


def test_a_silence_added_as_someone_else_is_refused_naming_both(running):
    hub, _ = running
    as_bob = ("silence", "add", "service=checkout", "--comment", "deploy", "--author", "bob")
    refused = hub_cli(hub, *as_bob)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        'hub: error: 403 Forbidden: created_by "bob" is not this token\'s name "will"'
    )
    listed = hub_cli(hub, "silence", "list", token="read-token")
    assert "bob" not in listed.stdout
    assert "speaks_for_others = true" in refused.stderr, "how to allow it"


def test_a_token_that_speaks_for_others_adds_as_the_author_named_and_lists_itself_beside(running):
    hub, _ = running
    for_bob = ("silence", "add", "service=checkout", "-c", "deploy", "-a", "bob")
    silence_id = hub_cli(hub, *for_bob, token="grafana-token").stdout.strip()
    header, row = hub_cli(hub, "silence", "list", token="read-token").stdout.splitlines()
    assert header.split()[4:8] == ["CREATED", "BY", "VIA", "COMMENT"]
    assert row.split()[0] == silence_id and row.split()[4:7] == ["bob", "grafana", "deploy"]


def test_an_action_by_someone_a_token_speaks_for_names_them_and_the_token_beside(running):
    hub, incident_id = running
    as_bob = ("ack", str(incident_id), "--by", "bob", "--comment", "on it")
    acked = hub_cli(hub, *as_bob, token="grafana-token")
    assert acked.stdout == f"incident {incident_id} is acknowledged by bob via grafana\n"
    shown = hub_cli(hub, "incident", str(incident_id), token="read-token").stdout
    assert "acknowledged by: bob\nvia:             grafana\n" in shown
    [entry] = [line for line in shown.splitlines() if line.endswith("via=grafana")]
    assert entry.split()[1:] == ["acknowledged", "bob", "comment=on", "it,via=grafana"]
    [row] = hub_cli(hub, "incidents", token="read-token").stdout.splitlines()[1:]
    assert row.split()[5:7] == ["bob", "grafana"]
    resolved = hub_cli(hub, "resolve", str(incident_id), "--by", "bob", token="grafana-token")
    assert resolved.stdout == f"incident {incident_id} is resolved by bob via grafana\n"
    refused = hub_cli(hub, "resolve", str(incident_id), "--by", "bob")
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        'hub: error: 403 Forbidden: by "bob" is not this token\'s name "will"'
    )


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("who-knows", "hub: error: 401 Unauthorized: the bearer token is not valid for the API"),
        ("read-token", 'hub: error: 403 Forbidden: token "rita" has role read; this needs write'),
    ],
)
def test_a_refused_token_exits_1_naming_the_status(running, token, expected):
    hub, incident_id = running
    refused = hub_cli(hub, "ack", str(incident_id), token=token)
    assert refused.returncode == 1
    assert refused.stderr.startswith(expected)
    assert refused.stdout == ""


def test_a_dead_letter_is_listed_and_sent_again_with_an_admin_token(hub_factory):
    hub = hub_factory(WITH_TOKENS, mail_url=mail_url(free_port()), max_attempts=1)
    with hub.client(headers=AUTH) as http:
        http.post("/webhooks/shop", json=EVENT)

    def dead() -> list[dict]:
        shown = hub_cli(hub, "notifications", "--state", "dead", "-o", "json")
        return json.loads(shown.stdout)

    note = wait_for(dead)[0]
    table = hub_cli(hub, "notifications", "--state", "dead", token="read-token").stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:7] == [
        "ID",
        "INCIDENT",
        "RECEIVER",
        "INTEGRATION",
        "KIND",
        "STATE",
        "ATTEMPTS",
    ]
    assert row.split()[:7] == [str(note["id"]), "1", "ops", "mailto", "firing", "dead", "1"]
    assert table.endswith("Connection refused\n")
    retried = hub_cli(hub, "retry", str(note["id"]), token="admin-token")
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == f"notification {note['id']} is pending again"


def test_a_dead_letter_is_dismissed_with_a_reason_by_an_admin_token(hub_factory):
    hub = hub_factory(WITH_TOKENS, mail_url=mail_url(free_port()), max_attempts=1)
    with hub.client(headers=AUTH) as http:
        http.post("/webhooks/shop", json=EVENT)
    admin = {"Authorization": "Bearer admin-token"}
    with hub.client(headers=admin) as http:
        [note] = wait_for(lambda: http.get("/api/v1/notifications?state=dead").json())
        args = ("dismiss", str(note["id"]), "--comment", "mail relay retired")
        refused = hub_cli(hub, *args, token="write-token")
        dismissed = hub_cli(hub, *args, token="admin-token")
        again = hub_cli(hub, *args, token="admin-token")
        timeline = http.get(f"/api/v1/incidents/{note['incident_id']}").json()["timeline"]
    assert refused.returncode == 1 and refused.stderr.startswith("hub: error: 403")
    assert dismissed.returncode == 0, dismissed.stderr
    assert dismissed.stdout == f"notification {note['id']} is dismissed\n"
    assert again.returncode == 1
    assert again.stderr.startswith("hub: error: 409 Conflict")
    [entry] = [row for row in timeline if row["kind"] == "dead_letter_dismissed"]
    assert entry["detail"]["comment"] == "mail relay retired"
    assert entry["actor"] == "ada"  # the admin token's name


def test_a_dead_letter_whose_receiver_a_reload_removed_is_not_retried(hub_factory):
    """It would be pending again, and die at once for want of its receiver: the retry is
    refused up front naming why, the CLI exits 1 saying so, and the row stays dead."""
    hub = hub_factory(WITH_TOKENS, mail_url=mail_url(free_port()), max_attempts=1)
    admin = {"Authorization": "Bearer admin-token"}
    with hub.client(headers=admin) as http:
        http.post("/webhooks/shop", json=EVENT, headers=AUTH)
        [note] = wait_for(lambda: http.get("/api/v1/notifications?state=dead").json())
        # a reload may not remove a receiver that an open incident notifies
        resolved = http.post(f"/api/v1/incidents/{note['incident_id']}/resolve", json={})
        assert resolved.status_code == 200, resolved.text
        renamed = hub.config_path.read_text().replace('"ops"', '"pager"')
        hub.config_path.write_text(renamed)
        assert http.post("/-/reload").status_code == 200
        refused = hub_cli(hub, "retry", str(note["id"]), token="admin-token")
        dead = http.get("/api/v1/notifications?state=dead").json()
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr == (
        f"hub: error: 409 Conflict: notification {note['id']} cannot be sent again:"
        " receiver 'ops' is not in the config\n"
    )
    assert [row for row in dead if row["id"] == note["id"]] == [note]


def test_an_unreachable_hub_is_named_in_the_error():
    url = f"http://127.0.0.1:{free_port()}"
    failed = run_hub("--url", url, "alerts", cwd=ROOT)
    assert failed.returncode == 1
    assert failed.stderr.strip() == f"hub: error: cannot connect to {url}: Connection refused"


def test_a_hub_that_does_not_answer_is_given_up_on_after_the_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections queue up, and nothing ever answers them
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        failed = run_hub("--url", url, "--timeout", "0.5", "incidents", cwd=ROOT)
    assert failed.returncode == 1
    assert failed.stderr.strip() == f"hub: error: no answer from {url} within 0.5s"


def test_the_url_and_token_default_to_hub_url_and_hub_token(running):
    hub, _ = running
    environ = {"HUB_URL": hub.url, "HUB_TOKEN": "read-token"}
    shown = run_hub("incidents", "-o", "json", cwd=ROOT, environ=environ)
    assert shown.returncode == 0, shown.stderr
    assert len(json.loads(shown.stdout)) == 1


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--url", "localhost:8080", "alerts"], "argument --url: expected a URL like"),
        (["oncall", "primary", "--at", "09:00"], "argument --at: expected an RFC 3339 time"),
        (
            ["silence", "add", "a=b", "-c", "c", "--start", "0001-01-01T00:00:00+01:00"],
            "argument --start: '0001-01-01T00:00:00+01:00' is outside the years 1 to 9999 in UTC",
        ),
        (["silence", "add", "a=b", "--comment", "c", "--duration", "soon"], "expected a duration"),
        (["snooze", "7", "soon"], "argument duration: expected a duration"),
        (["silence", "add", "a=b"], "the following arguments are required: -c/--comment"),
        (["route-test", "service"], "argument labels: expected label=value, got 'service'"),
        (["route-test", "env!=prod"], "argument labels: expected label=value, got 'env!=prod'"),
    ],
)
def test_bad_usage_exits_2_before_any_request(args, complaint):
    refused = run_hub(*args, cwd=ROOT)
    assert refused.returncode == 2
    assert complaint in refused.stderr


ROUTES = """
[[receivers]]
name = "ops"
urls = ["json://127.0.0.1:9/ops"]

[[receivers]]
name = "pager"
urls = ["json://127.0.0.1:9/pager"]

[[receivers]]
name = "db-team"
urls = ["json://127.0.0.1:9/db"]

[[receivers]]
name = "db-prod"
urls = ["json://127.0.0.1:9/db-prod"]

[[time_intervals]]
name = "nights"
time_intervals = [{ times = [{ start_time = "00:00", end_time = "06:00" }] }]

[route]
receiver = "ops"
group_by = ["alertname"]

[[route.routes]]
matchers = ['severity="critical"']
receiver = "pager"
group_wait = "10s"
continue = true

[[route.routes]]
matchers = ['service=~"db|cache"']
receiver = "db-team"
group_by = ["service"]

  [[route.routes.routes]]
  matchers = ['env="prod"']
  receiver = "db-prod"
  repeat_interval = "1h30m"
  mute_time_intervals = ["nights"]

[[route.routes]]
matchers = ['team="payments"']
receiver = "pager"
"""


@pytest.mark.parametrize("given", [["--config", "routes.toml"], ["routes.toml"]])
def test_check_config_takes_the_file_as_serve_does_or_alone(tmp_path, given):
    """``hub check-config --config FILE`` was a usage error, though ``serve`` and the
    other offline commands take ``--config``."""
    (tmp_path / "routes.toml").write_text(ROUTES)
    checked = run_hub("check-config", *given, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines()[-1] == "routes.toml: ok (0 sources, 4 receivers)"


def test_check_config_warns_of_identity_labels_a_format_never_reads(tmp_path):
    """Alertmanager-style formats and PagerDuty carry their own identity: there
    ``identity_labels`` does nothing, and a user counting on it to keep a changing
    label out of the identity must be told."""
    sources = """
[[sources]]
name = "prom"
format = "prometheus"
auth = { type = "bearer", tokens = ["t"] }
identity_labels = ["alertname", "instance"]

[[sources]]
name = "scripts"
format = "native"
auth = { type = "bearer", tokens = ["t"] }
identity_labels = ["alertname"]
"""
    (tmp_path / "alerts.toml").write_text(sources + ROUTES)
    checked = run_hub("check-config", "alerts.toml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    warned = [line for line in checked.stdout.splitlines() if "identity_labels" in line]
    assert warned == [
        "warning: sources[0] (prom).identity_labels: changes nothing, since Alertmanager's"
        " fingerprint of all an alert's labels is its identity"
    ]


def test_check_config_refuses_two_files():
    refused = run_hub("check-config", "--config", "a.toml", "b.toml", cwd=ROOT)
    assert refused.returncode == 2
    assert "argument PATH: not allowed with argument --config" in refused.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["service=web"], "ops"),
        (["service=db", "env=dev"], "db-team"),
        (["severity=critical", "service=db", "env=prod"], "pager,db-prod"),
        (["severity=critical", "service=web"], "pager"),
        (["severity=critical", "team=payments"], "pager"),  # two routes, one receiver
        (['"service"="db"', "env=prod"], "db-prod"),  # a name quoted, as in matchers
    ],
)
def test_route_test_prints_the_receivers_a_label_set_reaches(tmp_path, labels, receivers):
    (tmp_path / "routes.toml").write_text(ROUTES)
    shown = run_hub("route-test", "--config", "routes.toml", *labels, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == receivers + "\n"


def test_route_test_verbose_shows_each_route_with_its_group_key_timing_and_intervals(tmp_path):
    (tmp_path / "routes.toml").write_text(ROUTES)
    labels = ["severity=critical", "service=db", 'env="prod"', "alertname=Down"]
    shown = run_hub("route-test", "--verbose", "--config", "routes.toml", *labels, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "pager,db-prod",
        "route 0.0 -> pager",
        '  group key:       {}/{severity="critical"}:{alertname="Down"}',
        "  group_by:        alertname",
        "  group_wait:      10s",
        "  group_interval:  5m",
        "  repeat_interval: 4h",
        "route 0.1.0 -> db-prod",
        '  group key:       {}/{service=~"db|cache"}/{env="prod"}:{service="db"}',
        "  group_by:        service",
        "  group_wait:      30s",
        "  group_interval:  5m",
        "  repeat_interval: 1h30m",
        "  mute_time_intervals: nights",
    ]


def notify_config(tmp_path: Path, *urls: str, server: str = "") -> None:
    listed = ", ".join(json.dumps(url) for url in urls)
    text = f'{server}[[receivers]]\nname = "ops"\nurls = [{listed}]\ntimeout = "2s"\n'
    (tmp_path / "alerts.toml").write_text(text + '\n[route]\nreceiver = "ops"\n')


def test_notify_test_sends_a_marked_test_message_to_the_receiver(tmp_path, smtp):
    mailbox, port = smtp
    notify_config(tmp_path, mail_url(port))
    sent = run_hub("notify-test", "ops", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("sent    mailto://127.0.0.1:")
    wait_for(lambda: mailbox.messages)
    assert mailbox.subjects() == ["[FIRING] #0 Test notification from hub, please ignore"]


def test_notify_test_reports_each_failed_url_with_its_reason_and_exits_1(tmp_path, smtp):
    closed = free_port()
    secret = f"mailto://alice:s3cret@127.0.0.1:{closed}?from=hub@example.com&to=a@example.com"
    notify_config(tmp_path, mail_url(smtp[1]), secret + "&mode=insecure")
    result = run_hub("notify-test", "ops", cwd=tmp_path)
    assert result.returncode == 1
    sent, failed = result.stdout.splitlines()
    assert sent.startswith("sent    ")
    assert failed.startswith(f"failed  mailto://alice:****@127.0.0.1:{closed}")
    assert "cto=2.0" in failed and "rto=2.0" in failed, "the receiver's timeout, as sent"
    assert failed.endswith("Connection refused")
    assert "s3cret" not in result.stdout + result.stderr
    assert result.stderr == "", "the reason is on the URL's line, not again as a log line"


@pytest.mark.parametrize(
    ("server", "base"),
    [
        ('[server]\npublic_url = "https://hub.acme.test/"\n', "https://hub.acme.test"),
        ('[server]\nhost = "127.0.0.1"\nport = 9400\n', "http://127.0.0.1:9400"),
    ],
    ids=["public-url", "bound-address"],
)
def test_notify_test_links_point_where_real_notifications_point(tmp_path, server, base):
    """The test message is how a link is checked before an incident: its incident and
    ack links are on ``public_url`` (else the bound address), as real ones are."""
    notify_config(tmp_path, "logfile://sent.jsonl", server=server)
    sent = run_hub("notify-test", "ops", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    body = json.loads((tmp_path / "sent.jsonl").read_text())["body"]
    assert f"[Open incident #0]({base}/notify-test)" in body
    assert f"[Acknowledge]({base}/notify-test)" in body
    assert "hub.example" not in body


def test_notify_test_links_lead_to_a_page_saying_it_was_a_test_not_to_a_real_incident(
    tmp_path, hub_factory
):
    """Once the hub has data, incident #1 is real: a person checking the test message's
    links must not land on it, nor need to sign in to learn the link works."""
    hub = hub_factory(WITH_TOKENS, mail_url=mail_url(free_port()))
    with hub.client(headers=AUTH) as http:
        event = {"status": "firing", "summary": "disk full on db-1"}
        assert http.post("/webhooks/shop", json=event).status_code == 202
    notify_config(tmp_path, "logfile://sent.jsonl", server=f'[server]\npublic_url = "{hub.url}"\n')
    assert run_hub("notify-test", "ops", cwd=tmp_path).returncode == 0
    body = json.loads((tmp_path / "sent.jsonl").read_text())["body"]
    links = sorted(set(re.findall(r"\]\((http[^)]+)\)", body)))
    assert links == [f"{hub.url}/notify-test"]
    with hub.client() as http:
        page = http.get(links[0])
    assert page.status_code == 200
    assert "test message that hub notify-test sent" in page.text
    assert "disk full" not in page.text


def test_notify_test_names_the_known_receivers_when_one_is_unknown(tmp_path):
    notify_config(tmp_path, "json://127.0.0.1:9/")
    result = run_hub("notify-test", "pager", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "hub: error: no receiver 'pager' in alerts.toml (known: ops)"


def test_logfile_paths_are_the_config_folders_or_absolute_whatever_the_working_dir(tmp_path):
    config_dir, elsewhere, var = tmp_path / "etc", tmp_path / "run", tmp_path / "var log"
    for folder in (config_dir, elsewhere, var):
        folder.mkdir()
    absolute = var / "sent.jsonl"
    notify_config(config_dir, "logfile://sent.jsonl", f"logfile://{absolute.as_posix()}")
    config_path = (config_dir / "alerts.toml").as_posix()
    sent = run_hub("notify-test", "--config", config_path, "ops", cwd=elsewhere)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.splitlines() == [
        f"sent    logfile://{(config_dir / 'sent.jsonl').as_posix()}",
        f"sent    logfile://{absolute.as_posix()}",
    ]
    for log in (config_dir / "sent.jsonl", absolute):
        (line,) = log.read_text().splitlines()
        assert json.loads(line)["title"] == "[FIRING] #0 Test notification from hub, please ignore"
    assert list(elsewhere.iterdir()) == []


def test_oncall_asks_the_running_hub_for_the_given_time(hub_factory):
    hub = hub_factory(WITH_TOKENS + SCHEDULE_CONFIG, mail_url="logfile://ops.log")
    shown = run_hub(
        "--url", hub.url, "--token", "read-token", "oncall", "primary",
        "--at", "2026-03-28T10:00:00+01:00", cwd=ROOT,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    header, row = shown.stdout.splitlines()
    assert header.split() == ["SCHEDULE", "AT", "PERSON", "UNTIL", "NEXT"]
    assert row.split()[0] == "primary" and row.split()[1] == "2026-03-28T09:00:00Z"
    assert row.split()[2] in ("alice", "bob") and row.split()[4] in ("alice", "bob")
    assert row.split()[2] != row.split()[4], "the next person differs in a two-person rotation"
    unknown = run_hub("--url", hub.url, "--token", "read-token", "oncall", "nope", cwd=ROOT)
    assert unknown.returncode == 1 and "404" in unknown.stderr


def test_every_command_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in command_names(cli.parser()) if f"hub {name}" not in readme]
    assert missing == [], f"commands not in README.md: {missing}"


def command_names(parser, prefix: str = "") -> list[str]:
    """Every command of the parser, sub-commands spelled out (``silence add``)."""
    names = []
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for name, sub in action.choices.items():
            names += command_names(sub, f"{prefix}{name} ") or [prefix + name]
    return names


def test_a_reader_that_stops_early_gets_no_traceback(running):
    """``hub alerts -o json | head`` is how operators look at a long answer."""
    hub, _ = running
    with hub.client(headers=AUTH) as http:
        for first in range(0, 300, 50):
            many = [
                {"status": "firing", "summary": f"disk {i} full", "labels": {"disk": str(i)}}
                for i in range(first, first + 50)
            ]
            assert http.post("/webhooks/shop", json=many).status_code == 202
    command = [sys.executable, "-m", "hub", "--url", hub.url, "--token", "read-token"]
    reader = subprocess.Popen(
        [*command, "alerts", "--limit", "1000", "-o", "json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert reader.stdout.read(10)  # the answer is far longer than a pipe holds
    reader.stdout.close()
    _, errors = reader.communicate(timeout=60)
    assert reader.returncode == 0
    assert b"Traceback" not in errors and b"BrokenPipe" not in errors


def test_backup_writes_a_consistent_copy_while_the_hub_writes_and_keeps_an_existing_file(
    hub_factory, smtp, tmp_path
):
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    dest = tmp_path / "copy.db"

    def send(count: int, start: int = 0) -> None:
        with hub.client(headers=AUTH) as http:
            for n in range(start, start + count):
                event = {**EVENT, "labels": {"service": f"svc-{n}"}}
                assert http.post("/webhooks/shop", json=event).status_code == 202

    send(10)
    writer = threading.Thread(target=send, args=(20, 10))
    writer.start()
    made = run_hub("backup", str(dest), "--config", str(hub.config_path), cwd=ROOT)
    writer.join()
    assert made.returncode == 0, made.stderr
    assert made.stdout == (
        f"wrote {dest} ({dest.stat().st_size} bytes): a consistent copy of {tmp_path / 'hub.db'}\n"
    )
    with contextlib.closing(sqlite3.connect(dest)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        deliveries = copy.execute("SELECT count(*) FROM deliveries").fetchone()[0]
        alerts = copy.execute("SELECT count(*) FROM alerts").fetchone()[0]
    assert 10 <= deliveries <= 30 and alerts == deliveries

    kept = dest.read_bytes()
    again = run_hub("backup", str(dest), "--config", str(hub.config_path), cwd=ROOT)
    assert again.returncode == 1
    assert again.stderr == f"hub: error: {dest} exists; --force replaces it\n"
    assert dest.read_bytes() == kept
    forced = run_hub("backup", str(dest), "--force", "--config", str(hub.config_path), cwd=ROOT)
    assert forced.returncode == 0, forced.stderr
    with contextlib.closing(sqlite3.connect(dest)) as copy:
        assert copy.execute("SELECT count(*) FROM alerts").fetchone()[0] == 30


def test_backup_says_which_side_is_missing_the_store_or_the_destination_folder(tmp_path, smtp):
    """SQLite says "unable to open database file" for both: the store a hub never
    created and a destination folder nobody made."""
    notify_config(tmp_path, mail_url(smtp[1]), server='[storage]\npath = "hub.db"\n')
    store, dest = tmp_path / "hub.db", tmp_path / "backups" / "copy.db"
    no_store = run_hub("backup", str(tmp_path / "copy.db"), cwd=tmp_path)
    assert no_store.returncode == 1
    assert no_store.stderr == (
        f"hub: error: cannot back up {store}: the store does not exist"
        " (has hub run with this config yet?)\n"
    )
    with contextlib.closing(sqlite3.connect(store)) as made:
        made.execute("CREATE TABLE t (x)")
    no_folder = run_hub("backup", str(dest), cwd=tmp_path)
    assert no_folder.returncode == 1
    assert no_folder.stderr == (
        f"hub: error: cannot back up to {dest}: the folder {dest.parent} does not exist\n"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["alerts.toml", "hub.db"]


def test_backup_into_a_folder_names_the_copy_and_the_store_and_copies_are_private(
    hub_factory, smtp, tmp_path
):
    """``hub backup /var/backups/`` puts a dated copy inside, as ``cp`` would; the store
    and its copies hold the key that signs ack links, so only hub's user reads them."""
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    folder = tmp_path / "backups"
    folder.mkdir()
    made = run_hub("backup", f"{folder}/", "--config", str(hub.config_path), cwd=ROOT)
    assert made.returncode == 0, made.stderr
    (copy,) = folder.iterdir()
    assert re.fullmatch(r"hub-\d{8}T\d{6}Z\.db", copy.name), copy.name
    assert made.stdout.startswith(f"wrote {copy} (")
    with contextlib.closing(sqlite3.connect(copy)) as opened:
        assert opened.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    for private in (copy, tmp_path / "hub.db", tmp_path / "hub.db-wal"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    missing = tmp_path / "nope"
    mistyped = run_hub("backup", f"{missing}/", "--config", str(hub.config_path), cwd=ROOT)
    assert mistyped.returncode == 1
    assert f"the folder {missing} does not exist" in mistyped.stderr
    assert not missing.exists(), "a folder written with a slash never becomes a file"


def test_muted_and_not_muted_list_what_a_mute_holds_back_or_the_rest(running):
    """Both alerts are in one incident: with one of them heard, it is not muted."""
    hub, incident_id = running
    other = {**EVENT, "summary": "search slow", "labels": {"service": "search"}}
    silence = {"matchers": ['service="checkout"'], "duration": "1h", "comment": "deploying"}
    with hub.client() as http:
        assert http.post("/webhooks/shop", json=other, headers=AUTH).status_code == 202
        writer = {"Authorization": "Bearer write-token"}
        assert http.post("/api/v1/silences", json=silence, headers=writer).status_code == 201
    shown = {
        args: json.loads(hub_cli(hub, *args, "-o", "json", token="read-token").stdout)
        for args in (
            ("alerts", "--muted"),
            ("alerts", "--not-muted"),
            ("incidents", "--muted"),
            ("incidents", "--not-muted"),
        )
    }
    both = hub_cli(hub, "alerts", "--muted", "--not-muted", token="read-token")
    assert [row["summary"] for row in shown["alerts", "--muted"]] == [EVENT["summary"]]
    assert [row["summary"] for row in shown["alerts", "--not-muted"]] == ["search slow"]
    assert shown["incidents", "--muted"] == []
    assert [row["id"] for row in shown["incidents", "--not-muted"]] == [incident_id]
    assert both.returncode == 2
    assert "argument --not-muted: not allowed with argument --muted" in both.stderr


MUTING = """
[[inhibit_rules]]
source_matchers = ['alertname="DatacenterDown"']
target_matchers = ['severity="warning"']
equal = ["dc"]

[[maintenance]]
name = "db-upgrade"
starts_at = "2020-01-01T00:00:00Z"
ends_at = "2099-01-01T00:00:00Z"
matchers = ['service="db"']
"""


def column(table: str, header: str, following: str) -> dict[str, str]:
    """One column of a table, by each row's first cell (its id): the text between where
    ``header`` and the next column, ``following``, start."""
    head, *rows = table.splitlines()
    start, end = head.index(header), head.index(following)
    return {row.split()[0]: row[start:end].strip() for row in rows}


def test_the_alerts_table_says_what_mutes_each_alert(hub_factory, smtp):
    """As ``amtool alert query`` shows an alert silenced or inhibited: the silence by
    the id ``hub silence expire`` takes, the window or rule by its config name."""
    hub = hub_factory(WITH_TOKENS + MUTING, mail_url=mail_url(smtp[1]))
    events = {
        "silenced": {"service": "checkout"},
        "inhibited": {"service": "web", "dc": "eu"},
        "maintained": {"service": "db"},
        "heard": {"service": "search"},
    }
    down = {**EVENT, "labels": {"alertname": "DatacenterDown", "dc": "eu"}}
    silence = {"matchers": ['service="checkout"'], "duration": "1h", "comment": "deploy"}
    with hub.client(headers=AUTH) as http:
        posted = {
            name: http.post(
                "/webhooks/shop",
                json={**EVENT, "severity": "warning", "summary": name, "labels": labels},
            ).json()["alerts"][0]
            for name, labels in events.items()
        }
        posted["source"] = http.post("/webhooks/shop", json=down).json()["alerts"][0]
        writer = {"Authorization": "Bearer write-token"}
        silence_id = http.post("/api/v1/silences", json=silence, headers=writer).json()["id"]
    shown = hub_cli(hub, "alerts", token="read-token")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].split()[5:8] == ["MUTED", "BY", "SUMMARY"]
    muted_by = column(shown.stdout, "MUTED BY", "SUMMARY")
    assert {name: muted_by[str(alert["id"])] for name, alert in posted.items()} == {
        "silenced": f"silence {silence_id}",
        "inhibited": "inhibit_rules[0]",
        "maintained": "maintenance:db-upgrade",
        "heard": "-",
        "source": "-",
    }
    incident = hub_cli(hub, "incident", str(posted["silenced"]["incident_id"]), token="read-token")
    alerts = incident.stdout.split("Alerts:\n")[1].split("\n\nTimeline:")[0]
    assert column(alerts, "MUTED BY", "SUMMARY") == muted_by, "one incident: all five"
    as_json = hub_cli(hub, "alerts", "-o", "json", token="read-token")
    assert "muted_by" not in as_json.stdout, "the API's answer as is: mutes only"
    with hub.client(headers={"Authorization": "Bearer read-token"}) as http:
        assert json.loads(as_json.stdout) == http.get("/api/v1/alerts").json()


def test_silence_list_finds_silences_by_their_matchers_and_prints_ids_with_quiet(running):
    """As ``amtool silence query [-q] MATCHER ...``: the silences having each matcher
    among theirs, quoted or not; a first word with no operator is the alertname."""
    hub, _ = running

    def add(*matchers: str) -> str:
        added = hub_cli(hub, "silence", "add", *matchers, "-c", "disk work")
        assert added.returncode == 0, added.stderr
        return added.stdout.strip()

    disk = add("alertname=DiskFull", "host=a")
    disk_b = add('alertname="DiskFull"', "host=b")
    add('alertname=~"Disk.*"')
    quiet = hub_cli(hub, "silence", "list", "-q", 'alertname="DiskFull"', token="read-token")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, f"{disk_b}\n{disk}\n", "")
    short = hub_cli(hub, "silence", "list", "--quiet", "DiskFull", "host=a", token="read-token")
    assert short.stdout == f"{disk}\n"
    table = hub_cli(hub, "silence", "list", "DiskFull", token="read-token").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "STATE", "MATCHERS"]
    assert [row.split()[0] for row in table[1:]] == [disk_b, disk]
    none = hub_cli(hub, "silence", "list", "-q", "alertname=Other", token="read-token")
    assert (none.returncode, none.stdout) == (0, "")
    bad = hub_cli(hub, "silence", "list", 'host=~"("', token="read-token")
    assert bad.returncode == 1
    assert bad.stderr.startswith("hub: error: 400 Bad request: invalid query parameter 'matcher'")


def test_silence_expire_takes_several_ids_and_names_each_that_failed(running):
    """``hub silence expire $(hub silence list -q ...)``: each silence given is expired;
    one that cannot be is named on stderr, the others still expire, and the exit code
    says something failed. One id keeps its answer: the silence, with ``-o json``."""
    hub, _ = running
    add = ("silence", "add", "alertname=DiskFull", "-c", "disk work")
    first, second, third = (hub_cli(hub, *add).stdout.strip() for _ in range(3))
    ids = hub_cli(hub, "silence", "list", "-q", "DiskFull", token="read-token").stdout.split()
    assert sorted(ids) == sorted([first, second, third])
    both = hub_cli(hub, "silence", "expire", first, "no-such-id", second)
    assert both.returncode == 1
    assert both.stdout == f"silence {first} is expired\nsilence {second} is expired\n"
    assert both.stderr == (
        "hub: error: silence no-such-id: 404 Not found: no silence with id no-such-id\n"
    )
    again = hub_cli(hub, "silence", "expire", first, third, "-o", "json")
    assert again.returncode == 1
    assert [s["id"] for s in json.loads(again.stdout)] == [third]
    assert again.stderr == (
        f"hub: error: silence {first}: 409 Conflict: silence {first} has already expired\n"
    )
    active = hub_cli(hub, "silence", "list", "-q", "--state", "active", token="read-token")
    assert active.stdout == ""
    fourth = hub_cli(hub, *add).stdout.strip()
    one = hub_cli(hub, "silence", "expire", fourth, "-o", "json")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["id"] == fourth and json.loads(one.stdout)["state"] == "expired"


def test_a_first_matcher_without_an_operator_is_the_alertname_everywhere_as_in_amtool(running):
    """An Alertmanager user types ``amtool silence add DiskFull`` and ``amtool alert query
    DiskFull``: hub's ``silence add``, ``alerts`` and ``incidents`` read that word as
    ``alertname="DiskFull"``, as ``silence list`` does, rather than refusing it as a bad
    matcher."""
    hub, _ = running
    disk = {**EVENT, "summary": "disk full", "labels": {"alertname": "DiskFull", "host": "a"}}
    with hub.client(headers=AUTH) as http:
        assert http.post("/webhooks/shop", json=disk).status_code == 202
    added = hub_cli(hub, "silence", "add", "DiskFull", "host=a", "-c", "disk work", "-o", "json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["matchers"] == ['alertname="DiskFull"', "host=a"]
    alerts = hub_cli(hub, "alerts", "DiskFull", token="read-token")
    assert alerts.returncode == 0, alerts.stderr
    assert [row.split("  ")[-1] for row in alerts.stdout.splitlines()[1:]] == [
        "alertname=DiskFull,host=a"
    ]
    incidents = hub_cli(hub, "incidents", "-o", "json", "DiskFull", token="read-token")
    assert incidents.returncode == 0, incidents.stderr
    assert json.loads(incidents.stdout) == [], "the one incident's group labels name no alert"


def test_a_heartbeat_is_paused_and_resumed_naming_who_and_when_it_is_due(running):
    hub, _ = running
    with hub.client(headers={"Authorization": "Bearer write-token"}) as http:
        made = http.post("/api/v1/heartbeats", json={"name": "backup", "period": "1d"})
        assert made.status_code == 201, made.text
    paused = hub_cli(hub, "heartbeat", "pause", "backup", "--reason", "host in maintenance")
    assert (paused.returncode, paused.stdout) == (0, "heartbeat backup is paused by will\n")
    shown = json.loads(hub_cli(hub, "heartbeat", "pause", "backup", "-o", "json").stdout)
    assert (shown["state"], shown["pause_reason"]) == ("paused", "host in maintenance")
    resumed = hub_cli(hub, "heartbeat", "resume", "backup", "--by", "bob", token="grafana-token")
    assert resumed.returncode == 0, resumed.stderr
    due = re.fullmatch(r"heartbeat backup is new, due by (\S+)\n", resumed.stdout)
    assert due and due.group(1) == ANY_TIME
    again = hub_cli(hub, "heartbeat", "resume", "backup")
    assert again.returncode == 1
    assert again.stderr == "hub: error: 409 Conflict: heartbeat 'backup' is not paused\n"
    as_bob = hub_cli(hub, "heartbeat", "pause", "backup", "--by", "bob", token="grafana-token")
    assert as_bob.stdout == "heartbeat backup is paused by bob via grafana\n"
    unknown = hub_cli(hub, "heartbeat", "pause", "nope")
    assert unknown.returncode == 1 and "404" in unknown.stderr


def test_heartbeats_are_listed_with_their_state_next_deadline_and_who_paused_them(running):
    hub, _ = running
    with hub.client(headers={"Authorization": "Bearer write-token"}) as http:
        for name in ("backup", "etl"):
            made = http.post("/api/v1/heartbeats", json={"name": name, "period": "1d"})
            assert made.status_code == 201, made.text
    hub_cli(hub, "heartbeat", "pause", "etl", "--reason", "decommissioned")
    listed = hub_cli(hub, "heartbeat", "list", token="read-token")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == [
        "NAME",
        "STATE",
        "LAST",
        "PING",
        "DUE",
        "BY",
        "PERIOD",
        "GRACE",
        "PAUSED",
        "BY",
        "WHY",
    ]
    assert [row.split()[:2] for row in rows] == [["backup", "new"], ["etl", "paused"]]
    assert re.fullmatch(r"backup\s+new\s+-\s+\S+Z\s+1d\s+1m\s+-\s+-", rows[0]), rows[0]
    assert re.fullmatch(r"etl\s+paused\s+-\s+-\s+1d\s+1m\s+will\s+decommissioned", rows[1])
    as_json = json.loads(hub_cli(hub, "heartbeat", "list", "-o", "json").stdout)
    assert [(h["name"], h["state"]) for h in as_json] == [("backup", "new"), ("etl", "paused")]
