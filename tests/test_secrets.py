"""No secret from the config ever shows: not in a log line (at debug level), an API
answer, an error body, the metrics, a console page or the CLI's output; whichever path
a request takes (good and bad credentials, bad payloads, notifications sent and
failing, an on-call person paged and failing, the Alertmanager API and the silence
calls of both APIs, heartbeats pinged, paused and resumed, deliveries read and
replayed, ack links, dead letters retried and dismissed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
from conftest import TLS_CONTEXT, free_port, wait_for
from console_support import csrf_in, sign_in
from hub_process import ROOT, hub_process
from logfmt_support import events

BEARER = "bearer-s3cret-1a2b"
BASIC_PASSWORD = "basic-s3cret-3c4d"
HMAC_SECRET = "hmac-s3cret-5e6f"
WHSEC_KEY = b"stdwh-s3cret-7g8h"
WHSEC = "whsec_" + base64.b64encode(WHSEC_KEY).decode()
API_TOKEN = "api-s3cret-9i0j"
MAIL_PASSWORD = "s3cretpw"
ACK_SECRET = "ack-s3cret-kl12"
PING_TOKEN = "ping-s3cret-mn34-cron"
HOOK_PATH = "hook-s3cret-wx56"  # a webhook's token in its URL's path, as Slack's are
PERSON_PASSWORD = "person-s3cret-yz78"  # in an on-call person's own URL
API_PING_TOKEN = "api-ping-s3cret-ab90"  # a heartbeat made through the API
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
    HOOK_PATH,
    PERSON_PASSWORD,
    API_PING_TOKEN,
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
  "json://127.0.0.1:{{closed}}/services/{HOOK_PATH}",
]
timeout = "2s"

[[schedules]]
name = "primary"
people = [{{ name = "alice", urls = ["json://alice:{PERSON_PASSWORD}@127.0.0.1:{{closed}}/page"] }}]
rotations = [{{ name = "always", participants = ["alice"], length = "1w", start = 2020-01-06 }}]

[[escalations]]
name = "page"
steps = [{{ after = "0s", notify = ["schedule:primary"] }}]

[route]
receiver = "ops"
group_by = ["source"]
group_wait = "0s"
group_interval = "200ms"
repeat_interval = "1h"
escalation = "page"
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
    seen += silence_calls(http, admin)
    seen += heartbeat_calls(http, admin)
    seen += audit_reads(http, admin)
    return shown(seen)


def shown(answers: list[httpx.Response]) -> list[str]:
    """Each answer as text: its status, headers and body."""
    return [f"{r.status_code} {dict(r.headers)} {r.text}" for r in answers]


def heartbeat_calls(http: httpx.Client, admin: dict[str, str]) -> list[httpx.Response]:
    """One made through the API with a token (again: 409), pinged with it, and the
    config's paused, resumed (again: 409) and read, by good and wrong tokens."""
    wrong = {"Authorization": "Bearer wrong"}
    made = {"name": "api-cron", "period": "1h", "token": API_PING_TOKEN}
    paused = {"reason": "host in maintenance\x1b[31m"}
    seen = [
        http.post("/api/v1/heartbeats", json=made, headers=admin),
        http.post("/ping/api-cron", headers={"Authorization": f"Bearer {API_PING_TOKEN}"}),
        http.get("/ping/api-cron/fail", params={"token": API_PING_TOKEN[:-1]}),
        http.post("/api/v1/heartbeats/cron/pause", json=paused, headers=admin),
        http.post("/api/v1/heartbeats/cron/pause", json=paused, headers=wrong),
        http.get("/api/v1/heartbeats/cron", headers=admin),
        http.post("/api/v1/heartbeats/cron/resume", headers=admin),
        http.post("/api/v1/heartbeats/cron/resume", headers=admin),
        http.get("/api/v1/heartbeats/api-cron", headers=admin),
    ]
    assert [r.status_code for r in seen[1:]] == HEARTBEAT_ANSWERS
    return seen


HEARTBEAT_ANSWERS = [200, 401, 200, 401, 200, 200, 409, 200]
"""Pinged, refused for a wrong token, paused, refused for a wrong token, shown,
resumed, refused as not paused, shown."""


def audit_reads(http: httpx.Client, admin: dict[str, str]) -> list[httpx.Response]:
    """The deliveries (their stored headers), one replayed, and the schedules (their
    people's URLs are secrets)."""
    listed = http.get("/api/v1/events", params={"limit": 1000}, headers=admin)
    one = [http.get(f"/api/v1/events/{d['id']}", headers=admin) for d in listed.json()]
    return [
        listed,
        *one,
        http.post(f"/api/v1/events/{listed.json()[-1]['id']}/replay", headers=admin),
        http.get("/api/v1/schedules", headers=admin),
        http.get("/api/v1/schedules/primary/oncall", headers=admin),
    ]


ACK_LINK = re.compile(r"https?://[^\s\"<>]+(/ack/[^\s\"<>]+)")
CONSOLE_PAGES = ("/", "/heartbeats", "/oncall", "/sources", "/notifications", "/silences")


def after_notifications(http: httpx.Client, admin: dict[str, str], mailbox) -> list[str]:
    """Once notifications went out and died: the ack link a message carries, clicked;
    the dead letters retried and dismissed; the console's pages and its heartbeat
    buttons, signed in with the admin token."""
    texts = [mailbox.text_of(i) for i in range(len(mailbox.messages))]
    link = next(found.group(1) for text in texts if (found := ACK_LINK.search(text)))
    dead = http.get("/api/v1/notifications", params={"state": "dead"}, headers=admin).json()
    seen = [http.get(link), http.post(link)]
    seen += [http.post(f"/api/v1/notifications/{n['id']}/retry", headers=admin) for n in dead]
    seen += [http.post(f"/api/v1/notifications/{n['id']}/dismiss", headers=admin) for n in dead]
    with httpx.Client(base_url=http.base_url, timeout=30, verify=TLS_CONTEXT) as browser:
        seen.append(sign_in(browser, API_TOKEN))
        incidents = http.get("/api/v1/incidents", headers=admin).json()
        pages = [*CONSOLE_PAGES, *(f"/incidents/{i['id']}" for i in incidents), "/deliveries/1"]
        seen += [browser.get(page) for page in pages]
        csrf = csrf_in(seen[-1].text)
        for action in ("pause", "resume"):
            form = {"_csrf": csrf, "reason": "console pause"}
            seen.append(browser.post(f"/heartbeats/cron/{action}", data=form))
    assert [r.status_code for r in seen[:2] + seen[-2:]] == [200, 303, 303, 303], shown(seen)
    return shown(seen)


V2_READS = ("status", "receivers", "alerts", "alerts/groups", "silences")
"""Alertmanager's ``/api/v2/status`` answers its whole config (``config.original``),
receivers' URLs and all; hub's must name its receivers and nothing more."""
SILENCE_ANSWERS = [200, 200, 403, 400, 401, 200, 422, 401, 200, 200, 409, 409, 404]
"""Made, changed, refused (another author, not JSON, a wrong token), changed through
the other API, refused (a bad duration, a wrong token), shown, expired, refused as
expired by each API, unknown."""


def silence_calls(http: httpx.Client, admin: dict[str, str]) -> list[httpx.Response]:
    """The Alertmanager API's reads and the silence calls of both APIs, each answered,
    refused as invalid and refused for its token."""
    wrong = {"Authorization": "Bearer wrong"}
    seen = [
        http.get(f"/api/v2/{path}", headers=headers)
        for path in V2_READS
        for headers in (admin, wrong)
    ]
    seen += [
        http.get(
            "/api/v2/alerts", params={"filter": 'team=~"("', "receiver": "ops"}, headers=admin
        ),
        http.get("/api/v2/alerts/groups", params={"receiver": "("}, headers=admin),
        http.get("/api/v1/silences", params={"matcher": 'team="pay"'}, headers=admin),
        http.get("/api/v1/silences", params={"matcher": "team"}, headers=admin),
    ]
    now = datetime.now(UTC)
    am_silence = {
        "matchers": [{"name": "team", "value": "pay", "isRegex": False}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "admin",
        "comment": "secrets audit",
    }
    made = http.post("/api/v2/silences", json=am_silence, headers=admin)
    silence_id = made.json()["silenceID"]
    one = f"/api/v1/silences/{silence_id}"
    changed = {"matchers": ['team="pay"'], "duration": "2h", "comment": "longer"}
    seen += [
        made,
        http.post("/api/v2/silences", json={**am_silence, "id": silence_id}, headers=admin),
        http.post("/api/v2/silences", json={**am_silence, "createdBy": "x"}, headers=admin),
        http.post("/api/v2/silences", content=b"{", headers=admin),
        http.post("/api/v2/silences", json=am_silence, headers=wrong),
        http.put(one, json=changed, headers=admin),
        http.put(one, json={**changed, "duration": "soon"}, headers=admin),
        http.put(one, json=changed, headers=wrong),
        http.get(f"/api/v2/silence/{silence_id}", headers=admin),
        http.delete(f"/api/v2/silence/{silence_id}", headers=admin),
        http.delete(f"/api/v2/silence/{silence_id}", headers=admin),
        http.put(one, json=changed, headers=admin),
        http.get("/api/v2/silence/nope", headers=admin),
    ]
    assert [r.status_code for r in seen[-len(SILENCE_ANSWERS) :]] == SILENCE_ANSWERS
    assert '- name: "ops"' in seen[0].json()["config"]["original"], "the sketch names it"
    return seen


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
    config = CONFIG.replace("{smtp}", str(smtp_port)).replace("{closed}", str(free_port()))
    hub = hub_process(tmp_path, config)
    hub.start(env={**ENV, "HOME": str(tmp_path)}, args=("--log-level", "debug"))
    answers: list[str] = []
    try:
        with hub.client() as http:
            answers += drive(http)
            admin = {"Authorization": f"Bearer {API_TOKEN}"}
            wait_for(lambda: _settled(http, admin), timeout=60)
            answers += drive(http)
            answers += after_notifications(http, admin, mailbox)
        assert mailbox.messages, "no notification was sent"
        answers += cli_outputs(hub.url)
    finally:
        hub.stop()
    checked = _check_config_output(tmp_path, hub.config_path.read_text())
    assert not leaks(answers), leaks(answers)[:5]
    assert not leaks([checked]), leaks([checked])[:5]
    log = hub.log().splitlines()
    assert any("notification_dead" in line for line in log), "the failing channel never failed"
    assert not leaks(log), leaks(log)[:5]


def _settled(http: httpx.Client, admin: dict[str, str]) -> bool:
    """A notification was sent, and the webhook's and the on-call person's
    dead-lettered (their failures' text quoting the URLs they could not reach): every
    path has run."""
    notes = http.get("/api/v1/notifications", headers=admin).json()
    states = {(n["receiver"], n["integration"], n["state"]) for n in notes}
    wanted = {("ops", "mailto", "sent"), ("ops", "json", "dead")}
    return wanted | {("schedule:primary/alice", "json", "dead")} <= states


CLI_CALLS = [
    ("heartbeat", "list"),
    ("heartbeat", "pause", "cron", "--reason", "deploy"),
    ("heartbeat", "resume", "cron"),
    ("heartbeat", "resume", "cron"),
    ("oncall", "primary"),
]


def cli_outputs(url: str) -> list[str]:
    """What the CLI prints for the heartbeat and on-call commands, answered and refused
    (a resume of one not paused, and a wrong token)."""
    outputs = []
    for args, token in [*((args, API_TOKEN) for args in CLI_CALLS), (CLI_CALLS[0], "wrong")]:
        result = subprocess.run(
            [sys.executable, "-m", "hub", "--url", url, *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HUB_TOKEN": token},
        )
        outputs.append(f"{args} {result.returncode} {result.stdout} {result.stderr}")
    return outputs


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


PROM_TOKEN = "SECRETpromTOKEN222"
SMTP_PASSWORD = "smtp-s3cret-op56"
ALGORITHM = "algorithm-s3cret-qr78"
PUBLIC_PATH = "path-s3cret-st90"
INLINE_TOKEN = "inline-s3cret-uv12"
SLACK_TOKEN = "slack-s3cret-wx34"  # Apprise refuses it, quoting it in its own log line
CONFIG_ENV = {
    "PROM_TOKEN": PROM_TOKEN,
    "SMTP_PASSWORD": SMTP_PASSWORD,
    "HUB_ALGORITHM": ALGORITHM,
    "HUB_PUBLIC_URL": f"https://hub.example.com/{PUBLIC_PATH}",
    "SLACK_TOKEN": SLACK_TOKEN,
}
CONFIG_SECRETS = [PROM_TOKEN, SMTP_PASSWORD, ALGORITHM, PUBLIC_PATH, INLINE_TOKEN, SLACK_TOKEN]

RELOADABLE = f"""
[server]
host = "127.0.0.1"
port = {{port}}

[storage]
path = "{{db}}"

[api]
tokens = [{{ name = "deploy", token = "{API_TOKEN}", role = "admin" }}]

[[receivers]]
name = "ops"
urls = ["logfile://notifications.log"]

[route]
receiver = "ops"
"""
MISTAKES = f"""
[[sources]]
name = "prom"
auth = {{ type = "bearer", tokens = "${{PROM_TOKEN}}" }}

[[sources]]
name = "signed"
auth = {{ type = "hmac", secrets = ["s"], header = "X-Sig", algorithm = "${{HUB_ALGORITHM}}" }}

[[sources]]
name = "inline"
auth = {{ type = "bearer", tokens = "{INLINE_TOKEN}" }}

[[receivers]]
name = "mail"
urls = "mailtos://hub:${{SMTP_PASSWORD}}@mail.example.com"

[[receivers]]
name = "chat"
urls = ["slack://T1/${{SLACK_TOKEN}}/T3"]
"""
NAMED_NOT_QUOTED = [
    "sources[0] (prom).auth.tokens: Expected `array`, got a string from ${PROM_TOKEN}",
    "sources[1] (signed).auth.algorithm: Invalid enum value, got a string from ${HUB_ALGORITHM}"
    " (expected one of: sha256, sha512)",
    "sources[2] (inline).auth.tokens: Expected `array`, got a string"
    " (not shown: it may hold a secret)",
    "receivers[1] (mail).urls: Expected `array`, got a string from ${SMTP_PASSWORD}",
    "receivers[2] (chat).urls[0]: Apprise cannot load this 'slack' URL (from ${SLACK_TOKEN})",
]


def test_config_problems_name_the_variable_a_value_came_from_never_the_value(tmp_path):
    """A wrong value from ``${VAR}`` is described by its variable, and one where secrets
    go is not quoted even when written inline: in the reload's answer, its log line and
    ``hub check-config``. The problems used to quote the token and the mail password,
    and the log held Apprise's own line quoting the Slack token of a URL it refused."""
    hub = hub_process(tmp_path, RELOADABLE)
    hub.start(env=CONFIG_ENV)
    broken = hub.config_path.read_text().replace(
        "[server]", '[server]\npublic_url = "${HUB_PUBLIC_URL}"'
    )
    hub.config_path.write_text(broken + MISTAKES)
    try:
        with hub.client() as http:
            answer = http.post("/-/reload", headers={"Authorization": f"Bearer {API_TOKEN}"})
    finally:
        hub.stop()
    assert answer.status_code == 400
    problems = answer.json()["problems"]
    assert set(NAMED_NOT_QUOTED) <= set(problems), problems
    assert any(p.endswith("got '${HUB_PUBLIC_URL}'") for p in problems), problems
    [line] = [e for e in events(hub.log(), "config_reload") if e["outcome"] == "failure"]
    assert line["problems"] == "; ".join(problems)
    checked = _check_config(tmp_path, hub.config_path.name)
    assert all(f"  - {problem}" in checked for problem in problems), checked
    texts = [answer.text, hub.log(), checked]
    assert not [s for s in CONFIG_SECRETS for text in texts if s in text]


def _check_config(tmp_path, name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "hub", "check-config", name],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **CONFIG_ENV},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout + result.stderr
