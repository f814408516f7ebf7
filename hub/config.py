"""``alerts.toml``: parsed with tomllib, secrets resolved from the environment, validated
into typed structs. Every fault is collected and reported at once, each naming the
table, the key and what was expected, so an operator fixes a file in one pass.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tomllib
import types
import typing
import urllib.parse
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from hub import logfile, matchers, silences, timeintervals
from hub.durations import Duration
from hub.errors import ConfigError
from hub.events import Severity, label_set

SCHEDULE_PREFIX = "schedule:"
# TCP ports: the OS binds a larger number modulo 65536, a port nobody configured.
PORTS = range(1, 65536)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
"""An RFC 3339 time with an offset, quoted or as a TOML date-time; a local time is refused."""


LONGEST = Duration.parse("3650d")
"""The longest heartbeat ``period`` and ``grace`` and rotation ``length``: ten years.
Times are worked out from them; one of thousands of years (a period of
"99999999999w") falls past the year 9999, which no time can hold, and every list of
heartbeats, or every look at the schedule, failed with it."""


class Struct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Config tables refuse keys they do not know: a typo must not pass silently."""


class Server(Struct):
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    max_body_bytes: int = 1_048_576
    request_timeout: Duration = Duration(30)
    max_connections: int | None = None
    """None: the open-files limit less a reserve (``hub.connections.max_connections``)."""
    read_concurrency: int = 2
    """Most reads over every firing alert answered at once, each off the event loop
    (``Store.read_aside``); one more is a 503."""
    ack_secret: str = ""
    ack_link_ttl: Duration = Duration(86400)
    max_silences: int = 1000
    """Most pending and active silences made through the API; one more is refused, as
    Alertmanager's ``--silences.max-silences`` refuses it: every dispatcher round
    and mute check reads each one (``hub.silencing.create``)."""

    @property
    def base_url(self) -> str:
        """Where links in notifications point: ``public_url`` or the bound address (an
        IPv6 one in brackets, as a URL writes it)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (self.public_url or f"http://{host}:{self.port}").rstrip("/")


class Storage(Struct):
    path: str = "hub.db"
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    batch_max: int = 512
    queue_max: int = 10_000


class Credential(Struct):
    username: str
    password: str


Role = Literal["read", "write", "admin"]


class ApiToken(Struct):
    """One ``[api] tokens`` entry; its ``name`` is recorded as the actor of what it does.
    With ``speaks_for_others`` the tool holding it (Grafana, karma) names the person it
    acts for as a silence's author, recorded with the token's name beside them."""

    name: str
    token: str
    role: Role
    speaks_for_others: bool = False


class Api(Struct):
    """Who may use ``/api/v1`` and ``/-/``: bearer tokens, each with a role."""

    tokens: list[ApiToken] = []


class Auth(Struct):
    """How a source proves who it is (see ``hub.auth``). Lists allow rotation: every
    configured token, credential or secret is accepted until it is removed."""

    type: Literal["none", "bearer", "basic", "hmac", "standard-webhooks"]
    tokens: list[str] = []
    credentials: list[Credential] = []
    secrets: list[str] = []
    header: str | list[str] = ""
    algorithm: Literal["sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    timestamp_header: str = ""
    signed_content: str = "{body}"
    tolerance: Duration = Duration(300)
    id_header: str = ""

    @property
    def header_names(self) -> list[str]:
        """The accepted signature header names as configured, as refusals name them."""
        names = [self.header] if isinstance(self.header, str) else self.header
        return [name for name in names if name]

    @property
    def headers(self) -> list[str]:
        """The accepted signature header names, lower-cased like the request's."""
        return [name.lower() for name in self.header_names]


MappedStatus = Literal["firing", "resolved", "acknowledged", "ignore"]
"""What a ``generic`` mapping may make of a status word: a status, or ``ignore``."""


class MappingDefaults(Struct):
    status: MappedStatus | None = None
    severity: Severity = "warning"


class FieldMapping(Struct):
    """Where a ``generic`` source's JSON keeps each Event field: dotted paths
    (``data.object.id``, ``items.0.name``); ``summary`` may be a template with
    ``{path}`` placeholders."""

    summary: str
    status: str = ""
    severity: str = ""
    dedup_key: str = ""
    occurred_at: str = ""
    events: str = ""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    status_map: dict[str, MappedStatus] = {}
    severity_map: dict[str, Severity] = {}
    defaults: MappingDefaults = msgspec.field(default_factory=MappingDefaults)


Mode = Literal["live", "test"]


class Source(Struct):
    """A sender. ``mode = "test"`` keeps its deliveries with their routing decision
    and acts on none of them (see ``hub.ingest.apply_test_delivery``)."""

    name: str
    auth: Auth
    format: str = "native"
    mode: Mode = "live"
    labels: dict[str, str] = {}
    identity_labels: list[str] | None = None
    max_body_bytes: int | None = None
    rate_limit: float | None = None
    burst: int | None = None
    mapping: FieldMapping | None = None

    def __post_init__(self) -> None:
        """``labels = { env = "" }`` adds no label, as Prometheus adds no empty one."""
        self.labels = label_set(self.labels)


class Receiver(Struct):
    name: str
    urls: list[str]
    send_resolved: bool = True
    timeout: Duration = Duration(10)
    title: str | None = None
    body: str | None = None


class Route(Struct):
    receiver: str | None = None
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    matchers: list[str] = []
    continue_: bool = msgspec.field(default=False, name="continue")
    escalation: str | None = None
    mute_time_intervals: list[str] = []
    active_time_intervals: list[str] = []
    routes: list[Route] = []


class Notifier(Struct):
    """How the outbox sender behaves."""

    max_attempts: int = 5
    backoff: Duration = Duration(2)
    max_backoff: Duration = Duration(300)
    concurrency: int = 8


class StaticSilence(Struct):
    """A ``[[silences]]`` entry: omitted bounds mean since always / forever."""

    matchers: list[str]
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None
    created_by: str = "config"
    comment: str = ""


class Maintenance(Struct):
    """A one-off ``[[maintenance]]`` window: mutes matching alerts from start to end."""

    name: str
    starts_at: Timestamp
    ends_at: Timestamp
    matchers: list[str]
    comment: str = ""


class InhibitRule(Struct):
    """Mute alerts matching ``target_matchers`` while a ``source_matchers`` alert fires."""

    source_matchers: list[str]
    target_matchers: list[str]
    equal: list[str] = []


class TimeRange(Struct):
    start_time: str
    end_time: str


class IntervalSpec(Struct):
    """One Alertmanager time interval; an empty list matches any value."""

    times: list[TimeRange] = []
    weekdays: list[str] = []
    days_of_month: list[str] = []
    months: list[str] = []
    years: list[str] = []
    location: str = "UTC"


class TimeIntervals(Struct):
    """A named ``[[time_intervals]]`` set, referenced by routes; matches if any entry does."""

    name: str
    time_intervals: list[IntervalSpec] = []


class Flapping(Struct):
    """More than ``threshold`` state changes inside ``window`` hold notifications.

    Seven changes in ten minutes is over three fire/resolve cycles, close to the
    fastest a rule evaluated every minute can bounce: a real outage being worked on
    rarely does that, a threshold sitting on the edge of a metric does. Fewer
    changes still notify, so a fix that fails once is not hidden.
    """

    threshold: int = 6
    window: Duration = Duration(600)


class Incidents(Struct):
    """How incidents are kept (rules in ``hub.incidents``).

    ``reopen_window``: a group that fires again this soon after resolving reopens its
    last incident instead of starting a new one; "0s" always starts a new one.
    """

    reopen_window: Duration = Duration(0)


class EscalationStep(Struct):
    """Who is told ``after`` this long since the chain (or its repeat) started."""

    notify: list[str]
    after: Duration = Duration(0)


class Escalation(Struct):
    """An ``[[escalations]]`` policy: steps run until the incident is acknowledged or
    resolved; ``repeat`` runs the chain that many more times, each run starting
    ``repeat_after`` after the previous run's last step. With ``ack_timeout``, an
    acknowledgement lapses after that long and the chain starts over (``hub.snoozes``)."""

    name: str
    steps: list[EscalationStep]
    repeat: int = 0
    repeat_after: Duration = Duration(300)
    ack_timeout: Duration | None = None


class Person(Struct):
    """Someone on a schedule and the Apprise URLs that reach them."""

    name: str
    urls: list[str]


class Rotation(Struct):
    """Participants take turns of ``length``, handing off at ``handoff`` (local time,
    "HH:MM") from the ``start`` date on."""

    participants: list[str]
    start: date
    name: str = ""
    length: Duration = Duration(604800)
    handoff: str = "09:00"


class Override(Struct):
    """``person`` is on call instead of the rotation from ``starts_at`` to ``ends_at``."""

    person: str
    starts_at: Timestamp
    ends_at: Timestamp


class Schedule(Struct):
    """An ``[[schedules]]`` entry: who is on call when (see ``hub.oncall``)."""

    name: str
    people: list[Person]
    rotations: list[Rotation]
    time_zone: str = "UTC"
    overrides: list[Override] = []

    def person(self, name: str) -> Person | None:
        return next((p for p in self.people if p.name == name), None)


class Heartbeat(Struct):
    """A dead man's switch: a ping is expected every ``period``, ``grace`` more is allowed.
    With a ``token``, a ping must carry it (``Authorization: Bearer`` or ``?token=``)."""

    name: str
    period: Duration
    grace: Duration = Duration(60)
    labels: dict[str, str] = {}
    severity: Severity = "critical"
    summary: str = ""
    token: str | None = None


class Retention(Struct):
    """How long stored things are kept; older ones are deleted in the background."""

    events: Duration = Duration(30 * 86400)
    history: Duration = Duration(90 * 86400)
    resolved_incidents: Duration = Duration(90 * 86400)
    expired_silences: Duration = Duration(90 * 86400)


class Config(Struct, kw_only=True):
    server: Server = msgspec.field(default_factory=Server)
    storage: Storage = msgspec.field(default_factory=Storage)
    api: Api = msgspec.field(default_factory=Api)
    notifier: Notifier = msgspec.field(default_factory=Notifier)
    sources: list[Source] = []
    receivers: list[Receiver] = []
    route: Route
    silences: list[StaticSilence] = []
    maintenance: list[Maintenance] = []
    inhibit_rules: list[InhibitRule] = []
    time_intervals: list[TimeIntervals] = []
    flapping: Flapping = msgspec.field(default_factory=Flapping)
    incidents: Incidents = msgspec.field(default_factory=Incidents)
    templates: dict[str, str] = {}
    escalations: list[Escalation] = []
    schedules: list[Schedule] = []
    heartbeats: list[Heartbeat] = []
    retention: Retention = msgspec.field(default_factory=Retention)

    def source(self, name: str) -> Source | None:
        for source in self.sources:  # a plain loop: this runs on every webhook
            if source.name == name:
                return source
        return None

    def receiver(self, name: str) -> Receiver | None:
        """A ``[[receivers]]`` entry, or a schedule's person as ``schedule:NAME/PERSON``
        (what an escalation step to ``schedule:NAME`` sends to)."""
        found = next((r for r in self.receivers if r.name == name), None)
        if found is not None:
            return found
        person = self._scheduled_person(name)
        return Receiver(name=name, urls=person.urls) if person else None

    def person_reached(self, receiver_name: str) -> str | None:
        """The one person a receiver name reaches (``schedule:NAME/PERSON``), so that
        what is sent there may act as them; None for a ``[[receivers]]`` entry, which
        whoever reads its channel shares."""
        if any(r.name == receiver_name for r in self.receivers):
            return None
        person = self._scheduled_person(receiver_name)
        return person.name if person else None

    def _scheduled_person(self, name: str) -> Person | None:
        if not name.startswith(SCHEDULE_PREFIX):
            return None
        schedule_name, _, person_name = name.removeprefix(SCHEDULE_PREFIX).partition("/")
        schedule = self.schedule(schedule_name)
        return schedule.person(person_name) if schedule else None

    def escalation(self, name: str | None) -> Escalation | None:
        return next((e for e in self.escalations if e.name == name), None)

    def schedule(self, name: str) -> Schedule | None:
        return next((s for s in self.schedules if s.name == name), None)


def _dec_hook(type_: type, value: Any) -> Any:
    if type_ is Duration:
        return Duration.parse(value)
    raise NotImplementedError(f"unsupported config type {type_}")


def load(path: str | Path) -> Config:
    """Read, resolve and validate a config file; raise ConfigError listing every fault."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from e
    return parse(text, os.environ, Path(path).absolute().parent)


def parse(text: str, environ: typing.Mapping[str, str], folder: Path | None = None) -> Config:
    """Validate TOML text against the schema and the cross references.

    Relative file paths are taken from ``folder`` (the config file's; by default the
    working directory), see ``_anchor_paths``.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"TOML syntax: {e}"]) from e
    found = _Findings()
    repaired = _collect_problems(_resolve_env(raw, "", environ, found), Config, "", found)
    config = _anchor_paths(
        msgspec.convert(repaired, Config, dec_hook=_dec_hook), folder or Path.cwd()
    )
    problems = found.sourced(found.problems + found.unquoted(found.unsaid(check(config))))
    if problems:
        raise ConfigError(problems)
    return config


class _Findings:
    """The problems of the file's shape, and the places where hub stood in for a value it
    could not take (a wrong type, an unset variable, a missing required key).

    The cross references are checked on the file with those stand-ins, so that one wrong
    value does not hide every other problem. What ``check`` then says about a stand-in
    would be about a value the file does not hold: ``unsaid`` leaves it out.
    """

    def __init__(self) -> None:
        self._found: list[tuple[str, str]] = []
        self._names: dict[str, str] = {}
        self._stood_in: list[re.Pattern[str]] = []
        self._made_up: list[str] = []
        self._from_env: dict[str, _FromEnv] = {}
        self._referencing: dict[str, str] = {}

    def add(self, path: str, reason: str) -> None:
        self._found.append((path, reason))

    def entry_named(self, path: str, name: Any) -> None:
        """The array entry at ``path`` has this ``name``, which its problems show as
        ``check`` does (``receivers[2] (pager).urls``): a user looks for an entry by
        its name, and counting entries is easy to get wrong. A name that is no string,
        or empty (an unset variable), leaves the index alone."""
        if isinstance(name, str) and name:
            self._names[path] = name

    @property
    def problems(self) -> list[str]:
        """The problems of the file's shape, each entry on the way named."""
        return [f"{self._named_path(path) or 'config'}: {reason}" for path, reason in self._found]

    def _named_path(self, path: str) -> str:
        """``path`` with the name of each entry on it after its index; the innermost
        first, so that inserting one leaves the places of the others as they were."""
        places = sorted((e for e in self._names if _within(path, e)), key=len, reverse=True)
        for place in places:
            path = entry(place, self._names[place]) + path[len(place) :]
        return path

    def came_from_env(self, path: str, written: str, value: str, names: list[str]) -> None:
        """The string at ``path`` holds what ``names`` were set to in the environment."""
        self._from_env[path] = _FromEnv(written, value, names)

    def referenced(self, path: str, written: str) -> None:
        """The string at ``path`` is written with a ``${`` (resolved or not)."""
        self._referencing[path] = written

    def reference_at(self, path: str) -> str | None:
        """The text the file wrote at ``path`` if it references the environment."""
        return self._referencing.get(path)

    def is_made_up(self, path: str) -> bool:
        """Whether hub stood in for the value at ``path`` (a problem said so already)."""
        return path in self._made_up

    def described(self, path: str, value: Any, type_: Any) -> str | None:
        """What a problem at ``path`` may say of the value there instead of quoting it:
        its kind and the variables it came from, or only its kind where a secret may be
        (a token, a password, an Apprise URL, or a table holding one: ``_holds_secrets``);
        None to quote it."""
        names = [
            name
            for place, found in self._from_env.items()
            if _within(place, path)
            for name in found.names
        ]
        if names:
            return f"{_kind(value)} from {_references(names)}"
        if _SECRET_PLACE.search(path) or _holds_secrets(type_):
            return f"{_kind(value)} (not shown: it may hold a secret)"
        return None

    def unquoted(self, problems: list[str]) -> list[str]:
        """``problems`` quoting the file's text where they quote a value that came from
        the environment (``got '${PUBLIC_URL}'``): a cross check quotes what it found,
        not knowing where it came from, and the environment is where secrets live."""
        for found in self._from_env.values():
            if found.value:
                problems = [found.unquoted(problem) for problem in problems]
        return problems

    def sourced(self, problems: list[str]) -> list[str]:
        """``problems`` about a value from the environment saying which variables it
        came from (``empty token (from ${HUB_DEMO_TOKEN})``), as the file does not show
        it: a cross check knows the value, not where it came from."""
        return [self._sourced(problem) for problem in problems]

    def _sourced(self, problem: str) -> str:
        found = self._from_env.get(_NAMED.sub("]", problem).partition(": ")[0])
        if found is None or "${" in problem:
            return problem
        return f"{problem} (from {_references(found.names)})"

    def stand_in(self, path: str, reason: str) -> None:
        """A problem at ``path``, whose value hub stood in for."""
        self.add(path, reason)
        self.made_up(path)
        self.stood_in_for(path)

    def made_up(self, path: str) -> None:
        """The value at ``path`` is hub's, not the file's: two names hub made up for
        entries are no duplicate (``unsaid``)."""
        self._made_up.append(path)

    def stood_in_for(self, place: str) -> None:
        """What ``check`` says at ``place`` or inside it goes unsaid, and what it says of
        the table or array holding it (``notify: undefined receiver ""``)."""
        around = rf"{re.escape(place)}[.\[:]"
        holder = _LAST_STEP.sub("", place)
        self._stood_in.append(re.compile(rf"{around}|{re.escape(holder)}:" if holder else around))

    def unsaid(self, problems: list[str]) -> list[str]:
        """The problems ``check`` found that are not about a stand-in."""
        return [
            problem
            for problem in problems
            if not any(place.match(_NAMED.sub("]", problem)) for place in self._stood_in)
            and not self._made_up_clash(_NAMED.sub("]", problem))
        ]

    def _made_up_clash(self, problem: str) -> bool:
        """Whether ``problem`` is a duplicate name (``_duplicates``) one of whose entries
        has a name hub made up."""
        clash = _CLASH.match(problem)
        if clash is None:
            return False
        names = [f"{clash['array']}[{clash[index]}].name" for index in ("first", "second")]
        return any(_within(name, made) for name in names for made in self._made_up)


class _FromEnv(typing.NamedTuple):
    """A string with ``${VAR}`` references: as written, as resolved, and the variables."""

    written: str
    value: str
    names: list[str]

    def unquoted(self, problem: str) -> str:
        """The problem with the resolved value, in any quotes a problem uses, replaced by
        the written one in the same quotes."""
        for quote in (repr, json.dumps, lambda text: f'"{text}"'):
            problem = problem.replace(quote(self.value), quote(self.written))
        return problem


def entry(place: str, name: str) -> str:
    """An array entry as a problem names it: its index and, when it has one, its name
    (``receivers[2] (pager)``), by which a user finds it in the file."""
    return f"{place} ({name})" if name else place


def _references(names: list[str]) -> str:
    """Variables as the file references them, each once: ``${A}, ${B}``."""
    return ", ".join(f"${{{name}}}" for name in dict.fromkeys(names))


def _within(place: str, path: str) -> bool:
    """Whether ``place`` is ``path`` or inside it (a key of its table, an item of its array)."""
    return not path or place == path or place.startswith((f"{path}.", f"{path}["))


_SECRET_KEYS = ("token", "tokens", "secrets", "ack_secret", "credentials", "password", "urls")
"""Keys whose values may be secrets: tokens, signing secrets, passwords, Apprise URLs."""
_SECRET_PLACE = re.compile(rf"(?:^|\.)(?:{'|'.join(_SECRET_KEYS)})(?:\[\d+\])*$")


def _holds_secrets(type_: Any, seen: frozenset = frozenset()) -> bool:
    """Whether a value of ``type_`` has a key from ``_SECRET_KEYS`` somewhere inside, so
    that a wrong value given for it may be a secret (``receivers = ["slack://..."]``)."""
    if _is_struct(type_):
        if type_ in seen:
            return False
        return any(
            field.encode_name in _SECRET_KEYS or _holds_secrets(field.type, seen | {type_})
            for field in msgspec.structs.fields(type_)
        )
    return any(_holds_secrets(argument, seen) for argument in typing.get_args(type_))


_KINDS = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
    (datetime, "a date-time"),
    (date, "a date"),
    (time, "a time"),
)


def _kind(value: Any) -> str:
    """A TOML value's kind, as a problem names it without quoting the value."""
    return next((kind for type_, kind in _KINDS if isinstance(value, type_)), "a value")


_NAMED = re.compile(r"\] \([^)]*\)")
"""The name ``check`` gives an entry after its index (``sources[0] (shop)``)."""
_CLASH = re.compile(
    r"(?P<array>.*)\[(?P<first>\d+)\] and [^\s\[]*\[(?P<second>\d+)\]: duplicate name "
)
"""A ``_duplicates`` problem, with the names of its entries taken out (``_NAMED``)."""
_LAST_STEP = re.compile(r'(\."[^"]*"|\[\d+\]|\.[^.\[]*)$')
"""The last key or index of a path."""


def _anchor_paths(config: Config, folder: Path) -> Config:
    """The store and ``logfile://`` channels with relative paths taken from ``folder``.

    As Prometheus and Alertmanager read the paths in their config files: hub uses the
    same files whatever directory it was started from (a service manager starts it in
    ``/``).
    """
    replace = msgspec.structs.replace

    def anchored(urls: list[str]) -> list[str]:
        return [logfile.anchor(url, folder) for url in urls]

    storage = replace(config.storage, path=str(folder / config.storage.path))
    receivers = [replace(r, urls=anchored(r.urls)) for r in config.receivers]
    schedules = [
        replace(s, people=[replace(p, urls=anchored(p.urls)) for p in s.people])
        for s in config.schedules
    ]
    return replace(config, storage=storage, receivers=receivers, schedules=schedules)


def warnings(config: Config) -> list[str]:
    """Legal but risky settings that ``hub check-config`` points out."""
    found = [
        f"{entry(f'sources[{i}]', s.name)}: auth type 'none' accepts anyone who can reach the hub"
        for i, s in enumerate(config.sources)
        if s.auth.type == "none"
    ]
    found += [
        f"{entry(f'sources[{i}]', s.name)}.identity_labels: changes nothing, since {why}"
        for i, s in enumerate(config.sources)
        if s.identity_labels is not None and (why := _own_identity(s))
    ]
    if not config.api.tokens:
        found.append(
            "api.tokens: none configured; the read API is open to anyone who can reach "
            "the hub and every change through the API (silences, acks, reload) is refused"
        )
    if not config.server.public_url and _every_address(config.server.host):
        found.append(
            f"server.public_url: not set, so links in notifications point at"
            f" {config.server.base_url}, the address hub listens on, which no one can open;"
            " set it to the address people reach hub at"
        )
    return found


_SHARED_FINGERPRINT = "Alertmanager's fingerprint of all an alert's labels is its identity"
_OWN_IDENTITIES = {
    "alertmanager": _SHARED_FINGERPRINT,
    "prometheus": _SHARED_FINGERPRINT,
    "grafana": _SHARED_FINGERPRINT,
    "pagerduty": "an event's dedup_key is its identity",
}


def _own_identity(source: Source) -> str | None:
    """Why a source's alerts never take a label-hashed identity, which is all that
    ``identity_labels`` narrows; None when some may. Ignored silently, the setting
    would seem to stop label churn (a changing pod name) from splitting an alert."""
    if source.format == "generic" and source.mapping and source.mapping.dedup_key:
        return "mapping.dedup_key is every event's identity"
    return _OWN_IDENTITIES.get(source.format)


def _every_address(host: str) -> bool:
    """Whether ``host`` binds every address (``0.0.0.0``, ``::``): no address of it
    can be reached from elsewhere."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def with_server(config: Config, given: typing.Mapping[str, Any]) -> Config:
    """``config`` with the ``[server]`` keys ``hub serve`` was given on its command line
    (``--host``, ``--port``) in place of the file's: what the hub runs with, at start
    and at each reload, so that a reload compares like with like."""
    if not given:
        return config
    return msgspec.structs.replace(config, server=msgspec.structs.replace(config.server, **given))


def keep_startup_settings(running: Config, loaded: Config) -> tuple[Config, list[str]]:
    """``loaded`` with what only a restart can change taken from ``running``.

    The listening address, the connections' request timeout and cap, the read threads
    and the store are bound at start (and the address may come from the command line),
    so a reload keeps them and names the keys that differ.
    """
    differ = [
        f"{table}.{key}"
        for table, key in _STARTUP_KEYS
        if getattr(getattr(loaded, table), key) != getattr(getattr(running, table), key)
    ]
    server = msgspec.structs.replace(
        loaded.server,
        host=running.server.host,
        port=running.server.port,
        request_timeout=running.server.request_timeout,
        max_connections=running.server.max_connections,
        read_concurrency=running.server.read_concurrency,
    )
    return msgspec.structs.replace(loaded, server=server, storage=running.storage), differ


_STARTUP_KEYS = (
    ("server", "host"),
    ("server", "port"),
    ("server", "request_timeout"),
    ("server", "max_connections"),
    ("server", "read_concurrency"),
    ("storage", "path"),
    ("storage", "synchronous"),
    ("storage", "batch_max"),
    ("storage", "queue_max"),
)


def _resolve_env(value: Any, path: str, environ: typing.Mapping[str, str], found: _Findings):
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string; name missing ones."""
    if isinstance(value, dict):
        return {k: _resolve_env(v, _join(path, _key(k)), environ, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, f"{path}[{i}]", environ, found) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    if "${" in value:
        found.referenced(path, value)
    if "${" in _ENV_REF.sub("\0", value):
        found.stand_in(path, _MALFORMED_REF)  # never quoted: the text may be a secret
        return ""
    names: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        """As the shell does: ``:-`` takes the default when the variable is unset or
        empty (a compose file's ``NAME=`` line sets it empty)."""
        name, default = match.group(1), match.group(2)
        if name in environ and (environ[name] or default is None):
            names.append(name)
            return environ[name]
        if default is not None:
            return default
        found.stand_in(path, f"environment variable {name} is not set")
        return ""

    resolved = _ENV_REF.sub(substitute, value)
    if names:
        found.came_from_env(path, value, resolved, names)
    return resolved


_MALFORMED_REF = (
    "'${' starts no environment reference (the value is not shown): write ${NAME} or"
    " ${NAME:-default}, NAME of letters, digits and _ (a value that holds '${' belongs"
    " in a variable)"
)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _collect_problems(value: Any, type_: Any, path: str, found: _Findings) -> Any:
    """Walk the raw value against the struct type, recording every mismatch; return the
    value without its faults (``_BAD`` for a value that is wrong as a whole).

    Tables and arrays are walked here, down to each scalar, so that a problem names
    the key path and quotes the value it found there: msgspec's own path hides a
    table's keys, and its messages name only the type of the value.
    """
    origin, args = typing.get_origin(type_), typing.get_args(type_)
    if origin in (typing.Union, types.UnionType) and value is not None:
        inner = [a for a in args if a is not type(None)]
        # The one member the value's kind of container fits (``str | list[str]``).
        fitting = [a for a in inner if typing.get_origin(a) is type(value)]
        if len(inner) == 1 or len(fitting) == 1:
            return _collect_problems(value, (fitting or inner)[0], path, found)
    if _is_struct(type_) and isinstance(value, dict):
        return _collect_struct(value, type_, path, found)
    if origin is list and isinstance(value, list):
        return [_collect_item(item, args[0], f"{path}[{i}]", found) for i, item in enumerate(value)]
    if origin is dict and isinstance(value, dict):
        return {
            key: _collect_item(item, args[1], _join(path, _key(key)), found)
            for key, item in value.items()
        }
    return _collect_scalar(value, type_, path, found)


def _collect_scalar(value: Any, type_: Any, path: str, found: _Findings) -> Any:
    """A value that is no table or array, or ``_BAD``, its problem recorded."""
    if type_ in _SCALARS and isinstance(value, str) and (written := found.reference_at(path)):
        return _scalar_from_env(value, type_, written, path, found)
    try:
        msgspec.convert(value, type_, dec_hook=_dec_hook)
    except msgspec.ValidationError as e:
        explained = _explained(str(e), value, type_, found.described(path, value, type_))
        found.add(path, explained + _header_hint(value, type_, path))
        return _BAD
    return value


def _scalar_from_env(text: str, type_: type, written: str, path: str, found: _Findings) -> Any:
    """A number or boolean from the environment: the file may write a whole value as one
    reference (``port = "${HUB_PORT:-8080}"``), converted as TOML would read it bare.

    A bad one is not quoted: a variable meant for another key (``${SMTP_PASSWORD}``)
    may hold a secret. Text around a reference, which could only make a number by
    accident, is refused."""
    if found.is_made_up(path):
        return _BAD  # an unset variable or a malformed reference: said already
    kind, pattern, convert = _SCALARS[type_]
    if not _ENV_REF.fullmatch(written):
        names = _references([name for name, _ in _ENV_REF.findall(written)])
        found.add(
            path,
            f"expected {kind}, got a string of more than a reference alone ({names}): a"
            " number or a boolean comes from the environment only as the whole value"
            ' ("${NAME}" or "${NAME:-default}")',
        )
        return _BAD
    if not pattern.fullmatch(text):
        found.add(path, f"expected {kind}, but {written} gives text that is not {kind}")
        return _BAD
    return convert(text)


_SCALARS: dict[Any, tuple[str, re.Pattern[str], typing.Callable[[str], Any]]] = {
    bool: ("true or false", re.compile("true|false"), lambda text: text == "true"),
    int: ("an integer", re.compile("[+-]?[0-9]+"), int),
    float: ("a number", re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"), float),
}
"""How a value from the environment is read for a key of each type: what it is called
in a problem, the text TOML would take for it bare, and the conversion."""


def _header_hint(value: Any, type_: Any, path: str) -> str:
    """How to write the header TOML wants, when a table was written as an array of
    tables or the other way round (``[sources]`` for ``[[sources]]``): the message
    alone says only "array" and "object"."""
    header = re.sub(r"\[\d+\]", "", path)
    if (
        _is_struct(type_)
        and isinstance(value, list)
        and value
        and all(isinstance(v, dict) for v in value)
    ):
        return f"; write [{header}] (a table), not [[{header}]]"
    listed = typing.get_args(type_)[0] if typing.get_origin(type_) is list else None
    if isinstance(value, dict) and _is_struct(listed):
        one = header.rpartition(".")[2]
        entry = one.removesuffix("s") if one.endswith("s") else "entry"
        return f"; write [[{header}]] (an array of tables), one per {entry}"
    return ""


_BAD = object()
"""What ``_collect_problems`` returns for a value of the wrong type."""


def _collect_item(value: Any, type_: Any, path: str, found: _Findings) -> Any:
    """An array item or a table value: a wrong one is stood in for where it is."""
    collected = _collect_problems(value, type_, path, found)
    if collected is _BAD:
        found.made_up(path)
        found.stood_in_for(path)
        return _stand_in(type_)
    return collected


def _key(key: str) -> str:
    """A table key as a path shows it: bare, else quoted as TOML writes it."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'


_TYPE_MISMATCH = re.compile(r"Expected `([^`]+)`, got `[^`]+`")


def _explained(message: str, value: Any, type_: Any, described: str | None) -> str:
    """msgspec's message, saying what was found: the value instead of only its type
    (``Expected `int`, got 'three'``), the choices of an enum, or the value quoted
    after a message that does not quote it already. A value that must not be quoted
    (``described``: from the environment, or where secrets go) is described instead,
    and taken out of a message that quotes it (an enum's, a duration's)."""
    if mismatch := _TYPE_MISMATCH.fullmatch(message):
        return f"Expected `{mismatch[1]}`, got {described or _shown(value)}"
    allowed = choices(type_)
    expected = f" (expected one of: {', '.join(allowed)})" if allowed else ""
    if described:
        return f"{_unquoted(message, value)}, got {described}{expected}"
    if allowed:
        return f"{message}{expected}{did_you_mean(value, allowed)}"
    if "got " in message:  # a duration's own message quotes what it got
        return message
    return f"{message} (got {_shown(value)})"


def _unquoted(message: str, value: Any) -> str:
    """msgspec's message without the value it quotes (as ``repr`` writes it, as a
    duration's message does too); a fixed text should any of the value remain."""
    quoted = repr(value)
    message = message.replace(f", got {quoted}", "").replace(f" {quoted}", "")
    leaks = isinstance(value, str) and value and value in message
    return "not a value this key takes" if leaks else message


def _shown(value: Any) -> str:
    """A raw value as the file may write it (a string quoted as other problems quote
    one, true and false, a TOML date or time bare), cut short: what a problem quotes."""
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, date | time):
        text = value.isoformat()
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else f"{text[:57]}..."


def did_you_mean(given: object, valid: Iterable[str]) -> str:
    """``; did you mean "pager"?`` naming the valid name closest to an unknown one, or
    nothing when none is close: a typo is the likeliest reason a name is unknown, and
    a list of every valid name leaves the reader to spot it."""
    if not isinstance(given, str):
        return ""
    close = difflib.get_close_matches(given, sorted(valid), n=1, cutoff=0.7)
    return f'; did you mean "{close[0]}"?' if close else ""


def choices(annotation: Any) -> tuple[str, ...]:
    """The allowed values of a Literal or an Enum, however it is wrapped (Optional), for
    errors that say what would have been accepted."""
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(value) for value in typing.get_args(annotation))
    if isinstance(annotation, type) and hasattr(annotation, "__members__"):
        return tuple(str(member.value) for member in annotation)
    for argument in typing.get_args(annotation):
        if found := choices(argument):
            return found
    return ()


def _collect_struct(value: dict, type_: type, path: str, found: _Findings) -> dict:
    """The table's known keys without their faults (``_collect_field``)."""
    fields = {f.encode_name: f for f in msgspec.structs.fields(type_)}
    if "name" in fields:
        found.entry_named(path, value.get("name"))
    for key in value:
        if key not in fields:
            known = ", ".join(sorted(fields))
            hint = did_you_mean(key, fields)
            found.add(_join(path, key), f"unknown key (expected one of: {known}){hint}")
    return {
        field.encode_name: fitted
        for field in fields.values()
        if (fitted := _collect_field(value, field, path, found)) is not _BAD
    }


def _collect_field(table: dict, field: msgspec.structs.FieldInfo, path: str, found: _Findings):
    """One key's value without its faults, or ``_BAD`` to leave the key out: a wrong
    value of a key with a default is left out (the default is checked instead); a
    required key that is missing or wrong is stood in for, and with it the whole table
    (at the top level, the key), as nothing can tell a table with a made-up key apart."""
    where = _join(path, field.encode_name)
    if field.encode_name in table:
        fitted = _collect_problems(table[field.encode_name], field.type, where, found)
        if fitted is not _BAD:
            return fitted
        if not field.required:
            found.stood_in_for(where)
            return _BAD
    elif not field.required:
        return _BAD
    else:
        found.add(where, "required key is missing")
    found.made_up(where)
    found.stood_in_for(path or where)
    return _stand_in(field.type)


_STAND_INS: dict[Any, Any] = {
    str: "",
    int: 0,
    float: 0.0,
    bool: False,
    Duration: "0s",
    date: date(1970, 1, 1),
    datetime: datetime(1970, 1, 1, tzinfo=UTC),
}


def _stand_in(type_: Any) -> Any:
    """A value of ``type_`` a file could hold (so ``check`` copes with it as with any),
    put where the file holds none that fits."""
    origin, args = typing.get_origin(type_), typing.get_args(type_)
    if _is_struct(type_):
        fields = msgspec.structs.fields(type_)
        return {f.encode_name: _stand_in(f.type) for f in fields if f.required}
    if origin is typing.Literal:
        return args[0]
    if origin is Annotated:
        return _stand_in(args[0])
    if origin in (typing.Union, types.UnionType):
        return None if type(None) in args else _stand_in(args[0])
    if origin in (list, dict):
        return origin()
    return _STAND_INS[type_]


def _is_struct(type_: Any) -> bool:
    return isinstance(type_, type) and issubclass(type_, msgspec.Struct)


def check(config: Config) -> list[str]:
    """Cross references and semantic rules that the types alone cannot express."""
    from hub import (
        auth,
        channels,
        escalation,
        expiry,
        heartbeats,
        limits,
        oncall,
        routing,
        templates,
    )
    from hub.decoders import DECODERS, generic

    reserved = (heartbeats.SOURCE, expiry.SOURCE)

    problems = _duplicates("sources", [s.name for s in config.sources])
    problems += _duplicates("receivers", [r.name for r in config.receivers])
    problems += _check_api(config.api)
    for i, source in enumerate(config.sources):
        where = entry(f"sources[{i}]", source.name)
        if source.name in reserved:
            problems.append(f"{where}.name: reserved for hub's own deliveries (heartbeats, ends)")
        if "/" in source.name:
            # one segment of /webhooks/{name}; scoped dedup keys rely on it too
            problems.append(f"{where}.name: no '/' allowed (it is a URL path segment)")
        if source.format not in DECODERS:
            problems.append(
                f"{where}.format: unknown format {source.format!r} "
                f"(expected one of: {', '.join(sorted(DECODERS))})"
                f"{did_you_mean(source.format, DECODERS)}"
            )
        problems += auth.problems(source.auth, f"{where}.auth")
        problems += limits.problems(source, where)
        problems += generic.problems(source, where)
    problems += _check_server(config.server)
    for key in ("batch_max", "queue_max"):
        if getattr(config.storage, key) < 1:
            problems.append(f"storage.{key}: must be at least 1")
    if config.route.receiver is None:
        problems.append("route.receiver: the root route needs a receiver")
    if config.route.matchers:
        problems.append("route.matchers: the root route takes every alert; match in routes")
    if config.route.continue_:
        problems.append(
            "route.continue: the root route has no siblings to go on to;"
            " set continue on a route in routes"
        )
    problems += _check_notifier(config.notifier)
    problems += _check_route(config, config.route, "route")
    problems += _check_silences(config) + _check_inhibit_rules(config)
    problems += _check_time_intervals(config) + _check_flapping(config.flapping)
    problems += routing.check(config.route)
    problems += channels.check(config.receivers, config.schedules)
    problems += templates.check(config)
    problems += _check_schedules(config, oncall.problems) + escalation.problems(config)
    problems += heartbeats.problems(config.heartbeats) + _check_retention(config.retention)
    return problems


def _check_server(server: Server) -> list[str]:
    problems = []
    if server.port not in PORTS:
        problems.append(f"server.port: must be 1-65535, got {server.port}")
    if server.public_url and not _is_root_url(server.public_url):
        problems.append(_public_url_problem(server.public_url))
    if server.max_body_bytes < 1:
        problems.append("server.max_body_bytes: must be at least 1")
    if server.max_connections is not None and server.max_connections < 1:
        problems.append(f"server.max_connections: must be at least 1, got {server.max_connections}")
    if server.read_concurrency < 1:
        problems.append(
            f"server.read_concurrency: must be at least 1, got {server.read_concurrency}"
        )
    if server.max_silences < 1:
        problems.append(f"server.max_silences: must be at least 1, got {server.max_silences}")
    return problems + _positive_durations(server, "server", ("ack_link_ttl", "request_timeout"))


def _public_url_problem(url: str) -> str:
    """Why ``url`` is refused, quoting it unless it carries credentials."""
    got = "a URL with a user or password (not shown)" if _USERINFO.search(url) else repr(url)
    return (
        "server.public_url: expected the http:// or https:// address hub is reached at,"
        " like https://hub.example.com (no user or password: every notification would"
        " carry them; no path, query or fragment: hub serves its pages at the root),"
        f" got {got}"
    )


_USERINFO = re.compile(r"(?<=://)[^/?#]*@")


def _is_root_url(url: str) -> bool:
    """Whether ``url`` can prefix every link in a notification: ack and incident links
    append ``/ack/...`` and ``/incidents/N`` to it, and the pages they open link and
    post to absolute paths, so anything but a root address breaks them."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is no number 0-65535
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.path in ("", "/")
        and not (parts.query or parts.fragment or "@" in parts.netloc or re.search(r"\s", url))
    )


def _check_schedules(
    config: Config, schedule_problems: typing.Callable[[Schedule], list[str]]
) -> list[str]:
    """Unique names for policies, schedules, heartbeats and each schedule's people (a
    rotation, an override and an ack link name a person: only the first of a name would
    ever be paged); each schedule's own rules."""
    problems = _duplicates("escalations", [e.name for e in config.escalations])
    problems += _duplicates("schedules", [s.name for s in config.schedules])
    problems += _duplicates("heartbeats", [h.name for h in config.heartbeats])
    for i, schedule in enumerate(config.schedules):
        where = entry(f"schedules[{i}]", schedule.name)
        problems += _duplicates(f"{where}.people", [p.name for p in schedule.people])
        problems += _under(where, schedule_problems(schedule))
    return problems


def _check_retention(retention: Retention) -> list[str]:
    ages = ("events", "history", "resolved_incidents", "expired_silences")
    return _positive_durations(retention, "retention", ages)


def _check_api(api: Api) -> list[str]:
    """Names must tell actors apart and tokens must tell names apart (never quoting them)."""
    problems = _duplicates("api.tokens", [t.name for t in api.tokens])
    seen: dict[str, str] = {}
    for i, token in enumerate(api.tokens):
        where = entry(f"api.tokens[{i}]", token.name)
        if not token.name:
            problems.append(f"{where}.name: must not be empty")
        if not token.token:
            problems.append(f"{where}.token: must not be empty")
        elif token.token in seen:
            problems.append(f'{where}.token: the same token as "{seen[token.token]}"')
        seen.setdefault(token.token, token.name)
        if token.speaks_for_others and token.role == "read":
            problems.append(
                f"{where}.speaks_for_others: a read token makes no silences, so it speaks for"
                " nobody; give it role write (or admin), or leave the option out"
            )
    return problems


def _check_notifier(notifier: Notifier) -> list[str]:
    """No zeros: a zero backoff retries a failing channel without pause, zero attempts
    would act as one, and zero workers could not send at all. A backoff above its cap
    says the file means something the sender will not do."""
    problems = [
        f"notifier.{key}: must be at least 1, got {getattr(notifier, key)}"
        for key in ("max_attempts", "concurrency")
        if getattr(notifier, key) < 1
    ]
    if 0 < notifier.max_backoff < notifier.backoff:  # the cap would cut the first delay
        problems.append(
            f"notifier.backoff: {notifier.backoff.text()!r} is longer than max_backoff"
            f" {notifier.max_backoff.text()!r}, which caps every retry delay"
        )
    return problems + _positive_durations(notifier, "notifier", ("backoff", "max_backoff"))


def _positive_durations(table: Any, path: str, keys: typing.Iterable[str]) -> list[str]:
    """Durations where zero makes no sense: a wait between repeats would repeat
    without pause, a lifetime (an ack link's, a stored row's) would end at once."""
    return [
        f"{path}.{key}: must be longer than 0s, got {value.text()!r}"
        for key in keys
        if (value := getattr(table, key)) is not None and value <= 0
    ]


def _check_route(config: Config, route: Route, path: str) -> list[str]:
    # Alertmanager refuses both: at zero every change and every repeat is a message.
    # group_wait may be zero (send the first message at once).
    problems = _positive_durations(route, path, ("group_interval", "repeat_interval"))
    # a [[receivers]] entry only: schedule:NAME/PERSON is how the delivery log names a
    # page to an on-call person, a target escalation steps reach as schedule:NAME
    receivers = {r.name for r in config.receivers}
    if route.receiver is not None and route.receiver not in receivers:
        hint = did_you_mean(route.receiver, receivers)
        problems.append(f'{path}.receiver: undefined receiver "{route.receiver}"{hint}')
    intervals = {t.name for t in config.time_intervals}
    for key in ("mute_time_intervals", "active_time_intervals"):
        problems += [
            f'{path}.{key}: undefined time interval "{name}"{did_you_mean(name, intervals)}'
            for name in getattr(route, key)
            if name not in intervals
        ]
    if route.escalation is not None and config.escalation(route.escalation) is None:
        hint = did_you_mean(route.escalation, (e.name for e in config.escalations))
        problems.append(f'{path}.escalation: undefined escalation "{route.escalation}"{hint}')
    for i, child in enumerate(route.routes):
        problems += _check_route(config, child, f"{path}.routes[{i}]")
    return problems


def _check_silences(config: Config) -> list[str]:
    """Static silences and maintenance windows follow the API's rules for silences."""
    problems = _duplicates("maintenance", [m.name for m in config.maintenance])
    for i, s in enumerate(config.silences):
        problems += _under(f"silences[{i}]", silences.problems(s.matchers, s.starts_at, s.ends_at))
    for i, m in enumerate(config.maintenance):
        found = silences.problems(m.matchers, m.starts_at, m.ends_at)
        problems += _under(entry(f"maintenance[{i}]", m.name), found)
    return problems


def _check_inhibit_rules(config: Config) -> list[str]:
    problems = []
    for i, rule in enumerate(config.inhibit_rules):
        for key in ("source_matchers", "target_matchers"):
            found = matchers.problems(getattr(rule, key), key, required=True)
            problems += _under(f"inhibit_rules[{i}]", found)
    return problems


def _check_time_intervals(config: Config) -> list[str]:
    problems = _duplicates("time_intervals", [t.name for t in config.time_intervals])
    for i, named in enumerate(config.time_intervals):
        for j, spec in enumerate(named.time_intervals):
            try:
                timeintervals.compile_spec(spec)
            except ConfigError as e:
                where = f"{entry(f'time_intervals[{i}]', named.name)}.time_intervals[{j}]"
                problems += _under(where, e.problems)
    return problems


def _check_flapping(flapping: Flapping) -> list[str]:
    problems = []
    if flapping.threshold < 1:
        problems.append("flapping.threshold: must be at least 1")
    if flapping.window <= 0:
        problems.append("flapping.window: must be longer than 0s")
    return problems


def _under(path: str, problems: list[str]) -> list[str]:
    """Prefix ``key: reason`` lines from a domain module with where they are."""
    return [f"{path}.{problem}" for problem in problems]


def _duplicates(table: str, names: list[str]) -> list[str]:
    """Each entry of ``table`` named as an earlier one, naming both entries: the second
    of a name is never found by what refers to it (only the first is)."""
    first: dict[str, int] = {}
    problems = []
    for i, name in enumerate(names):
        if name in first:
            array = table.rpartition(".")[2]
            problems.append(f'{table}[{first[name]}] and {array}[{i}]: duplicate name "{name}"')
        first.setdefault(name, i)
    return problems
