"""OPTIONS and a 405 name the same methods for a path, all of them: those of every
handler the path has, HEAD wherever GET is, OPTIONS itself; and HEAD is served
wherever GET is, as the GET without its body (RFC 9110)."""

from __future__ import annotations

import re

import pytest
from conftest import AUTH, BASE_CONFIG, mail_url
from test_access import CREDENTIALS, TOKENS

HEARTBEAT = """
[[heartbeats]]
name = "nightly"
period = "1d"
"""
ALLOWED = {
    "/api/v1/incidents/1/ack": "OPTIONS, POST",
    "/api/v1/silences": "GET, HEAD, OPTIONS, POST",
    "/api/v1/silences/abc": "DELETE, GET, HEAD, OPTIONS, PUT",
    "/api/v1/heartbeats/nightly": "DELETE, GET, HEAD, OPTIONS",
    "/webhooks/shop": "OPTIONS, POST",
    "/webhooks/shop/api/v2/alerts": "OPTIONS, POST",
    "/ping/nightly": "GET, HEAD, OPTIONS, POST",
    "/healthz": "GET, HEAD, OPTIONS",
    "/metrics": "GET, HEAD, OPTIONS",
    "/-/reload": "OPTIONS, POST",
    "/incidents/1/ack": "GET, HEAD, OPTIONS, POST",
}
"""Each path with every method it takes: the API's, the webhooks' (answered in front of
Litestar), the pings', the probes' and a console form's (POST, and GET for its page)."""


@pytest.fixture
def hub(hub_factory, smtp):
    return hub_factory(BASE_CONFIG + TOKENS + HEARTBEAT, mail_url=mail_url(smtp[1]))


def test_options_and_a_wrong_method_name_every_method_of_the_path_alike(hub):
    """A client (or a CORS preflight) asks with OPTIONS and needs no token; a PATCH,
    which no path takes, gets the same list in its 405."""
    with hub.client() as http:
        asked = {path: http.options(path) for path in ALLOWED}
        refused = {path: http.patch(path, headers=AUTH) for path in ALLOWED}
        unknown = http.options("/api/v1/nothing-here")
    assert {path: answer.status_code for path, answer in asked.items()} == dict.fromkeys(
        ALLOWED, 204
    )
    assert {path: answer.headers["allow"] for path, answer in asked.items()} == ALLOWED
    assert all(answer.content == b"" for answer in asked.values())
    assert {path: answer.headers["allow"] for path, answer in refused.items()} == ALLOWED
    for path, answer in refused.items():
        assert answer.status_code == 405, path
        takes = ALLOWED[path].replace("OPTIONS, ", "").replace(", OPTIONS", "")
        if path.startswith(("/api/", "/webhooks/", "/ping/", "/-/")):
            assert answer.json()["detail"] == f"PATCH is not allowed on {path}; it takes {takes}"
        else:
            assert f"PATCH is not allowed on {path}; it takes {takes}" in answer.text, path
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("path", "credential"),
    [("/api/v1/alerts", "read"), ("/api/v1/heartbeats/nightly", "read"), ("/metrics", "none")],
)
def test_head_is_the_get_without_its_body_wherever_get_is(hub, path, credential):
    with hub.client(headers=CREDENTIALS[credential]) as http:
        got, head = http.get(path), http.head(path)
        unauthorized = http.head(path, headers={"Authorization": "Bearer who-knows"})
    assert (got.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    if credential != "none":
        assert head.headers["content-length"] == got.headers["content-length"]
        assert unauthorized.status_code == 401, "guarded as the GET is"
        assert "www-authenticate" in unauthorized.headers


def test_every_documented_path_takes_options_and_head_as_its_get(hub):
    """The served document's paths, the Alertmanager API's included: OPTIONS lists the
    methods documented for the path (HEAD wherever GET is), and HEAD answers as the
    GET does, status and headers, without the body."""
    with hub.client(headers=CREDENTIALS["admin"]) as http:
        document = http.get("/schema/openapi.json").json()
        for template, item in document["paths"].items():
            path = re.sub(r"{\w+}", "1", template)
            documented = {method.upper() for method in item} | {"OPTIONS"}
            if "GET" in documented:
                documented.add("HEAD")
            allowed = http.options(path).headers["allow"]
            assert allowed == ", ".join(sorted(documented)), template
            if "GET" in documented:
                got, head = http.get(path), http.head(path)
                assert (head.status_code, head.content) == (got.status_code, b""), template
                assert head.headers["content-type"] == got.headers["content-type"], template
