"""Hostile input: generated requests against every documented operation, against
real silences and against the real incidents, alerts, letters, deliveries, heartbeats,
schedules and sources the calls naming one act on; generated matchers, silences, times
and config files, and hand-made nasties posted to every format's webhook, to the
silence and Alertmanager writes and to a heartbeat's pause and resume (and as a
pause's reason).
Whatever arrives, the answer is a clear 4xx problem (or a 2xx that stores exactly
what was sent), never a 5xx, and a refused request changes nothing."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import socket
import sqlite3
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import schemathesis
from conftest import BASE_CONFIG, RunningHub, free_port, mail_url, render_config, wait_for
from console_support import sign_in
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from hub import cli_api, config, matchers, silencing
from hub.access import Caller
from hub.alertmanager_shapes import AmMatcher, hub_matcher
from hub.api_params import BadQueryParameter, query_matchers
from hub.errors import ConfigError, Forbidden, InvalidPayload
from hub.silencing import NewSilence

ADMIN_TOKEN = "hostile-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

API_TOKENS = (
    '\n[api]\ntokens = [{{ name = "fuzzer", token = "' + ADMIN_TOKEN + '", role = "admin" }}]\n'
)
STATIC_SILENCE = """
[[silences]]
matchers = ['env="staging"']
comment = "staging never pages"
"""


@pytest.fixture(scope="module")
def fuzzed_hub(tmp_path_factory) -> Iterator[RunningHub]:
    """One hub for every generated request: starting one per example would be slow."""
    directory = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    path = directory / "alerts.toml"
    text = render_config(
        BASE_CONFIG + API_TOKENS + STATIC_SILENCE,
        port=port,
        db=(directory / "hub.db").as_posix(),
        mail_url=mail_url(free_port()),
        max_attempts=1,
    )
    path.write_text(text)
    hub = RunningHub(path, port).start()
    with hub.client(headers={"Authorization": "Bearer shop-secret-token"}) as http:
        event = {"status": "firing", "summary": "seed alert", "labels": {"team": "ops"}}
        assert http.post("/webhooks/shop", json=event).status_code == 202
    yield hub
    hub.stop()


FUZZ_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]
"""For every answer: the document describes each error an operation gives as the
problem+json it is. Every error must be problem+json too, documented or not (405),
but under Alertmanager's ``/api/v2/``, where every error is plain JSON."""
PROBLEM = "application/problem+json"


def test_no_generated_request_gets_a_server_error(fuzzed_hub):
    """Every operation of the served OpenAPI document, with generated valid and invalid
    input (30 examples each): no 5xx, and responses match the documented content type
    and schema. Failures of all operations are collected, then reported together."""
    api = schemathesis.openapi.from_url(f"{fuzzed_hub.url}/schema/openapi.json")
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    for operation in operations:

        @FUZZ_SETTINGS
        @given(case=operation.as_strategy())
        def fuzz(case) -> None:
            response = case.call(base_url=fuzzed_hub.url, headers=ADMIN, timeout=30)
            case.validate_response(response, checks=CHECKS)
            if response.status_code >= 400:
                content_type = response.headers.get("content-type", [""])[0]
                assert content_type.startswith(error_types(case.operation.path)), response.text
            assert "Traceback" not in response.text

        try:
            fuzz()
        except Exception as e:  # every operation gets its run; report them all
            failures[operation.label] = f"{type(e).__name__}: {e}"[:2000]
    report = "\n\n".join(f"{label}: {error}" for label, error in failures.items())
    assert not failures, f"{sorted(failures)}\n\n{report}"


SILENCE_CALLS = {
    ("PUT", "/api/v1/silences/{silence_id}"): {200, 409, 422},
    ("POST", "/api/v2/silences"): {200, 400, 409},
    ("GET", "/api/v2/silence/{silence_id}"): {200},
    ("DELETE", "/api/v2/silence/{silence_id}"): {200, 409},
}
"""The calls on one silence, expiring last, with the answers each must give at least
once: changed or shown, refused as static or expired (409), refused as invalid. With
generated ids they only ever met 404, and with a generated ``createdBy`` only 403."""
SILENCE = {"matchers": ['service="fuzz"'], "duration": "1h", "comment": "fuzzed"}
FIELDS = st.sets(
    st.sampled_from(["matchers", "comment", "duration", "startsAt", "endsAt", "status", "labels"])
)
"""The fields of a generated body that ``partly_generated`` keeps in a valid one."""


def test_generated_changes_to_real_silences_get_no_server_error(fuzzed_hub):
    """The silence calls of both APIs on silences that exist (two made for each call,
    one expired, the config's static one), by the token's own name, with generated
    bodies or a valid one some of whose fields are generated: no 5xx, and answers as
    documented, of each kind the call has."""
    api = schemathesis.openapi.from_url(f"{fuzzed_hub.url}/schema/openapi.json")
    statuses: dict[tuple[str, str], set[int]] = {}
    for method, path in SILENCE_CALLS:

        @FUZZ_SETTINGS
        @given(
            case=api[path][method].as_strategy(),
            silence_id=st.sampled_from(real_silences(fuzzed_hub)),
            generated=FIELDS,
        )
        def fuzz(case, silence_id, generated) -> None:
            aim(case, silence_id, generated)
            response = case.call(base_url=fuzzed_hub.url, headers=ADMIN, timeout=30)
            case.validate_response(response, checks=CHECKS)
            if response.status_code >= 400:
                content_type = response.headers.get("content-type", [""])[0]
                assert content_type.startswith(error_types(case.path)), response.text
            statuses.setdefault((case.method, case.path), set()).add(response.status_code)

        fuzz()
    for call, wanted in SILENCE_CALLS.items():
        assert wanted <= statuses[call], (call, statuses[call])


def real_silences(hub: RunningHub) -> list[str]:
    """Two active silences, an expired one and the config's static one, by id."""
    with hub.client(headers=ADMIN) as http:
        made = [http.post("/api/v1/silences", json=SILENCE).json()["id"] for _ in range(3)]
        assert http.delete(f"/api/v1/silences/{made[2]}").status_code == 200
        static = [s["id"] for s in http.get("/api/v1/silences").json() if s["static"]]
    return made + static


def aim(case, silence_id: str, generated: set[str]) -> None:
    """The case on ``silence_id``; its body, an object, by the token's own name and
    otherwise valid but for the ``generated`` fields."""
    if "silence_id" in (case.path_parameters or {}):
        case.path_parameters = {**case.path_parameters, "silence_id": silence_id}
    if isinstance(case.body, dict):
        valid = valid_v2_silence(silence_id) if "createdBy" in case.body else SILENCE
        partly_generated(case, valid, generated)


def partly_generated(case, valid: dict, generated: set[str]) -> None:
    """The case's body ``valid`` but for the ``generated`` fields of its own, when it is
    an object: a wholly generated body seldom passes the first field's check."""
    if isinstance(case.body, dict):
        kept = {key: value for key, value in case.body.items() if key in generated}
        case.body = {**valid, **kept}


def valid_v2_silence(silence_id: str) -> dict:
    now = datetime.now(UTC)
    return {
        "id": silence_id,
        "matchers": [{"name": "service", "value": "fuzz", "isRegex": False}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "fuzzer",
        "comment": "fuzzed",
    }


def error_types(path: str) -> tuple[str, ...]:
    """Errors are problem+json, but Alertmanager's API speaks only plain JSON, and so
    may a webhook's 400, a prometheus or PagerDuty source's own (the document says
    which answer may be which)."""
    if path.startswith("/api/v2/"):
        return ("application/json",)
    return ("application/json", PROBLEM) if path.startswith("/webhooks/") else (PROBLEM,)


REAL_CONFIG = (
    """
[server]
host = "127.0.0.1"
port = {port}

[storage]
path = "{db}"

[notifier]
max_attempts = {max_attempts}
backoff = "{backoff}"
max_backoff = "{backoff}"

[[sources]]
name = "shop"
format = "native"
auth = {{ type = "bearer", tokens = ["shop-secret-token"] }}

[[sources]]
name = "open"
format = "native"
auth = {{ type = "none" }}

[[sources]]
name = "prometheus"
format = "prometheus"
auth = {{ type = "none" }}

[[receivers]]
name = "ops"
urls = ["{mail_url}"]
timeout = "2s"

[route]
receiver = "ops"
group_by = ["n"]
group_wait = "0s"
group_interval = "200ms"
repeat_interval = "1h"

[[heartbeats]]
name = "nightly"
period = "1d"

[[schedules]]
name = "primary"
people = [{{ name = "alice", urls = ["{mail_url}"] }}]
rotations = [{{ participants = ["alice"], start = 2026-01-05 }}]
"""
    + API_TOKENS
    + STATIC_SILENCE
)
"""A hub whose one receiver cannot be reached: dead letters while ``max_attempts`` is 1,
letters pending for an hour once it is 5 with a backoff of an hour."""


@dataclass
class RealHub:
    """The hub, its database and, by kind, the names and ids of what it holds."""

    hub: RunningHub
    db: Path
    objects: dict[str, list]


@pytest.fixture(scope="module")
def real_hub(tmp_path_factory) -> Iterator[RealHub]:
    """Alerts whose incidents are firing, acknowledged and resolved, dead and pending
    letters, deliveries, heartbeats of the config and of the API, one paused."""
    directory = tmp_path_factory.mktemp("real")
    port, db, path = free_port(), directory / "hub.db", directory / "alerts.toml"
    values = {"port": port, "db": db.as_posix(), "mail_url": mail_url(free_port())}
    path.write_text(REAL_CONFIG.format(max_attempts=1, backoff="100ms", **values))
    hub = RunningHub(path, port).start()
    fire(hub, range(6))
    wait_for(lambda: len(listed(hub, "notifications", state="dead")) >= 6)
    hub.stop()
    path.write_text(REAL_CONFIG.format(max_attempts=5, backoff="1h", **values))
    hub.start()
    fire(hub, range(6, 9))
    wait_for(lambda: len(listed(hub, "notifications", state="pending")) >= 3)
    with hub.client(headers=ADMIN) as http:
        incidents = [incident["id"] for incident in listed(hub, "incidents")]
        for incident in incidents[:3]:
            assert http.post(f"/api/v1/incidents/{incident}/ack").status_code == 200
        for incident in incidents[3:5]:
            assert http.post(f"/api/v1/incidents/{incident}/resolve").status_code == 200
        for name in ("made", "paused"):
            made = http.post("/api/v1/heartbeats", json={"name": name, "period": "1h"})
            assert made.status_code == 201, made.text
        assert http.post("/api/v1/heartbeats/paused/pause").status_code == 200
    objects = {
        kind: [row["id"] for row in listed(hub, kind)] for kind in ("alerts", "incidents", "events")
    }
    dead, pending = (
        [row["id"] for row in listed(hub, "notifications", state=s)] for s in ("dead", "pending")
    )
    objects |= {"letters to retry": dead[::2] + pending, "letters to dismiss": dead[1::2] + pending}
    objects |= {"heartbeats": ["nightly", "made", "paused"], "schedules": ["primary"]}
    objects |= {"sources": ["open", "prometheus"], "silences": real_silences(hub)}
    yield RealHub(hub, db, objects)
    hub.stop()


def fire(hub: RunningHub, numbers: range) -> None:
    """One firing alert, so one incident, for each number."""
    with hub.client(headers={"Authorization": "Bearer shop-secret-token"}) as http:
        for number in numbers:
            event = {"status": "firing", "summary": "real", "labels": {"n": str(number)}}
            assert http.post("/webhooks/shop", json=event).status_code == 202


def listed(hub: RunningHub, kind: str, **query: str) -> list[dict]:
    with hub.client(headers=ADMIN) as http:
        answer = http.get(f"/api/v1/{kind}", params={"limit": 1000, **query})
    assert answer.status_code == 200, answer.text
    return answer.json()


REAL_CALLS = {
    ("GET", "/api/v1/alerts/{alert_id}"): {200},
    ("GET", "/api/v1/incidents/{incident_id}"): {200},
    ("POST", "/api/v1/incidents/{incident_id}/ack"): {200, 409},
    ("POST", "/api/v1/incidents/{incident_id}/unack"): {200, 409},
    ("POST", "/api/v1/incidents/{incident_id}/snooze"): {200, 409},
    ("POST", "/api/v1/incidents/{incident_id}/resolve"): {200},
    ("POST", "/api/v1/notifications/{notification_id}/retry"): {200, 409},
    ("POST", "/api/v1/notifications/{notification_id}/dismiss"): {200, 409},
    ("GET", "/api/v1/events/{delivery_id}"): {200},
    ("POST", "/api/v1/events/{delivery_id}/replay"): {200, 202},
    ("GET", "/api/v1/heartbeats/{name}"): {200},
    ("POST", "/api/v1/heartbeats/{name}/pause"): {200},
    ("POST", "/api/v1/heartbeats/{name}/resume"): {200, 409},
    ("GET", "/ping/{name}"): {200},
    ("POST", "/ping/{name}/start"): {200},
    ("POST", "/ping/{name}/fail"): {200},
    ("DELETE", "/api/v1/heartbeats/{name}"): {200, 409},
    ("GET", "/api/v1/schedules/{name}/oncall"): {200},
    ("POST", "/webhooks/{source}"): {202, 422},
    ("POST", "/webhooks/{source}/api/v2/alerts"): {200, 400},
    ("GET", "/api/v1/silences/{silence_id}"): {200},
    ("DELETE", "/api/v1/silences/{silence_id}"): {200, 409},
}
"""The calls naming an object, each on objects that exist, with the answers each must
give at least once: done, or refused for the object's state. With generated ids and
names they only ever met 404. Ordered so that a resolve, a dismissal or a deletion
comes after the calls it would leave nothing to do for."""
VALID_BODIES = {
    "/api/v1/incidents/{incident_id}/snooze": {"duration": "1h"},
    "/webhooks/{source}": {"status": "firing", "summary": "fuzzed", "labels": {"n": "fuzzed"}},
}
"""Bodies whose fields are checked beyond their type, some fields of which are generated."""
KINDS = {
    "alert_id": "alerts",
    "incident_id": "incidents",
    "delivery_id": "events",
    "source": "sources",
    "silence_id": "silences",
}
ROWS = {
    "alerts": ("alerts", "id"),
    "incidents": ("incidents", "id"),
    "letters to retry": ("notifications", "id"),
    "letters to dismiss": ("notifications", "id"),
    "events": ("deliveries", "id"),
    "heartbeats": ("heartbeats", "name"),
    "silences": ("silences", "id"),
}
"""Where each kind of object is stored, and by which column, to see a refusal left it."""


def test_generated_requests_on_real_objects_get_no_server_error(real_hub):
    """Each call naming an object, on objects that exist, with generated valid and
    invalid bodies and query parameters: no 5xx, answers as documented, of each kind
    the call has, and a refused request leaves the object it named as it was."""
    api = schemathesis.openapi.from_url(f"{real_hub.hub.url}/schema/openapi.json")
    statuses: dict[tuple[str, str], set[int]] = {}
    for method, path in REAL_CALLS:
        operation = api[path][method]

        @FUZZ_SETTINGS
        @given(
            case=st.sampled_from(real_targets(real_hub, path)).flatmap(real_cases(operation)),
            generated=FIELDS,
        )
        def fuzz(case, generated) -> None:
            if case.path in VALID_BODIES:
                partly_generated(case, VALID_BODIES[case.path], generated)
            [(parameter, value)] = case.path_parameters.items()
            before = stored_row(real_hub, kind_of(case.path, parameter), value)
            response = case.call(base_url=real_hub.hub.url, headers=ADMIN, timeout=30)
            case.validate_response(response, checks=CHECKS)
            if response.status_code >= 400:
                content_type = response.headers.get("content-type", [""])[0]
                assert content_type.startswith(error_types(case.path)), response.text
                assert stored_row(real_hub, kind_of(case.path, parameter), value) == before
            settle(real_hub, case, response.status_code)
            statuses.setdefault((case.method, case.path), set()).add(response.status_code)

        fuzz()
    for call, wanted in REAL_CALLS.items():
        assert wanted <= statuses[call], (call, statuses[call])


def real_targets(real_hub: RealHub, path: str) -> list[dict]:
    """The path parameters naming each object of the kind ``path`` takes."""
    [parameter] = [part.strip("{}") for part in path.split("/") if part.startswith("{")]
    return [{parameter: value} for value in real_hub.objects[kind_of(path, parameter)]]


def real_cases(operation):
    """Cases of ``operation`` on the given path parameters, valid or not otherwise."""
    return lambda parameters: st.sampled_from(list(GenerationMode)).flatmap(
        lambda mode: operation.as_strategy(mode, path_parameters=parameters)
    )


def kind_of(path: str, parameter: str) -> str:
    """A ``name`` is a schedule's under ``/api/v1/schedules``, else a heartbeat's; a
    retry and a dismissal aim at dead letters apart, so neither leaves the other none."""
    if parameter == "notification_id":
        return f"letters to {path.rsplit('/', 1)[-1]}"
    if parameter != "name":
        return KINDS[parameter]
    return "schedules" if path.startswith("/api/v1/schedules/") else "heartbeats"


def stored_row(real_hub: RealHub, kind: str, value: object) -> dict | None:
    """The object's stored row, or None for a kind hub keeps no row of."""
    if kind not in ROWS:
        return None
    table, column = ROWS[kind]
    with sqlite3.connect(f"file:{real_hub.db}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute(f"SELECT * FROM {table} WHERE {column} = ?", (value,)).fetchone()
    return None if row is None else dict(row)


def settle(real_hub: RealHub, case, status: int) -> None:
    """A dead letter sent again is claimed at once and fails (its receiver is not
    there): wait for that, so that the next request's row is not changed under it."""
    if case.path.endswith("/retry") and status == 200:
        [letter] = case.path_parameters.values()

        def tried() -> bool:
            row = stored_row(real_hub, "letters to retry", letter)
            return row["state"] != "sending" and row["attempts"] > row["retried_attempts"]

        wait_for(tried)


# -- hypothesis: the matcher parser, the silence, filter and time parsers, the config --

MATCHER_ALPHABET = st.sampled_from(list('ab_:=!~",{}\\ \n.*|()[]+?^$é0'))
REGEX_PIECES = ["(", ")", "a", "{", "}", ",", "*", "?", "|", "\\d", "(?P<", "(?<=a+)"]
REGEXES = st.lists(
    st.sampled_from([*REGEX_PIECES, "4294967296", "(" * 1000, ")" * 1000]), max_size=6
).map("".join)
"""Regular expressions Python's ``re`` refuses in every way it has: ``re.error``, and
OverflowError (a repeat count over 2**32) and RecursionError (parentheses nested a
few thousand deep), which once escaped as 500s."""
MATCHER_TEXTS = (
    st.text(MATCHER_ALPHABET, max_size=40)
    | st.text(max_size=40)
    | st.builds(
        '{}{}"{}"'.format,
        st.sampled_from(["a", "my-label"]),
        st.sampled_from(["=~", "!~"]),
        REGEXES,
    )
)


@settings(max_examples=300, deadline=None)
@given(MATCHER_TEXTS)
def test_the_matcher_parser_raises_only_value_error(text):
    try:
        parsed = matchers.parse(text)
    except ValueError:
        return
    for matcher in parsed:
        assert matchers.parse(str(matcher)) == [matcher]


@settings(max_examples=100, deadline=None)
@given(st.lists(MATCHER_TEXTS, max_size=3), REGEXES | st.text(max_size=20))
def test_query_filters_refuse_only_as_bad_query_parameters(texts, receiver):
    """``?matcher=``, ``?label=`` and the Alertmanager API's ``filter=`` read matchers
    so; its ``receiver=`` is a regular expression compiled by the same helper."""
    with contextlib.suppress(BadQueryParameter):
        query_matchers("matcher", texts)
    with contextlib.suppress(ValueError):
        matchers.compile_pattern(receiver)


@settings(max_examples=200, deadline=None)
@given(REGEXES | st.text(max_size=20), st.text(max_size=10), st.booleans(), st.booleans())
def test_an_alertmanager_matcher_is_refused_only_with_value_error(value, name, regex, equal):
    """A silence's matcher posted to ``/api/v2/silences``: hub's text for it, or a
    ValueError the handler answers as a 400 naming the matcher."""
    given = AmMatcher(name=name, value=value, is_regex=regex, is_equal=equal)
    try:
        written = hub_matcher(given)
    except ValueError:
        return
    with contextlib.suppress(ValueError):  # an empty name: refused by the silence rules
        [parsed] = matchers.parse(written)
        assert (parsed.name, parsed.value) == (name, value)


OFFSETS = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
)
TIMES = st.datetimes(timezones=st.builds(timezone, OFFSETS)) | st.sampled_from(
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=5))),
        datetime(9999, 12, 31, 23, 0, tzinfo=UTC),
    ]
)
DURATIONS = st.from_regex(r"([0-9]{1,12}(\.[0-9]{1,3})?(ms|s|m|h|d|w)){1,3}", fullmatch=True)
SILENCES = st.builds(
    NewSilence,
    matchers=st.lists(st.sampled_from(['a="b"', 'a=~"(b"', 'a=~".*"', "nope"]), max_size=2),
    comment=st.sampled_from(["", " ", "deploy"]),
    starts_at=st.none() | TIMES,
    ends_at=st.none() | TIMES,
    duration=st.none() | DURATIONS | st.text(max_size=6),
    created_by=st.sampled_from([None, "ada", "bob"]),
)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(SILENCES)
def test_a_silence_body_is_refused_only_naming_a_field_and_any_kept_one_shows(body):
    """What ``POST`` and ``PUT /api/v1/silences`` and ``POST /api/v2/silences`` take:
    any times (offsets to ±23:59, the years 1 and 9999) and durations (up to twelve
    digits) are a silence that can be shown, or a refusal (422 or 403); once a 500,
    and a stored silence no list could show."""
    try:
        made = silencing.build(body, NOW, Caller("ada"))
        changed = silencing.revise(made, body, NOW, Caller("bob", speaks_for_others=True))
    except (InvalidPayload, Forbidden):
        return
    for silence in (made, changed):
        shown = silencing.present(silence, NOW, static=False)
        assert datetime.fromisoformat(shown["ends_at"]) > NOW


@settings(max_examples=100, deadline=None)
@given(TIMES.map(datetime.isoformat) | st.text(max_size=30), DURATIONS | st.text(max_size=8))
def test_the_cli_time_and_duration_arguments_refuse_only_as_usage_errors(text, duration):
    """``hub silence add --start/--end``, ``update --end``, ``oncall --at`` and every
    ``--duration``: argparse turns ArgumentTypeError into a usage error (exit 2);
    anything else would be a traceback."""
    with contextlib.suppress(argparse.ArgumentTypeError):
        assert cli_api.moment(text).endswith("Z")
    with contextlib.suppress(argparse.ArgumentTypeError):
        assert cli_api.duration(duration) == duration


TOML_ALPHABET = st.sampled_from(list("[]{}=\"'.,#\n abcdefghijklmnoprstuvwxyz_0123456789-:$"))
CONFIG_KEYS = [
    "server.port",
    "server.max_body_bytes",
    "server.ack_link_ttl",
    "server.request_timeout",
    "server.max_connections",
    "server.read_concurrency",
    "storage.batch_max",
    "storage.queue_max",
    "route.receiver",
    "route.group_by",
    "route.group_wait",
    "route.matchers",
    "notifier.max_attempts",
    "notifier.backoff",
    "flapping.threshold",
    "flapping.window",
    "incidents.reopen_window",
]
TOML_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["0s", "-1s", "5m", "${NOPE}", "${X:-1}", "ops", 'a="b"']),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
VALID = render_config(BASE_CONFIG, port=8080, db="hub.db", mail_url="json://127.0.0.1:9/x")


@settings(max_examples=200, deadline=None)
@given(st.text(TOML_ALPHABET, max_size=200))
def test_the_config_loader_raises_only_config_error_on_any_text(text):
    with contextlib.suppress(ConfigError):
        config.parse(text, {})


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CONFIG_KEYS), TOML_VALUES)
def test_the_config_loader_raises_only_config_error_on_valid_toml_with_random_values(key, value):
    raw = tomllib.loads(VALID)
    table, name = key.split(".")
    raw.setdefault(table, {})[name] = value
    text = _to_toml(raw)
    with contextlib.suppress(ConfigError):
        config.parse(text, {"X": "1"})


def _to_toml(raw: dict) -> str:
    """Just enough TOML writing for these tests: tables of inline values; None is left out."""
    lines = []
    for table, values in raw.items():
        rows = values if isinstance(values, list) else [values]
        header = f"[[{table}]]" if isinstance(values, list) else f"[{table}]"
        for row in rows:
            lines.append(header)
            lines += [f"{json.dumps(k)} = {_value(v)}" for k, v in row.items() if v is not None]
    return "\n".join(lines)


def _kept(table: dict) -> list:
    return [(k, v) for k, v in table.items() if v is not None]


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        pairs = ", ".join(
            f"{json.dumps(k)} = {_value(v)}" for k, v in value.items() if v is not None
        )
        return "{" + pairs + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value if v is not None) + "]"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "0.0"
    return json.dumps(value)


# -- nasty bodies and headers posted to every format's webhook -------------------------

SQL = "'); DROP TABLE alerts; --"
FORMATS_CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
max_body_bytes = 1048576

[storage]
path = "{db}"

[[sources]]
name = "native"
format = "native"
auth = {{ type = "none" }}

[[sources]]
name = "alertmanager"
format = "alertmanager"
auth = {{ type = "none" }}

[[sources]]
name = "prometheus"
format = "prometheus"
auth = {{ type = "none" }}

[[sources]]
name = "grafana"
format = "grafana"
auth = {{ type = "none" }}

[[sources]]
name = "pagerduty"
format = "pagerduty"
auth = {{ type = "none" }}

[[sources]]
name = "generic"
format = "generic"
auth = {{ type = "none" }}

[sources.mapping]
summary = "{{msg}}"
dedup_key = "id"
labels = {{ sql = "msg" }}
defaults = {{ status = "firing" }}

[[receivers]]
name = "ops"
urls = ["{mail_url}"]

[route]
receiver = "ops"
group_wait = "1h"

[[heartbeats]]
name = "nightly"
period = "1d"
"""
FORMATS = ["native", "alertmanager", "prometheus", "grafana", "pagerduty", "generic"]
FIXTURES = Path(__file__).parent / "fixtures"
TABLES = ("deliveries", "events", "alerts", "alert_history", "incidents", "notifications")


@pytest.fixture(scope="module")
def formats_hub(tmp_path_factory) -> Iterator[tuple[RunningHub, Path]]:
    directory = tmp_path_factory.mktemp("formats")
    port, db = free_port(), directory / "hub.db"
    path = directory / "alerts.toml"
    path.write_text(
        render_config(
            FORMATS_CONFIG + API_TOKENS, port=port, db=db.as_posix(), mail_url=mail_url(free_port())
        )
    )
    hub = RunningHub(path, port).start()
    yield hub, db
    hub.stop()


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


def deep_nesting(depth: int = 100_000) -> bytes:
    return b"[" * depth + b"]" * depth


def huge_native(size: int) -> bytes:
    return json.dumps({"status": "firing", "summary": "big", "labels": {"x": "y" * size}}).encode()


NASTY_BODIES = {
    "deeply-nested-arrays": deep_nesting(),
    "deeply-nested-objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "huge-within-limit": huge_native(900_000),
    "over-the-limit": huge_native(1_100_000),
    "invalid-utf8": b'{"status": "firing", "summary": "\xff\xfe\xc3\x28"}',
    "nul-bytes": b'{"status": "firing", "summary": "a\x00b"}',
    "lone-surrogate": b'{"status": "firing", "summary": "\\ud800"}',
    "huge-number": b'{"status": "firing", "summary": "x", "occurred_at": 1e999999}',
    "not-json": b"\x00\x01\x02<xml/>",
    "empty": b"",
}


@pytest.mark.parametrize("source", FORMATS)
@pytest.mark.parametrize("name", sorted(NASTY_BODIES))
def test_nasty_bodies_get_a_clear_answer_and_a_refusal_changes_nothing(formats_hub, source, name):
    hub, db = formats_hub
    before = counts(db)
    with hub.client() as http:
        answer = http.post(
            f"/webhooks/{source}",
            content=NASTY_BODIES[name],
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code < 500, answer.text
    assert "Traceback" not in answer.text
    if answer.status_code >= 400:
        assert error_text(source, answer)
        assert counts(db) == before
    if name == "over-the-limit":
        assert answer.status_code == 413


@pytest.fixture(scope="module")
def kept_silence(formats_hub) -> str:
    """The id of the silence the nasty changes aim at."""
    hub, _ = formats_hub
    with hub.client(headers=ADMIN) as http:
        made = http.post("/api/v1/silences", json=SILENCE)
    assert made.status_code == 201, made.text
    return made.json()["id"]


WRITES = {
    "alertmanager-silence": ("POST", "/api/v2/silences"),
    "silence-change": ("PUT", "/api/v1/silences/{id}"),
    "prometheus-alerts": ("POST", "/webhooks/prometheus/api/v2/alerts"),
    "alertmanager-alerts": ("POST", "/api/v2/alerts"),
    "heartbeat-pause": ("POST", "/api/v1/heartbeats/nightly/pause"),
    "heartbeat-resume": ("POST", "/api/v1/heartbeats/nightly/resume"),
    "incident-ack": ("POST", "/api/v1/incidents/1/ack"),
}
"""The writes the Alertmanager API and silence changes added, the door Prometheus
posts alerts to (hub takes none at the root's ``/api/v2/alerts``: a 400 naming the
door), a heartbeat's pause and resume and an incident's ack (as its other actions and
a dismissal read their bodies)."""
BODY_OPTIONAL = {"heartbeat-pause", "heartbeat-resume", "incident-ack"}
"""Sent empty, each is answered as without a body: done, or 404 or 409 for an incident
or a heartbeat that is not there or not in a state to change."""
UNDECODABLE = {"deeply-nested-arrays", "invalid-utf8", "lone-surrogate", "not-json"}
"""Bodies that are no JSON at all, refused by those saying the body is not valid JSON,
as a webhook does: msgspec's words alone ("Input data was truncated" of a
lone surrogate) did not say so, and nesting thousands deep was a 500."""


@pytest.mark.parametrize("write", sorted(WRITES))
@pytest.mark.parametrize("name", sorted(NASTY_BODIES))
def test_nasty_bodies_to_the_alertmanager_and_silence_writes_change_nothing(
    formats_hub, kept_silence, write, name
):
    """Each is refused with a 4xx saying what was wrong, and no row changes: no alert,
    event or delivery, and the silence aimed at is as it was."""
    hub, db = formats_hub
    method, path = WRITES[write]
    before = counts(db), silence_rows(db), heartbeat_rows(db)
    with hub.client(headers=ADMIN) as http:
        answer = http.request(
            method,
            path.format(id=kept_silence),
            content=NASTY_BODIES[name],
            headers={"Content-Type": "application/json"},
        )
    if write in BODY_OPTIONAL and name == "empty":
        assert answer.status_code in (200, 404, 409), answer.text
        return
    assert 400 <= answer.status_code < 500, answer.text
    assert "Traceback" not in answer.text
    body = answer.json()
    detail = body if isinstance(body, str) else body["detail"]
    assert detail, answer.text
    assert (counts(db), silence_rows(db), heartbeat_rows(db)) == before
    if name in UNDECODABLE and write in BODY_OPTIONAL:
        assert "body is not valid JSON" in detail, detail
    if write == "alertmanager-alerts":
        assert answer.status_code == 400 and "/webhooks/prometheus" in body
    elif name == "over-the-limit":
        assert answer.status_code == 413


def silence_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT * FROM silences ORDER BY id").fetchall()


def heartbeat_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT * FROM heartbeats ORDER BY name").fetchall()


ODD_REASON = 'host in\nmaintenance \x1b[31mred\x1b[0m \x00 \u202eevil <script>alert("x")</script>'
REASONS = {
    "odd-characters": (json.dumps({"reason": ODD_REASON}).encode(), 200, ""),
    "the-longest": (json.dumps({"reason": "y" * 2000}).encode(), 200, ""),
    "too-long": (json.dumps({"reason": "y" * 2001}).encode(), 400, "$.reason"),
    "invalid-utf8": (b'{"reason": "\xff\xfe"}', 400, "body is not valid JSON"),
    "lone-surrogate": (b'{"reason": "\\ud800"}', 400, "body is not valid JSON"),
    "not-text": (b'{"reason": ["a"]}', 400, "$.reason"),
}


@pytest.mark.parametrize("name", sorted(REASONS))
def test_a_pause_reason_is_refused_naming_its_fault_or_kept_as_sent_and_shown_escaped(
    formats_hub, name, caplog
):
    """A reason with control characters, a line break, a bidi override and markup is
    kept as sent, logged on one line with JSON's escapes and shown escaped on the
    console's heartbeats page; one too long, not text or not decodable is refused with
    a 400 saying so, and the heartbeat stays as it was."""
    hub, db = formats_hub
    caplog.set_level(logging.INFO, logger="hub.heartbeats")
    body, status, said = REASONS[name]
    before = heartbeat_rows(db)
    with hub.client(headers={**ADMIN, "Content-Type": "application/json"}) as http:
        answer = http.post("/api/v1/heartbeats/nightly/pause", content=body)
        assert answer.status_code == status, answer.text
        if status != 200:
            assert said in answer.json()["detail"], answer.text
            assert heartbeat_rows(db) == before
            return
        reason = json.loads(body)["reason"]
        assert answer.json()["pause_reason"] == reason
        with hub.client() as browser:
            sign_in(browser, ADMIN_TOKEN)
            page = browser.get("/heartbeats").text
        assert http.post("/api/v1/heartbeats/nightly/resume").status_code == 200
    assert ("<script>" not in page and "&lt;script&gt;" in page) or name != "odd-characters"
    [line] = [r.getMessage() for r in caplog.records if "heartbeat_paused" in r.getMessage()]
    assert f"reason={reason if reason.isalnum() else json.dumps(reason)}" in line
    assert "\n" not in line and "\x1b" not in line


def error_text(source: str, answer) -> str:
    """The refusal's explanation, in the form each sender's own tooling expects:
    Alertmanager's JSON string for Prometheus, PagerDuty's error list, else problem+json."""
    body = answer.json()
    if answer.headers["content-type"].startswith("application/problem+json"):
        return body["detail"]
    assert source in ("prometheus", "pagerduty"), answer.headers["content-type"]
    if source == "prometheus":
        return body
    assert body["status"] == "invalid event"
    return "; ".join(body["errors"])


def sql_payload(source: str) -> dict | list:
    """A valid payload of each format carrying the SQL-looking text as a label value."""
    if source == "native":
        return {"status": "firing", "summary": SQL, "labels": {"sql": SQL}, "dedup_key": SQL}
    if source == "generic":
        return {"id": "sql-generic", "msg": SQL}
    fixture = {
        "alertmanager": "firing.json",
        "prometheus": "firing-batch.json",
        "grafana": "firing.json",
        "pagerduty": "trigger.json",
    }[source]
    payload = json.loads((FIXTURES / source / fixture).read_text())
    _inject(payload)
    return payload


def _inject(value) -> None:
    """Put the SQL text into every ``labels`` table and every summary."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "labels" and isinstance(inner, dict):
                inner["sql"] = SQL
            elif key == "summary" and isinstance(inner, str):
                value[key] = SQL
            else:
                _inject(inner)
    elif isinstance(value, list):
        for inner in value:
            _inject(inner)


@pytest.mark.parametrize("source", FORMATS)
def test_sql_looking_values_are_stored_verbatim_and_the_tables_survive(formats_hub, source):
    hub, db = formats_hub
    with hub.client() as http:
        answer = http.post(f"/webhooks/{source}", json=sql_payload(source))
        assert answer.status_code == (200 if source == "prometheus" else 202), answer.text
        listed = {"source": source, "limit": 1000}
        stored = http.get("/api/v1/alerts", params=listed, headers=ADMIN).json()
    assert any(SQL in json.dumps(alert, ensure_ascii=False) for alert in stored), stored
    assert set(counts(db)) == set(TABLES)


CONTROL_HEADERS = [
    b"Authorization: Bearer \x01\x7f",
    b"X-Evil: a\x00b",
    b"Idempotency-Key: k\x1b[31m",
    b"Content-Type: application/json\x0b",
]


@pytest.mark.parametrize("header", CONTROL_HEADERS, ids=["auth", "nul", "escape", "vtab"])
def test_headers_with_control_characters_get_no_server_error(formats_hub, header):
    hub, _ = formats_hub
    body = json.dumps({"status": "firing", "summary": "ctl", "dedup_key": "ctl"}).encode()
    request = (
        b"POST /webhooks/native HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header + b"\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    with socket.create_connection(("127.0.0.1", hub.port), timeout=30) as sock:
        sock.sendall(request)
        status_line = sock.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    assert int(status_line.split()[1]) < 500, status_line
    with hub.client() as http:
        assert http.get("/readyz").status_code == 200
