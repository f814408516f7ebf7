"""A receiver that open incidents still notify cannot silently go: a reload removing it
is refused naming it and the incidents, and a restart with a config without it puts a
dead letter in the outbox for each such incident, once per change and none for a
message already dead, that the API, the CLI, the metrics and HubDeadLetters show. A
real hub, real email, a real promtool."""

from __future__ import annotations

import html
import json
import logging
import re
import time

from conftest import AUTH, BASE_CONFIG, free_port, mail_url, wait_for
from console_support import sign_in
from logfmt_support import pairs
from notify_support import metric
from test_access import TOKENS
from test_cli import hub_cli
from test_escalation import recipients, told_resolved
from test_prometheus_integration import promtool_test_rules
from test_snooze import shown

ADMIN = {"Authorization": "Bearer admin-token"}
WRITE = {"Authorization": "Bearer write-token"}
PAGER = """
[[route.routes]]
matchers = ['service=~"checkout|cart"']
receiver = "pager"
group_by = ["service"]

[[receivers]]
name = "pager"
urls = ["mailto://127.0.0.1:{smtp_port}?from=hub@example.com&to=pager@example.com&mode=insecure"]
"""
CHECKOUT = {"status": "firing", "summary": "checkout down", "labels": {"service": "checkout"}}
CART = {**CHECKOUT, "summary": "cart down", "labels": {"service": "checkout", "part": "cart"}}


def start(hub_factory, smtp):
    mailbox, smtp_port = smtp
    hub = hub_factory(
        BASE_CONFIG + TOKENS + PAGER,
        mail_url=f"mailto://127.0.0.1:{smtp_port}?from=hub@example.com&to=ops@example.com",
        smtp_port=smtp_port,
    )
    return mailbox, hub


def fire(http, event: dict = CHECKOUT) -> int:
    answer = http.post("/webhooks/shop", json=event, headers=AUTH)
    assert answer.status_code == 202, answer.text
    return answer.json()["alerts"][0]["incident_id"]


def without_pager(hub) -> None:
    text = hub.config_path.read_text()
    hub.config_path.write_text(text[: text.index("\n[[route.routes]]")])


def restart_without_pager(hub) -> None:
    """Stop the hub, take pager out of its config and start it again: a restart, unlike
    a reload, cannot refuse the change."""
    hub.stop()
    without_pager(hub)
    hub.start()


def put_pager_back(hub, smtp_port: int, *more_urls: str) -> None:
    """Stop the hub, give its config pager again, mailing through ``smtp_port`` and then
    sending to each of ``more_urls``, and start it."""
    hub.stop()
    urls = "".join(f', "{url}"' for url in more_urls)
    pager = PAGER.format(smtp_port=smtp_port).replace('insecure"]', f'insecure"{urls}]')
    hub.config_path.write_text(hub.config_path.read_text() + pager)
    hub.start()


def dead_letters(http) -> list[dict]:
    answer = http.get("/api/v1/notifications", params={"state": "dead"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_reload_removing_a_receiver_open_incidents_notify_is_refused(hub_factory, smtp):
    """It answered reloaded, and the incidents kept firing with nobody ever told."""
    mailbox, hub = start(hub_factory, smtp)
    with hub.client(headers=ADMIN) as http:
        checkout, cart = fire(http), fire(http, {**CHECKOUT, "labels": {"service": "cart"}})
        wait_for(lambda: recipients(mailbox).count("pager") == 2)
        acked = http.post(f"/api/v1/incidents/{checkout}/ack", headers=WRITE, json={})
        assert acked.status_code == 200, acked.text
        without_pager(hub)
        answer = http.post("/-/reload")
        assert answer.status_code == 400, answer.text
        assert answer.json()["problems"] == [
            f'receivers: "pager" is removed, but open or acknowledged incidents {checkout},'
            f" {cart} still notify it: keep it until they are resolved"
        ]
        assert metric(http.get("/metrics").text, "hub_config_reloads_total", outcome="failure") == 1

        for incident in (checkout, cart):
            resolved = http.post(f"/api/v1/incidents/{incident}/resolve", headers=WRITE, json={})
            assert resolved.status_code == 200, resolved.text
        wait_for(lambda: told_resolved(mailbox).count("pager") == 2)  # the old config runs
        assert http.post("/-/reload").status_code == 200, "nothing open notifies it now"


def test_a_restart_without_a_receiver_dead_letters_its_open_incidents_once_per_change(
    hub_factory, smtp
):
    """A log line each dispatcher round was all that said an incident notified nobody."""
    mailbox, hub = start(hub_factory, smtp)
    with hub.client(headers=ADMIN) as http:
        incident = fire(http)
        assert fire(http, CART) == incident
        wait_for(lambda: "pager" in recipients(mailbox))
    restart_without_pager(hub)
    with hub.client(headers=ADMIN) as http:
        (dead,) = wait_for(lambda: dead_letters(http))
        assert (dead["incident_id"], dead["receiver"], dead["integration"], dead["kind"]) == (
            incident,
            "pager",
            "none",
            "firing",
        )
        assert dead["last_error"] == (
            f"receiver 'pager' is not in the config: add it back and retry, or resolve"
            f" incident {incident}"
        )
        metrics = http.get("/metrics").text
        assert metric(metrics, "hub_outbox_notifications", state="dead") == 1
        labels = {"receiver": "pager", "integration": "none", "outcome": "dead"}
        assert metric(metrics, "hub_notifications_total", **labels) == 1
        time.sleep(0.6)  # several dispatcher rounds: none adds another
        assert len(dead_letters(http)) == 1
    listed = hub_cli(hub, "notifications", "--state", "dead", token="read-token").stdout
    header, row = listed.splitlines()[:2]
    columns = dict(zip(header.split(), row.split(), strict=False))
    assert (columns["RECEIVER"], columns["INTEGRATION"], columns["STATE"]) == (
        "pager",
        "none",
        "dead",
    )

    hub.restart()
    with hub.client(headers=ADMIN) as http:
        time.sleep(0.6)
        assert len(dead_letters(http)) == 1, "once, not at every start"
        fire(http, {**CART, "status": "resolved"})
        wait_for(lambda: len(dead_letters(http)) == 2)  # a change: the message it was not sent
        time.sleep(0.6)
        assert len(dead_letters(http)) == 2
        fire(http, {**CHECKOUT, "status": "resolved"})
        wait_for(lambda: shown(http, incident)["status"] == "resolved")
        time.sleep(0.6)
        assert len(dead_letters(http)) == 2, "a resolved incident needs nobody"


def test_a_message_waiting_for_a_removed_receiver_gives_way_to_its_one_dead_letter(
    hub_factory, smtp
):
    """A message to pager still in the outbox at a restart without pager died there as
    well as in the letter the start wrote: two dead letters for one message, and
    pager told twice once both were retried. Here pager's mail server is down, so
    its message is waiting when the hub stops; then pager is back and told once."""
    mailbox, smtp_port = smtp
    down = free_port()
    hub = hub_factory(
        BASE_CONFIG + TOKENS + PAGER, mail_url=mail_url(smtp_port), smtp_port=down, max_attempts=99
    )
    with hub.client(headers=ADMIN) as http:
        fire(http)
        (waiting,) = wait_for(lambda: [r for r in to_pager(http) if r["attempts"]])
    restart_without_pager(hub)
    with hub.client(headers=ADMIN) as http:
        (dead,) = wait_for(lambda: dead_letters(http))
        time.sleep(0.6)  # several sender rounds: none dead-letters the waiting message
        rows = [(r["id"], r["integration"], r["state"], r["last_error"]) for r in to_pager(http)]
    assert rows == [
        (dead["id"], "none", "dead", dead["last_error"]),
        (
            waiting["id"],
            "mailto",
            "dismissed",
            "superseded by a dead letter: receiver 'pager' is not in the config",
        ),
    ]
    put_pager_back(hub, smtp_port)
    with hub.client(headers=ADMIN) as http:
        assert http.post(f"/api/v1/notifications/{waiting['id']}/retry").status_code == 409
        assert http.post(f"/api/v1/notifications/{dead['id']}/retry").status_code == 200
        wait_for(lambda: "pager" in recipients(mailbox))
        time.sleep(0.6)
    assert recipients(mailbox).count("pager") == 1


def test_messages_dead_before_their_receiver_went_are_not_dead_lettered_again(hub_factory, smtp):
    """A message to pager that died while pager was in the config got a second dead
    letter at a restart without pager: two letters for one message, pager told it
    twice once both were retried, and the dead counts said two were not told. Here
    pager's mail server is down, so both its messages die; hub restarts without pager,
    a change gets a letter of its own, a second restart adds none, and with pager back
    retrying every dead letter tells pager each message once."""
    mailbox, smtp_port = smtp
    hub = hub_factory(
        BASE_CONFIG + TOKENS + PAGER,
        mail_url=mail_url(smtp_port),
        smtp_port=free_port(),
        max_attempts=1,
    )
    with hub.client(headers=ADMIN) as http:
        fire(http)
        wait_for(lambda: dead_letters(http))
        fire(http, CART)
        wait_for(lambda: len(dead_letters(http)) == 2)
        died = {letter["id"] for letter in dead_letters(http)}
    restart_without_pager(hub)
    with hub.client(headers=ADMIN) as http:
        time.sleep(0.6)  # several dispatcher rounds: none dead-letters them again
        assert {letter["id"] for letter in dead_letters(http)} == died
        fire(http, {**CART, "status": "resolved"})
        (changed,) = wait_for(lambda: [d for d in dead_letters(http) if d["id"] not in died])
        metrics = http.get("/metrics").text
    assert (changed["integration"], changed["kind"]) == ("none", "firing")
    assert metric(metrics, "hub_outbox_notifications", state="dead") == 3
    labels = {"receiver": "pager", "integration": "none", "outcome": "dead"}
    assert metric(metrics, "hub_notifications_total", **labels) == 1, "the change's alone"

    hub.restart()
    with hub.client(headers=ADMIN) as http:
        time.sleep(0.6)
        assert {letter["id"] for letter in dead_letters(http)} == died | {changed["id"]}
    put_pager_back(hub, smtp_port)
    with hub.client(headers=ADMIN) as http:
        for letter in dead_letters(http):
            assert http.post(f"/api/v1/notifications/{letter['id']}/retry").status_code == 200
        wait_for(lambda: recipients(mailbox).count("pager") == 3)
        time.sleep(0.6)
    told = [mailbox.text_of(i) for i, to in enumerate(recipients(mailbox)) if to == "pager"]
    assert sorted("cart down" in text for text in told) == [False, True, True]


def test_a_dead_letter_a_person_dismissed_is_not_offered_again_when_its_receiver_goes(
    hub_factory,
):
    """A person had decided pager's dead message needs no sending; the restart without
    pager offered it again as a letter of its own, counted as someone not told."""
    hub = hub_factory(
        BASE_CONFIG + TOKENS + PAGER,
        mail_url=mail_url(free_port()),
        smtp_port=free_port(),
        max_attempts=1,
    )
    with hub.client(headers=ADMIN) as http:
        fire(http)
        (died,) = wait_for(lambda: dead_letters(http))
        dismiss = f"/api/v1/notifications/{died['id']}/dismiss"
        assert http.post(dismiss, json={"comment": "told pager by phone"}).status_code == 200
    restart_without_pager(hub)
    with hub.client(headers=ADMIN) as http:
        time.sleep(0.6)
        assert dead_letters(http) == []
        assert [r["state"] for r in to_pager(http)] == ["dismissed"]


def test_a_letter_retried_once_its_receiver_was_back_that_died_again_is_not_doubled(
    hub_factory, smtp
):
    """Retried with pager back, the letter reached pager's log file and died at its
    mail server; the next restart without pager wrote another letter for that message,
    and retrying both mailed pager twice and wrote its log file twice. Here the second
    restart adds none, and with pager's mail server up the letter mails it once."""
    mailbox, smtp_port = smtp
    mailed_and_logged = (smtp_port, "logfile://pager.jsonl")
    hub = hub_factory(
        BASE_CONFIG + TOKENS + PAGER,
        mail_url=mail_url(smtp_port),
        smtp_port=smtp_port,
        max_attempts=1,
    )
    with hub.client(headers=ADMIN) as http:
        fire(http)
        wait_for(lambda: "pager" in recipients(mailbox))
    restart_without_pager(hub)
    with hub.client(headers=ADMIN) as http:
        (letter,) = wait_for(lambda: dead_letters(http))
    put_pager_back(hub, free_port(), "logfile://pager.jsonl")
    with hub.client(headers=ADMIN) as http:
        assert http.post(f"/api/v1/notifications/{letter['id']}/retry").status_code == 200
        wait_for(lambda: [r["state"] for r in to_pager(http)] == ["sent", "dead", "sent"])
    restart_without_pager(hub)
    with hub.client(headers=ADMIN) as http:
        time.sleep(0.6)
        assert [d["id"] for d in dead_letters(http)] == [letter["id"]]
    put_pager_back(hub, *mailed_and_logged)
    with hub.client(headers=ADMIN) as http:
        assert http.post(f"/api/v1/notifications/{letter['id']}/retry").status_code == 200
        wait_for(lambda: recipients(mailbox).count("pager") == 2)
        time.sleep(0.6)
    assert recipients(mailbox).count("pager") == 2
    assert len((hub.config_path.parent / "pager.jsonl").read_text().splitlines()) == 1


def test_a_message_dead_at_one_url_and_cut_short_at_another_is_lettered_once_at_each(
    hub_factory, smtp, silent_port
):
    """Pager's mail server was down, and the hub stopped while pager's other channel
    had not answered: the start without pager set the unsent message aside for a
    letter of its own, and retrying that letter with the mail's dead letter mailed
    pager twice. Here the start writes none; the message cut short dies in the outbox
    at its own URL, and with pager back retrying both tells each channel once."""
    mailbox, smtp_port = smtp
    silent = f"json://127.0.0.1:{silent_port}"
    hub = hub_factory(
        BASE_CONFIG + TOKENS + PAGER.replace('insecure"]', f'insecure", "{silent}"]'),
        mail_url=mail_url(smtp_port),
        smtp_port=free_port(),
        max_attempts=1,
    )
    with hub.client(headers=ADMIN) as http:
        fire(http)
        wait_for(lambda: [r["state"] for r in to_pager(http)] == ["sending", "dead"])
    restart_without_pager(hub)  # cuts the send to the silent channel short
    with hub.client(headers=ADMIN) as http:
        wait_for(lambda: [r["state"] for r in to_pager(http)] == ["dead", "dead"])
        time.sleep(0.6)  # several dispatcher rounds: no letter joins them
        rows = [(r["integration"], r["state"], r["last_error"]) for r in to_pager(http)]
    assert rows[0] == ("json", "dead", "receiver 'pager' is not in the config")
    assert rows[1][:2] == ("mailto", "dead")
    put_pager_back(hub, smtp_port, "logfile://pager.jsonl")
    log_file = hub.config_path.parent / "pager.jsonl"
    with hub.client(headers=ADMIN) as http:
        for letter in dead_letters(http):
            assert http.post(f"/api/v1/notifications/{letter['id']}/retry").status_code == 200
        wait_for(lambda: "pager" in recipients(mailbox) and log_file.exists())
        time.sleep(0.6)
    assert recipients(mailbox).count("pager") == 1
    assert len(log_file.read_text().splitlines()) == 1


def test_a_dead_letter_to_a_missing_receiver_is_logged_and_on_the_incident_timeline(
    hub_factory, smtp, caplog
):
    """Only event=receiver_missing said so: no notification_dead line (someone was not
    told), and nothing on the incident's timeline."""
    caplog.set_level(logging.INFO, logger="hub")
    mailbox, hub = start(hub_factory, smtp)
    with hub.client(headers=ADMIN) as http:
        incident = fire(http)
        wait_for(lambda: "pager" in recipients(mailbox))
    restart_without_pager(hub)
    with hub.client(headers=ADMIN) as http:
        (dead,) = wait_for(lambda: dead_letters(http))
        timeline = shown(http, incident)["timeline"]
    assert [t["detail"] for t in timeline if t["kind"] == "notification_dead"] == [
        {
            "receiver": "pager",
            "integration": "none",
            "status": "firing",
            "alerts": 1,
            "notification": dead["id"],
            "attempts": 0,
            "error": dead["last_error"],
        }
    ]
    with hub.client() as browser:
        sign_in(browser, "read-token")
        page = html.unescape(browser.get(f"/incidents/{incident}").text)
    entry = page.split('data-kind="notification_dead">')[1].split("</li>")[0]
    words = " ".join(re.sub(r"<[^>]+>", " ", entry).split())
    assert words.startswith("notification dead · ")
    assert words.endswith(f"message to pager was not sent: {dead['last_error']} — see delivery log")
    logged = [r for r in caplog.records if "event=notification_dead " in r.getMessage()]
    assert [(r.levelname, pairs(r.getMessage())) for r in logged] == [
        (
            "WARNING",
            {
                "event": "notification_dead",
                "id": str(dead["id"]),
                "receiver": "pager",
                "integration": "none",
                "attempt": "0",
                "incident": str(incident),
                "error": dead["last_error"],
            },
        )
    ]


def test_a_message_that_failed_and_one_never_sent_are_dead_on_the_timeline_in_one_shape(
    hub_factory, smtp
):
    """The sender's entry said ``error`` and ``attempts``, the dispatcher's ``reason``
    without them: one event, two shapes for the API, the console and the README. Here
    ops's mail server is down until ops gives up, and a restart without pager
    dead-letters pager's message unsent: both entries have the same fields."""
    mailbox, smtp_port = smtp
    hub = hub_factory(
        BASE_CONFIG + TOKENS + PAGER,
        mail_url=mail_url(free_port()),
        smtp_port=smtp_port,
        max_attempts=2,
    )
    with hub.client(headers=ADMIN) as http:
        failed = fire(http, {**CHECKOUT, "labels": {"service": "db"}})  # root route: ops
        (gave_up,) = wait_for(lambda: dead_letters(http))
        unsent = fire(http)
        wait_for(lambda: "pager" in recipients(mailbox))
    restart_without_pager(hub)
    with hub.client(headers=ADMIN) as http:
        (never_sent,) = wait_for(
            lambda: [d for d in dead_letters(http) if d["id"] != gave_up["id"]]
        )
        entries = [dead_entry(http, incident) for incident in (failed, unsent)]
    with hub.client() as browser:
        sign_in(browser, "read-token")
        pages = [said_dead(browser, incident) for incident in (failed, unsent)]
    assert entries == [
        {
            "receiver": "ops",
            "integration": "mailto",
            "status": "firing",
            "alerts": 1,
            "notification": gave_up["id"],
            "attempts": 2,
            "error": "connection refused",
        },
        {
            "receiver": "pager",
            "integration": "none",
            "status": "firing",
            "alerts": 1,
            "notification": never_sent["id"],
            "attempts": 0,
            "error": never_sent["last_error"],
        },
    ]
    assert entries[0].keys() == entries[1].keys()
    assert pages == [
        "message to ops failed after 2 attempt(s): connection refused — see delivery log",
        f"message to pager was not sent: {never_sent['last_error']} — see delivery log",
    ]


def dead_entry(http, incident: int) -> dict:
    """The detail of the incident's one ``notification_dead`` entry, as the API has it."""
    (entry,) = [t for t in shown(http, incident)["timeline"] if t["kind"] == "notification_dead"]
    return entry["detail"]


def said_dead(browser, incident: int) -> str:
    """What the console's incident page says of its ``notification_dead`` entry, below
    its kind and time."""
    page = html.unescape(browser.get(f"/incidents/{incident}").text)
    entry = page.split('data-kind="notification_dead">')[1].split("</li>")[0]
    said = entry.split('<div class="sub">')[1].split("</div>")[0]
    return " ".join(re.sub(r"<[^>]+>", " ", said).split())


def test_retrying_a_dead_letter_to_a_missing_receiver_tells_every_channel_it_has_now(
    hub_factory, smtp, caplog
):
    """Put back with two URLs, the receiver got the retried letter at its first only,
    the row kept integration none, and the integration's series did not move."""
    caplog.set_level(logging.INFO, logger="hub")
    mailbox, hub = start(hub_factory, smtp)
    with hub.client(headers=ADMIN) as http:
        incident = fire(http)
        wait_for(lambda: "pager" in recipients(mailbox))
    restart_without_pager(hub)
    with hub.client(headers=ADMIN) as http:
        (dead,) = wait_for(lambda: dead_letters(http))
    put_pager_back(hub, smtp[1], "logfile://pager.jsonl")
    with hub.client(headers=ADMIN) as http:
        retried = http.post(f"/api/v1/notifications/{dead['id']}/retry")
        assert retried.status_code == 200, retried.text
        assert (retried.json()["channel"], retried.json()["integration"]) == (0, "mailto")
        rows = wait_for(lambda: sent_to_pager(http, incident, 3))
        metrics = http.get("/metrics").text
    assert [(r["id"], r["channel"], r["integration"]) for r in rows[1:]] == [
        (dead["id"], 0, "mailto"),
        (dead["id"] + 1, 1, "logfile"),
    ]
    assert recipients(mailbox).count("pager") == 2
    (line,) = (hub.config_path.parent / "pager.jsonl").read_text().splitlines()
    assert "checkout down" in json.loads(line)["title"]
    for integration in ("mailto", "logfile"):
        labels = {"receiver": "pager", "integration": integration, "outcome": "sent"}
        assert metric(metrics, "hub_notifications_total", **labels) == 1
    logged = [pairs(r.getMessage()) for r in caplog.records if r.name == "hub.outbox"]
    sent = {
        (line["id"], line["integration"])
        for line in logged
        if (line["event"], line.get("receiver")) == ("notification_sent", "pager")
    }
    assert {(str(dead["id"]), "mailto"), (str(dead["id"] + 1), "logfile")} <= sent


def sent_to_pager(http, incident: int, count: int) -> list[dict]:
    """The incident's notifications to pager, oldest first, once ``count`` are sent."""
    answer = http.get("/api/v1/notifications", params={"incident": incident, "receiver": "pager"})
    rows = sorted(answer.json(), key=lambda row: row["id"])
    return rows if [row["state"] for row in rows].count("sent") == count else []


HUB_DEAD_LETTERS_TEST = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      # a hub restarted without receiver pager: its first dead letter's series is born at 1
      - series: >-
          hub_notifications_total{{job="hub",receiver="pager",integration="none",outcome="dead"}}
        values: '_x10 1x40'
      - series: >-
          hub_notifications_total{{job="hub",receiver="ops",integration="mailto",outcome="dead"}}
        values: '0x10 3x40'
    alert_rule_test:
      - eval_time: 15m
        alertname: HubDeadLetters
        exp_alerts:
          - exp_labels: {{severity: critical, receiver: pager, integration: none}}
            exp_annotations:
              summary: "hub dead-lettered notifications to pager (none)"
              description: >-
                Notifications to receiver pager through
                none failed every attempt and were dead-lettered:
                someone was not notified. See GET /api/v1/notifications.
          - exp_labels: {{severity: critical, receiver: ops, integration: mailto}}
            exp_annotations:
              summary: "hub dead-lettered notifications to ops (mailto)"
              description: >-
                Notifications to receiver ops through
                mailto failed every attempt and were dead-lettered:
                someone was not notified. See GET /api/v1/notifications.
      - eval_time: 40m
        alertname: HubDeadLetters
        exp_alerts: []
"""


def test_hub_dead_letters_fires_for_a_series_born_above_zero(tmp_path):
    """increase() does not see a series whose first sample is 1, as the dead letters a
    hub writes at start for a receiver missing from its config are."""
    promtool_test_rules(tmp_path, HUB_DEAD_LETTERS_TEST)


def to_pager(http) -> list[dict]:
    """Every notification to pager, newest first."""
    answer = http.get("/api/v1/notifications", params={"receiver": "pager"})
    assert answer.status_code == 200, answer.text
    return answer.json()
