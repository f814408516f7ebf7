"""Reads never fail on a row edited by hand: an operator repairing a row with ``sqlite3``
(or a fault) can leave text in a time or number column, a number or undecodable bytes
in a text column, or NULL where the schema allows one. Every read of the API, the
console, ``/metrics`` and the command line's lists still answers, lists the other
rows, and shows the odd value as its text rather than failing or hiding the row; no
worker's round fails on it (an escalation or receiver row is at worst set aside).

One real hub per table on a real SQLite file: two of everything (alerts, incidents,
notifications, deliveries, heartbeats, silences), one row of the table edited one
column at a time, every read requested after each edit. A silence whose window,
matchers or id cannot be read is not in force: alerts it would mute notify."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterator
from typing import NamedTuple

import pytest
import schemathesis
from conftest import MovedClock, mail_url, wait_for
from console_support import CONSOLE_CONFIG, fire, sign_in
from notify_support import metric
from schemathesis.core.failures import Failure
from test_alertmanager_api import amtool_for
from test_cli import in_process
from test_heartbeats import start_hub, subjects

READ = {"Authorization": "Bearer read-token"}
WRITE = {"Authorization": "Bearer write-token"}
BLOB = b"\xffodd"
"""Bytes that are not UTF-8: shown with U+FFFD for the byte that is not."""
ODD_TEXT = "yesterday"


class Edit(NamedTuple):
    column: str
    value: object
    hidden: bool = False
    """Not shown as stored: a 0 or 1 column, shown as a boolean (on only for a whole
    number other than 0), or a worker's bookkeeping no read shows."""

    def shown(self) -> str | None:
        """How the API's JSON must show the value (None: as null, or not at all)."""
        if self.value is None or self.hidden:
            return None
        if isinstance(self.value, bytes):
            return self.value.decode("utf-8", "replace")
        return str(self.value)


def text(column: str) -> Edit:
    return Edit(column, ODD_TEXT)


def unshown(column: str) -> Edit:
    return Edit(column, ODD_TEXT, hidden=True)


def number(column: str) -> Edit:
    return Edit(column, 42)


def blob(column: str) -> Edit:
    return Edit(column, BLOB)


def null(column: str) -> Edit:
    return Edit(column, None)


EDITS: dict[str, tuple[str, list[Edit]]] = {
    "alerts": (
        "id = :alert",
        [
            text("first_seen"),
            text("resolved_at"),
            text("duplicates"),
            number("summary"),
            blob("source"),
            null("incident_id"),
        ],
    ),
    "incidents": (
        "id = :incident",
        [
            text("opened_at"),
            text("acknowledged_at"),
            text("active_alerts"),
            blob("title"),
            number("acknowledged_by"),
            null("escalation"),
        ],
    ),
    "notifications": (
        "incident_id = :incident",
        [
            text("created_at"),
            text("sent_at"),
            text("attempts"),
            blob("receiver"),
            number("last_error"),
        ],
    ),
    "notification_attempts": (
        "notification_id IN (SELECT id FROM notifications WHERE incident_id = :incident)",
        [text("started_at"), text("duration_ms"), blob("error")],
    ),
    "deliveries": (
        "id = :delivery",
        [text("received_at"), text("status_code"), blob("delivery_key")],
    ),
    "events": (
        "delivery_id = :delivery",
        [text("occurred_at"), blob("outcome")],
    ),
    "alert_history": (
        "alert_id = :alert",
        [text("at"), text("recorded_at"), blob("summary"), null("event_id")],
    ),
    "timeline": (
        "incident_id = :incident",
        [text("at"), blob("actor")],
    ),
    "heartbeats": (
        "name = 'etl'",
        [
            text("last_ping"),
            Edit("overdue", ODD_TEXT, hidden=True),
            text("started_at"),
            text("period"),
            blob("summary"),
        ],
    ),
    "escalations": (
        "id = :incident",
        [
            unshown("started_at"),
            text("due_at"),
            text("next_step"),
            text("held_at"),
            unshown("paged"),
            text("plan"),
            blob("policy"),
        ],
    ),
    "incident_receivers": (
        "incident_id = :incident",
        [
            unshown("first_seen"),
            unshown("last_notified_at"),
            unshown("due_at"),
            unshown("group_wait"),
            unshown("changed_at"),
            unshown("muted"),
            unshown("send_resolved"),
            Edit("receiver", BLOB, hidden=True),
        ],
    ),
    "silences": (
        "id = :silence",
        [
            text("created_at"),
            text("starts_at"),
            text("ends_at"),
            text("updated_at"),
            text("matchers"),
            number("matchers"),
            Edit("matchers", '["yesterday"]'),
            blob("matchers"),
            blob("id"),
            blob("created_by"),
            blob("comment"),
        ],
    ),
}

ESCALATION = """escalation = "page"

[[escalations]]
name = "page"
steps = [{{ after = "1h", notify = ["ops"] }}]
"""
"""A chain for each incident (its ``escalations`` row), whose first step is an hour off."""
LISTS = (
    ("alerts", "--all"),
    ("incidents", "--all"),
    ("notifications", "--all"),
    ("heartbeat", "list"),
    ("silence", "list"),
)
"""The command line's lists, each a table of what one API list answers."""

OTHERS = ("payments down", "backup", "payments freeze")
"""What names the rows left alone: each read that showed one before an edit must still."""


class Populated(NamedTuple):
    hub: object
    ids: dict[str, object]
    reads: list[str]


def populated(hub_factory, smtp) -> Populated:
    """A hub holding two of each row kind, its notifications sent; the ids of the rows
    to edit (the checkout ones) and every read that may show them."""
    mailbox, port = smtp
    hub = hub_factory(CONSOLE_CONFIG + ESCALATION, mail_url=mail_url(port), max_attempts=1)
    checkout = fire(hub.url, "checkout down")
    fire(hub.url, "payments down", service="payments")
    wait_for(lambda: len(mailbox.messages) == 2)
    with hub.client(headers=WRITE) as http:
        for name in ("etl", "backup"):
            body = {"name": name, "period": "1h", "summary": f"{name} did not report"}
            http.post("/api/v1/heartbeats", json=body).raise_for_status()
        assert http.post("/ping/etl").status_code == 200
        freeze = {"duration": "1h"}
        silence = http.post(
            "/api/v1/silences",
            json={**freeze, "matchers": ['service="checkout"'], "comment": "checkout freeze"},
        ).json()["id"]
        http.post(
            "/api/v1/silences",
            json={**freeze, "matchers": ['service="payments"'], "comment": "payments freeze"},
        ).raise_for_status()
        ack = f"/api/v1/incidents/{checkout['incident_id']}/ack"
        http.post(ack).raise_for_status()
        delivery = http.get("/api/v1/events").json()[-1]["id"]
    ids = {
        "alert": checkout["id"],
        "incident": checkout["incident_id"],
        "delivery": delivery,
        "silence": silence,
    }
    return Populated(hub, ids, reads(ids))


def reads(ids: dict[str, object]) -> list[str]:
    """Every read that shows a row of some table: API lists and details, the
    Alertmanager API, the console's pages and ``/metrics``."""
    return [
        "/api/v1/alerts",
        f"/api/v1/alerts/{ids['alert']}",
        "/api/v1/incidents",
        f"/api/v1/incidents/{ids['incident']}",
        "/api/v1/notifications",
        "/api/v1/events",
        f"/api/v1/events/{ids['delivery']}",
        "/api/v1/heartbeats",
        "/api/v1/heartbeats/etl",
        "/api/v1/silences",
        f"/api/v1/silences/{ids['silence']}",
        "/api/v2/alerts",
        "/api/v2/alerts/groups",
        "/api/v2/silences",
        f"/api/v2/silence/{ids['silence']}",
        "/",
        "/?status=resolved",
        f"/incidents/{ids['incident']}",
        "/notifications",
        "/heartbeats",
        "/silences",
        f"/silences/{ids['silence']}/edit",
        "/sources",
        f"/deliveries/{ids['delivery']}",
        "/metrics",
    ]


@contextlib.contextmanager
def edited(hub, table: str, where: str, change: Edit, ids: dict[str, object]) -> Iterator[None]:
    """One column of the chosen rows changed behind hub's back, as a hand edit does,
    then put back as it was."""
    path = hub.runtime.config.storage.path
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute(f"SELECT rowid, {change.column} FROM {table} WHERE {where}", ids)
        kept = rows.fetchall()
        assert kept, f"no {table} row matched {where}"
        with db:
            db.execute(
                f"UPDATE {table} SET {change.column} = :value WHERE {where}",
                {**ids, "value": change.value},
            )
        yield
        with db:
            db.executemany(
                f"UPDATE {table} SET {change.column} = ? WHERE rowid = ?",
                [(value, rowid) for rowid, value in kept],
            )


def answers(hub, paths: list[str], failed: list[str]) -> dict[str, str]:
    """Each read's body, signed in to the console and with a read token for the API; a
    5xx is added to ``failed`` with its path and answer."""
    found = {}
    with hub.client(headers=READ) as http:
        sign_in(http, "admin-token")
        for path in paths:
            answer = http.get(path)
            if answer.status_code >= 500:
                failed.append(f"{path}: {answer.status_code}")
            found[path] = answer.text
    return found


def printed(hub, failed: list[str]) -> dict[str, str]:
    """What each of the command line's lists prints, run in this process (a traceback
    is an exception here); one that fails or exits non-zero is added to ``failed``."""
    found = {}
    for command in LISTS:
        try:
            ran = in_process("--url", hub.url, "--token", "read-token", *command)
        except Exception as e:  # a traceback is what this looks for
            failed.append(f"hub {' '.join(command)}: {type(e).__name__}: {e}")
            continue
        if ran.returncode != 0:
            failed.append(f"hub {' '.join(command)}: {ran.returncode} {ran.stderr.strip()}")
        found[f"hub {' '.join(command)}"] = ran.stdout
    return found


@pytest.mark.parametrize("table", EDITS)
def test_every_read_shows_a_row_edited_by_hand_and_the_rows_beside_it(
    hub_factory, smtp, table, caplog
):
    hub, ids, paths = populated(hub_factory, smtp)
    failed: list[str] = []
    before = answers(hub, paths, failed) | printed(hub, failed)
    assert not failed
    where, changes = EDITS[table]
    for change in changes:
        problems: list[str] = []
        with edited(hub, table, where, change, ids):
            after = answers(hub, paths, problems) | printed(hub, problems)
        for path in before:
            kept = [other for other in OTHERS if other in before[path]]
            if lost := [other for other in kept if other not in after[path]]:
                problems.append(f"{path} lost {lost}")
        shown = change.shown()
        if shown is not None and not any(shown in body for body in after.values()):
            problems.append(f"{shown!r} is shown nowhere")
        failed += [f"{table}.{change.column}: {problem}" for problem in problems]

    assert not failed, "\n".join(failed)
    assert not [r for r in caplog.records if "worker_round_failed" in r.getMessage()]


def test_a_hub_starts_and_gauges_a_heartbeat_whose_ping_and_flag_were_edited_to_text(
    hub_factory, smtp
):
    """Starting, the watchdog gauges every heartbeat (``App.show_heartbeats``): a last
    ping or an overdue flag stored as text raised there, and the hub did not start. The
    flag's text is off, as every read takes a flag (``stored.flag``)."""
    hub, ids, _ = populated(hub_factory, smtp)
    with edited(hub, "heartbeats", "name = 'etl'", text("last_ping"), ids):
        with edited(hub, "heartbeats", "name = 'etl'", text("overdue"), ids):
            hub.restart()
            with hub.client(headers=READ) as http:
                exposition = http.get("/metrics").text
                shown = http.get("/api/v1/heartbeats/etl").json()
    ping = "hub_heartbeat_last_ping_timestamp_seconds"
    assert metric(exposition, ping, heartbeat="etl") == 0
    assert metric(exposition, ping, heartbeat="backup") == 0
    assert metric(exposition, "hub_heartbeat_overdue", heartbeat="etl") == 0
    assert (shown["last_ping"], shown["overdue"], shown["state"]) == (ODD_TEXT, False, "up")


def test_a_silence_whose_end_was_edited_to_text_is_not_in_force_and_can_be_expired(
    hub_factory, smtp, tmp_path, caplog
):
    """Before, reading it raised in every dispatcher round (``worker_round_failed``: no
    notification went out at all) and in the webhook's write (a 500). Failing open, the
    alert it would mute notifies; it is logged once, listed as unreadable with its
    stored text, left out of Alertmanager's list (amtool still reads that), and
    expiring it removes it."""
    mailbox, port = smtp
    hub = hub_factory(CONSOLE_CONFIG + ESCALATION, mail_url=mail_url(port), max_attempts=1)
    with hub.client(headers=WRITE) as http:
        body = {"matchers": ['service="checkout"'], "comment": "deploy", "duration": "1h"}
        silence = http.post("/api/v1/silences", json=body).json()["id"]
    with (
        caplog.at_level(logging.WARNING),
        edited(hub, "silences", "id = :silence", text("ends_at"), {"silence": silence}),
    ):
        fire(hub.url, "checkout down")
        wait_for(lambda: len(mailbox.messages) == 1)
        fire(hub.url, "checkout slow", service="checkout", host="b")
        wait_for(lambda: len(mailbox.messages) == 2)
        with hub.client(headers=READ) as http:
            shown = http.get(f"/api/v1/silences/{silence}").json()
            unreadable = http.get("/api/v1/silences?state=unreadable").json()
        query = amtool_for(hub, tmp_path)("silence", "query")
        with hub.client(headers=WRITE) as http:
            expired = http.delete(f"/api/v1/silences/{silence}")
            after = http.get("/api/v1/silences").json()
    lines = [r.getMessage() for r in caplog.records]
    assert not [line for line in lines if "worker_round_failed" in line]
    assert [line for line in lines if "silence_unreadable" in line] == [
        f"event=silence_unreadable id={silence} column=ends_at in_force=false"
    ]
    assert (shown["state"], shown["ends_at"]) == ("unreadable", ODD_TEXT)
    assert [s["id"] for s in unreadable] == [silence]
    assert query.returncode == 0, query.stderr
    assert silence not in query.stdout
    assert expired.status_code == 200
    assert after == []


def test_the_page_of_an_incident_whose_due_escalation_step_was_edited_to_text_shows_it(
    hub_factory, smtp
):
    """The console works out the next step's number only for an escalation that is due
    or held, which the acknowledged incident of the parametrised test never is: a step
    stored as text is shown as it is, not a 500."""
    hub, ids, _ = populated(hub_factory, smtp)
    with hub.client(headers=READ) as http:
        listed = http.get("/api/v1/incidents").json()
    payments = next(i["id"] for i in listed if "payments" in i["title"])
    failed: list[str] = []
    page = f"/incidents/{payments}"
    with edited(hub, "escalations", f"id = {payments}", text("next_step"), ids):
        shown = answers(hub, [page], failed)[page]
    assert not failed
    assert f"step {ODD_TEXT} due" in shown


class Typed(NamedTuple):
    """A number or flag column a hand edit can reach, and the console pages and command
    line lists that show it (besides the API, which always does)."""

    table: str
    column: str
    places: tuple[str, ...] = ()


WHOLE_NUMBERS = (
    Typed("alerts", "duplicates", ("/incidents/{incident}",)),
    Typed("alerts", "incident_id", ("hub alerts --all",)),
    Typed("alert_history", "event_id"),
    Typed("incidents", "active_alerts", ("/?status=acknowledged",)),
    Typed("incidents", "episode"),
    Typed("incidents", "title_alert_id"),
    Typed("notifications", "alert_id"),
    Typed("notifications", "channel"),
    Typed("notifications", "attempts", ("/notifications", "hub notifications --all")),
    Typed("notifications", "incident_id", ("hub notifications --all",)),
    Typed("notification_attempts", "duration_ms"),
    Typed("escalations", "next_step"),
    Typed("deliveries", "status_code", ("/sources", "/deliveries/{delivery}")),
    Typed("deliveries", "replay_of"),
)
"""Every column read into a field the OpenAPI document types as a number. An event's
``alert_id`` is not among them: the event is read joined to its alert, so one whose
``alert_id`` names no alert is not listed at all."""
FLAGS = (
    Typed("alerts", "flapping"),
    Typed("alert_history", "applied"),
    Typed("heartbeats", "overdue"),
)
"""Every 0/1 column read into a field the document types as a boolean (or 0 or 1)."""

API_READS = {
    "/api/v1/alerts": {},
    "/api/v1/alerts/{alert_id}": {"alert_id": "alert"},
    "/api/v1/incidents": {},
    "/api/v1/incidents/{incident_id}": {"incident_id": "incident"},
    "/api/v1/notifications": {},
    "/api/v1/events": {},
    "/api/v1/events/{delivery_id}": {"delivery_id": "delivery"},
    "/api/v1/heartbeats": {},
    "/api/v1/heartbeats/{name}": {"name": "heartbeat"},
    "/api/v2/alerts": {},
    "/api/v2/alerts/groups": {},
}
"""The API's reads that show these rows, as the document names them, and which of the
populated hub's ids fills each ``{name}``."""


def validated(hub, ids: dict[str, object]) -> dict[str, str]:
    """Each API read's body, held to the schema the served document declares for it:
    a failure raises, naming the field."""
    found = {}
    with hub.client(headers=READ) as http:
        document = schemathesis.openapi.from_dict(http.get("/schema/openapi.json").json())
        for template, names in API_READS.items():
            answer = http.get(template.format(**{name: ids[key] for name, key in names.items()}))
            document[template]["GET"].validate_response(answer)
            found[template] = answer.text
    return found


def test_a_number_column_edited_to_text_is_shown_as_that_text_where_the_schema_allows_it(
    hub_factory, smtp, caplog
):
    """Text (or a fraction) in a whole-number column used to reach the API where its
    schema said integer. Now every answer holds to the schema, which allows the stored
    text there; the API, the console and the command line's lists that show the column
    show the text, and it is logged once, however often it is read."""
    hub, ids, _ = populated(hub_factory, smtp)
    ids = {**ids, "heartbeat": "etl"}
    failed: list[str] = []
    for typed in WHOLE_NUMBERS:
        odd = f"{typed.table}.{typed.column}?"
        with caplog.at_level(logging.WARNING), edited_to(hub, typed, odd, ids):
            try:
                shown = {"API": "".join(validated(hub, ids).values())}
            except Failure as e:
                failed.append(f"{typed.table}.{typed.column}: {e}")
                continue
            places = [place.format(**ids) for place in typed.places]
            shown |= answers(hub, [p for p in places if p.startswith("/")], failed)
            shown |= printed(hub, failed)
        failed += [
            f"{odd!r} not shown in {place}" for place in ("API", *places) if odd not in shown[place]
        ]
        logged = [r for r in caplog.records if json.dumps(odd) in r.getMessage()]
        if len(logged) != 1:
            failed.append(f"{odd!r} logged {len(logged)} times")
    assert not failed, "\n".join(failed)


def edited_to(hub, typed: Typed, value: object, ids: dict[str, object]):
    """The column of ``typed`` set to ``value`` in the row ``EDITS`` edits in its table
    (a history entry of the alert, which that does not edit)."""
    where = EDITS.get(typed.table, ("alert_id = :alert",))[0]
    return edited(hub, typed.table, where, Edit(typed.column, value), ids)


def test_a_flag_edited_to_text_reads_off_everywhere(hub_factory, smtp):
    """A 0/1 column holding text (``"yes"``) read as true in Python, so a heartbeat
    showed down and gauged overdue. A flag is on only for a whole number other than 0,
    as SQLite reads one: the text is off in the API (which holds to its schema), the
    console and ``/metrics``."""
    hub, ids, _ = populated(hub_factory, smtp)
    ids = {**ids, "heartbeat": "etl"}
    for typed in FLAGS:
        with edited_to(hub, typed, "yes", ids):
            api = validated(hub, ids)
            with hub.client(headers=READ) as http:
                exposition = http.get("/metrics").text
        alert = json.loads(api["/api/v1/alerts/{alert_id}"])
        beat = json.loads(api["/api/v1/heartbeats/{name}"])
        overdue = metric(exposition, "hub_heartbeat_overdue", heartbeat="etl")
        assert (alert["flapping"], beat["overdue"], beat["state"], overdue) == (
            False,
            False,
            "up",
            0,
        ), typed
        applied = {entry["applied"] for entry in alert["history"]}
        assert applied == {0 if typed.column == "applied" else 1}, typed


def test_a_heartbeat_whose_overdue_flag_was_edited_to_text_still_fires_when_it_misses(
    hub_factory, smtp
):
    """The API and ``/metrics`` read an ``overdue`` holding text as off (up), but the
    watchdog took it for down: it fired no alert when the deadline passed, and set none
    at a start, so a heartbeat shown as up went down without a word. It fires now, as
    one that is up does; a ping still resolves what may fire."""
    mailbox, port = smtp
    clock = MovedClock()
    hub = start_hub(hub_factory, port, clock=clock)
    where, down = "name = 'nightly-backup'", unshown("overdue")
    with hub.client(headers=WRITE) as http:
        http.post("/ping/nightly-backup").raise_for_status()
        with edited(hub, "heartbeats", where, down, {}):
            clock.advance(3601)  # past the deadline, a period and grace after the ping
            wait_for(lambda: subjects(mailbox, "FIRING"))
            http.post("/ping/nightly-backup").raise_for_status()
            wait_for(lambda: subjects(mailbox, "RESOLVED"))
    hub.stop()
    with edited(hub, "heartbeats", where, down, {}):
        hub.start()
        clock.advance(3601)
        wait_for(lambda: len(subjects(mailbox, "FIRING")) == 2)


@pytest.mark.parametrize("huge", [1e20, 1e300])
def test_a_whole_number_column_holding_a_number_no_integer_column_holds_shows_its_text(
    hub_factory, smtp, huge
):
    """A hand edit of ``duplicates`` to 99999999999999999999 is stored by SQLite as the
    real 1e20, beyond its integers; the API showed it as a whole number of 21 digits
    (301 for 1e300), which a client reading 64-bit integers fails to decode, the whole
    list with it. Like a fraction there, it is shown as its stored text."""
    hub, ids, _ = populated(hub_factory, smtp)
    with edited(hub, "alerts", "id = :alert", Edit("duplicates", huge), ids):
        api = validated(hub, {**ids, "heartbeat": "etl"})
    assert json.loads(api["/api/v1/alerts/{alert_id}"])["duplicates"] == str(huge)


def test_a_read_that_fails_on_json_nested_too_deeply_is_hubs_failure_not_the_clients(
    hub_factory, smtp, caplog
):
    """Annotations a hand edit nested just deep enough that hub reads them but cannot
    encode the answer: the GET was refused as a 400 "body is not valid JSON: nested too
    deeply", as if the client had sent one, and not logged, the encoding's frames taken
    for the decoding of a request's body. Every such read now answers 200 or hub's own
    500, logged; the depth that fails hangs on the stack, so a range of depths is read."""
    hub, ids, _ = populated(hub_factory, smtp)
    path = hub.runtime.config.storage.path
    statuses = []
    with hub.client(headers=READ) as http, contextlib.closing(sqlite3.connect(path)) as db:
        for depth in range(940, 1020):
            nested = '{"a":' + "[" * depth + "]" * depth + "}"
            with db:
                db.execute("UPDATE alerts SET annotations = ? WHERE id = ?", (nested, ids["alert"]))
            for read in (f"/api/v1/alerts/{ids['alert']}", "/api/v2/alerts"):
                statuses.append(http.get(read).status_code)
    assert set(statuses) == {200, 500}
    failed = [r for r in caplog.records if "event=unhandled_error" in r.getMessage()]
    assert len(failed) == statuses.count(500)


def test_bytes_holding_digits_are_no_number_and_no_flag(hub_factory, smtp):
    """Bytes are read as neither rule says (``stored``): shown as their text in a number
    column, off in a flag. Bytes of digits were decoded and read as the number, so
    ``b"1"`` in ``overdue`` showed a heartbeat down, where SQLite holds no number."""
    hub, ids, _ = populated(hub_factory, smtp)
    ids = {**ids, "heartbeat": "etl"}
    with edited(hub, "alerts", "id = :alert", Edit("duplicates", b"7"), ids):
        with edited(hub, "heartbeats", "name = 'etl'", Edit("overdue", b"1"), ids):
            api = validated(hub, ids)
    beat = json.loads(api["/api/v1/heartbeats/{name}"])
    alert = json.loads(api["/api/v1/alerts/{alert_id}"])
    assert (alert["duplicates"], beat["overdue"], beat["state"]) == ("7", False, "up")


@pytest.mark.parametrize("odd", ["1_000", "\u0661\u0662", "\u00a012", "inf", "nan"])
def test_text_only_python_takes_for_a_number_is_no_number_and_no_flag(hub_factory, smtp, odd):
    """SQLite keeps ``"1_000"``, Arabic-Indic digits, or digits after a no-break space
    as text in an integer column: to SQLite they hold no number. Python's ``float()``
    read them, so ``"1_000"`` in ``duplicates`` showed 1000 and in ``overdue`` a
    heartbeat down. Read by SQLite's rule, they are shown as their text and off, as
    ``"inf"`` and ``"nan"`` already were."""
    hub, ids, _ = populated(hub_factory, smtp)
    ids = {**ids, "heartbeat": "etl"}
    path = hub.runtime.config.storage.path
    with edited(hub, "alerts", "id = :alert", Edit("duplicates", odd), ids):
        with edited(hub, "heartbeats", "name = 'etl'", Edit("overdue", odd), ids):
            with contextlib.closing(sqlite3.connect(path)) as db:
                held = db.execute(
                    "SELECT typeof(duplicates), (SELECT typeof(overdue) FROM heartbeats"
                    " WHERE name = 'etl') FROM alerts WHERE id = ?",
                    (ids["alert"],),
                ).fetchone()
            api = validated(hub, ids)
    assert held == ("text", "text")
    beat = json.loads(api["/api/v1/heartbeats/{name}"])
    alert = json.loads(api["/api/v1/alerts/{alert_id}"])
    assert (alert["duplicates"], beat["overdue"], beat["state"]) == (odd, False, "up")
