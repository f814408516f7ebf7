"""Bad input gets a clear problem+json error naming what was wrong, and changes nothing."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import sqlite3

import pytest
from conftest import AUTH, BASE_CONFIG, mail_url, wait_for
from test_access import WITH_TOKENS

GOOD = {"status": "firing", "summary": "queue backlog growing"}


def stored_rows(db) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("deliveries", "events", "alerts", "alert_history", "notifications")
        }


@pytest.mark.parametrize(
    ("path", "headers", "content", "status", "detail_has"),
    [
        ("/webhooks/shop", AUTH, b'{"status": "firing", ', 400, "not valid JSON"),
        ("/webhooks/shop", AUTH, b'{"status": "exploded", "summary": "x"}', 422, "$.status"),
        ("/webhooks/shop", AUTH, b'{"summary": "x"}', 422, "status"),
        ("/webhooks/shop", AUTH, b'{"status": "firing", "summary": ""}', 422, "$.summary"),
        (
            "/webhooks/shop",
            AUTH,
            b'{"status": "firing", "summary": "x", "labels": {"a": 1}}',
            422,
            "$.labels",
        ),
        ("/webhooks/shop", AUTH, b"[]", 422, "at least one event"),
        (
            "/webhooks/shop",
            AUTH,
            b'[{"status": "firing", "summary": "a"}, {"status": "bogus", "summary": "b"}]',
            422,
            "$[1].status",
        ),
        ("/webhooks/shop", {}, b'{"status": "firing", "summary": "x"}', 401, "authorization"),
        (
            "/webhooks/shop",
            {"Authorization": "Bearer wrong"},
            b'{"status": "firing", "summary": "x"}',
            401,
            "not valid",
        ),
        ("/webhooks/nowhere", AUTH, b'{"status": "firing", "summary": "x"}', 404, "nowhere"),
        (
            "/webhooks/shop",
            AUTH,
            b'{"status": "firing", "summary": "' + b"x" * 5000 + b'"}',
            413,
            "limit of 4096",
        ),
    ],
    ids=[
        "malformed",
        "bad-status",
        "missing-field",
        "empty-summary",
        "label-not-string",
        "empty-list",
        "one-bad-item-of-a-batch",
        "no-token",
        "wrong-token",
        "unknown-source",
        "too-large",
    ],
)
def test_bad_input_is_refused_with_a_named_reason_and_changes_nothing(
    hub_factory, smtp, tmp_path, path, headers, content, status, detail_has
):
    _, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    before = stored_rows(tmp_path / "hub.db")
    with hub.client(headers=headers) as http:
        answer = http.post(path, content=content, headers={"Content-Type": "application/json"})
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == status
    assert detail_has in problem["detail"] + problem.get("field", "")
    assert "Traceback" not in answer.text and "shop-secret-token" not in answer.text
    assert stored_rows(tmp_path / "hub.db") == before


LIMITED = (
    BASE_CONFIG
    + """
[[sources]]
name = "limited"
format = "native"
auth = {{ type = "none" }}
rate_limit = 1
burst = 1
"""
)
BODY_MARKER = "only-in-the-body-5e1f"
JSON = {"Content-Type": "application/json"}


def refusal_lines(caplog) -> list[tuple[str, str]]:
    return [
        (record.levelname, record.getMessage())
        for record in caplog.records
        if record.getMessage().startswith("event=webhook_refused ")
    ]


def told(answer) -> str:
    """What the sender was told, as the log line quotes it."""
    return json.dumps(answer.json()["detail"])


def test_each_refused_webhook_is_logged_once_with_what_the_sender_was_told(
    hub_factory, smtp, caplog
):
    """docs/sources.md said refused requests are logged; only a 401 was. Each refusal
    is one line (a 401 too, not two), with the detail and never a secret or the body;
    a 429 is not logged (a flood of them would make the log the bottleneck)."""
    hub = hub_factory(LIMITED, mail_url=mail_url(smtp[1]))
    marked = {"status": "firing", "summary": "", "labels": {"note": BODY_MARKER}}
    wrong_token = {"Authorization": "Bearer shop-secret-token-of-last-year"}
    with caplog.at_level(logging.INFO, logger="hub"), hub.client(headers=AUTH) as http:
        invalid = http.post("/webhooks/shop", json=marked)
        malformed = http.post("/webhooks/shop", content=BODY_MARKER.encode(), headers=JSON)
        unauthorized = http.post("/webhooks/shop", json=marked, headers=wrong_token)
        unknown = http.post("/webhooks/nowhere", json=marked)
        unsupported = http.post(
            "/webhooks/shop", content=b"<p/>", headers={"Content-Type": "text/html"}
        )
        limited = [http.post("/webhooks/limited", json=GOOD).status_code for _ in "abc"]
    expected = [
        ("INFO", "shop", invalid, 422, "outcome=invalid"),
        ("INFO", "shop", malformed, 400, "outcome=malformed"),
        ("WARNING", "shop", unauthorized, 401, "outcome=unauthorized reason=bad_token"),
        ("INFO", "nowhere", unknown, 404, "outcome=unknown_source"),
        ("INFO", "shop", unsupported, 415, "outcome=unsupported_media"),
    ]
    assert [answer.status_code for _, _, answer, _, _ in expected] == [s for *_, s, _ in expected]
    assert limited == [202, 429, 429]
    assert refusal_lines(caplog) == [
        (
            level,
            f"event=webhook_refused source={source} status={status} {outcome}"
            f" detail={told(answer)}",
        )
        for level, source, answer, status, outcome in expected
    ]
    logged = [record.getMessage() for record in caplog.records]
    assert [m for m in logged if "shop-secret-token" in m or BODY_MARKER in m] == []


@pytest.mark.parametrize(
    ("body", "field", "detail"),
    [
        (
            {"status": "firing"},
            "$.summary",
            "Object missing required field `summary`: a firing event needs one",
        ),
        (
            [GOOD, {"status": "resolved", "dedup_key": "k"}, {"status": "firing"}],
            "$[2].summary",
            "Object missing required field `summary`: a firing event needs one - at `$[2]`",
        ),
        (
            [GOOD, {**GOOD, "sumary": "x"}],
            "$[1].sumary",
            "Object contains unknown field `sumary` - at `$[1]`",
        ),
        (
            [GOOD, {"status": "fring", "summary": "x"}],
            "$[1].status",
            "Invalid enum value 'fring' (one of: firing, resolved) - at `$[1].status`",
        ),
        (
            {**GOOD, "severity": "urgent"},
            "$.severity",
            "Invalid enum value 'urgent' (one of: critical, error, warning, info)"
            " - at `$.severity`",
        ),
        (
            {**GOOD, "labels": {"service": "api", "port": 8080}},
            "$.labels.port",
            "Expected `str`, got `int` - at `$.labels.port`",
        ),
        (
            [GOOD, {**GOOD, "annotations": {"app.kubernetes.io/name": None}}],
            '$[1].annotations["app.kubernetes.io/name"]',
            'Expected `str`, got `null` - at `$[1].annotations["app.kubernetes.io/name"]`',
        ),
        (
            {**GOOD, "occurred_at": "2026-11-28T12:00:00"},
            "$.occurred_at",
            "Expected `datetime` with a timezone component; give the time with an offset,"
            " e.g. 2026-11-28T12:00:00Z - at `$.occurred_at`",
        ),
    ],
    ids=[
        "missing-field",
        "missing-field-in-a-batch",
        "unknown-field-in-a-batch",
        "bad-status-in-a-batch",
        "bad-severity",
        "bad-label-value",
        "bad-annotation-value-in-a-batch",
        "time-without-offset",
    ],
)
def test_a_native_event_of_the_wrong_shape_names_the_field_and_the_choices(
    hub_factory, smtp, body, field, detail
):
    """A missing or unknown field was named as "$", the object holding it, not as the
    README's ``$.status``; a wrong enum value did not say the values it may take; a bad
    label value was ``$.labels[...]``, naming no label; a time without an offset did
    not say how to write one, as the API's query parameters do."""
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    with hub.client(headers=AUTH) as http:
        answer = http.post("/webhooks/shop", json=body)
    assert answer.status_code == 422
    assert (answer.json()["field"], answer.json()["detail"]) == (field, detail)


def test_metrics_count_accepted_and_rejected_webhooks(hub_factory, smtp):
    _, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    with hub.client() as http:
        http.post("/webhooks/shop", json=GOOD, headers=AUTH)
        http.post("/webhooks/shop", json=GOOD, headers=AUTH)
        http.post("/webhooks/shop", json=GOOD, headers={"Authorization": "Bearer nope"})
        metrics = http.get("/metrics").text
    assert 'hub_webhooks_received_total{outcome="accepted",source="shop"} 2.0' in metrics
    assert 'hub_webhooks_received_total{outcome="unauthorized",source="shop"} 1.0' in metrics
    assert 'hub_auth_failures_total{reason="bad_token",source="shop"} 1.0' in metrics
    assert 'hub_events_total{outcome="new",source="shop"} 1.0' in metrics
    assert 'hub_events_total{outcome="duplicate",source="shop"} 1.0' in metrics
    assert 'hub_alerts_active{severity="warning"} 1.0' in metrics
    assert 'hub_ingest_duration_seconds_count{source="shop"} 2.0' in metrics
    dead = 'hub_notifications_total{integration="mailto",outcome="dead",receiver="ops"} 0.0'
    assert dead in metrics


def test_health_readiness_and_openapi_are_served(hub_factory, smtp):
    _, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    with hub.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"store": True, "scheduler": True, "workers": True}
        # load balancers and curl -I probe with HEAD: the same status, no body
        probed = [http.head(path) for path in ("/healthz", "/readyz")]
        assert [(answer.status_code, answer.content) for answer in probed] == [(200, b"")] * 2
        schema = http.get("/schema/openapi.json").json()
        assert "/webhooks/{source}" in schema["paths"]
        missing = http.get("/api/v1/alerts/999")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")


def test_webhook_paths_take_post_only_and_are_described_as_they_answer(hub_factory, smtp):
    """Webhooks are answered in front of Litestar: the method, the trailing slash and
    the OpenAPI description must still be what a client expects."""
    _, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    with hub.client(headers=AUTH) as http:
        refused = http.get("/webhooks/shop")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "OPTIONS, POST"
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["detail"] == "GET is not allowed on /webhooks/shop; it takes POST"
        assert http.post("/webhooks/shop/", json=GOOD).status_code == 202
        assert http.post("/webhooks/shop/extra", json=GOOD).status_code == 404
        operation = http.get("/schema/openapi.json").json()["paths"]["/webhooks/{source}"]["post"]
    assert {"202", "200", "401", "413", "422", "429", "503"} <= set(operation["responses"])
    too_many = operation["responses"]["429"]
    assert "Retry-After" in too_many["headers"]
    assert "application/problem+json" in too_many["content"]
    assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("PUT", "/api/v1/silences", "GET, HEAD, POST"), ("GET", "/-/reload", "POST")],
)
def test_a_wrong_method_on_the_api_names_the_methods_it_takes(
    hub_factory, smtp, method, path, allowed
):
    """RFC 9110: a 405 carries Allow; a script reads what to send in the detail too,
    on /-/ paths as on /api/ ones (no console page for a program)."""
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    with hub.client() as http:
        refused = http.request(method, path)
    assert refused.status_code == 405
    assert refused.headers["content-type"] == "application/problem+json"
    assert {m.strip() for m in refused.headers["allow"].split(",")} - {"OPTIONS"} == set(
        allowed.split(", ")
    )
    assert refused.json()["detail"] == f"{method} is not allowed on {path}; it takes {allowed}"


def test_an_unknown_admin_path_is_problem_json(hub_factory, smtp):
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    with hub.client() as http:
        missing = http.post("/-/reloda")
    assert (missing.status_code, missing.headers["content-type"]) == (
        404,
        "application/problem+json",
    )


def test_a_client_gone_before_its_body_arrived_changes_nothing(hub_factory, smtp, tmp_path):
    _, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    before = stored_rows(tmp_path / "hub.db")
    head = (
        b"POST /webhooks/shop HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: " + AUTH["Authorization"].encode() + b"\r\nContent-Length: 500\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as sock:
        sock.sendall(head + b'{"status": "firing", "summ')
    with hub.client(headers=AUTH) as http:  # the hub is still answering
        assert http.post("/webhooks/shop", json=GOOD).status_code == 202
    after = stored_rows(tmp_path / "hub.db")
    assert after["deliveries"] == before["deliveries"] + 1


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (
            "/api/v1/notifications?outcome=dead",
            "unknown query parameter 'outcome'; GET /api/v1/notifications takes"
            " cursor, incident, limit, receiver, state",
        ),
        ("/api/v1/alerts?offset=2", "unknown query parameter 'offset'"),
        ("/api/v1/alerts/1?verbose=1", "takes no query parameters"),
        (
            "/api/v1/alerts?status=bogus",
            "invalid query parameter 'status': Invalid enum value 'bogus'"
            " (one of: firing, resolved)",
        ),
        (
            "/api/v1/alerts?severity=CRITICAL",
            "query parameter 'severity': Invalid enum value 'CRITICAL'"
            " (one of: critical, error, warning, info)",
        ),
        ("/api/v1/incidents?severity=high", "query parameter 'severity'"),
        (
            "/api/v1/silences?state=bogus",
            "query parameter 'state': Invalid enum value 'bogus'"
            " (one of: pending, active, expired, unreadable)",
        ),
        (
            "/api/v1/alerts?limit=0",
            "invalid query parameter 'limit': expected a whole number from 1 to 1000, got '0'",
        ),
    ],
    ids=[
        "unknown-filter",
        "unknown-paging",
        "no-parameters",
        "bad-status",
        "bad-severity",
        "bad-incident-severity",
        "bad-silence-state",
        "limit-zero",
    ],
)
def test_an_api_filter_that_would_do_nothing_is_a_400_naming_it(hub_factory, smtp, query, detail):
    """A filter hub cannot apply must not answer with the unfiltered list: ``?outcome=dead``
    listing every notification reads as a list of dead letters."""
    _, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    with hub.client() as http:
        assert http.post("/webhooks/shop", json=GOOD, headers=AUTH).status_code == 202
        answer = http.get(query)
        listed = http.get("/api/v1/alerts?status=firing&severity=warning&limit=5")
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert detail in answer.json()["detail"]
    assert "ParamType" not in answer.text
    assert [alert["summary"] for alert in listed.json()] == [GOOD["summary"]]


def test_a_label_matcher_hub_cannot_read_is_a_400_naming_the_parameter(hub_factory, smtp):
    """As every other bad query value: a bad ``label`` was a 422 with ``field``, the
    answer for a request body of the wrong shape."""
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    with hub.client() as http:
        no_operator = http.get("/api/v1/alerts", params={"label": "service"})
        bad_regex = http.get("/api/v1/incidents", params={"label": 'service=~"("'})
    assert (no_operator.status_code, bad_regex.status_code) == (400, 400)
    assert no_operator.headers["content-type"].startswith("application/problem+json")
    assert no_operator.json() == {
        "type": "about:blank",
        "status": 400,
        "title": "Bad request",
        "detail": "invalid query parameter 'label': bad matcher 'service':"
        " expected name, operator, value",
    }
    assert bad_regex.json()["detail"].startswith(
        "invalid query parameter 'label': bad regular expression '('"
    )


def test_a_filter_given_twice_is_a_400_naming_it_and_label_may_repeat(hub_factory, smtp):
    """?status=firing&status=resolved used to filter by one of the two, silently; a
    list of matchers is the one parameter meant to repeat (each narrows the list)."""
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    checkout = {**GOOD, "labels": {"service": "checkout", "env": "prod"}}
    staging = {**GOOD, "labels": {"service": "checkout", "env": "staging"}}
    with hub.client() as http:
        for event in (checkout, staging):
            assert http.post("/webhooks/shop", json=event, headers=AUTH).status_code == 202
        status = http.get("/api/v1/alerts?status=firing&status=resolved")
        limit = http.get("/api/v1/notifications?limit=1&state=sent&limit=2")
        both = http.get(
            "/api/v1/alerts", params=[("label", "service=checkout"), ("label", "env=prod")]
        )
    assert (status.status_code, limit.status_code, both.status_code) == (400, 400, 200)
    assert status.json() == {
        "type": "about:blank",
        "status": 400,
        "title": "Bad request",
        "detail": "query parameter 'status' given more than once ('firing', 'resolved');"
        " give it once",
    }
    assert limit.json()["detail"] == (
        "query parameter 'limit' given more than once ('1', '2'); give it once"
    )
    assert [alert["labels"]["env"] for alert in both.json()] == ["prod"]


ID_PATHS = [
    ("GET", "/api/v1/alerts/{}", "alert_id", None),
    ("GET", "/api/v1/incidents/{}", "incident_id", None),
    ("POST", "/api/v1/incidents/{}/ack", "incident_id", None),
    ("POST", "/api/v1/incidents/{}/snooze", "incident_id", {"duration": "1h"}),
    ("POST", "/api/v1/incidents/{}/resolve", "incident_id", {"comment": "fixed"}),
    ("GET", "/api/v1/events/{}", "delivery_id", None),
    ("POST", "/api/v1/events/{}/replay", "delivery_id", None),
    ("POST", "/api/v1/notifications/{}/retry", "notification_id", None),
]
NOT_ROW_IDS = ("abc", "0", "1.5", "99999999999999999999999")


def test_an_id_in_the_path_that_is_no_row_id_is_a_400_naming_the_parameter(
    hub_factory, smtp, tmp_path
):
    """Every id path answers alike: not a number, zero, a fraction and a number past
    SQLite's integers are a 400 naming the parameter and what it takes (a bare 404
    "Not Found" or a Python repr of Litestar's errors before); a well-formed id that
    nothing has is a 404 naming it."""
    hub = hub_factory(WITH_TOKENS, mail_url=mail_url(smtp[1]))
    before = stored_rows(tmp_path / "hub.db")
    answers = {}
    with hub.client(headers={"Authorization": "Bearer admin-token"}) as http:
        for method, path, _, body in ID_PATHS:
            for given in NOT_ROW_IDS:
                answer = http.request(method, path.format(given), json=body)
                assert answer.headers["content-type"].startswith("application/problem+json")
                answers[method, path.format(given)] = (answer.status_code, answer.json()["detail"])
        missing = http.get("/api/v1/alerts/42")
    assert answers == {
        (method, path.format(given)): (
            400,
            f"invalid path parameter {name!r}: expected a whole number"
            f" from 1 to 9223372036854775807, got {given!r}",
        )
        for method, path, name, _ in ID_PATHS
        for given in NOT_ROW_IDS
    }
    assert (missing.status_code, missing.json()["detail"]) == (404, "no alert with id 42")
    assert stored_rows(tmp_path / "hub.db") == before


def test_a_query_value_of_the_wrong_kind_says_what_the_parameter_takes(hub_factory, smtp):
    """msgspec's words name Python's types (``Expected `int | null`, got `str```), while
    every value in a URL is text: a bad number or yes/no says what would do."""
    hub = hub_factory(WITH_TOKENS, mail_url=mail_url(smtp[1]))
    with hub.client(headers={"Authorization": "Bearer admin-token"}) as http:
        incident = http.get("/api/v1/notifications", params={"incident": "abc"})
        limit = http.get("/api/v1/alerts", params={"limit": "1001"})
        dry_run = http.post("/api/v1/events/1/replay", params={"dry_run": "maybe"})
    assert [a.status_code for a in (incident, limit, dry_run)] == [400, 400, 400]
    assert [a.json()["detail"] for a in (incident, limit, dry_run)] == [
        "invalid query parameter 'incident': expected a whole number"
        " from 1 to 9223372036854775807, got 'abc'",
        "invalid query parameter 'limit': expected a whole number from 1 to 1000, got '1001'",
        "invalid query parameter 'dry_run': expected true or false, got 'maybe'",
    ]


def test_an_incidents_since_takes_a_time_with_an_offset_as_every_other_time(hub_factory, smtp):
    """``?since=2026-11-30T00:49:00`` was read as UTC, while the on-call ``at``, silence
    times and a native ``occurred_at`` refuse a time without an offset."""
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    with hub.client() as http:
        assert http.post("/webhooks/shop", json=GOOD, headers=AUTH).status_code == 202
        opened = wait_for(lambda: http.get("/api/v1/incidents").json())[0]["updated_at"]
        local = http.get("/api/v1/incidents", params={"since": "2026-11-30T00:49:00"})
        noon = http.get("/api/v1/incidents", params={"since": "noon"})
        # curl '...?since=...+02:00': the unencoded + arrives as a space
        before = http.get("/api/v1/incidents?since=2000-01-01T02:00:00+02:00")
        after = http.get("/api/v1/incidents", params={"since": "2999-01-01T00:00:00Z"})
    assert (local.status_code, local.json()["detail"]) == (
        400,
        "invalid query parameter 'since': give the time with an offset, e.g. 2026-03-29T09:00:00Z",
    )
    assert (noon.status_code, noon.json()["detail"]) == (
        400,
        "invalid query parameter 'since': expected an RFC 3339 time, got 'noon'",
    )
    assert [i["updated_at"] for i in before.json()] == [opened]
    assert after.json() == []


def test_a_compressed_body_is_refused_naming_its_encoding(hub_factory, smtp, tmp_path):
    """hub reads bodies as sent: a gzip body was refused as "not valid JSON" at byte 0,
    leaving the sender to guess. A 415 names the encoding, as HTTP says an unsupported
    content coding is answered; ``identity`` is no coding and passes."""
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    event = json.dumps(GOOD).encode()
    before = stored_rows(tmp_path / "hub.db")
    with hub.client(headers={**AUTH, **JSON}) as http:
        gzipped = http.post(
            "/webhooks/shop", content=gzip.compress(event), headers={"Content-Encoding": "gzip"}
        )
        stored = stored_rows(tmp_path / "hub.db")
        plain = http.post("/webhooks/shop", content=event, headers={"Content-Encoding": "identity"})
    assert gzipped.status_code == 415
    assert gzipped.json()["detail"] == (
        "content encoding 'gzip' is not supported: send the body uncompressed"
    )
    assert stored == before
    assert plain.status_code == 202
