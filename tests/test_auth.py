import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import get_args, get_type_hints

import pytest

from hub import auth
from hub.auth import SCHEME_REASONS, SCHEMES, authenticate, refusals
from hub.config import Auth
from hub.errors import AuthError
from tests.source_factory import make_auth

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TS = str(int(NOW.timestamp()))
STALE = str(int((NOW - timedelta(minutes=6)).timestamp()))
BODY = b'{"status":"firing","summary":"disk full"}'


def hexmac(secret: str, content: bytes, algorithm: str = "sha256") -> str:
    return hmac.new(secret.encode(), content, algorithm).hexdigest()


def b64mac(key: bytes, content: bytes) -> str:
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


BEARER = make_auth(type="bearer", tokens=["t-new", "t-old"])
BASIC = make_auth(
    type="basic",
    credentials=[{"username": "am", "password": "p1"}, {"username": "am", "password": "p2"}],
)
GITHUB = make_auth(
    type="hmac",
    secrets=["new-secret", "old-secret"],
    header="X-Hub-Signature-256",
    prefix="sha256=",
    id_header="X-GitHub-Delivery",
)
SLACK = make_auth(
    type="hmac",
    secrets=["slack-secret"],
    header="X-Slack-Signature",
    prefix="v0=",
    timestamp_header="X-Slack-Request-Timestamp",
    signed_content="v0:{timestamp}:{body}",
)
SHOPIFY = make_auth(
    type="hmac",
    secrets=["shop-secret"],
    header="X-Shopify-Hmac-Sha256",
    encoding="base64",
    id_header="X-Shopify-Webhook-Id",
)
GRAFANA = make_auth(
    type="hmac",
    secrets=["grafana-secret"],
    header=["X-Grafana-Alerting-Signature", "X-Grafana-Alert-Signature"],
    timestamp_header="X-Grafana-Alerting-Signature-Timestamp",
    signed_content="{timestamp}:{body}",
)
SHA512 = make_auth(type="hmac", secrets=["s"], header="X-Signature", algorithm="sha512")
PAYMENTS = make_auth(
    type="hmac",
    secrets=["pay-secret"],
    header="X-Signature",
    timestamp_header="X-Signature-Timestamp",
    signed_content="{timestamp}.{body}",
    tolerance="5m",
)
STANDARD_KEY = b"0123456789abcdef0123456789abcdef"
STANDARD = make_auth(
    type="standard-webhooks",
    secrets=["whsec_" + base64.b64encode(STANDARD_KEY).decode(), "raw-old-secret"],
)


def standard_headers(key: bytes = STANDARD_KEY, ts: str = TS, msg_id: str = "msg_1") -> dict:
    signature = b64mac(key, f"{msg_id}.{ts}.".encode() + BODY)
    return {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": f"v1,{signature}"}


VALID = [
    ("none", make_auth(type="none"), {}, None),
    ("bearer new token", BEARER, {"authorization": "Bearer t-new"}, None),
    ("bearer old token", BEARER, {"authorization": "bearer t-old"}, None),
    ("basic", BASIC, {"authorization": basic("am", "p2")}, None),
    (
        "github",
        GITHUB,
        {
            "x-hub-signature-256": "sha256=" + hexmac("new-secret", BODY),
            "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        },
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    ),
    (
        "github rotated-in old secret",
        GITHUB,
        {"x-hub-signature-256": "sha256=" + hexmac("old-secret", BODY)},
        None,
    ),
    (
        "slack",
        SLACK,
        {
            "x-slack-signature": "v0=" + hexmac("slack-secret", f"v0:{TS}:".encode() + BODY),
            "x-slack-request-timestamp": TS,
        },
        None,
    ),
    (
        "shopify",
        SHOPIFY,
        {
            "x-shopify-hmac-sha256": b64mac(b"shop-secret", BODY),
            "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        },
        "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    ),
    (
        "grafana current header",
        GRAFANA,
        {
            "x-grafana-alerting-signature": hexmac("grafana-secret", f"{TS}:".encode() + BODY),
            "x-grafana-alerting-signature-timestamp": TS,
        },
        None,
    ),
    (
        "grafana older header",
        GRAFANA,
        {
            "x-grafana-alert-signature": hexmac("grafana-secret", f"{TS}:".encode() + BODY),
            "x-grafana-alerting-signature-timestamp": TS,
        },
        None,
    ),
    ("sha512", SHA512, {"x-signature": hexmac("s", BODY, "sha512")}, None),
    (
        "payments",
        PAYMENTS,
        {
            "x-signature": hexmac("pay-secret", f"{TS}.".encode() + BODY),
            "x-signature-timestamp": TS,
        },
        None,
    ),
    ("standard webhooks", STANDARD, standard_headers(), "msg_1"),
    (
        "standard webhooks raw old secret",
        STANDARD,
        standard_headers(key=b"raw-old-secret", msg_id="msg_2"),
        "msg_2",
    ),
]


@pytest.mark.parametrize(
    ("name", "config", "headers", "delivery_id"), VALID, ids=[v[0] for v in VALID]
)
def test_a_correctly_signed_request_passes_and_yields_its_delivery_id(
    name, config, headers, delivery_id
):
    assert authenticate(config, headers, BODY, NOW) == delivery_id


def test_standard_webhooks_matches_the_specifications_test_vector():
    config = make_auth(type="standard-webhooks", secrets=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v2,ignored v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    when = datetime.fromtimestamp(1614265330, UTC)
    assert authenticate(config, headers, b'{"test": 2432232314}', when) == headers["webhook-id"]


def test_svix_headers_carry_the_same_signature_and_name_the_delivery():
    """Svix sends its own header names (``svix-id``, ``svix-timestamp``,
    ``svix-signature``) over the same scheme, as in its documented example."""
    config = make_auth(type="standard-webhooks", secrets=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
    headers = {
        "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "svix-timestamp": "1614265330",
        "svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    when = datetime.fromtimestamp(1614265330, UTC)
    assert authenticate(config, headers, b'{"test": 2432232314}', when) == headers["svix-id"]
    with pytest.raises(AuthError) as caught:
        authenticate(config, headers, b'{"test": 1}', when)
    assert caught.value.detail == "no signature in svix-signature matches the body"


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing header webhook-id or svix-id"),
        ({"svix-id": "m", "svix-timestamp": TS}, "missing header svix-signature"),
        ({"webhook-id": "m", "svix-timestamp": TS, "svix-signature": "v1,x"}, "webhook-timestamp"),
    ],
    ids=["no-id", "svix-without-signature", "mixed"],
)
def test_a_refusal_names_the_headers_of_the_family_the_request_uses(headers, detail):
    with pytest.raises(AuthError) as caught:
        authenticate(STANDARD, headers, BODY, NOW)
    assert caught.value.reason == "missing_header"
    assert detail in caught.value.detail


def test_githubs_documented_signature_is_accepted():
    config = make_auth(
        type="hmac",
        secrets=["It's a Secret to Everybody"],
        header="X-Hub-Signature-256",
        prefix="sha256=",
    )
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    headers = {"x-hub-signature-256": signature}
    assert authenticate(config, headers, b"Hello, World!", NOW) is None


INVALID = [
    ("bearer missing", BEARER, {}, "missing_header"),
    ("bearer not bearer", BEARER, {"authorization": "Token t-new"}, "malformed_header"),
    ("bearer wrong", BEARER, {"authorization": "Bearer t-older"}, "bad_token"),
    ("basic missing", BASIC, {}, "missing_header"),
    ("basic wrong password", BASIC, {"authorization": basic("am", "p3")}, "bad_credentials"),
    ("basic wrong user", BASIC, {"authorization": basic("root", "p1")}, "bad_credentials"),
    ("basic not base64", BASIC, {"authorization": "Basic %%%"}, "malformed_header"),
    (
        "basic no colon",
        BASIC,
        {"authorization": "Basic " + base64.b64encode(b"am").decode()},
        "malformed_header",
    ),
    ("github missing", GITHUB, {}, "missing_header"),
    (
        "github no prefix",
        GITHUB,
        {"x-hub-signature-256": hexmac("new-secret", BODY)},
        "malformed_header",
    ),
    ("github not hex", GITHUB, {"x-hub-signature-256": "sha256=zz"}, "malformed_header"),
    (
        "github rotated-out secret",
        GITHUB,
        {"x-hub-signature-256": "sha256=" + hexmac("retired-secret", BODY)},
        "signature_mismatch",
    ),
    (
        "github other body",
        GITHUB,
        {"x-hub-signature-256": "sha256=" + hexmac("new-secret", BODY + b" ")},
        "signature_mismatch",
    ),
    (
        "slack stale timestamp",
        SLACK,
        {
            "x-slack-signature": "v0=" + hexmac("slack-secret", f"v0:{STALE}:".encode() + BODY),
            "x-slack-request-timestamp": STALE,
        },
        "timestamp_outside_tolerance",
    ),
    (
        "slack missing timestamp",
        SLACK,
        {"x-slack-signature": "v0=" + hexmac("slack-secret", f"v0:{TS}:".encode() + BODY)},
        "missing_header",
    ),
    (
        "slack timestamp not a number",
        SLACK,
        {"x-slack-signature": "v0=00", "x-slack-request-timestamp": "noon"},
        "malformed_header",
    ),
    (
        "slack timestamp swapped after signing",
        SLACK,
        {
            "x-slack-signature": "v0=" + hexmac("slack-secret", f"v0:{STALE}:".encode() + BODY),
            "x-slack-request-timestamp": TS,
        },
        "signature_mismatch",
    ),
    ("shopify not base64", SHOPIFY, {"x-shopify-hmac-sha256": "***"}, "malformed_header"),
    (
        "shopify hex instead",
        SHOPIFY,
        {"x-shopify-hmac-sha256": hexmac("shop-secret", BODY)},
        "signature_mismatch",
    ),
    (
        "grafana unsigned timestamp",
        GRAFANA,
        {
            "x-grafana-alerting-signature": hexmac("grafana-secret", BODY),
            "x-grafana-alerting-signature-timestamp": TS,
        },
        "signature_mismatch",
    ),
    ("standard missing id", STANDARD, standard_headers() | {"webhook-id": ""}, "missing_header"),
    (
        "standard missing signature",
        STANDARD,
        {"webhook-id": "m", "webhook-timestamp": TS},
        "missing_header",
    ),
    ("standard stale", STANDARD, standard_headers(ts=STALE), "timestamp_outside_tolerance"),
    (
        "standard future",
        STANDARD,
        standard_headers(ts=str(int(NOW.timestamp()) + 301)),
        "timestamp_outside_tolerance",
    ),
    (
        "standard no v1",
        STANDARD,
        standard_headers() | {"webhook-signature": "v1a,abc"},
        "malformed_header",
    ),
    (
        "standard rotated-out secret",
        STANDARD,
        standard_headers(key=b"retired-key-retired-key-retired!"),
        "signature_mismatch",
    ),
    (
        "standard replayed with another id",
        STANDARD,
        standard_headers() | {"webhook-id": "msg_other"},
        "signature_mismatch",
    ),
]


@pytest.mark.parametrize(
    ("name", "config", "headers", "reason"), INVALID, ids=[v[0] for v in INVALID]
)
def test_a_request_that_fails_is_refused_with_its_reason(name, config, headers, reason):
    with pytest.raises(AuthError) as caught:
        authenticate(config, headers, BODY, NOW)
    assert caught.value.reason == reason
    assert caught.value.reason in refusals(config)


def test_an_hmac_source_signing_no_timestamp_cannot_be_refused_as_stale():
    """GitHub signs the body alone, Slack a timestamp too: only Slack's kind of source
    has a stale-timestamp series."""
    assert "timestamp_outside_tolerance" not in refusals(GITHUB)
    assert refusals(SLACK) == SCHEME_REASONS["hmac"]


def test_each_scheme_lists_exactly_the_reasons_its_refusals_carry():
    """The table the auth failure series are created from: no reason a scheme refuses
    with is missing from it (a series born at 1), none it cannot is in it (one always 0)."""
    refused = {(config.type, reason) for _, config, _, reason in INVALID}
    listed = {(kind, reason) for kind, reasons in SCHEME_REASONS.items() for reason in reasons}
    assert refused == listed
    assert set(SCHEME_REASONS) == set(SCHEMES)


@pytest.mark.parametrize(
    ("name", "config", "headers", "reason"), INVALID, ids=[v[0] for v in INVALID]
)
def test_a_refusal_never_contains_a_secret(name, config, headers, reason):
    with pytest.raises(AuthError) as caught:
        authenticate(config, headers, BODY, NOW)
    secrets = [*config.secrets, *config.tokens, *(c.password for c in config.credentials)]
    assert not any(secret in caught.value.detail for secret in secrets)
    assert caught.value.challenge, "a 401 needs a WWW-Authenticate challenge"
    assert not any(secret in caught.value.challenge for secret in secrets)


@pytest.mark.parametrize(
    ("config", "challenge"),
    [
        (BEARER, 'Bearer realm="hub"'),
        (BASIC, 'Basic realm="hub", charset="UTF-8"'),
        (GITHUB, 'HMAC-SHA256 realm="hub", header="X-Hub-Signature-256"'),
        (SHA512, 'HMAC-SHA512 realm="hub", header="X-Signature"'),
        (
            GRAFANA,
            'HMAC-SHA256 realm="hub", header="X-Grafana-Alerting-Signature",'
            ' timestamp="X-Grafana-Alerting-Signature-Timestamp",'
            ' HMAC-SHA256 realm="hub", header="X-Grafana-Alert-Signature",'
            ' timestamp="X-Grafana-Alerting-Signature-Timestamp"',
        ),
        (STANDARD, 'Standard-Webhooks realm="hub"'),
    ],
    ids=["bearer", "basic", "hmac", "hmac-sha512", "hmac-two-headers-timestamped", "standard"],
)
def test_a_refusal_challenges_with_the_scheme_and_where_the_signature_goes(config, challenge):
    with pytest.raises(AuthError) as caught:
        authenticate(config, {}, BODY, NOW)
    assert caught.value.challenge == challenge


def test_a_missing_header_is_named_for_the_sender():
    with pytest.raises(AuthError) as caught:
        authenticate(STANDARD, {"webhook-id": "m", "webhook-timestamp": TS}, BODY, NOW)
    assert caught.value.detail == "missing header webhook-signature"


def test_a_timestamp_just_inside_the_tolerance_passes():
    edge = str(int((NOW - timedelta(minutes=5)).timestamp()))
    assert authenticate(STANDARD, standard_headers(ts=edge), BODY, NOW) == "msg_1"


def test_rotation_accepts_both_secrets_while_both_are_configured_and_only_the_new_one_after():
    old = {"x-hub-signature-256": "sha256=" + hexmac("old-secret", BODY)}
    assert authenticate(GITHUB, old, BODY, NOW) is None
    rotated = make_auth(
        type="hmac", secrets=["new-secret"], header="X-Hub-Signature-256", prefix="sha256="
    )
    with pytest.raises(AuthError) as caught:
        authenticate(rotated, old, BODY, NOW)
    assert caught.value.reason == "signature_mismatch"


def test_every_configurable_type_has_a_scheme():
    assert set(SCHEMES) == set(get_args(get_type_hints(Auth)["type"]))


@pytest.mark.parametrize(
    ("secret", "key"),
    [("whsec_" + base64.b64encode(b"k" * 24).decode(), b"k" * 24), ("plain", b"plain")],
)
def test_standard_webhooks_secrets_are_whsec_base64_or_raw(secret, key):
    assert auth.secret_key(secret) == key
