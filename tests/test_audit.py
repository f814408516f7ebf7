"""The audit log: every accepted delivery is kept as it arrived (minus credentials),
with what it was answered and what it did, and served at /api/v1/events."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from conftest import AUTH, BASE_CONFIG, mail_url

from hub.api_events import body_text
from hub.ingest import audit_headers

SIGNED = (
    BASE_CONFIG
    + """
[[sources]]
name = "payments"
[sources.auth]
type = "hmac"
secrets = ["pay-secret"]
header = "X-Payload-Digest"
"""
)

SECRET_HEADERS = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-hub-signature-256",
    "x-slack-signature",
    "x-shopify-hmac-sha256",
    "x-grafana-alerting-signature",
    "webhook-signature",
    "x-gitlab-token",
    "x-api-key",
]


@pytest.mark.parametrize("name", SECRET_HEADERS)
def test_credential_headers_of_every_scheme_are_not_kept(name):
    kept = audit_headers({name: "secret-value", "user-agent": "Alertmanager/0.25.0"})
    assert kept == {"user-agent": "Alertmanager/0.25.0"}


def test_the_header_a_source_signs_with_is_not_kept_whatever_its_name():
    headers = {"x-payload-digest": "abc", "content-type": "application/json"}
    assert audit_headers(headers, ["x-payload-digest"]) == {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"summary": "caf\xc3\xa9"}', ('{"summary": "café"}', False)),
        (b"\xff\xfe{}", (base64.b64encode(b"\xff\xfe{}").decode(), True)),
        (b"not json", (base64.b64encode(b"not json").decode(), True)),
    ],
    ids=["utf8-json", "not-utf8", "not-json"],
)
def test_a_body_is_shown_as_text_when_it_is_utf8_json_else_as_base64(body, expected):
    assert body_text(body) == expected


@pytest.fixture
def hub(hub_factory, smtp):
    _, smtp_port = smtp
    return hub_factory(SIGNED, mail_url=mail_url(smtp_port))


EVENT = '{"status": "firing", "summary": "disk full", "dedup_key": "disk"}'
BODY = f"[{EVENT},\n {EVENT}]"


def test_a_delivery_is_served_with_its_raw_body_answer_and_events(hub):
    headers = {**AUTH, "Content-Type": "application/json", "Idempotency-Key": "d-1"}
    with hub.client() as http:
        answer = http.post("/webhooks/shop", content=BODY, headers=headers).json()
        event = http.get(f"/api/v1/events/{answer['delivery_id']}").json()
    assert event["source"] == "shop"
    assert event["delivery_key"] == "d-1"
    assert event["received_at"].endswith("Z")
    assert (event["body"], event["body_base64"]) == (BODY, False)
    assert (event["status_code"], event["answer"]) == (202, answer)
    assert event["headers"]["idempotency-key"] == "d-1"
    assert "authorization" not in event["headers"]
    (alert,) = {a["id"] for a in answer["alerts"]}
    assert [(e["alert_id"], e["fingerprint"], e["outcome"]) for e in event["events"]] == [
        (alert, "shop/disk", "new"),
    ], "a repeat is counted in the answer but writes no event row (the cheap path)"
    assert answer["duplicates"] == 1


def test_recent_deliveries_are_listed_newest_first_without_bodies(hub):
    with hub.client() as http:
        for summary in ("first", "second"):
            event = {"status": "firing", "summary": summary}
            assert http.post("/webhooks/shop", json=event, headers=AUTH).status_code == 202
        listed = http.get("/api/v1/events", params={"source": "shop", "limit": 1}).json()
        assert http.get("/api/v1/events", params={"source": "payments"}).json() == []
        missing = http.get("/api/v1/events/999")
    (newest,) = listed
    assert "body" not in newest and "events" not in newest
    assert newest["answer"]["alerts"][0]["fingerprint"]
    assert newest["id"] == 2
    assert missing.status_code == 404


def test_a_signature_under_a_custom_header_never_reaches_the_api(hub):
    body = b'{"status": "firing", "summary": "card declined"}'
    digest = hmac.new(b"pay-secret", body, hashlib.sha256).hexdigest()
    headers = {"X-Payload-Digest": digest, "Content-Type": "application/json"}
    with hub.client() as http:
        answer = http.post("/webhooks/payments", content=body, headers=headers)
        assert answer.status_code == 202
        shown = http.get(f"/api/v1/events/{answer.json()['delivery_id']}").text
    assert digest not in shown
    assert "x-payload-digest" not in shown
