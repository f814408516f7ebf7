"""The served OpenAPI document says how to authenticate and which errors come back, and
the errors a client really gets match what it says."""

from __future__ import annotations

import re

import httpx
import pytest
import schemathesis
from conftest import AUTH, BASE_CONFIG, mail_url
from schemathesis.core.failures import Failure
from test_access import CREDENTIALS, MINIMAL, SILENCE, TOKENS, guard_roles

from hub import config
from hub.app import create_app, documented

HEARTBEAT = """
[[heartbeats]]
name = "nightly"
period = "1d"
token = "nightly-ping-token-0123"
"""
PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}
EVENTS = [
    {"status": "firing", "summary": "checkout down", "labels": {"service": "checkout"}},
    {"status": "firing", "summary": "search down", "labels": {"service": "search"}},
]


WEBHOOK_SOURCES = """
[[sources]]
name = "pd"
format = "pagerduty"
auth = {{ type = "none" }}

[[sources]]
name = "rehearsal"
mode = "test"
auth = {{ type = "none" }}

[[sources]]
name = "prometheus"
format = "prometheus"
auth = {{ type = "none" }}
"""


@pytest.fixture
def hub(hub_factory, smtp):
    config = BASE_CONFIG + TOKENS + HEARTBEAT + WEBHOOK_SOURCES
    return hub_factory(config, mail_url=mail_url(smtp[1]))


def served(hub) -> dict:
    with hub.client() as http:
        return http.get("/schema/openapi.json").json()


def roles() -> dict[tuple[str, str], str]:
    """The role each API operation needs, keyed as the document names operations."""
    return {
        (method.lower(), re.sub(r":\w+}", "}", path)): needed
        for (method, path), (needed,) in guard_roles().items()
    }


def operations(document: dict) -> dict[tuple[str, str], dict]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def test_guarded_operations_need_the_bearer_token_and_the_others_do_not(hub):
    document = served(hub)
    assert document["components"]["securitySchemes"]["bearer"]["type"] == "http"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    needs = roles()
    found = operations(document)
    assert set(needs) <= set(found), set(needs) - set(found)
    for key, operation in found.items():
        responses = set(operation["responses"])
        if key in needs:
            assert operation["security"] == [{"bearer": []}], key
            assert "401" in responses, key
            assert ("403" in responses) == (needs[key] != "read"), key
        else:
            required = operation.get("security", [])
            assert not any("bearer" in requirement for requirement in required), key
            assert not required or {} in required, f"{key} claims to need a token"
    ping = document["paths"]["/ping/{name}"]["get"]
    assert ping["security"] == [{}, {"heartbeatBearer": []}, {"heartbeatQuery": []}]
    assert "security" not in document["paths"]["/webhooks/{source}"]["post"]
    assert "no security scheme" in document["paths"]["/webhooks/{source}"]["post"]["description"]


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        ("get", "/api/v1/alerts", {"400", "401", "503"}),
        ("get", "/api/v1/alerts/{alert_id}", {"400", "401", "404", "503"}),
        ("delete", "/api/v1/silences/{silence_id}", {"400", "401", "403", "404", "409", "503"}),
        (
            "put",
            "/api/v1/silences/{silence_id}",
            {"400", "401", "403", "404", "409", "413", "422", "503"},
        ),
        (
            "post",
            "/api/v1/incidents/{incident_id}/ack",
            {"400", "401", "403", "404", "409", "413", "422", "503"},
        ),
        (
            "post",
            "/api/v1/incidents/{incident_id}/snooze",
            {"400", "401", "403", "404", "409", "413", "422", "503"},
        ),
        ("post", "/api/v1/heartbeats", {"400", "401", "403", "409", "413", "422", "503"}),
        (
            "post",
            "/api/v1/heartbeats/{name}/pause",
            {"400", "401", "403", "404", "413", "422", "503"},
        ),
        (
            "post",
            "/api/v1/heartbeats/{name}/resume",
            {"400", "401", "403", "404", "409", "413", "422", "503"},
        ),
        ("post", "/-/reload", {"400", "401", "403", "409"}),
        ("get", "/ping/{name}", {"401", "404", "503"}),
    ],
)
def test_operations_list_the_errors_they_answer_as_problem_details(hub, method, path, codes):
    responses = served(hub)["paths"][path][method]["responses"]
    assert {code for code in responses if int(code) >= 400} == codes
    for code in codes:
        assert responses[code]["content"] == {"application/problem+json": PROBLEM}, code


@pytest.mark.parametrize(
    "path", ["/api/v1/alerts", "/api/v1/incidents", "/api/v1/events", "/api/v1/notifications"]
)
def test_paged_lists_declare_the_cursor_and_the_next_link_they_answer(hub, path):
    document = served(hub)
    operation = document["paths"][path]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert parameters["cursor"]["in"] == "query"
    assert not parameters["cursor"]["required"]
    assert parameters["limit"]["schema"]["maximum"] == 1000
    link = operation["responses"]["200"]["headers"]["Link"]
    assert link["schema"] == {"type": "string"}
    assert 'rel="next"' in link["description"]
    with hub.client(headers=CREDENTIALS["read"]) as http:
        for event in EVENTS:
            assert http.post("/webhooks/shop", json=event, headers=AUTH).status_code == 202
        paged = http.get(path, params={"limit": 1})
    assert paged.status_code == 200
    schemathesis.openapi.from_dict(document)[path]["GET"].validate_response(paged)


REFUSAL_HEADERS = {"401": {"WWW-Authenticate"}, "429": {"Retry-After"}, "503": {"Retry-After"}}
"""What RFC 9110 has a refusal carry: a 401 its challenge, a 429 or 503 when to retry."""


def test_refusals_declare_the_headers_they_carry_and_no_other_error_declares_one(hub):
    for (method, path), operation in operations(served(hub)).items():
        errors = {
            code: answer for code, answer in operation["responses"].items() if int(code) >= 400
        }
        for code, answer in errors.items():
            problem = PROBLEM["schema"] in [m["schema"] for m in answer.get("content", {}).values()]
            wanted = REFUSAL_HEADERS.get(code, set()) if problem else set()
            assert set(answer.get("headers", {})) == wanted, (method, path, code)
    alerts = served(hub)["paths"]["/api/v1/alerts"]["get"]["responses"]
    assert 'Bearer realm="hub"' in alerts["401"]["headers"]["WWW-Authenticate"]["description"]


def test_readiness_documents_its_503_with_the_body_it_answers(hub):
    document = served(hub)
    readyz = document["paths"]["/readyz"]["get"]["responses"]
    assert set(readyz) == {"200", "503"}
    for code in ("200", "503"):
        schema = readyz[code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Readiness"}, code
    assert "security" not in document["paths"]["/healthz"]["get"]
    api = schemathesis.openapi.from_dict(document)
    with hub.client() as http:
        api["/readyz"]["GET"].validate_response(http.get("/readyz"))


def test_parameter_bounds_are_the_integers_hub_checks(hub):
    """The largest id hub takes is 2**63 - 1; written as a float it would read 2**63,
    which hub refuses with 400."""
    document = served(hub)
    bounds = {
        (path, parameter["name"]): (parameter["schema"]["minimum"], parameter["schema"]["maximum"])
        for (_, path), operation in operations(document).items()
        for parameter in operation.get("parameters", [])
        if "maximum" in parameter["schema"]
    }
    assert bounds[("/api/v1/alerts/{alert_id}", "alert_id")] == (1, 2**63 - 1)
    assert bounds[("/api/v1/alerts", "limit")] == (1, 1000)
    assert all(type(low) is type(high) is int for low, high in bounds.values()), bounds
    with hub.client(headers=CREDENTIALS["read"]) as http:
        assert http.get(f"/api/v1/alerts/{2**63 - 1}").status_code == 404
        assert http.get(f"/api/v1/alerts/{2**63}").status_code == 400


def test_real_errors_match_the_documented_schema(hub):
    """Each answer is checked by schemathesis against the schema its operation documents
    for its status; a copy without ``detail`` must fail that check, which shows it ran."""
    api = schemathesis.openapi.from_url(f"{hub.url}/schema/openapi.json")
    with hub.client() as http:
        fired = http.post("/webhooks/shop", json=EVENTS[0], headers=AUTH).json()["alerts"][0]
        ack = f"/api/v1/incidents/{fired['incident_id']}/ack"
        http.post(ack, headers=CREDENTIALS["write"]).raise_for_status()
        answers = {
            ("POST", "/api/v1/incidents/{incident_id}/ack"): http.post(
                ack, headers=CREDENTIALS["admin"]
            ),
            ("GET", "/api/v1/alerts"): http.get("/api/v1/alerts"),
            ("POST", "/api/v1/silences"): http.post(
                "/api/v1/silences", json=SILENCE, headers=CREDENTIALS["read"]
            ),
            ("GET", "/api/v1/alerts/{alert_id}"): http.get(
                "/api/v1/alerts/999", headers=CREDENTIALS["read"]
            ),
            ("DELETE", "/api/v1/silences/{silence_id}"): http.delete(
                "/api/v1/silences/nope", headers=CREDENTIALS["write"]
            ),
            ("PUT", "/api/v1/silences/{silence_id}"): http.put(
                "/api/v1/silences/nope", json=SILENCE, headers=CREDENTIALS["write"]
            ),
            ("POST", "/api/v1/heartbeats"): http.post(
                "/api/v1/heartbeats",
                json={"name": "x", "period": "soon"},
                headers=CREDENTIALS["write"],
            ),
            ("POST", "/api/v1/incidents/{incident_id}/snooze"): http.post(
                "/api/v1/incidents/1/snooze", json={"duration": "8d"}, headers=CREDENTIALS["write"]
            ),
            ("GET", "/ping/{name}"): http.get("/ping/nightly"),
            ("POST", "/webhooks/{source}"): http.post("/webhooks/shop", json={}),
        }
        hub.config_path.write_text("[server\n")
        answers[("POST", "/-/reload")] = http.post("/-/reload", headers=CREDENTIALS["admin"])
    statuses = {key: answer.status_code for key, answer in answers.items()}
    assert statuses == {
        ("POST", "/api/v1/incidents/{incident_id}/ack"): 409,
        ("GET", "/api/v1/alerts"): 401,
        ("POST", "/api/v1/silences"): 403,
        ("GET", "/api/v1/alerts/{alert_id}"): 404,
        ("DELETE", "/api/v1/silences/{silence_id}"): 404,
        ("PUT", "/api/v1/silences/{silence_id}"): 404,
        ("POST", "/api/v1/heartbeats"): 422,
        ("POST", "/api/v1/incidents/{incident_id}/snooze"): 422,
        ("GET", "/ping/{name}"): 401,
        ("POST", "/webhooks/{source}"): 401,
        ("POST", "/-/reload"): 400,
    }
    assert answers[("POST", "/api/v1/heartbeats")].json()["field"] == "$.period"
    snoozed = answers[("POST", "/api/v1/incidents/{incident_id}/snooze")].json()
    assert snoozed["field"] == "$.duration"
    assert answers[("POST", "/-/reload")].json()["problems"]
    held = answers[("POST", "/api/v1/incidents/{incident_id}/ack")].json()
    assert (held["incident_status"], held["acknowledged_by"]) == ("acknowledged", "will")
    document = served(hub)
    for (method, path), answer in answers.items():
        declared = document["paths"][path][method.lower()]["responses"][str(answer.status_code)]
        missing = [name for name in declared.get("headers", {}) if name not in answer.headers]
        assert not missing, (method, path, missing)
        operation = api[path][method]
        operation.validate_response(answer)
        with pytest.raises(Failure):  # the check ran: a body without detail fails it
            operation.validate_response(without_detail(answer))


def without_detail(answer: httpx.Response) -> httpx.Response:
    body = {key: value for key, value in answer.json().items() if key != "detail"}
    content_type = {"content-type": answer.headers["content-type"]}
    forged = httpx.Response(
        answer.status_code, headers=content_type, json=body, request=answer.request
    )
    forged.elapsed = answer.elapsed
    return forged


def component(document: dict, schema: dict) -> dict:
    """The component a ``$ref`` schema names."""
    return document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]


def answer_components(document: dict, schema: dict) -> list[dict]:
    """The components an answer is: one, a list of one, or any one of several."""
    if "anyOf" in schema:
        return [found for arm in schema["anyOf"] for found in answer_components(document, arm)]
    return [component(document, schema.get("items", schema))]


def test_every_api_answer_is_a_closed_object_of_typed_fields(hub):
    """No answer of the API is left as "any object": each names its fields and their
    types (the other tests of the contract check real answers against them)."""
    document = served(hub)
    for (method, path), operation in operations(document).items():
        if not path.startswith(("/api/", "/-/", "/webhooks/{source}")) or path.endswith("/alerts"):
            continue
        for status, answer in operation["responses"].items():
            if status.startswith("2") and "content" in answer:  # an expiry answers no body
                schema = answer["content"]["application/json"]["schema"]
                for shape in answer_components(document, schema):
                    assert shape["additionalProperties"] is False, (method, path, status)
                    assert set(shape["required"]) <= set(shape["properties"]), shape["title"]


@pytest.mark.parametrize(
    ("path", "required"),
    [("/api/v1/silences", {"matchers", "comment"}), ("/api/v1/heartbeats", {"name", "period"})],
)
def test_bodies_read_by_their_handlers_are_documented_with_an_example(hub, path, required):
    document = served(hub)
    body = document["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    content = body["content"]["application/json"]
    schema = component(document, content["schema"])
    assert set(schema["required"]) == required
    assert schema["additionalProperties"] is False
    assert set(content["example"]) <= set(schema["properties"])
    with hub.client(headers=CREDENTIALS["write"]) as http:
        created = http.post(path, json=content["example"])
    assert created.status_code == 201, created.text
    schemathesis.openapi.from_dict(document)[path]["POST"].validate_response(created)


def admits_null(operation: dict) -> bool:
    """Whether the operation's JSON body may be ``null`` (its handler's ``data`` is
    ``X | None = None``)."""
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    return {"type": "null"} in body.get("schema", {}).get("oneOf", [])


def test_a_body_a_handler_does_without_is_documented_as_optional(hub):
    """Pause and resume, like an incident's ack, take no body at all (the CLI and a
    plain ``curl -X POST`` send none): a client generated from a document saying the
    body is required would refuse to call them without one."""
    found = {key: op for key, op in operations(served(hub)).items() if admits_null(op)}
    assert {
        ("post", "/api/v1/heartbeats/{name}/pause"),
        ("post", "/api/v1/heartbeats/{name}/resume"),
        ("post", "/api/v1/incidents/{incident_id}/ack"),
    } <= set(found)
    assert {key: op["requestBody"]["required"] for key, op in found.items()} == dict.fromkeys(
        found, False
    )
    with hub.client(headers=CREDENTIALS["write"]) as http:
        for action in ("pause", "resume"):
            done = http.post(f"/api/v1/heartbeats/nightly/{action}")
            assert done.status_code == 200, done.text


OUTSIDE_THE_DOCUMENT = ("/ack/", "/static/", "/schema", "/metrics")
"""Ack links and the console's files (pages for people), the document and its viewers,
and Prometheus' text format; the console's own pages are named ``console:...``."""


def test_every_route_is_in_the_document_unless_it_is_a_page_for_people():
    """What schemathesis reaches is what the document lists: a new endpoint left out
    of it (a ``include_in_schema=False``, a router of its own) fails here."""
    app = create_app(config.parse(MINIMAL, {})).app
    listed = operations(documented(app).to_schema())
    left_out = {
        (method.lower(), re.sub(r":\w+}", "}", route.path))
        for route in app.routes
        for handler in route.route_handlers
        for method in handler.http_methods - {"OPTIONS", "HEAD"}
        if not (handler.name or "").startswith("console:")
        and not route.path.startswith(OUTSIDE_THE_DOCUMENT)
    } - set(listed)
    assert not left_out, sorted(left_out)


def test_the_ack_link_is_a_page_for_people_and_not_in_the_api_document(hub):
    assert not [path for path in served(hub)["paths"] if path.startswith("/ack/")]


def test_webhook_answers_match_the_documented_schemas(hub):
    """hub's answer to a live and a test-mode source, a repeat's, PagerDuty's own and
    Prometheus' empty one: each is as documented, and a copy with a field too many is
    not. The empty one, at the source's plain path, broke the document's JSON 200."""
    operation = schemathesis.openapi.from_url(f"{hub.url}/schema/openapi.json")
    webhook = operation["/webhooks/{source}"]["POST"]
    pagerduty = {
        "routing_key": "r" * 32,
        "event_action": "trigger",
        "payload": {"summary": "db down", "source": "db1", "severity": "critical"},
    }
    once = {**AUTH, "Idempotency-Key": "delivery-1"}
    with hub.client() as http:
        answers = [
            http.post("/webhooks/shop", json=EVENTS[0], headers=once),
            http.post("/webhooks/shop", json=EVENTS[0], headers=once),
            http.post("/webhooks/rehearsal", json=EVENTS[1]),
            http.post("/webhooks/pd", json=pagerduty),
            http.post("/webhooks/prometheus", json=[{"labels": {"alertname": "DiskFull"}}]),
        ]
    assert [answer.status_code for answer in answers] == [202, 200, 202, 202, 200]
    assert answers[4].content == b""
    assert answers[2].json()["mode"] == "test" and answers[3].json()["status"] == "success"
    for answer in answers:
        webhook.validate_response(answer)
    forged = httpx.Response(202, json={**answers[0].json(), "extra": 1}, request=answers[0].request)
    forged.elapsed = answers[0].elapsed
    with pytest.raises(Failure):
        webhook.validate_response(forged)
