"""A hub killed with SIGKILL loses no change it answered for, whoever made it and
however: incidents acknowledged, snoozed, unacknowledged and resolved through the API,
the console and signed ack links; silences made, changed and expired through hub's API,
the Alertmanager API and the console; heartbeats pinged, paused, resumed, created and
deleted; dead letters dismissed. An answer is a 2xx, or for a console form or an ack
link a 303 to a page saying it was done.

A change that got no answer may be kept or not, but whole: its object is as the last
answered change left it or as the unanswered one would, never a mix (an ack without
its timeline entry, a silence with one change's matchers and another's end). Each
client owns its objects and changes them one at a time, so every answer promises a
known state; each change carries a tag (``w<n>``) into its comment, reason, matchers
or the person it names, so the state found shows which change made it.

After each restart snoozed incidents keep their snooze's end and open ones an
escalation step due; a separate test sees an ack's lapse and an
escalation step come due right after a SIGKILL. The kill moment is random but seeded:
the seed is printed, and ``HUB_CRASH_SEED=<n>`` replays a run.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from conftest import free_port, mail_url, wait_for
from console_support import csrf_in, sign_in
from hub_process import HubProcess, hub_process

from hub import acklinks

ROUNDS = 4
KILL_WITHIN = 120
"""The kill comes after 1 to this many answered changes in a round."""
WRITES_PER_CLIENT = 80
"""Each client stops after this many changes in a round, so a round ends by itself."""
INCIDENTS = 40
HEARTBEATS = [f"hb-{n}" for n in range(6)]
MADE_HEARTBEATS = [f"made-{n}" for n in range(3)]
"""Created and deleted through the API, so never in the config."""
ACK_SECRET = "crash-ack-secret-0123456789"
API = {"Authorization": "Bearer crash-api-token"}
SOURCE = {"Authorization": "Bearer crash-source-token"}
OPERATOR, CONSOLE_PERSON = "operator", "cora"
CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
ack_secret = "%(secret)s"

[storage]
path = "{db}"

[notifier]
max_attempts = 1
backoff = "100ms"
max_backoff = "200ms"

[[sources]]
name = "shop"
format = "native"
auth = { type = "bearer", tokens = ["crash-source-token"] }

[[receivers]]
name = "ops"
urls = ["%(mail)s"]
timeout = "2s"

[route]
receiver = "ops"
group_by = ["key"]
group_wait = "0s"
group_interval = "200ms"
repeat_interval = "1h"
escalation = "page"

[[escalations]]
name = "page"
steps = [{ after = "0s", notify = ["ops"] }, { after = "%(second)s", notify = ["ops"] }]
%(ack_timeout)s

[api]
tokens = [
  { name = "operator", token = "crash-api-token", role = "admin" },
  { name = "cora", token = "crash-console-token", role = "admin" },
]
""" + "".join(f'\n[[heartbeats]]\nname = "{name}"\nperiod = "1h"\n' for name in HEARTBEATS)
"""Mail goes to a server that is not there: every notification dies at once and
leaves a dead letter to dismiss."""
ACTION_KINDS = ("acknowledged", "snoozed", "unacknowledged", "resolved")
"""The timeline entries of a person's action on an incident."""
TAG = re.compile(r"w\d+")
MATCHER = re.compile(r'(\w+)="(.*)"')
_SERIALS = itertools.count(1)

Seen = tuple | None
"""An object's state as the API shows it, in the terms a change sets; None: absent."""


def new_tag() -> tuple[str, int]:
    """A change's tag and its number (snoozes and silences last 60 + n minutes, so the
    length too says which change set it)."""
    serial = next(_SERIALS)
    return f"w{serial}", serial


@dataclass
class Write:
    """One change: the object it changes, the state it leaves it in, and the request
    (``via`` the operator's API token, the signed-in console, or no credentials)."""

    key: str
    effect: Seen
    what: str
    via: str
    path: str
    body: dict[str, Any] | None = None
    method: str = "POST"
    sent_at: float = 0.0


@dataclass
class Clients:
    """One client's connections: the API as the operator, the console as cora (its
    cookie and form token), and no credentials (pings, ack links)."""

    api: httpx.Client
    console: httpx.Client
    csrf: str
    plain: httpx.Client

    def send(self, write: Write) -> httpx.Response:
        write.sent_at = time.time()
        if write.via == "console":
            return self.console.post(write.path, data={**(write.body or {}), "_csrf": self.csrf})
        http = self.api if write.via == "api" else self.plain
        return http.request(write.method, write.path, json=write.body)

    def close(self) -> None:
        for http in (self.api, self.console, self.plain):
            http.close()


def connect(hub: HubProcess) -> Clients:
    console = hub.client()
    assert sign_in(console, "crash-console-token").status_code == 303
    csrf = csrf_in(console.get("/silences").text)
    return Clients(hub.client(headers=API), console, csrf, hub.client())


def done(answer: httpx.Response) -> bool:
    """A 2xx, or a console form's or ack link's 303 to a page saying it was done."""
    if 200 <= answer.status_code < 300:
        return True
    where = answer.headers.get("location", "")
    refused = "already" in where or "earlier-episode" in where
    return answer.status_code == 303 and "done=" in where and not refused


@dataclass
class Owner:
    """A client's objects: the state each answered change left them in, and the change
    the kill left unanswered, if any."""

    rng: random.Random
    known: dict[str, Seen] = field(default_factory=dict)
    unanswered: Write | None = None

    def next_write(self, clients: Clients) -> Write | None:
        raise NotImplementedError

    def answered(self, write: Write, answer: httpx.Response) -> None:
        self.known[write.key] = write.effect

    def keys(self) -> set[str]:
        return self.known.keys() | ({self.unanswered.key} if self.unanswered else set())

    def check(self, seen: dict[str, Seen]) -> list[str]:
        """Each object as its last answered change left it, or as the unanswered one would."""
        maybe = self.unanswered
        problems = []
        for key in sorted(self.keys()):
            found, kept = seen.get(key), self.known.get(key)
            if found != kept and not (maybe and maybe.key == key and found == maybe.effect):
                flight = (
                    f"; the unanswered {maybe.what} would leave {maybe.effect}" if maybe else ""
                )
                problems.append(f"{key}: answered {kept}, found {found}{flight}")
        return problems

    def resync(self, seen: dict[str, Seen]) -> None:
        """Go on from what the restarted hub shows."""
        self.known = {key: seen.get(key) for key in self.keys()}
        self.unanswered = None


class Incidents(Owner):
    """Acknowledge, snooze, unacknowledge and resolve a share of the incidents through
    the API, or through the console's forms and signed ack links. An incident is seen as
    its status, who holds or resolved it, its snooze's length in minutes, and the tag of
    the last action on its timeline."""

    def __init__(self, rng: random.Random, ids: list[int], console: bool) -> None:
        super().__init__(rng, {f"incident:{i}": None for i in ids})
        self.via = "console" if console else "api"
        self.actor = CONSOLE_PERSON if console else OPERATOR

    def next_write(self, clients: Clients) -> Write | None:
        live = sorted(k for k, seen in self.known.items() if seen and seen[0] != "resolved")
        if not live:
            return None
        key = self.rng.choice(live)
        if self.known[key][0] == "acknowledged":
            action = self.rng.choices(["unack", "resolve"], [4, 1])[0]
        else:
            links = 3 if self.via == "console" else 0
            action = self.rng.choices(["ack", "snooze", "link", "resolve"], [3, 3, links, 1])[0]
        tag, serial = new_tag()
        incident_id = int(key.split(":")[1])
        if action == "link":
            return _link_ack(key, incident_id, tag)
        effect = {
            "ack": ("acknowledged", self.actor, None, tag),
            "snooze": ("acknowledged", self.actor, 60 + serial, tag),
            "unack": ("open", None, None, tag),
            "resolve": ("resolved", self.actor, None, tag),
        }[action]
        body = {"comment": tag} | ({"duration": f"{60 + serial}m"} if action == "snooze" else {})
        path = f"/incidents/{incident_id}/{action}"
        path = path if self.via == "console" else f"/api/v1{path}"
        return Write(key, effect, f"{action} ({self.via})", self.via, path, body)


def _link_ack(key: str, incident_id: int, person: str) -> Write:
    """A click on the signed link a notification to ``person`` carries."""
    expires = datetime.now(UTC) + timedelta(days=1)
    token = acklinks.sign(ACK_SECRET.encode(), incident_id, 1, expires, person)
    effect = ("acknowledged", person, None, person)
    return Write(key, effect, "ack link", "plain", acklinks.path(token, person))


class Silences(Owner):
    """Make, change and expire silences through hub's API, the Alertmanager API and the
    console. A silence is known by its ``crash`` matcher, the tag of the change that made
    it; each change sets its comment, its ``change`` matcher and its length, so it is seen
    as its state, comment, ``change`` value and length in minutes (none once expired)."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.made: dict[str, tuple[str | None, str]] = {}
        """Each silence's id (None until an answer or a lookup gives it) and creator."""

    def next_write(self, clients: Clients) -> Write | None:
        live = sorted(k for k, seen in self.known.items() if seen and seen[0] == "active")
        tag, serial = new_tag()
        via = self.rng.choice(["api", "alertmanager", "console"])
        if len(live) < 3 or self.rng.random() < 0.3:
            creator = CONSOLE_PERSON if via == "console" else OPERATOR
            self.made[tag] = (None, creator)
            return _silence_write(f"silence:{tag}", tag, tag, serial, via, None, creator)
        key = self.rng.choice(live)
        made = key.split(":")[1]
        silence_id = self._id(clients, made)
        if self.rng.random() < 0.6:
            return _silence_write(key, made, tag, serial, via, silence_id, self.made[made][1])
        expired = ("expired", *self.known[key][1:3], None)
        return _expire_write(key, expired, via, silence_id)

    def _id(self, clients: Clients, made: str) -> str:
        """The silence's id: from the answer that made it, else looked up by its matcher
        (one the console made, or whose answer the kill cut off)."""
        silence_id, creator = self.made[made]
        if silence_id is None:
            found = clients.api.get("/api/v1/silences", params={"matcher": f'crash="{made}"'})
            silence_id = found.json()[0]["id"]
            self.made[made] = (silence_id, creator)
        return silence_id

    def answered(self, write: Write, answer: httpx.Response) -> None:
        super().answered(write, answer)
        made = write.key.split(":")[1]
        given = answer.json() if answer.status_code != 303 and answer.content else {}
        silence_id = given.get("id") or given.get("silenceID")
        if silence_id:
            self.made[made] = (silence_id, self.made[made][1])


def _silence_write(
    key: str, made: str, tag: str, serial: int, via: str, silence_id: str | None, creator: str
) -> Write:
    """Make (no ``silence_id``) or change a silence, for 60 + ``serial`` minutes."""
    matchers = {"crash": made, "change": tag}
    minutes = 60 + serial
    effect = ("active", tag, tag, minutes)
    what = f"{'change' if silence_id else 'create'} ({via})"
    texts = [f'{name}="{value}"' for name, value in matchers.items()]
    body = {"matchers": texts, "comment": tag, "duration": f"{minutes}m"}
    if via == "alertmanager":
        am = _am_silence(matchers, tag, minutes, creator) | (
            {"id": silence_id} if silence_id else {}
        )
        return Write(key, effect, what, "api", "/api/v2/silences", am)
    if via == "console":
        form = {**body, "matchers": "\n".join(texts)}
        path = f"/silences/{silence_id}/edit" if silence_id else "/silences"
        return Write(
            key, effect, what, "console", path, form | ({} if silence_id else {"incident": ""})
        )
    if silence_id:
        return Write(key, effect, what, "api", f"/api/v1/silences/{silence_id}", body, "PUT")
    return Write(key, effect, what, "api", "/api/v1/silences", body)


def _am_silence(matchers: dict[str, str], tag: str, minutes: int, creator: str) -> dict:
    """A silence as Alertmanager's API takes it (amtool, Grafana): a start and an end."""
    starts = int(time.time()) - 1
    return {
        "matchers": [{"name": n, "value": v, "isRegex": False} for n, v in matchers.items()],
        "startsAt": _rfc3339(starts),
        "endsAt": _rfc3339(starts + minutes * 60),
        "createdBy": creator,
        "comment": tag,
    }


def _expire_write(key: str, expired: Seen, via: str, silence_id: str) -> Write:
    what = f"expire ({via})"
    if via == "alertmanager":
        return Write(key, expired, what, "api", f"/api/v2/silence/{silence_id}", method="DELETE")
    if via == "console":
        return Write(key, expired, what, "console", f"/silences/{silence_id}/expire")
    return Write(key, expired, what, "api", f"/api/v1/silences/{silence_id}", method="DELETE")


class Heartbeats(Owner):
    """Ping the config's heartbeats (success, fail, start; by GET, POST or HEAD), pause
    and resume them through the API or the console; create and delete others through
    the API. A heartbeat is seen as its state, its pause reason and whether it was ever
    pinged; each answered success or fail ping must be its last ping or older than it."""

    def __init__(self, rng: random.Random) -> None:
        names = HEARTBEATS + MADE_HEARTBEATS
        super().__init__(rng, {f"heartbeat:{name}": None for name in names})
        self.pinged_at: dict[str, float] = {}
        """When each heartbeat's last answered success or fail ping was sent."""

    def next_write(self, clients: Clients) -> Write | None:
        name = self.rng.choice(HEARTBEATS + MADE_HEARTBEATS)
        key = f"heartbeat:{name}"
        seen = self.known[key]
        if name in MADE_HEARTBEATS:
            if seen is None:
                body = {"name": name, "period": "1h"}
                return Write(key, ("new", None, False), "create", "api", HEARTBEAT_API, body)
            return Write(key, None, "delete", "api", f"{HEARTBEAT_API}/{name}", method="DELETE")
        assert seen is not None, f"config heartbeat {name} is missing"
        toggle = "resume" if seen[0] == "paused" else "pause"
        action = self.rng.choices(["success", "fail", "start", toggle], [3, 2, 2, 4])[0]
        tag, _ = new_tag()
        effect = _heartbeat_after(seen, action, tag)
        if action in ("pause", "resume"):
            via = self.rng.choice(["api", "console"])
            body = {"reason": tag} if action == "pause" else None
            path = f"/heartbeats/{name}/{action}"
            path = path if via == "console" else f"{HEARTBEAT_API}/{name}/{action}"
            return Write(key, effect, f"{action} ({via})", via, path, body)
        method = self.rng.choice(["GET", "POST", "HEAD"])
        path = f"/ping/{name}" + ("" if action == "success" else f"/{action}")
        return Write(key, effect, f"{action} ping ({method})", "plain", path, method=method)

    def answered(self, write: Write, answer: httpx.Response) -> None:
        super().answered(write, answer)
        if write.what.startswith(("success ping", "fail ping")):
            self.pinged_at[write.key] = write.sent_at

    def check(self, seen: dict[str, Seen]) -> list[str]:
        problems = super().check(seen)
        for key, sent in sorted(self.pinged_at.items()):
            last = seen.get(f"last_ping:{key}")
            if last is None or last[0] < sent - PING_SLACK:
                problems.append(f"{key}: a ping sent at {sent} was answered; last ping {last}")
        return problems


HEARTBEAT_API = "/api/v1/heartbeats"
PING_SLACK = 0.001
"""Times are shown to the microsecond; hub's clock never runs behind the wall clock."""


def _heartbeat_after(seen: tuple, action: str, tag: str) -> Seen:
    """A heartbeat's state after ``action``: a ping resumes a paused one first; a start
    leaves one that is down down; a resume counts from now, so it is up once pinged."""
    state, _, pinged = seen
    if action == "pause":
        return ("paused", tag, pinged)
    if state == "paused":
        state = "up" if pinged else "new"
    if action == "resume":
        return (state, None, pinged)
    if action == "start":
        return ("down" if state == "down" else "started", None, pinged)
    return ("up" if action == "success" else "down", None, True)


class Letters(Owner):
    """Dismiss dead letters through the API or the console. A letter is seen as its
    state and the tag of its dismissal on its incident's timeline."""

    def next_write(self, clients: Clients) -> Write | None:
        dead = sorted(k for k, seen in self.known.items() if seen and seen[0] == "dead")
        if not dead:
            return None
        key = self.rng.choice(dead)
        letter = key.split(":")[1]
        tag, _ = new_tag()
        effect = ("dismissed", tag)
        if self.rng.random() < 0.5:
            path = f"/api/v1/notifications/{letter}/dismiss"
            return Write(key, effect, "dismiss (api)", "api", path, {"comment": tag})
        form = {"comment": tag, "back": "/notifications"}
        return Write(
            key, effect, "dismiss (console)", "console", f"/notifications/{letter}/dismiss", form
        )

    def resync(self, seen: dict[str, Seen]) -> None:
        """As every owner's, and the dead letters written since are this owner's too."""
        super().resync(seen)
        for key, state in seen.items():
            if key.startswith("letter:"):
                self.known.setdefault(key, state)


class Load:
    """One thread per owner, each making its changes one after another until the hub
    goes away or it has made ``WRITES_PER_CLIENT``."""

    def __init__(self, hub: HubProcess, owners: list[Owner]) -> None:
        self.answers = 0
        self.unexpected: list[str] = []
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._client, args=(owner, connect(hub)), daemon=True)
            for owner in owners
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finished(self) -> bool:
        return not any(thread.is_alive() for thread in self.threads)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a client did not stop"

    def _client(self, owner: Owner, clients: Clients) -> None:
        try:
            for _ in range(WRITES_PER_CLIENT):
                if not self._one(owner, clients):
                    return
        except httpx.TransportError:
            return  # a read a change needed (a silence's id) met the kill
        finally:
            clients.close()

    def _one(self, owner: Owner, clients: Clients) -> bool:
        """Make one change; whether to go on."""
        write = owner.next_write(clients)
        if write is None:
            return False
        try:
            answer = clients.send(write)
        except httpx.TransportError:
            owner.unanswered = write
            return False
        if not done(answer):
            with self.lock:
                self.unexpected.append(
                    f"{write.what} {write.path}: {answer.status_code} {answer.text[:300]}"
                )
            return False
        owner.answered(write, answer)
        with self.lock:
            self.answers += 1
        return True


def observe(hub: HubProcess) -> tuple[dict[str, Seen], list[str]]:
    """Every object as the API shows it, and what is broken whatever was answered: an
    open incident's escalation lost, a heartbeat down without its firing alert or
    firing while up."""
    with hub.client(headers=API) as http:
        listed = http.get("/api/v1/incidents", params={"limit": 1000}).json()
        incidents = [http.get(f"/api/v1/incidents/{i['id']}").json() for i in listed]
        silences = http.get("/api/v1/silences").json()
        heartbeats = http.get(HEARTBEAT_API).json()
        firing = http.get("/api/v1/alerts", params={"source": "heartbeat", "status": "firing"})
        letters = [
            letter
            for state in ("dead", "dismissed")
            for letter in http.get(
                "/api/v1/notifications", params={"state": state, "limit": 1000}
            ).json()
        ]
    seen: dict[str, Seen] = {}
    broken: list[str] = []
    for incident in incidents:
        seen[f"incident:{incident['id']}"] = _incident(incident)
        broken += _escalation_problems(incident)
    for silence in silences:
        seen.update(_silence(silence))
    down = {alert["fingerprint"].removeprefix("heartbeat:") for alert in firing.json()}
    for row in heartbeats:
        key = f"heartbeat:{row['name']}"
        seen[key] = (row["state"], row["pause_reason"], row["last_ping"] is not None)
        seen[f"last_ping:{key}"] = (_epoch(row["last_ping"]),) if row["last_ping"] else None
        if (row["state"] == "down") != (row["name"] in down):
            broken.append(f"{key} is {row['state']}; its alert firing: {row['name'] in down}")
    dismissals = {
        entry["detail"]["notification"]: entry["detail"]["comment"]
        for incident in incidents
        for entry in incident["timeline"]
        if entry["kind"] == "dead_letter_dismissed"
    }
    for letter in letters:
        seen[f"letter:{letter['id']}"] = (letter["state"], dismissals.get(letter["id"]))
    return seen, broken


def _incident(incident: dict) -> Seen:
    acted = [entry for entry in incident["timeline"] if entry["kind"] in ACTION_KINDS]
    status = incident["status"]
    holder = {"acknowledged": incident["acknowledged_by"], "resolved": incident["resolved_by"]}
    snoozed = incident["snoozed_until"]
    minutes = None
    if snoozed is not None:
        minutes = round((_epoch(snoozed) - _epoch(incident["acknowledged_at"])) / 60)
    return (status, holder.get(status), minutes, _tag(acted[-1]) if acted else None)


def _tag(entry: dict) -> str:
    """The tag of the change that wrote a timeline entry: its comment, or the person an
    ack link named."""
    comment = entry["detail"].get("comment", "")
    return comment if TAG.fullmatch(comment) else entry["actor"]


def _escalation_problems(incident: dict) -> list[str]:
    """An open incident has an escalation step due: the chain survived. (An ack leaves
    the step due; the escalator skips it then, pausing the chain.)"""
    if incident["status"] == "open" and incident["escalation_state"]["due_at"] is None:
        return [f"incident:{incident['id']} is open with no escalation step due"]
    return []


def _silence(silence: dict) -> dict[str, Seen]:
    """A silence by its ``crash`` matcher: its state, comment, ``change`` value and length."""
    values = dict(MATCHER.fullmatch(m).groups() for m in silence["matchers"])
    length = _epoch(silence["ends_at"]) - _epoch(silence["starts_at"])
    minutes = None if silence["state"] == "expired" else round(length / 60)
    seen = (silence["state"], silence["comment"], values.get("change"), minutes)
    return {f"silence:{values['crash']}": seen}


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def start_hub(tmp_path: Path, second: str = "1h", ack_timeout: str = "") -> HubProcess:
    """A hub whose every notification dies, escalating each incident to ``second`` after
    its first step, with an ``ack_timeout`` when given."""
    lapse = f'ack_timeout = "{ack_timeout}"' if ack_timeout else ""
    values = {"secret": ACK_SECRET, "mail": mail_url(free_port()), "second": second}
    hub = hub_process(tmp_path, CONFIG % (values | {"ack_timeout": lapse}))
    return hub.start()


def open_incidents(hub: HubProcess, keys: list[str]) -> list[int]:
    """One incident per key, each once its first notification died (a dead letter)."""
    with hub.client() as http:
        for key in keys:
            event = {"status": "firing", "summary": f"down {key}", "labels": {"key": key}}
            assert http.post("/webhooks/shop", json=event, headers=SOURCE).status_code == 202
    with hub.client(headers=API) as http:
        wait_for(lambda: len(dead_letters(http)) >= len(keys), timeout=30)
        return sorted(i["id"] for i in http.get("/api/v1/incidents", params={"limit": 1000}).json())


def dead_letters(http: httpx.Client) -> list[dict]:
    return http.get("/api/v1/notifications", params={"state": "dead"}).json()


def timeline_kinds(http: httpx.Client, incident_id: int) -> list[str]:
    return [e["kind"] for e in http.get(f"/api/v1/incidents/{incident_id}").json()["timeline"]]


def crash_once(hub: HubProcess, owners: list[Owner], round_: int, rng: random.Random) -> None:
    """Change things from every owner's client, SIGKILL the hub after a random number
    of answers, restart it."""
    kill_after = rng.randint(1, KILL_WITHIN)
    jitter = rng.uniform(0, 0.03)
    load = Load(hub, owners)
    load.start()
    wait_for(lambda: load.answers >= kill_after or load.finished(), timeout=60)
    time.sleep(jitter)
    hub.kill()
    load.join()
    started = time.monotonic()
    hub.start()
    print(
        f"round {round_}: killed after {load.answers} answers (aimed {kill_after} +"
        f" {jitter:.3f}s); restarted in {time.monotonic() - started:.1f}s"
    )
    assert not load.unexpected, load.unexpected[:5]


def made_unanswered(owners: list[Owner], seen: dict[str, Seen]) -> list[str]:
    """The unanswered changes the restarted hub shows made (of those that change
    anything): the kill fell between their commit and their answer."""
    return [
        o.unanswered.what
        for o in owners
        if o.unanswered
        and seen.get(o.unanswered.key) == o.unanswered.effect != o.known.get(o.unanswered.key)
    ]


def test_sigkill_loses_no_answered_change_and_leaves_unanswered_ones_whole(tmp_path):
    seed = int(os.environ.get("HUB_CRASH_SEED", random.randrange(2**32)))
    print(f"HUB_CRASH_SEED={seed}")
    rng = random.Random(seed)
    hub = start_hub(tmp_path)
    try:
        ids = open_incidents(hub, [f"inc-{n}" for n in range(INCIDENTS)])
        half = len(ids) // 2
        owners: list[Owner] = [
            Incidents(random.Random(rng.random()), ids[:half], console=False),
            Incidents(random.Random(rng.random()), ids[half:], console=True),
            Silences(random.Random(rng.random())),
            Heartbeats(random.Random(rng.random())),
            Letters(random.Random(rng.random())),
        ]
        seen, _ = observe(hub)
        for owner in owners:
            owner.resync(seen)
        for round_ in range(ROUNDS):
            crash_once(hub, owners, round_, rng)
            seen, broken = observe(hub)
            print(f"round {round_}: unanswered changes found made: {made_unanswered(owners, seen)}")
            problems = broken + [p for owner in owners for p in owner.check(seen)]
            assert not problems, f"seed {seed}: {problems[:10]}"
            for owner in owners:
                owner.resync(seen)
    finally:
        hub.stop()
    assert "Traceback" not in hub.log()


def test_an_ack_timeout_and_an_escalation_step_fall_due_after_a_sigkill(tmp_path):
    """The ack answered just before the kill lapses after the restart, and the open
    incident's second step runs: both are rebuilt from the store, not from memory."""
    hub = start_hub(tmp_path, second="3s", ack_timeout="3s")
    try:
        acked, opened = open_incidents(hub, ["acked", "open"])
        with hub.client(headers=API) as http:
            answer = http.post(f"/api/v1/incidents/{acked}/ack", json={"comment": "on it"})
        assert answer.status_code == 200, answer.text
        hub.kill()
        hub.start()
        with hub.client(headers=API) as http:
            wait_for(lambda: "ack_timed_out" in timeline_kinds(http, acked), timeout=30)
            wait_for(lambda: timeline_kinds(http, opened).count("escalated") == 2, timeout=30)
            lapsed = http.get(f"/api/v1/incidents/{acked}").json()
        assert (lapsed["status"], lapsed["acknowledged_by"]) == ("open", None)
    finally:
        hub.stop()
