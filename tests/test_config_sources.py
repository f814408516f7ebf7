"""The ``[[sources]]`` keys for formats, authentication, limits and mappings: a good
file loads, and every bad value is listed with its table and key."""

import pytest

from hub import config
from hub.errors import ConfigError

TAIL = """
[[receivers]]
name = "ops"
urls = ["json://localhost"]

[route]
receiver = "ops"
"""

GOOD = """
[[sources]]
name = "github"
format = "native"
rate_limit = 5
burst = 20
max_body_bytes = 65536
[sources.auth]
type = "hmac"
header = "X-Hub-Signature-256"
prefix = "sha256="
secrets = ["${GH_NEW}", "${GH_OLD}"]
id_header = "X-GitHub-Delivery"

[[sources]]
name = "slack"
[sources.auth]
type = "hmac"
header = "X-Slack-Signature"
prefix = "v0="
secrets = ["s"]
timestamp_header = "X-Slack-Request-Timestamp"
signed_content = "v0:{timestamp}:{body}"
tolerance = "5m"

[[sources]]
name = "grafana"
format = "grafana"
[sources.auth]
type = "hmac"
header = ["X-Grafana-Alerting-Signature", "X-Grafana-Alert-Signature"]
secrets = ["g"]

[[sources]]
name = "payments"
format = "generic"
auth = { type = "standard-webhooks", secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] }

[sources.mapping]
summary = "Payment {data.object.id} failed"
status = "type"
dedup_key = "data.object.id"
occurred_at = "created"
labels = { customer = "data.object.customer" }
status_map = { "payment_intent.payment_failed" = "firing", "payment_intent.succeeded" = "resolved" }
severity_map = { "fraud" = "critical" }
severity = "data.object.risk"
defaults = { severity = "error" }

[[sources]]
name = "crm"
format = "pagerduty"
auth = { type = "basic", credentials = [{ username = "crm", password = "pw" }] }

[[sources]]
name = "pd"
format = "pagerduty"
auth = { type = "bearer", tokens = ["t1", "t2"] }
"""


def problems(sources: str, environ: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.parse(sources + TAIL, environ or {})
    return caught.value.problems


def test_a_file_using_every_new_key_loads():
    loaded = config.parse(GOOD + TAIL, {"GH_NEW": "n", "GH_OLD": "o"})
    github, slack, grafana, payments, _, _ = loaded.sources
    assert github.auth.secrets == ["n", "o"]
    assert (github.rate_limit, github.burst, github.max_body_bytes) == (5, 20, 65536)
    assert slack.auth.tolerance == 300
    assert grafana.auth.headers == ["x-grafana-alerting-signature", "x-grafana-alert-signature"]
    assert payments.mapping.status_map["payment_intent.succeeded"] == "resolved"
    assert payments.mapping.defaults.severity == "error"


def source(auth: str, extra: str = "", format: str = "native") -> str:
    return f'[[sources]]\nname = "s"\nformat = "{format}"\nauth = {{ {auth} }}\n{extra}\n'


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (
            source('type = "bearer"'),
            "sources[0] (s).auth.tokens: bearer auth needs at least one token",
        ),
        (
            source('type = "basic"'),
            "sources[0] (s).auth.credentials: basic auth needs at least one",
        ),
        (
            source('type = "basic", credentials = [{ username = "u", password = "" }]'),
            "sources[0] (s).auth.credentials[0]: empty username or password",
        ),
        (source('type = "hmac", header = "X-Sig"'), "sources[0] (s).auth.secrets: hmac auth needs"),
        (
            source('type = "hmac", secrets = ["s"]'),
            "sources[0] (s).auth.header: name the signature",
        ),
        (
            source('type = "hmac", secrets = ["s"], header = "X", signed_content = "{timestamp}"'),
            "sources[0] (s).auth.signed_content: expected a template of {body}",
        ),
        (
            source('type = "hmac", secrets = ["s"], header = "X", signed_content = "{ts}.{body}"'),
            "sources[0] (s).auth.signed_content",
        ),
        (
            source(
                'type = "hmac", secrets = ["s"], header = "X", '
                'signed_content = "{timestamp}.{body}"'
            ),
            "sources[0] (s).auth.timestamp_header: set it exactly when",
        ),
        (
            source('type = "hmac", secrets = ["s"], header = "X", timestamp_header = "X-Ts"'),
            "sources[0] (s).auth.timestamp_header: set it exactly when",
        ),
        (
            source('type = "hmac", secrets = ["s"], header = "X", algorithm = "md5"'),
            "sources[0] (s).auth.algorithm: Invalid enum value 'md5'",
        ),
        (
            source('type = "hmac", secrets = ["s"], header = "X", tolerance = "soon"'),
            "sources[0] (s).auth.tolerance",
        ),
        (
            source('type = "standard-webhooks", secrets = ["whsec_!!"]'),
            "sources[0] (s).auth.secrets[0]: a whsec_ secret must be base64",
        ),
        (
            source('type = "bearer", tokens = ["t"], secrets = ["s"]'),
            "sources[0] (s).auth.secrets: not used by auth type 'bearer'",
        ),
        (
            source('type = "bearer", tokens = ["${EMPTY}"]'),
            "sources[0] (s).auth.tokens[0]: empty token",
        ),
        (
            source('type = "bearer", tokens = ["${MISSING}"]'),
            "environment variable MISSING is not set",
        ),
        (source('type = "none"', "rate_limit = 0"), "sources[0] (s).rate_limit: must be above 0"),
        (
            source('type = "none"', "rate_limit = 1\nburst = 0"),
            "sources[0] (s).burst: must be at least 1",
        ),
        (
            source('type = "none"', "burst = 5"),
            "sources[0] (s).burst: only means something with rate_limit",
        ),
        (
            source('type = "none"', "max_body_bytes = 0"),
            "sources[0] (s).max_body_bytes: must be at least 1",
        ),
        (
            source('type = "none"', format="generic"),
            "sources[0] (s).mapping: the generic format needs",
        ),
        (
            source('type = "none"', '[sources.mapping]\nsummary = "x"', format="native"),
            "sources[0] (s).mapping: only the generic format reads a mapping",
        ),
        (
            source('type = "none"', '[sources.mapping]\nsummary = "a..b"', format="generic"),
            "sources[0] (s).mapping.summary: invalid path 'a..b'",
        ),
        (
            source('type = "none"', '[sources.mapping]\nsummary = "Order {}"', format="generic"),
            "sources[0] (s).mapping.summary: invalid path ''",
        ),
        (
            source(
                'type = "none"',
                '[sources.mapping]\nsummary = "x"\nlabels = { a = "b." }',
                format="generic",
            ),
            "sources[0] (s).mapping.labels.a: invalid path 'b.'",
        ),
        (
            source(
                'type = "none"',
                '[sources.mapping]\nsummary = "x"\nstatus_map = { a = "firing" }',
                format="generic",
            ),
            "sources[0] (s).mapping.status_map: needs status",
        ),
        (
            source(
                'type = "none"',
                '[sources.mapping]\nsummary = "x"\nstatus = "s"\nstatus_map = { a = "burning" }',
                format="generic",
            ),
            "sources[0] (s).mapping.status_map",
        ),
        (
            source('type = "none"', '[sources.mapping]\nsumary = "x"', format="generic"),
            "sources[0] (s).mapping.sumary: unknown key",
        ),
        (
            source(
                'type = "none"',
                '[sources.mapping]\nsummary = "x"\ndefaults = { status = "ignore" }',
                format="generic",
            ),
            "sources[0] (s).mapping.defaults.status: without a status path every event is ignored",
        ),
    ],
)
def test_each_bad_value_is_listed_with_its_table_and_key(sources, expected):
    found = problems(sources, {"EMPTY": ""})
    assert any(expected in problem for problem in found), found


HINT = (
    "a placeholder is a dotted path into the payload in braces, such as {data.object.id};"
    " write {{ and }} for literal braces"
)


@pytest.mark.parametrize(
    ("summary", "said"),
    [
        (
            "Order {name is {status}",
            "unbalanced '{' at character 7 of 'Order {name is {status}'",
        ),
        ("Order {name} } now", "unbalanced '}' at character 14 of 'Order {name} } now'"),
        ("Order {a..b}", "invalid path 'a..b' in placeholder {a..b}"),
    ],
)
def test_a_summary_template_with_a_stray_brace_or_bad_placeholder_is_refused(summary, said):
    """Otherwise ``{name is `` would go into every summary as text."""
    mapping = f"[sources.mapping]\nsummary = {summary!r}"
    found = problems(source('type = "none"', mapping, format="generic"))
    assert found == [f"sources[0] (s).mapping.summary: {said}: {HINT}"]


def test_a_summary_template_may_write_literal_braces_doubled():
    mapping = '[sources.mapping]\nsummary = "{{x}} {a}"'
    loaded = config.parse(source('type = "none"', mapping, "generic") + TAIL, {})
    assert loaded.sources[0].mapping.summary == "{{x}} {a}"


def test_every_fault_is_listed_at_once():
    bad = source('type = "bearer"', "rate_limit = -1\nmax_body_bytes = 0")
    assert len(problems(bad)) == 3
