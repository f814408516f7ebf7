"""Retention on a real SQLite file: only what is older than its configured age goes, and
a resolved incident goes with everything hanging off it."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import httpx
from conftest import BASE_CONFIG, free_port, mail_url, render_config, wait_for
from notify_support import ACK_SECRET, WRITER, deliveries, fire, receiver, start_hub

from hub import acklinks, config, correlate, retention
from hub.decoders.common import Decoded
from hub.events import Event
from hub.ingest import Delivery, apply_delivery
from hub.rules import Rules
from hub.store import Store, Target, Tx, opened

DAY = 86400.0
NOW = time.time()


def rules(tmp_path) -> Rules:
    text = render_config(
        BASE_CONFIG + 'group_by = ["service"]\n',
        port=8080,
        db=(tmp_path / "hub.db").as_posix(),
        mail_url=mail_url(1),
    )
    return Rules.from_config(config.parse(text, {}))


def answer(tx: Tx, rules: Rules, days_ago: float, fingerprint: str, status: str) -> dict:
    """The answer's body to a native delivery of one event."""
    event = Event(
        fingerprint=fingerprint,
        status=status,  # type: ignore[arg-type]
        summary=f"{fingerprint} is down",
        labels={"service": fingerprint},
    )
    delivery = Delivery("shop", None, NOW - days_ago * DAY, {}, b"{}")
    return apply_delivery(tx, delivery, Decoded([event]), rules).body


def deliver(tx: Tx, rules: Rules, days_ago: float, fingerprint: str, status: str) -> int:
    return answer(tx, rules, days_ago, fingerprint, status)["alerts"][0]["incident_id"]


def history(tx: Tx, rules: Rules) -> int:
    """Three alerts, each its own incident: one resolved long ago, one resolved lately,
    one firing for long. Returns the old incident's id."""
    old_incident = deliver(tx, rules, 100, "old", "firing")
    deliver(tx, rules, 95, "old", "resolved")
    deliver(tx, rules, 100, "live", "firing")
    deliver(tx, rules, 10, "recent", "firing")
    deliver(tx, rules, 5, "recent", "resolved")
    notification = sent_message(tx, old_incident)
    tx.record_attempt(notification, 0, 1.0, "sent", None)
    return old_incident


def sent_message(tx: Tx, incident_id: int) -> int:
    """A message to ops about the incident, sent: retention keeps one still queued."""
    notification = tx.enqueue_notification(
        incident_id, Target("ops", 0, "mailto"), "firing", b"{}", 0
    )
    tx.update("notifications", notification, {"state": "sent", "sent_at": 0})
    return notification


def count(store: Store, sql: str, *params: object) -> int:
    return store.query(sql, params)[0]["n"]


def counts(store: Store, old_incident: int) -> dict[str, int]:
    """Rows per table, and rows still hanging off the old incident."""
    tables = ("deliveries", "events", "alert_history", "incidents", "alerts")
    found = {t: count(store, f"SELECT COUNT(*) AS n FROM {t}") for t in tables}
    for table in ("timeline", "notifications", "incident_receivers"):
        sql = f"SELECT COUNT(*) AS n FROM {table} WHERE incident_id = ?"
        found[f"old {table}"] = count(store, sql, old_incident)
    found["attempts"] = count(store, "SELECT COUNT(*) AS n FROM notification_attempts")
    return found


def test_retention_deletes_only_what_is_old_enough(tmp_path, caplog):
    ruleset = rules(tmp_path)
    ages = config.Retention(
        events=config.Duration(30 * DAY),
        history=config.Duration(90 * DAY),
        resolved_incidents=config.Duration(90 * DAY),
    )

    async def scenario(store: Store) -> tuple[int, dict[str, int]]:
        old_incident = await store.write(lambda tx: history(tx, ruleset))
        return old_incident, await retention.prune(store, ages, NOW)

    with caplog.at_level(logging.INFO, "hub.retention"), opened(str(tmp_path / "hub.db")) as store:
        old_incident, removed = asyncio.run(scenario(store))
        left = counts(store, old_incident)
        alerts = {a["fingerprint"] for a in store.alerts("1", {}, 10)}
    # The old incident's resolved alert went with it and counts as an alert; its
    # history was already gone by age, so counts once.
    assert removed == {"deliveries": 3, "history": 3, "incidents": 1, "alerts": 1, "silences": 0}
    assert [r.getMessage() for r in caplog.records if r.name == "hub.retention"] == [
        "event=retention_pruned deliveries=3 history=3 incidents=1 alerts=1 silences=0"
    ]
    assert alerts == {"live", "recent"}
    assert left == {
        "deliveries": 2,  # the recent alert's: 10 and 5 days old
        "events": 2,
        "alert_history": 2,
        "incidents": 2,  # the live one (open, however old) and the recently resolved one
        "alerts": 2,
        "old timeline": 0,
        "old notifications": 0,
        "old incident_receivers": 0,
        "attempts": 0,
    }


def test_nothing_is_deleted_when_everything_is_young_enough(tmp_path):
    ruleset = rules(tmp_path)

    async def scenario(store: Store) -> dict[str, int]:
        await store.write(lambda tx: history(tx, ruleset))
        return await retention.prune(store, config.Retention(), NOW - 200 * DAY)

    with opened((tmp_path / "hub.db").as_posix()) as store:
        assert asyncio.run(scenario(store)) == {
            "deliveries": 0,
            "history": 0,
            "incidents": 0,
            "alerts": 0,
            "silences": 0,
        }


def test_deliveries_go_oldest_first_and_stop_at_the_first_young_one(tmp_path):
    """Ids grow with the receive time, so retention deletes the oldest run by id, up to
    its batch limit; a delivery stamped older after a clock step back waits its turn."""
    ruleset = rules(tmp_path)
    days_ago = [50, 40, 2, 45, 60]  # the third was received after the clock stepped forward

    def receive(tx: Tx) -> None:
        for i, age in enumerate(days_ago):
            deliver(tx, ruleset, age, f"svc{i}", "firing")

    def kept(store: Store) -> list[int]:
        rows = store.query("SELECT received_at FROM deliveries ORDER BY id")
        return [round((NOW - row["received_at"]) / DAY) for row in rows]

    before = NOW - 30 * DAY
    with opened((tmp_path / "hub.db").as_posix()) as store:
        asyncio.run(store.write(receive))
        first = asyncio.run(store.write(lambda tx: tx.prune_deliveries(before, 1)))
        assert (first, kept(store)) == ({"deliveries": 1}, [40, 2, 45, 60])
        rest = asyncio.run(store.write(lambda tx: tx.prune_deliveries(before, 100)))
        assert (rest, kept(store)) == ({"deliveries": 1}, [2, 45, 60])


def test_resolved_alerts_without_an_incident_expire_with_their_events_and_history(tmp_path):
    """A resolve hub had no alert for creates one already resolved, with no incident; an
    alert whose incident was pruned while it fired has none when it resolves. Both go
    once resolved longer than resolved_incidents, with the events and history naming
    them (kept here for a year, so only the alert's own deletion removes them)."""
    ruleset = rules(tmp_path)
    ages = config.Retention(
        events=config.Duration(365 * DAY),
        history=config.Duration(365 * DAY),
        resolved_incidents=config.Duration(90 * DAY),
    )

    def before_the_first_prune(tx: Tx) -> None:
        deliver(tx, ruleset, 100, "ghost", "resolved")
        deliver(tx, ruleset, 5, "young-ghost", "resolved")
        incident = deliver(tx, ruleset, 200, "orphan", "firing")
        correlate.act(tx, incident, "resolve", "alice", "", NOW - 190 * DAY)

    async def scenario(store: Store) -> tuple[dict[str, int], dict[str, int]]:
        await store.write(before_the_first_prune)
        first = await retention.prune(store, ages, NOW - 96 * DAY)
        await store.write(lambda tx: deliver(tx, ruleset, 95, "orphan", "resolved"))
        return first, await retention.prune(store, ages, NOW)

    with opened((tmp_path / "hub.db").as_posix()) as store:
        first, second = asyncio.run(scenario(store))
        alerts = {a["fingerprint"]: a["incident_id"] for a in store.alerts("1", {}, 10)}
        young = store.query("SELECT id FROM alerts")[0]["id"]
        left = {
            table: count(store, f"SELECT COUNT(*) AS n FROM {table}")
            for table in ("events", "alert_history", "incidents")
        }
        strays = {
            table: count(store, f"SELECT COUNT(*) AS n FROM {table} WHERE alert_id != ?", young)
            for table in ("events", "alert_history")
        }
        broken = store.query("PRAGMA foreign_key_check")
    assert alerts == {"young-ghost": None}
    assert first == {"deliveries": 0, "history": 0, "incidents": 1, "alerts": 0, "silences": 0}
    # history: the ghost's one row and the orphan's two went with their alerts.
    assert second == {"deliveries": 0, "history": 3, "incidents": 0, "alerts": 2, "silences": 0}
    assert left == {"events": 1, "alert_history": 1, "incidents": 0}
    assert strays == {"events": 0, "alert_history": 0}
    assert broken == []


def test_the_first_prune_runs_a_minute_after_start_not_an_hour(hub_factory):
    """A hub restarted more often than hourly (deploys, a crash loop) still prunes."""
    started = datetime.now(UTC)
    hub = hub_factory(mail_url=mail_url(25))
    job = hub.runtime.scheduler.get_job("retention")
    assert timedelta(seconds=55) <= job.next_run_time - started <= timedelta(seconds=65)
    assert job.trigger.interval == timedelta(hours=1)


NUMBERED = (
    "deliveries",
    "events",
    "alerts",
    "alert_history",
    "incidents",
    "timeline",
    "notifications",
)
"""The tables whose ids are never given twice: ids people cite, and the order of a
delivery's events, an alert's history and an incident's timeline."""


def firing_and_paged(tx: Tx, rules: Rules, days_ago: float, fingerprint: str) -> None:
    """A firing alert opening an incident that is notified: a row in each ``NUMBERED``
    table (a delivery, its event, an alert with history, an incident with its timeline,
    a notification)."""
    sent_message(tx, deliver(tx, rules, days_ago, fingerprint, "firing"))


def newest_ids(store: Store) -> dict[str, int]:
    return {t: count(store, f"SELECT IFNULL(MAX(id), 0) AS n FROM {t}") for t in NUMBERED}


def first_ids(store: Store) -> dict[str, int]:
    return {t: count(store, f"SELECT MIN(id) AS n FROM {t}") for t in NUMBERED}


def test_ids_are_never_given_again_once_retention_deleted_the_newest_rows(tmp_path):
    """Ids are cited in answers, logs, tickets, ``replay_of``, API URLs and ack links,
    and order a delivery's events, an alert's history and an incident's timeline:
    after retention deleted every row of those tables, the next of each is numbered
    past all those before, after a restart too; a delivery whose id the INSERT takes
    (a format's own answer) as well as one whose id is taken first."""
    ruleset = rules(tmp_path)
    path = (tmp_path / "hub.db").as_posix()
    everything = config.Retention(*(config.Duration(DAY),) * 3)

    def come_and_gone(tx: Tx) -> None:
        firing_and_paged(tx, ruleset, 30, "first")
        firing_and_paged(tx, ruleset, 20, "second")
        for fingerprint in ("first", "second"):
            deliver(tx, ruleset, 10, fingerprint, "resolved")

    with opened(path) as store:
        asyncio.run(store.write(come_and_gone))
        given = newest_ids(store)
        asyncio.run(retention.prune(store, everything, NOW))
        left = {table: count(store, f"SELECT COUNT(*) AS n FROM {table}") for table in NUMBERED}
    with opened(path) as store:
        asyncio.run(store.write(lambda tx: firing_and_paged(tx, ruleset, 0, "third")))
        taken = first_ids(store)
        taken_by_insert = asyncio.run(
            store.write(
                lambda tx: tx.insert_delivery(None, "shop", None, NOW, {}, b"{}", answer=(200, {}))
            )
        )
    assert left == dict.fromkeys(NUMBERED, 0)
    assert taken == {table: given[table] + 1 for table in NUMBERED}
    assert taken_by_insert == given["deliveries"] + 2


def test_ids_stay_past_the_newest_pruned_when_older_rows_are_pruned_later(tmp_path):
    """A resolved incident newer than one still open goes first, with its alert; when
    the older one resolves and goes too, the next ids still come after the newer
    one's, not after the older one's, restarts included."""
    ruleset = rules(tmp_path)
    path = (tmp_path / "hub.db").as_posix()
    everything = config.Retention(*(config.Duration(DAY),) * 3)

    def older_open_newer_resolved(tx: Tx) -> None:
        deliver(tx, ruleset, 100, "long", "firing")
        deliver(tx, ruleset, 99, "brief", "firing")
        deliver(tx, ruleset, 98, "brief", "resolved")

    with opened(path) as store:
        asyncio.run(store.write(older_open_newer_resolved))
        first = newest_ids(store)
        asyncio.run(retention.prune(store, everything, NOW))
        asyncio.run(store.write(lambda tx: deliver(tx, ruleset, 50, "long", "resolved")))
        given = {table: max(first[table], n) for table, n in newest_ids(store).items()}
        asyncio.run(retention.prune(store, everything, NOW))
    with opened(path) as store:
        asyncio.run(store.write(lambda tx: firing_and_paged(tx, ruleset, 0, "next")))
        taken = first_ids(store)
    assert given["alerts"] == given["incidents"] == 2
    assert taken == {table: given[table] + 1 for table in NUMBERED}


def test_ids_stay_past_rows_another_connection_pruned_between_two_writes(tmp_path):
    """The floors are the store's, not a copy kept by the hub writing: when another
    connection (an operator's prune) deletes the newest rows between two of this
    store's writes, the next ids still come after them."""
    ruleset = rules(tmp_path)
    path = (tmp_path / "hub.db").as_posix()
    everything = config.Retention(*(config.Duration(DAY),) * 3)
    with opened(path) as store:
        asyncio.run(store.write(lambda tx: firing_and_paged(tx, ruleset, 30, "first")))
        asyncio.run(store.write(lambda tx: deliver(tx, ruleset, 20, "first", "resolved")))
        given = newest_ids(store)
        with opened(path) as other:
            asyncio.run(retention.prune(other, everything, NOW))
        asyncio.run(store.write(lambda tx: firing_and_paged(tx, ruleset, 0, "next")))
        taken = first_ids(store)
    assert taken == {table: given[table] + 1 for table in NUMBERED}


def test_ids_stay_past_every_pruned_row_once_newer_rows_passed_the_floors(tmp_path):
    """Once newer rows are numbered past the newest pruned ones, a later prune that
    leaves those newer rows drops the floors it kept (inserts then need not look them
    up), and the ids go on from the newest row left, never back."""
    ruleset = rules(tmp_path)
    path = (tmp_path / "hub.db").as_posix()
    everything = config.Retention(*(config.Duration(DAY),) * 3)

    def old_and_young(tx: Tx) -> None:
        firing_and_paged(tx, ruleset, 30, "old")
        deliver(tx, ruleset, 29, "old", "resolved")
        firing_and_paged(tx, ruleset, 0, "young")

    with opened(path) as store:
        asyncio.run(store.write(lambda tx: firing_and_paged(tx, ruleset, 40, "first")))
        asyncio.run(store.write(lambda tx: deliver(tx, ruleset, 39, "first", "resolved")))
        asyncio.run(retention.prune(store, everything, NOW))
        kept = store.query("SELECT COUNT(*) AS n FROM settings WHERE name LIKE 'id_floor:%'")
        asyncio.run(store.write(old_and_young))
        given = newest_ids(store)
        asyncio.run(retention.prune(store, everything, NOW))
        left = store.query("SELECT COUNT(*) AS n FROM settings WHERE name LIKE 'id_floor:%'")
    with opened(path) as store:
        asyncio.run(store.write(lambda tx: firing_and_paged(tx, ruleset, 0, "next")))
        taken = {
            table: count(store, f"SELECT MIN(id) AS n FROM {table} WHERE id > ?", given[table])
            for table in NUMBERED
        }
    assert (kept[0]["n"], left[0]["n"]) == (len(NUMBERED), 0)
    assert taken == {table: given[table] + 1 for table in NUMBERED}


BOTH = {"firing", "resolved"}


def sent_kinds(http: httpx.Client) -> set[str]:
    """The kinds of message the delivery log has sent."""
    return {n["kind"] for n in deliveries(http) if n["state"] == "sent"}


def test_an_ack_link_to_a_pruned_incident_is_refused_not_taken_by_the_next(
    hub_factory, smtp, tmp_path
):
    """Ack links may outlive their incident (``ack_link_ttl`` longer than the
    resolved_incidents retention): the next incident, the same group's included, gets
    an id of its own, so a link to the pruned one acknowledges nothing."""
    _, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)))
    with hub.client(headers=WRITER) as http:
        pruned = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: sent_kinds(http) == {"firing"})
        fire(http, "checkout down", status="resolved")
        wait_for(lambda: sent_kinds(http) == BOTH)  # an incident with queued messages stays
    hub.stop()
    with opened((tmp_path / "hub.db").as_posix()) as store:
        asyncio.run(retention.prune(store, config.Retention(), time.time() + 91 * DAY))
    hub.start()
    expires = datetime.now(UTC) + timedelta(days=1)
    link = acklinks.path(acklinks.sign(ACK_SECRET.encode(), pruned, 1, expires))
    with hub.client(headers=WRITER) as http:
        fresh = fire(http, "checkout down")["incident_id"]
        with hub.client() as browser:
            shown, clicked = browser.get(link), browser.post(link)
        incident = http.get(f"/api/v1/incidents/{fresh}").json()
    assert fresh == pruned + 1
    assert (shown.status_code, clicked.status_code) == (404, 404)
    assert f"incident {pruned} no longer exists" in shown.text
    assert (incident["status"], incident["acknowledged_by"]) == ("open", None)


def test_silences_go_once_expired_for_longer_than_their_age(hub_factory, smtp, tmp_path):
    """A silence made for every deploy must not stay in the unpaged list for ever: the
    prune, 91 days on, deletes the one expired then and keeps the one that ended 84
    days before it (``expired_silences`` is 90 days)."""
    _, port = smtp
    hub = start_hub(hub_factory, receiver("ops", mail_url(port)))
    with hub.client(headers=WRITER) as http:
        expired, kept = (silence(http, service) for service in ("old-deploy", "new-deploy"))
        http.delete(f"/api/v1/silences/{expired}").raise_for_status()
    hub.stop()
    with opened((tmp_path / "hub.db").as_posix()) as store:
        removed = asyncio.run(retention.prune(store, config.Retention(), time.time() + 91 * DAY))
    hub.start()
    with hub.client(headers=WRITER) as http:
        listed = [s["id"] for s in http.get("/api/v1/silences").json()]
        gone = http.get(f"/api/v1/silences/{expired}")
    assert removed["silences"] == 1
    assert listed == [kept]
    assert gone.status_code == 404


def silence(http: httpx.Client, service: str) -> str:
    body = {"matchers": [f'service="{service}"'], "duration": "7d", "comment": "deploy"}
    answer = http.post("/api/v1/silences", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_a_resolved_incident_whose_messages_still_wait_is_kept_until_they_are_sent(
    hub_factory, smtp, tmp_path
):
    """The mail server was down when the incident fired and resolved, and hub stopped
    with both messages queued; it starts again past the retention age. The first prune
    must not delete what was never sent: once the mail server is back, both arrive,
    and only then may the incident go."""
    mailbox, port = smtp
    down = receiver("ops", mail_url(free_port()))
    hub = start_hub(hub_factory, down, max_attempts=50, backoff="1s", max_backoff="1s")
    with hub.client(headers=WRITER) as http:
        incident = fire(http, "checkout down")["incident_id"]
        wait_for(lambda: {n["kind"] for n in deliveries(http) if n["attempts"]} == {"firing"})
        fire(http, "checkout down", status="resolved")
        wait_for(lambda: {n["kind"] for n in deliveries(http) if n["attempts"]} == BOTH)
    hub.stop()
    later = time.time() + 91 * DAY
    with opened((tmp_path / "hub.db").as_posix()) as store:
        removed = asyncio.run(retention.prune(store, config.Retention(), later))
    assert removed["incidents"] == 0, "the queued messages went with their incident"
    hub.config_path.write_text(
        hub.config_path.read_text().replace(down.split('"')[3], mail_url(port))
    )
    hub.start()
    wait_for(lambda: len(mailbox.messages) == 2)
    with hub.client(headers=WRITER) as http:
        # marked sent once the mail server's answer is back, a moment after the mailbox
        wait_for(lambda: sent_kinds(http) == BOTH)
        shown = http.get(f"/api/v1/incidents/{incident}").status_code
    hub.stop()
    with opened((tmp_path / "hub.db").as_posix()) as store:
        afterwards = asyncio.run(retention.prune(store, config.Retention(), later))
    assert shown == 200
    assert afterwards["incidents"] == 1
