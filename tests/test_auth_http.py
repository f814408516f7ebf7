"""Every sender auth scheme and every limit over real HTTP: a valid request passes, each
kind of refusal gets its status and a detail the sender can act on, is counted, and
changes nothing; a replayed delivery id is answered once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from conftest import AUTH, BASE_CONFIG, mail_url, wait_for
from test_bad_input import stored_rows
from test_metrics_catalogue import label_values

BODY = b'{"status": "firing", "summary": "payment provider timing out"}'
OTHER_BODY = b'{"status": "firing", "summary": "something else entirely"}'
STANDARD_KEY = b"0123456789abcdef0123456789abcdef"
OLD_STANDARD_KEY = b"fedcba9876543210fedcba9876543210"

SOURCES = (
    BASE_CONFIG
    + f"""
[[sources]]
name = "bearer"
[sources.auth]
type = "bearer"
tokens = ["new-token"]

[[sources]]
name = "basic"
[sources.auth]
type = "basic"
[[sources.auth.credentials]]
username = "am"
password = "new-password"

[[sources]]
name = "github"
[sources.auth]
type = "hmac"
secrets = ["new-secret"]
header = "X-Hub-Signature-256"
prefix = "sha256="
id_header = "X-GitHub-Delivery"

[[sources]]
name = "standard"
[sources.auth]
type = "standard-webhooks"
secrets = ["whsec_{base64.b64encode(STANDARD_KEY).decode()}"]

[[sources]]
name = "limited"
max_body_bytes = 200
[sources.auth]
type = "none"

[[sources]]
name = "throttled"
rate_limit = 0.01
burst = 1
[sources.auth]
type = "none"

[[sources]]
name = "guarded"
rate_limit = 0.01
burst = 1
[sources.auth]
type = "bearer"
tokens = ["new-token"]
"""
)

Signer = Callable[..., dict[str, str]]


def bearer(body: bytes, secret: str = "new-token", **_: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def basic(body: bytes, secret: str = "new-password", **_: object) -> dict[str, str]:
    credentials = base64.b64encode(f"am:{secret}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def github(
    body: bytes, secret: str = "new-secret", delivery: str = "gh-1", **_: object
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": delivery}


def standard(
    body: bytes,
    secret: bytes = STANDARD_KEY,
    delivery: str = "msg_1",
    timestamp: float | None = None,
) -> dict[str, str]:
    stamp = str(int(time.time() if timestamp is None else timestamp))
    content = f"{delivery}.{stamp}.".encode() + body
    signature = base64.b64encode(hmac.new(secret, content, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": delivery,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{signature}",
    }


def svix(body: bytes, **keys: object) -> dict[str, str]:
    """Svix's names for the same signed headers."""
    return {name.replace("webhook-", "svix-"): v for name, v in standard(body, **keys).items()}


# What a refused sender is told to send (RFC 9110: every 401 has a challenge).
CHALLENGES = {
    "bearer": 'Bearer realm="hub"',
    "basic": 'Basic realm="hub", charset="UTF-8"',
    "github": 'HMAC-SHA256 realm="hub", header="X-Hub-Signature-256"',
    "standard": 'Standard-Webhooks realm="hub"',
}

SCHEMES: dict[str, tuple[Signer, object]] = {
    "bearer": (bearer, "old-token"),
    "basic": (basic, "old-password"),
    "github": (github, "old-secret"),
    "standard": (standard, OLD_STANDARD_KEY),
}


Headers = Callable[[], dict[str, str]]
"""Signed when the test runs, not when the suite is collected: a loaded run can reach a
test more than the 5 minutes of standard-webhooks' tolerance after collection, and a
stale signature is refused as stale whatever else the test meant to get wrong."""


def wrong_signature(name: str) -> dict[str, str]:
    """Signed for another body, or with a guessed secret where the scheme signs none."""
    sign, _ = SCHEMES[name]
    if name in ("bearer", "basic"):
        return sign(BODY, secret="guessed")
    other = {k: v for k, v in sign(OTHER_BODY).items() if "id" not in k.lower()}
    return {**sign(BODY), **other}


def missing_credential(name: str) -> dict[str, str]:
    """Every header but the one carrying the token, password or signature."""
    headers = SCHEMES[name][0](BODY)
    credential = next(k for k in headers if k.lower() not in ("x-github-delivery", "webhook-id"))
    return {k: v for k, v in headers.items() if k != credential}


def stale_signature() -> dict[str, str]:
    """Signed an hour ago: outside the default tolerance of 5 minutes."""
    return standard(BODY, timestamp=time.time() - 3600)


def refusals() -> Iterator:
    """(source, headers, detail the sender is told) for each way a request can fail."""
    for name, (sign, old_secret) in SCHEMES.items():
        yield pytest.param(
            name,
            partial(wrong_signature, name),
            "not valid|does not match|no signature",
            id=f"{name}-wrong",
        )
        yield pytest.param(
            name, partial(missing_credential, name), "missing header", id=f"{name}-missing-header"
        )
        yield pytest.param(
            name,
            partial(sign, BODY, secret=old_secret),
            "not valid|does not match|no signature",
            id=f"{name}-rotated-out",
        )
    yield pytest.param("standard", stale_signature, "outside the tolerance", id="standard-stale")


@pytest.fixture
def hub(hub_factory, smtp):
    _, smtp_port = smtp
    return hub_factory(SOURCES, mail_url=mail_url(smtp_port))


def settled_rows(db) -> dict[str, int]:
    """Row counts once the accepted alert's notification is queued (it is asynchronous)."""
    return wait_for(lambda: (rows := stored_rows(db))["notifications"] == 1 and rows)


def post(hub, source: str, headers: dict[str, str], content: bytes = BODY, **kwargs):
    with hub.client() as http:
        return http.post(
            f"/webhooks/{source}",
            content=content,
            headers={"Content-Type": "application/json", **headers},
            **kwargs,
        )


@pytest.mark.parametrize("source", SCHEMES)
def test_a_valid_request_of_every_scheme_is_accepted(hub, source):
    sign, _ = SCHEMES[source]
    answer = post(hub, source, sign(BODY))
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 1


def test_each_source_has_the_auth_failure_series_its_auth_type_can_count(hub):
    with hub.client() as http:
        metrics = http.get("/metrics").text
    reasons: dict[str, set[str]] = {}
    for (source, reason), value in label_values(
        metrics, "hub_auth_failures_total", "source", "reason"
    ).items():
        assert value == 0
        reasons.setdefault(source, set()).add(reason)
    signatures = {
        "missing_header",
        "malformed_header",
        "timestamp_outside_tolerance",
        "signature_mismatch",
    }
    assert reasons == {
        "shop": {"missing_header", "malformed_header", "bad_token"},
        "bearer": {"missing_header", "malformed_header", "bad_token"},
        "guarded": {"missing_header", "malformed_header", "bad_token"},
        "basic": {"missing_header", "malformed_header", "bad_credentials"},
        "github": signatures - {"timestamp_outside_tolerance"},
        "standard": signatures,
    }, "none sources (limited, throttled) have no failure, an hmac one signing no time no stale one"


@pytest.mark.parametrize(("source", "headers", "detail"), list(refusals()))
def test_a_refused_request_gets_401_with_its_challenge_and_a_helpful_detail_and_changes_nothing(
    hub, tmp_path, source, headers: Headers, detail
):
    before = stored_rows(tmp_path / "hub.db")
    answer = post(hub, source, headers())
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == CHALLENGES[source]
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert any(phrase in answer.json()["detail"] for phrase in detail.split("|")), answer.text
    assert stored_rows(tmp_path / "hub.db") == before
    with hub.client() as http:
        metrics = http.get("/metrics").text
    unauthorized = f'hub_webhooks_received_total{{outcome="unauthorized",source="{source}"}} 1.0'
    assert unauthorized in metrics
    assert "hub_auth_failures_total{reason=" in metrics


@pytest.mark.parametrize(
    ("source", "headers"),
    [
        ("bearer", lambda: {**bearer(BODY), "Idempotency-Key": "retry-1"}),
        ("basic", lambda: {**basic(BODY), "Idempotency-Key": "retry-1"}),
        ("github", partial(github, BODY, delivery="gh-replayed")),
        ("standard", partial(standard, BODY, delivery="msg_replayed")),
    ],
)
def test_a_replayed_delivery_id_is_answered_once(hub, tmp_path, source, headers: Headers):
    headers = headers()
    first = post(hub, source, headers)
    after_first = settled_rows(tmp_path / "hub.db")
    second = post(hub, source, headers)
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == first.json()
    assert stored_rows(tmp_path / "hub.db") == after_first


@pytest.mark.parametrize(
    ("source", "first", "reused", "header"),
    [
        (
            "bearer",
            lambda: {**bearer(BODY), "Idempotency-Key": "retry-1"},
            lambda: {**bearer(OTHER_BODY), "Idempotency-Key": "retry-1"},
            "Idempotency-Key 'retry-1'",
        ),
        (
            "github",
            partial(github, BODY, delivery="gh-reused"),
            partial(github, OTHER_BODY, delivery="gh-reused"),
            "X-GitHub-Delivery 'gh-reused'",
        ),
        (
            "standard",
            partial(standard, BODY, delivery="msg_reused"),
            partial(standard, OTHER_BODY, delivery="msg_reused"),
            "webhook-id 'msg_reused'",
        ),
        (
            "standard",
            partial(svix, BODY, delivery="msg_reused"),
            partial(svix, OTHER_BODY, delivery="msg_reused"),
            "svix-id 'msg_reused'",
        ),
    ],
)
def test_a_delivery_id_sent_again_with_another_body_gets_422_naming_it(
    hub, tmp_path, source, first: Headers, reused: Headers, header
):
    assert post(hub, source, first()).status_code == 202
    after_first = settled_rows(tmp_path / "hub.db")
    answer = post(hub, source, reused(), OTHER_BODY)
    assert answer.status_code == 422, answer.text
    assert header in answer.json()["detail"]
    assert stored_rows(tmp_path / "hub.db") == after_first


def chunked(content: bytes) -> Iterator[bytes]:
    """A body sent without Content-Length, so only the streamed size can refuse it."""
    for start in range(0, len(content), 64):
        yield content[start : start + 64]


BIG = b'{"status": "firing", "summary": "' + b"x" * 300 + b'"}'


@pytest.mark.parametrize(
    ("source", "headers", "content", "status", "detail", "outcome"),
    [
        ("limited", {}, BIG, 413, "limit of 200 bytes", "too_large"),
        ("limited", {}, chunked(BIG), 413, "limit of 200 bytes", "too_large"),
        (
            "limited",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"status=firing",
            415,
            "application/x-www-form-urlencoded",
            "unsupported_media",
        ),
        ("limited", {}, b'{"status": "firing", ', 400, "not valid JSON", "malformed"),
        ("limited", {}, b'{"status": "exploded", "summary": "x"}', 422, "$.status", "invalid"),
    ],
    ids=["too-large", "too-large-chunked", "form", "malformed", "wrong-shape"],
)
def test_each_limit_answers_its_status_is_counted_and_changes_nothing(
    hub, tmp_path, source, headers, content, status, detail, outcome
):
    before = stored_rows(tmp_path / "hub.db")
    answer = post(hub, source, headers, content)
    assert answer.status_code == status, answer.text
    problem = answer.json()
    assert detail in problem["detail"] + problem.get("field", "")
    assert stored_rows(tmp_path / "hub.db") == before
    with hub.client() as http:
        metrics = http.get("/metrics").text
    assert f'hub_webhooks_received_total{{outcome="{outcome}",source="{source}"}} 1.0' in metrics


def test_a_source_over_its_rate_gets_429_with_retry_after_and_changes_nothing(hub, tmp_path):
    assert post(hub, "throttled", {}).status_code == 202
    before = settled_rows(tmp_path / "hub.db")
    limited = post(hub, "throttled", {})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "rate limit" in limited.json()["detail"]
    assert stored_rows(tmp_path / "hub.db") == before
    assert post(hub, "shop", AUTH).status_code == 202, "other sources keep their own bucket"


def test_requests_without_the_sources_credentials_do_not_spend_its_rate(hub):
    """The source's name is in its URL: anyone who can reach hub could otherwise spend
    its allowance and get the real sender's alerts refused."""
    stranger = [post(hub, "guarded", bearer(b"", "guessed")).status_code for _ in range(3)]
    assert stranger == [401, 401, 401]
    assert post(hub, "guarded", bearer(b"")).status_code == 202
    assert post(hub, "guarded", bearer(b"")).status_code == 429, "its own requests do"


def test_a_signature_refusal_names_the_header_as_the_sender_spells_it(hub):
    """The detail named the configured header lower-cased (``x-hub-signature-256``),
    unlike the sender's documentation, the config and the ``WWW-Authenticate`` beside it."""
    digest = github(BODY)["X-Hub-Signature-256"].removeprefix("sha256=")
    unprefixed = post(hub, "github", {"X-Hub-Signature-256": digest})
    missing = post(hub, "github", {"X-GitHub-Delivery": "gh-2"})
    assert (unprefixed.status_code, missing.status_code) == (401, 401)
    assert unprefixed.json()["detail"] == "header X-Hub-Signature-256 must start with 'sha256='"
    assert missing.json()["detail"] == "missing header X-Hub-Signature-256"
