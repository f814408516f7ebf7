"""API access: bearer tokens with ordered roles guard every API path; probes stay open."""

from __future__ import annotations

import pytest
from conftest import BASE_CONFIG, mail_url

from hub import config
from hub.access import Guard
from hub.app import create_app
from hub.errors import ConfigError

TOKENS = """
[api]
tokens = [
  {{ name = "rita", token = "read-token", role = "read" }},
  {{ name = "will", token = "write-token", role = "write" }},
  {{ name = "ada", token = "admin-token", role = "admin" }},
  {{ name = "grafana", token = "grafana-token", role = "write", speaks_for_others = true }},
]
"""
WITH_TOKENS = BASE_CONFIG + TOKENS
CREDENTIALS = {
    "none": {},
    "unknown": {"Authorization": "Bearer who-knows"},
    "read": {"Authorization": "Bearer read-token"},
    "write": {"Authorization": "Bearer write-token"},
    "admin": {"Authorization": "Bearer admin-token"},
    "grafana": {"Authorization": "Bearer grafana-token"},
}
SILENCE = {"matchers": ['service="checkout"'], "duration": "1h", "comment": "deploy"}
ENDPOINTS = {
    "read": ("GET", "/api/v1/alerts", None),
    "write": ("POST", "/api/v1/silences", SILENCE),
    "admin": ("POST", "/-/reload", None),
}


@pytest.mark.parametrize(
    ("needs", "credential", "status"),
    [
        ("read", "none", 401),
        ("read", "unknown", 401),
        ("read", "read", 200),
        ("read", "write", 200),
        ("read", "admin", 200),
        ("write", "none", 401),
        ("write", "unknown", 401),
        ("write", "read", 403),
        ("write", "write", 201),
        ("write", "admin", 201),
        ("admin", "none", 401),
        ("admin", "unknown", 401),
        ("admin", "read", 403),
        ("admin", "write", 403),
        ("admin", "admin", 200),
    ],
)
def test_each_endpoint_class_admits_its_role_and_above(
    hub_factory, smtp, needs, credential, status
):
    hub = hub_factory(WITH_TOKENS, mail_url=mail_url(smtp[1]))
    method, path, body = ENDPOINTS[needs]
    with hub.client(headers=CREDENTIALS[credential]) as http:
        answer = http.request(method, path, json=body)
    assert answer.status_code == status, answer.text
    if status >= 400:
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "-token" not in answer.text
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_role_too_low_is_told_which_role_it_needs(hub_factory, smtp):
    hub = hub_factory(WITH_TOKENS, mail_url=mail_url(smtp[1]))
    with hub.client(headers=CREDENTIALS["read"]) as http:
        answer = http.post("/api/v1/silences", json=SILENCE)
    assert answer.status_code == 403
    assert answer.json()["detail"] == 'token "rita" has role read; this needs write or higher'


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/schema/openapi.json"])
def test_probes_metrics_and_schema_need_no_token(hub_factory, smtp, path):
    hub = hub_factory(WITH_TOKENS, mail_url=mail_url(smtp[1]))
    with hub.client() as http:
        assert http.get(path).status_code == 200


def test_without_tokens_the_read_api_is_open_and_changes_are_refused(hub_factory, smtp):
    hub = hub_factory(mail_url=mail_url(smtp[1]))
    with hub.client() as http:
        assert http.get("/api/v1/alerts").status_code == 200
        assert http.get("/api/v1/silences").status_code == 200
        for path, body in (("/api/v1/silences", SILENCE), ("/-/reload", None)):
            refused = http.post(path, json=body)
            assert refused.status_code == 403
            assert "[api] tokens" in refused.json()["detail"]


def guard_roles() -> dict[tuple[str, str], list[str]]:
    """The roles each API operation's guards need, by method and route path."""
    app = create_app(config.parse(MINIMAL, {})).app
    return {
        (method, route.path): [g.role for g in handler.guards or [] if isinstance(g, Guard)]
        for route in app.routes
        if route.path.startswith(("/api/", "/-/"))
        for handler in route.route_handlers
        for method in handler.http_methods - {"OPTIONS"}  # Litestar's own CORS preflight
    }


def test_every_api_handler_declares_the_role_it_needs():
    """A new API endpoint without a guard fails here rather than shipping open."""
    guarded = guard_roles()
    assert guarded[("GET", "/api/v1/alerts")] == ["read"]
    assert guarded[("DELETE", "/api/v1/silences/{silence_id:str}")] == ["write"]
    assert guarded[("POST", "/-/reload")] == ["admin"]
    for (method, path), roles in guarded.items():
        wanted = ["read"] if method == "GET" else ["write", "admin"]
        assert len(roles) == 1 and roles[0] in wanted, f"{method} {path} is guarded by {roles}"


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.parse(text, {})
    return caught.value.problems


MINIMAL = """
[[receivers]]
name = "ops"
urls = ["mailto://127.0.0.1:25?from=hub@example.com&to=ops@example.com"]

[route]
receiver = "ops"
"""


def test_token_entries_are_checked_with_their_table_and_key():
    text = (
        MINIMAL
        + """
[api]
tokens = [
  { name = "alice", token = "a", role = "read" },
  { name = "alice", token = "b", role = "write" },
  { name = "bob", token = "", role = "admin" },
  { name = "carol", token = "a", role = "read" },
]
"""
    )
    assert problems_of(text) == [
        'api.tokens[0] and tokens[1]: duplicate name "alice"',
        "api.tokens[2] (bob).token: must not be empty",
        'api.tokens[3] (carol).token: the same token as "alice"',
    ]


def test_an_unknown_role_is_named():
    text = MINIMAL + '[api]\ntokens = [{ name = "eve", token = "e", role = "root" }]\n'
    assert problems_of(text) == [
        "api.tokens[0] (eve).role: Invalid enum value 'root' (expected one of: read, write, admin)"
    ]


def test_check_config_warns_when_no_api_token_is_configured():
    found = config.warnings(config.parse(MINIMAL, {}))
    assert any(w.startswith("api.tokens: none configured") for w in found)
    with_token = MINIMAL + '[api]\ntokens = [{ name = "a", token = "t", role = "read" }]\n'
    assert config.warnings(config.parse(with_token, {})) == []
