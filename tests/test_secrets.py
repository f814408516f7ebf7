"""No secret from the config ever shows: not in a log line (at debug level), an API
answer, an error body, the metrics or ``hub check-config``'s output; whichever path a
request takes (good and bad credentials, bad payloads, notifications sent and
failing)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time

import httpx
from conftest import wait_for
from hub_process import ROOT, hub_process

BEARER = "bearer-s3cret-1a2b"
BASIC_PASSWORD = "basic-s3cret-3c4d"
HMAC_SECRET = "hmac-s3cret-5e6f"
WHSEC_KEY = b"stdwh-s3cret-7g8h"
WHSEC = "whsec_" + base64.b64encode(WHSEC_KEY).decode()
API_TOKEN = "api-s3cret-9i0j"
MAIL_PASSWORD = "s3cretpw"
ACK_SECRET = "ack-s3cret-kl12"
PING_TOKEN = "ping-s3cret-mn34-cron"
SECRETS = [
    BEARER,
    BASIC_PASSWORD,
    HMAC_SECRET,
    WHSEC,
    WHSEC.removeprefix("whsec_"),
    WHSEC_KEY.decode(),
    API_TOKEN,
    MAIL_PASSWORD,
    ACK_SECRET,
    PING_TOKEN,
]
ENV = {"HUB_TEST_BEARER": BEARER, "HUB_TEST_MAIL_PASSWORD": MAIL_PASSWORD}

CONFIG = f"""
[server]
host = "127.0.0.1"
port = {{port}}
ack_secret = "{ACK_SECRET}"

[storage]
path = "{{db}}"

[api]
tokens = [{{ name = "admin", token = "{API_TOKEN}", role = "admin" }}]

[notifier]
max_attempts = 2
backoff = "100ms"
max_backoff = "200ms"

[[sources]]
name = "bearer"
auth = {{ type = "bearer", tokens = ["${{HUB_TEST_BEARER}}"] }}

[[sources]]
name = "basic"
auth = {{ type = "basic", credentials = [{{ username = "alice", password = "{BASIC_PASSWORD}" }}] }}

[[sources]]
name = "hmac"
auth = {{ type = "hmac", secrets = ["{HMAC_SECRET}"], header = "X-Signature" }}

[[sources]]
name = "whsec"
auth = {{ type = "standard-webhooks", secrets = ["{WHSEC}"] }}

[[heartbeats]]
name = "cron"
period = "1h"
token = "{PING_TOKEN}"

[[receivers]]
name = "ops"
urls = [
  "mailto://127.0.0.1:{{smtp}}?from=hub@example.com&to=ops@example.com&mode=insecure",
  "mailto://user:${{HUB_TEST_MAIL_PASSWORD}}@127.0.0.1:{{smtp}}?from=hub@example.com&to=ops@example.com&mode=insecure",
]
timeout = "2s"

[route]
receiver = "ops"
group_by = ["source"]
group_wait = "0s"
group_interval = "200ms"
repeat_interval = "1h"
"""

EVENT = {"status": "firing", "summary": "payment failures", "labels": {"team": "pay"}}


def signed_hmac(body: bytes) -> dict[str, str]:
    return {"X-Signature": hmac.new(HMAC_SECRET.encode(), body, hashlib.sha256).hexdigest()}


def signed_whsec(body: bytes, delivery: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(WHSEC_KEY, f"{delivery}.{stamp}.".encode() + body, hashlib.sha256)
    return {
        "webhook-id": delivery,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest.digest()).decode(),
    }


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"alice:{password}".encode()).decode()}


def drive(http: httpx.Client) -> list[str]:
    """Every kind of request; returns every answer as text (headers and body)."""
    seen: list[httpx.Response] = []

    def post(path: str, body: bytes, headers: dict[str, str]) -> None:
        headers = {"Content-Type": "application/json", **headers}
        seen.append(http.post(path, content=body, headers=headers))

    for n, (source, good) in enumerate(_credentials().items()):
        body = json.dumps({**EVENT, "labels": {"source": source}}).encode()
        post(f"/webhooks/{source}", body, good(body, f"d{n}"))
        post(f"/webhooks/{source}", b'{"status": "nope"}', good(b'{"status": "nope"}', f"e{n}"))
        post(f"/webhooks/{source}", body, {"Authorization": "Bearer wrong"})
        post(f"/webhooks/{source}", body, {})
    post("/webhooks/basic", b"{}", basic(BASIC_PASSWORD[:-1]))
    post("/webhooks/hmac", b"{}", {"X-Signature": "zz"})
    post("/webhooks/whsec", b"{}", {**signed_whsec(b"{}", "x"), "webhook-signature": "v1,!!"})
    admin = {"Authorization": f"Bearer {API_TOKEN}"}
    for path in (
        "/api/v1/alerts",
        "/api/v1/incidents",
        "/api/v1/notifications",
        "/api/v1/silences",
        "/schema/openapi.json",
        "/metrics",
        "/readyz",
        "/ack/not-a-token",
    ):
        seen.append(http.get(path, headers=admin))
        seen.append(http.get(path, headers={"Authorization": "Bearer wrong"}))
    seen.append(http.post("/-/reload", headers=admin))
    seen.append(http.get("/ping/cron", params={"token": PING_TOKEN}))
    seen.append(http.post("/ping/cron/start", headers={"Authorization": f"Bearer {PING_TOKEN}"}))
    seen.append(http.get("/ping/cron/fail", params={"token": PING_TOKEN + "x"}))
    seen.append(http.get("/api/v1/heartbeats", headers=admin))
    return [f"{r.status_code} {dict(r.headers)} {r.text}" for r in seen]


def _credentials():
    return {
        "bearer": lambda body, _: {"Authorization": f"Bearer {BEARER}"},
        "basic": lambda body, _: basic(BASIC_PASSWORD),
        "hmac": lambda body, _: signed_hmac(body),
        "whsec": lambda body, delivery: signed_whsec(body, f"msg_{delivery}"),
    }


def leaks(texts: list[str]) -> list[str]:
    return [
        f"{secret!r} in {text[:300]!r}" for text in texts for secret in SECRETS if secret in text
    ]


def test_no_secret_shows_in_logs_answers_metrics_or_check_config(tmp_path, smtp):
    mailbox, smtp_port = smtp
    hub = hub_process(tmp_path, CONFIG.replace("{smtp}", str(smtp_port)))
    hub.start(env={**ENV, "HOME": str(tmp_path)}, args=("--log-level", "debug"))
    answers: list[str] = []
    try:
        with hub.client() as http:
            answers += drive(http)
            admin = {"Authorization": f"Bearer {API_TOKEN}"}
            wait_for(lambda: _settled(http, admin), timeout=60)
            answers += drive(http)
        assert mailbox.messages, "no notification was sent"
    finally:
        hub.stop()
    checked = _check_config_output(tmp_path, hub.config_path.read_text())
    assert not leaks(answers), leaks(answers)[:5]
    assert not leaks([checked]), leaks([checked])[:5]
    log = hub.log().splitlines()
    assert any("notification_dead" in line for line in log), "the failing channel never failed"
    assert not leaks(log), leaks(log)[:5]


def _settled(http: httpx.Client, admin: dict[str, str]) -> bool:
    """A notification was sent and another dead-lettered: both paths have run."""
    notes = http.get("/api/v1/notifications", headers=admin).json()
    states = {n["state"] for n in notes}
    return {"sent", "dead"} <= states


def _check_config_output(tmp_path, text: str) -> str:
    broken = text.replace("[server]", '[server]\ncolour = "blue"').replace(
        'header = "X-Signature"', 'header = "X-Signature", algorithm = "md5"'
    )
    (tmp_path / "broken.toml").write_text(broken)
    result = subprocess.run(
        [sys.executable, "-m", "hub", "check-config", "broken.toml"],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **ENV},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "server.colour" in result.stderr
    return result.stdout + result.stderr
