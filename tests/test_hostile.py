"""Hostile input: generated requests against every documented operation, generated
matchers and config files, and hand-made nasties posted to every format's webhook.
Whatever arrives, the answer is a clear 4xx problem (or a 2xx that stores exactly
what was sent), never a 5xx, and a refused request changes nothing."""

from __future__ import annotations

import contextlib
import json
import math
import socket
import sqlite3
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from conftest import BASE_CONFIG, RunningHub, free_port, mail_url, render_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from hub import config, matchers
from hub.errors import ConfigError

ADMIN_TOKEN = "hostile-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

API_TOKENS = (
    '\n[api]\ntokens = [{{ name = "fuzzer", token = "' + ADMIN_TOKEN + '", role = "admin" }}]\n'
)


@pytest.fixture(scope="module")
def fuzzed_hub(tmp_path_factory) -> Iterator[RunningHub]:
    """One hub for every generated request: starting one per example would be slow."""
    directory = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    path = directory / "alerts.toml"
    text = render_config(
        BASE_CONFIG + API_TOKENS,
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
                assert content_type.startswith(error_type(case.operation.path)), response.text
            assert "Traceback" not in response.text

        try:
            fuzz()
        except Exception as e:  # every operation gets its run; report them all
            failures[operation.label] = f"{type(e).__name__}: {e}"[:2000]
    report = "\n\n".join(f"{label}: {error}" for label, error in failures.items())
    assert not failures, f"{sorted(failures)}\n\n{report}"


def error_type(path: str) -> str:
    """Errors are problem+json, but Alertmanager's API speaks only plain JSON."""
    return "application/json" if path.startswith("/api/v2/") else PROBLEM


# -- hypothesis: the matcher parser and the config loader ----------------------------

MATCHER_ALPHABET = st.sampled_from(list('ab_:=!~",{}\\ \n.*|()[]+?^$é0'))


@settings(max_examples=300, deadline=None)
@given(st.text(MATCHER_ALPHABET, max_size=40) | st.text(max_size=40))
def test_the_matcher_parser_raises_only_value_error(text):
    try:
        parsed = matchers.parse(text)
    except ValueError:
        return
    for matcher in parsed:
        assert matchers.parse(str(matcher)) == [matcher]


TOML_ALPHABET = st.sampled_from(list("[]{}=\"'.,#\n abcdefghijklmnoprstuvwxyz_0123456789-:$"))
CONFIG_KEYS = [
    "server.port",
    "server.max_body_bytes",
    "server.ack_link_ttl",
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
        render_config(FORMATS_CONFIG, port=port, db=db.as_posix(), mail_url=mail_url(free_port()))
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
        stored = http.get("/api/v1/alerts", params={"source": source, "limit": 1000}).json()
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
