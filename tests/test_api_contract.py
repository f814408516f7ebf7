"""Every answer of the API matches the schema the served OpenAPI document declares for
its operation and status, in the states answers differ in: alerts firing, resolved,
silenced, flapping, ending and born resolved; incidents open after a lapsed snooze,
acknowledged, unacknowledged and resolved; silences static, pending, active and
expired; notifications sent, dead, retried and dismissed; heartbeats new, up, started, down,
paused and resumed;
live, test-mode, replayed and partly rejected deliveries. A field an answer gains, loses
or retypes without its schema (or the other way round) fails here."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import httpx
import pytest
import schemathesis
from aiosmtpd.controller import Controller
from conftest import Mailbox, MovedClock, RunningHub, free_port, mail_url, wait_for
from schemathesis.core.failures import Failure

from hub.worker import IDLE_POLL_SECONDS

ADMIN = {"Authorization": "Bearer admin-token"}
SHOP = {"Authorization": "Bearer shop-token"}
CONFIG = """
[server]
host = "127.0.0.1"
port = {port}

[storage]
path = "{db}"

[api]
tokens = [{{ name = "ada", token = "admin-token", role = "admin" }}]

[notifier]
max_attempts = 1
backoff = "100ms"
max_backoff = "200ms"

[flapping]
threshold = 1

[[sources]]
name = "shop"
format = "native"
auth = {{ type = "bearer", tokens = ["shop-token"] }}

[[sources]]
name = "am"
format = "alertmanager"
auth = {{ type = "none" }}

[[sources]]
name = "prom"
format = "prometheus"
auth = {{ type = "none" }}

[[sources]]
name = "rehearsal"
format = "native"
mode = "test"
auth = {{ type = "none" }}

[[receivers]]
name = "ops"
urls = ["{mail}"]

[[receivers]]
name = "void"
urls = ["json://127.0.0.1:{closed}/x"]
timeout = "1s"

[[schedules]]
name = "primary"
people = [{{ name = "alice", urls = ["{mail}"] }}, {{ name = "bob", urls = ["{mail}"] }}]
rotations = [
  {{ participants = ["alice", "bob"], length = "1w", handoff = "09:00", start = 2020-01-06 }},
]

[[escalations]]
name = "page"
steps = [{{ after = "0s", notify = ["schedule:primary"] }}, {{ after = "1h", notify = ["ops"] }}]

[route]
receiver = "ops"
group_by = ["service"]
group_wait = "0s"
group_interval = "200ms"

[[route.routes]]
matchers = ['service=~"checkout|payments"']
receiver = "void"
escalation = "page"

[[silences]]
matchers = ['service="static"']
comment = "from the file"
created_by = "config"

[[maintenance]]
name = "upgrade"
starts_at = 2030-01-01T00:00:00Z
ends_at = 2030-01-02T00:00:00Z
matchers = ['service="db"']

[[heartbeats]]
name = "nightly"
period = "1d"
token = "nightly-ping-token-0123"
"""


class Answer(NamedTuple):
    method: str
    path: str
    response: httpx.Response


class Recorder:
    """Calls the API and keeps each answer under the operation the document names."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.answers: list[Answer] = []

    def call(self, method: str, path: str, json: Any = None, **given: Any) -> Any:
        """``path`` as the document writes it; ``given`` fills its ``{names}``, the rest
        are query parameters."""
        names = {name: given.pop(name) for name in list(given) if "{" + name + "}" in path}
        response = self.http.request(method, path.format(**names), json=json, params=given)
        assert response.is_success, (method, path, response.text)
        self.answers.append(Answer(method, path, response))
        return response.json()


class Contract(NamedTuple):
    document: dict[str, Any]
    answers: list[Answer]


@pytest.fixture(scope="module")
def contract(tmp_path_factory) -> Iterator[Contract]:
    """A hub driven through every state above, with every answer it gave on the way."""
    mailbox, smtp_port = Mailbox(), free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    directory = tmp_path_factory.mktemp("contract")
    port, path, clock = free_port(), directory / "alerts.toml", MovedClock()
    path.write_text(
        CONFIG.format(
            port=port,
            db=(directory / "hub.db").as_posix(),
            mail=mail_url(smtp_port),
            closed=free_port(),
        )
    )
    hub = RunningHub(path, port, clock).start()
    try:
        with hub.client(headers=ADMIN) as http:
            document = http.get("/schema/openapi.json").json()
            api = Recorder(http)
            populate(api, http, document, clock)
            api.call("POST", "/-/reload")
            path.write_text(path.read_text().replace(f"port = {port}", f"port = {free_port()}"))
            assert api.call("POST", "/-/reload")["needs_restart"] == ["server.port"]
        yield Contract(document, api.answers)
    finally:
        hub.stop()
        smtp.stop()


def populate(api: Recorder, http: httpx.Client, document: dict, clock: MovedClock) -> None:
    """Alerts, incidents, silences, heartbeats and deliveries in each of their states;
    POST bodies are the document's own examples where it gives one."""
    make_silences(api, document)
    incidents = make_alerts(http)
    deliveries = make_deliveries(http)
    act_on_incidents(api, incidents)
    make_heartbeats(api, http, example(document, "/api/v1/heartbeats"))
    clock.advance(120)  # the snooze lapses, flaky misses its deadline
    wait_for(lambda: incident(http, incidents["checkout"])["lapsed_by"] == "ada")
    wait_for(lambda: heartbeat(http, "flaky")["state"] == "down")
    wait_for(lambda: states(http) >= {"sent", "dead"})
    time.sleep(IDLE_POLL_SECONDS)  # a round of every worker on the moved clock
    snooze = {"duration": "1h", "comment": "until the fix ships"}
    api.call("POST", INCIDENT + "/snooze", snooze, incident_id=incidents["flappy"])
    first, *_, last = [n for n in http.get("/api/v1/notifications").json() if n["state"] == "dead"]
    api.call("POST", "/api/v1/notifications/{notification_id}/retry", notification_id=first["id"])
    why = {"comment": "told by phone"}
    api.call(
        "POST", "/api/v1/notifications/{notification_id}/dismiss", why, notification_id=last["id"]
    )
    for delivery in deliveries:
        api.call("POST", REPLAY, delivery_id=delivery, dry_run="true")
        api.call("POST", REPLAY, delivery_id=delivery)
    read_everything(api)
    use_the_alertmanager_api(api, http, document)


INCIDENT = "/api/v1/incidents/{incident_id}"
REPLAY = "/api/v1/events/{delivery_id}/replay"


def example(document: dict, path: str, method: str = "post") -> dict[str, Any]:
    return document["paths"][path][method]["requestBody"]["content"]["application/json"]["example"]


def make_silences(api: Recorder, document: dict) -> None:
    """Active (the documented example, changed as the document's example changes one,
    and one muting cart), pending and expired ones."""
    made = api.call("POST", "/api/v1/silences", example(document, "/api/v1/silences"))
    one = "/api/v1/silences/{silence_id}"
    api.call("PUT", one, example(document, one, "put"), silence_id=made["id"])
    api.call("POST", "/api/v1/silences", for_an_hour('service="cart"'))
    soon = datetime.now(UTC) + timedelta(hours=1)
    later = {
        "matchers": ['service="later"'],
        "comment": "contract",
        "starts_at": stamp(soon),
        "ends_at": stamp(soon + timedelta(hours=1)),
    }
    api.call("POST", "/api/v1/silences", later)
    gone = api.call("POST", "/api/v1/silences", for_an_hour('service="gone"'))
    api.call("DELETE", "/api/v1/silences/{silence_id}", silence_id=gone["id"])


def make_alerts(http: httpx.Client) -> dict[str, int]:
    """Alerts firing, resolved, silenced, flapping, born resolved and with an end; the
    incident of each service."""
    incidents = {
        "checkout": fire(http, "checkout", annotations={"runbook": "https://wiki.example/c"}),
        "payments": fire(http, "payments"),
        "search": fire(http, "search"),
        "cart": fire(http, "cart"),
        "db": fire(http, "db", headers={"Idempotency-Key": "db-1"}),
    }
    fire(http, "search", status="resolved")
    for status in ("firing", "resolved", "firing"):
        incidents["flappy"] = fire(http, "flappy", status=status)
    fire(http, "born-resolved", status="resolved")
    ends = stamp(datetime.now(UTC) + timedelta(minutes=30))
    prom = [{"labels": {"alertname": "Ending", "service": "prom"}, "endsAt": ends}]
    assert http.post("/webhooks/prom/api/v2/alerts", json=prom).status_code == 200
    return incidents


def make_deliveries(http: httpx.Client) -> list[int]:
    """The ids of a live delivery, one with a refused item, and a test-mode one."""
    live = min(d["id"] for d in http.get("/api/v1/events", params={"source": "shop"}).json())
    partly = http.post("/webhooks/am", json=alertmanager_batch())
    rehearsed = http.post("/webhooks/rehearsal", json=event("checkout"))
    return [live, partly.json()["delivery_id"], rehearsed.json()["delivery_id"]]


def act_on_incidents(api: Recorder, incidents: dict[str, int]) -> None:
    """Acknowledged (cart, and payments whose escalation that pauses), acknowledged then
    unacknowledged and resolved (db), snoozed for a minute (checkout)."""
    api.call("POST", INCIDENT + "/ack", incident_id=incidents["cart"])
    api.call("POST", INCIDENT + "/ack", {"comment": "mine"}, incident_id=incidents["payments"])
    api.call("POST", INCIDENT + "/ack", incident_id=incidents["db"])
    api.call("POST", INCIDENT + "/unack", {"comment": "not mine"}, incident_id=incidents["db"])
    api.call("POST", INCIDENT + "/resolve", incident_id=incidents["db"])
    snooze = {"duration": "1m", "comment": "after the deploy"}
    api.call("POST", INCIDENT + "/snooze", snooze, incident_id=incidents["checkout"])


def make_heartbeats(api: Recorder, http: httpx.Client, documented: dict[str, Any]) -> None:
    """New (the documented example), started, soon overdue, pinged, paused, resumed and
    deleted ones."""
    api.call("POST", "/api/v1/heartbeats", documented)
    api.call("POST", "/api/v1/heartbeats", {"name": "etl", "period": "1h", "grace": "1h"})
    api.call("POST", "/api/v1/heartbeats", {"name": "flaky", "period": "1m", "grace": "1s"})
    api.call("POST", "/api/v1/heartbeats", {"name": "old", "period": "1h"})
    api.call("DELETE", "/api/v1/heartbeats/{name}", name="old")
    api.call("POST", "/api/v1/heartbeats", {"name": "idle", "period": "1h"})
    api.call("POST", "/api/v1/heartbeats", {"name": "back", "period": "1h"})
    api.call("POST", "/api/v1/heartbeats/{name}/pause", {"reason": "decommissioned"}, name="idle")
    api.call("POST", "/api/v1/heartbeats/{name}/pause", name="back")
    api.call("POST", "/api/v1/heartbeats/{name}/resume", name="back")
    http.get("/ping/etl/start").raise_for_status()
    http.get("/ping/nightly", params={"token": "nightly-ping-token-0123"}).raise_for_status()


def use_the_alertmanager_api(api: Recorder, http: httpx.Client, document: dict) -> None:
    """Every read of ``/api/v2``; a silence made (the documented example, by the token,
    from now) and changed through it, and one expired."""
    made = example(document, "/api/v2/silences")
    now = datetime.now(UTC)
    made |= {"createdBy": "ada", "startsAt": stamp(now), "endsAt": stamp(now + timedelta(hours=1))}
    silence_id = api.call("POST", "/api/v2/silences", made)["silenceID"]
    api.call("POST", "/api/v2/silences", made | {"id": silence_id, "comment": "changed"})
    expired = http.delete(f"/api/v2/silence/{silence_id}")
    assert (expired.status_code, expired.content) == (200, b"")
    for path in ("/api/v2/status", "/api/v2/receivers", "/api/v2/alerts", "/api/v2/alerts/groups"):
        api.call("GET", path)
    for silence in api.call("GET", "/api/v2/silences"):
        api.call("GET", "/api/v2/silence/{silence_id}", silence_id=silence["id"])


def read_everything(api: Recorder) -> None:
    """Every read, of every row the lists show."""
    for alert in api.call("GET", "/api/v1/alerts"):
        api.call("GET", "/api/v1/alerts/{alert_id}", alert_id=alert["id"])
    for found in api.call("GET", "/api/v1/incidents"):
        api.call("GET", INCIDENT, incident_id=found["id"])
    for delivery in api.call("GET", "/api/v1/events"):
        api.call("GET", "/api/v1/events/{delivery_id}", delivery_id=delivery["id"])
    for silence in api.call("GET", "/api/v1/silences"):
        api.call("GET", "/api/v1/silences/{silence_id}", silence_id=silence["id"])
    for beat in api.call("GET", "/api/v1/heartbeats"):
        api.call("GET", "/api/v1/heartbeats/{name}", name=beat["name"])
    for schedule in api.call("GET", "/api/v1/schedules"):
        api.call("GET", "/api/v1/schedules/{name}/oncall", name=schedule["name"])
        api.call(
            "GET",
            "/api/v1/schedules/{name}/oncall",
            name=schedule["name"],
            at="2026-03-29T09:00:00Z",
        )
    api.call("GET", "/api/v1/notifications")
    api.call("GET", "/api/v1/notifications", state="dead", limit=1)
    api.call("GET", "/healthz")
    api.call("GET", "/readyz")


def for_an_hour(matcher: str) -> dict[str, Any]:
    return {"matchers": [matcher], "duration": "1h", "comment": "contract"}


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event(service: str, status: str = "firing", **fields: Any) -> dict[str, Any]:
    return {
        "status": status,
        "summary": f"{service} down",
        "labels": {"service": service},
        **fields,
    }


def fire(http: httpx.Client, service: str, headers: dict | None = None, **fields: Any) -> int:
    """Send an event to the shop source; the id of the incident its alert is in."""
    answer = http.post(
        "/webhooks/shop", json=event(service, **fields), headers={**SHOP, **(headers or {})}
    )
    assert answer.status_code == 202, answer.text
    return answer.json()["alerts"][0]["incident_id"]


def alertmanager_batch() -> dict[str, Any]:
    """An Alertmanager webhook whose second alert is invalid: the first is kept."""
    alert = {"status": "firing", "labels": {"alertname": "DiskFull", "service": "am"}}
    broken = {"status": "sideways", "labels": {"alertname": "Broken"}}
    return {"version": "4", "status": "firing", "receiver": "hub", "alerts": [alert, broken]}


def incident(http: httpx.Client, incident_id: int) -> dict[str, Any]:
    return http.get(f"/api/v1/incidents/{incident_id}").json()


def heartbeat(http: httpx.Client, name: str) -> dict[str, Any]:
    return http.get(f"/api/v1/heartbeats/{name}").json()


def states(http: httpx.Client) -> set[str]:
    return {n["state"] for n in http.get("/api/v1/notifications").json()}


def test_every_answer_matches_the_schema_its_operation_declares(contract):
    api = schemathesis.openapi.from_dict(contract.document)
    failures = {}
    for method, path, response in contract.answers:
        try:
            api[path][method].validate_response(response)
        except Failure as e:
            failures[f"{method} {response.request.url}"] = str(e)
    assert not failures, "\n\n".join(f"{where}: {why}" for where, why in failures.items())


def json_answers(document: dict[str, Any]) -> set[tuple[str, str, int]]:
    """Each JSON success the document declares, by method, path and status: webhooks
    left out (a sender's format may answer in its own words) and HEAD (no body)."""
    return {
        (method.upper(), path, int(status))
        for path, item in document["paths"].items()
        if not path.startswith("/webhooks/")
        for method, operation in item.items()
        if method != "head"
        for status, answer in operation["responses"].items()
        if status.startswith("2") and "application/json" in answer.get("content", {})
    }


def test_every_json_answer_the_document_declares_was_given_and_checked(contract):
    given = {(a.method, a.path, a.response.status_code) for a in contract.answers}
    assert given == json_answers(contract.document)


def test_the_replay_answers_as_each_kind_of_delivery_would(contract):
    replays = [a for a in contract.answers if a.path == REPLAY and a.response.status_code == 202]
    replies = [a.response.json() for a in replays]
    assert [reply.get("mode", "live") for reply in replies] == ["live", "live", "test"]
    assert [len(reply.get("rejected", [])) for reply in replies] == [0, 1, 0]
    replayed = [int(a.response.request.url.path.split("/")[-2]) for a in replays]
    assert [reply["replay_of"] for reply in replies] == replayed


def answered(contract: Contract, path: str) -> httpx.Response:
    return next(a.response for a in contract.answers if a.path == path and a.method == "GET")


def changed(answer: httpx.Response, body: Any) -> httpx.Response:
    """The answer with another body, as if hub had sent it."""
    content_type = {"content-type": answer.headers["content-type"]}
    forged = httpx.Response(
        answer.status_code, headers=content_type, json=body, request=answer.request
    )
    forged.elapsed = answer.elapsed
    return forged


@pytest.mark.parametrize(
    ("path", "change"),
    [
        ("/api/v1/alerts", lambda alerts: [{**alerts[0], "colour": "red"}]),
        ("/api/v1/alerts", lambda alerts: [{**alerts[0], "status": "smouldering"}]),
        ("/api/v1/alerts/{alert_id}", lambda alert: {**alert, "last_seen": 1764331200.5}),
        ("/api/v1/incidents/{incident_id}", lambda found: {**found, "timing": {}}),
        ("/api/v1/incidents/{incident_id}", lambda found: {**found, "escalation_state": 1}),
        ("/api/v1/silences", lambda shown: [{k: v for k, v in shown[0].items() if k != "state"}]),
        ("/api/v1/heartbeats/{name}", lambda beat: {**beat, "token": "secret"}),
    ],
)
def test_an_answer_off_its_schema_fails_the_check(contract, path, change):
    """The schemas are closed and typed: an unknown field, a value outside an enum, an
    epoch number for a time, a missing field, each fails validation."""
    answer = answered(contract, path)
    operation = schemathesis.openapi.from_dict(contract.document)[path]["GET"]
    operation.validate_response(answer)
    with pytest.raises(Failure):
        operation.validate_response(changed(answer, change(answer.json())))
