"""Shared by the console tests: a config with a token of each role, and signing in
over plain HTTP the way a browser's form post does."""

from __future__ import annotations

import re

import httpx
from conftest import AUTH, TLS_CONTEXT

CONSOLE_CONFIG = """
[server]
host = "127.0.0.1"
port = {port}

[storage]
path = "{db}"

[api]
tokens = [
  {{ name = "rita", token = "read-token", role = "read" }},
  {{ name = "will", token = "write-token", role = "write" }},
  {{ name = "ada", token = "admin-token", role = "admin" }},
]

[notifier]
max_attempts = {max_attempts}
backoff = "100ms"
max_backoff = "200ms"

[[sources]]
name = "shop"
format = "native"
auth = {{ type = "bearer", tokens = ["shop-secret-token"] }}

[[receivers]]
name = "ops"
urls = ["{mail_url}"]
timeout = "2s"

[route]
receiver = "ops"
group_by = ["service"]
group_wait = "0s"
group_interval = "200ms"
repeat_interval = "1h"
"""

_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def csrf_in(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(http: httpx.Client, token: str) -> httpx.Response:
    """Load the sign-in form (for its CSRF token and login cookie) and post it."""
    form = http.get("/login")
    return http.post("/login", data={"token": token, "_csrf": csrf_in(form.text), "next": "/"})


def fire(base_url: str, summary: str, **labels: str) -> dict:
    """Post one native event as the shop source; the answer's alert."""
    event = {"status": "firing", "summary": summary, "labels": {"service": "checkout", **labels}}
    answer = httpx.post(
        f"{base_url}/webhooks/shop", json=event, headers=AUTH, timeout=10, verify=TLS_CONTEXT
    )
    assert answer.status_code == 202, answer.text
    return answer.json()["alerts"][0]
