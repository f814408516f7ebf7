import contextlib
import re
import time

import pytest
from conftest import AUTH, BASE_CONFIG, mail_url
from hypothesis import given
from hypothesis import strategies as st
from test_access import TOKENS

from hub.matchers import (
    Matcher,
    TooCostly,
    compile_pattern,
    matches_all,
    parse,
    parse_all,
    problems,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('severity="critical"', [("severity", "=", "critical")]),
        ('env!="dev"', [("env", "!=", "dev")]),
        ('service=~"api|web"', [("service", "=~", "api|web")]),
        ('team!~"x|y"', [("team", "!~", "x|y")]),
        ("env=prod", [("env", "=", "prod")]),
        ("  env  =  prod  ", [("env", "=", "prod")]),
        ("env=", [("env", "=", "")]),
        ('env=""', [("env", "=", "")]),
        ("name:with:colons=x", [("name:with:colons", "=", "x")]),
        ('{a="b", c=~"d|e"}', [("a", "=", "b"), ("c", "=~", "d|e")]),
        ('{foo = "bar", dings != "bums", }', [("foo", "=", "bar"), ("dings", "!=", "bums")]),
        ("foo=bar,dings!=bums", [("foo", "=", "bar"), ("dings", "!=", "bums")]),
        ("{}", None),
        ('a="b,c"', [("a", "=", "b,c")]),
        ('a="{x}"', [("a", "=", "{x}")]),
        (r'q="She said: \"Hi, all\""', [("q", "=", 'She said: "Hi, all"')]),
        (r'path="C:\\dir"', [("path", "=", "C:\\dir")]),
        (r'multi="a\nb"', [("multi", "=", "a\nb")]),
        (r'code=~"\d+"', [("code", "=~", r"\d+")]),
        (r"tail=x\ ", [("tail", "=", "x\\")]),
        ("a==b", [("a", "=", "=b")]),
        ('"my-label"="x"', [("my-label", "=", "x")]),
        (
            '{"app.kubernetes.io/name"=~"web|api", env = prod}',
            [
                ("app.kubernetes.io/name", "=~", "web|api"),
                ("env", "=", "prod"),
            ],
        ),
        (r'"say \"hi\", all"!=x', [('say "hi", all', "!=", "x")]),
        ('"env"="prod"', [("env", "=", "prod")]),
    ],
)
def test_it_parses_alertmanager_syntax(text, expected):
    if expected is None:
        with pytest.raises(ValueError, match="no matcher"):
            parse(text)
        return
    assert [(m.name, m.op, m.value) for m in parse(text)] == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no matcher"),
        ('{a="b"', "unclosed"),
        ('a="b', "unterminated"),
        (r'a="b\"', "unterminated"),
        ('a=b"c', "unescaped double quote"),
        ('a="b"c"', "unescaped double quote"),
        ('a="b" c="d"', "unescaped double quote"),
        ("a=b,,c=d", "bad matcher"),
        ("1a=b", "bad matcher"),
        ("a-b=c", "bad matcher"),
        ('""="x"', "the label name is empty"),
        ('"a=b', "bad matcher"),
        ("justtext", "bad matcher"),
        ('a=~"("', "bad regular expression"),
        ('a=~"(?:a{100}){20}"', "invalid repetition size"),
        ('a=~"a{1001}"', "repetitions add up to 1001"),
        ('a=~"x{2,1000}x{2,1000}"', "repetitions add up to 2000, more than 1000"),
        ('a=~"' + r"\pL{0,1000}" + '"', "pattern too large"),
        ('a=~"(?=a)a"', "invalid perl operator: [(][?]=.*no lookaround or backreferences"),
        ('a=~"(?<!x)a"', "invalid perl operator"),
        ('a=~"(a)\\1"', "invalid escape sequence"),
        ('a=~"a\\Z"', "invalid escape sequence"),
    ],
)
def test_it_refuses_malformed_matchers_saying_why(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse(text)


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ('my-label="x"', '"my-label"="x"'),
        ("'my-label'=x", '"\'my-label\'"="x"'),
        ('app.kubernetes.io/name=~"web|api"', '"app.kubernetes.io/name"=~"web|api"'),
    ],
)
def test_a_bare_name_with_other_characters_is_told_to_quote_it(text, quoted):
    """Such labels come from sources and senders; the message shows the form that parses."""
    with pytest.raises(ValueError) as raised:
        parse(text)
    assert str(raised.value) == (
        f"bad matcher {text!r}: quote a label name with characters other than letters,"
        f" digits and _: {quoted}"
    )
    assert parse(quoted)


def test_a_quoted_name_matches_the_label_it_names():
    labels = {"app.kubernetes.io/name": "web", "my-label": "x"}
    assert matches_all(parse('{"app.kubernetes.io/name"="web", "my-label"=~"x|y"}'), labels)
    assert not matches_all(parse('"my-label"!="x"'), labels)


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ('env="prod"', {"env": "prod"}, True),
        ('env="prod"', {"env": "production"}, False),
        ('env="prod"', {}, False),
        ('env=""', {}, True),
        ('env=""', {"env": "prod"}, False),
        ('env!="dev"', {"env": "prod"}, True),
        ('env!="dev"', {"env": "dev"}, False),
        ('env!="dev"', {}, True),
        ('env!=""', {}, False),
        ('service=~"api"', {"service": "api"}, True),
        ('service=~"api"', {"service": "api-v2"}, False),
        ('service=~"api"', {"service": "my-api"}, False),
        ('service=~"api|web"', {"service": "web"}, True),
        ('service=~"api|web"', {"service": "api-v2"}, False),
        ('service=~"api|web"', {"service": "xweb"}, False),
        ('service=~"api.*"', {"service": "api-v2"}, True),
        ('service=~".*"', {}, True),
        ('service=~".+"', {}, False),
        ('service!~"api|web"', {"service": "api"}, False),
        ('service!~"api|web"', {"service": "api-v2"}, True),
        ('service!~"api|web"', {}, True),
        ('service!~".*"', {}, False),
        ('code=~"5.."', {"code": "503"}, True),
        (r'code=~"\d+"', {"code": "503"}, True),
        (r'code=~"\d+"', {"code": "5x3"}, False),
        ('host=~"web-[0-9]+\\\\.example"', {"host": "web-1.example"}, True),
        ('host=~"web-[0-9]+\\\\.example"', {"host": "web-1xexample"}, False),
    ],
)
def test_matching_follows_alertmanager(matcher, labels, expected):
    assert matches_all(parse(matcher), labels) is expected


def test_a_set_is_a_conjunction_and_the_empty_set_matches_everything():
    both = parse_all(['env="prod"', 'team=~"ops|sre"'])
    assert matches_all(both, {"env": "prod", "team": "sre"})
    assert not matches_all(both, {"env": "prod", "team": "dev"})
    assert matches_all([], {"anything": "x"})


def test_a_regex_matcher_built_by_hand_compiles_its_pattern():
    assert Matcher("a", "=~", "x|y").matches({"a": "y"})
    with pytest.raises(ValueError, match="bad regular expression"):
        Matcher("a", "!~", "(")


def test_problems_names_each_bad_entry_by_index():
    found = problems(['a="b"', "nope", 'c=~"("'], "route.matchers")
    assert [p.split(":")[0] for p in found] == ["route.matchers[1]", "route.matchers[2]"]


_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,10}", fullmatch=True)
_any_names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1)
_values = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)


def _valid_regex(value: str) -> bool:
    try:
        compile_pattern(value)
    except ValueError:
        return False
    return True


@given(_names | _any_names, st.sampled_from(["=", "!=", "=~", "!~"]), _values)
def test_str_then_parse_round_trips(name, op, value):
    if op in ("=~", "!~") and not _valid_regex(value):
        return
    matcher = Matcher(name, op, value)
    assert parse(str(matcher)) == [matcher]
    assert parse("{" + ", ".join([str(matcher)] * 2) + "}") == [matcher, matcher]


@given(_names, _values, st.dictionaries(_names, _values, max_size=4))
def test_negation_is_the_complement(name, value, labels):
    escaped = re.escape(value)
    assert Matcher(name, "=", value).matches(labels) != Matcher(name, "!=", value).matches(labels)
    assert Matcher(name, "=~", escaped).matches(labels) == Matcher(name, "=", value).matches(labels)
    assert Matcher(name, "!~", escaped).matches(labels) != Matcher(name, "=~", escaped).matches(
        labels
    )


EMPTY_MATCHERS = (
    BASE_CONFIG
    + TOKENS
    + """
[[receivers]]
name = "no-env"
urls = ["{mail_url}"]

[[route.routes]]
matchers = ['env=""']
receiver = "no-env"

[[inhibit_rules]]
source_matchers = ['kind="outage"']
target_matchers = ['alertname="Load"', 'env=""']
"""
)


def test_an_empty_value_matcher_selects_the_alerts_without_the_label_everywhere(hub_factory, smtp):
    """As in Alertmanager, ``env=""`` selects alerts without ``env``, and hub drops
    ``"env": ""`` as no label: routes, silences, inhibit rules and the API's ``label``
    filter all select such an alert and leave ``env="prod"`` alone."""
    hub = hub_factory(EMPTY_MATCHERS, mail_url=mail_url(smtp[1]))
    sent = {
        "disk-db1": {"alertname": "Disk", "env": ""},
        "disk-db2": {"alertname": "Disk", "env": "prod"},
        "outage": {"alertname": "DcDown", "kind": "outage", "env": "prod"},
        "load-db1": {"alertname": "Load"},
        "load-db2": {"alertname": "Load", "env": "prod"},
    }
    writer = {"Authorization": "Bearer write-token"}
    silence = {"matchers": ['alertname="Disk"', 'env=""'], "duration": "1h", "comment": "c"}
    with hub.client(headers=writer) as http:
        for key, labels in sent.items():
            event = {"status": "firing", "summary": key, "labels": labels, "dedup_key": key}
            assert http.post("/webhooks/shop", json=event, headers=AUTH).is_success
        assert http.post("/api/v1/silences", json=silence).status_code == 201
        unlabelled = http.get("/api/v1/alerts", params={"label": 'env=""'}).json()
        shown = http.get("/api/v1/alerts").json()
        incidents = http.get("/api/v1/incidents").json()
    assert sorted(alert["summary"] for alert in unlabelled) == ["disk-db1", "load-db1"]
    mutes = {alert["summary"]: [m["reason"] for m in alert["mutes"]] for alert in shown}
    assert mutes == {
        "disk-db1": ["silence"],
        "disk-db2": [],
        "outage": [],
        "load-db1": ["inhibition"],
        "load-db2": [],
    }
    receivers = {incident["id"]: incident["receivers"] for incident in incidents}
    routed = {alert["summary"]: receivers[alert["incident_id"]] for alert in shown}
    assert routed == {
        "disk-db1": ["no-env"],
        "disk-db2": ["ops"],
        "outage": ["ops"],
        "load-db1": ["no-env"],
        "load-db2": ["ops"],
    }


@pytest.mark.parametrize(
    ("regex", "value", "matched"),
    [
        ("Zürich|Genève", "Genève", True),
        ("h.llo", "héllo", True),  # one character, two bytes in UTF-8
        ("h.llo", "hello!", False),
        ("(?i)ÄRGER", "ärger", True),
        ("\\pL+", "日本語", True),
        ("x.y", "x\ud800y", True),  # a lone surrogate is a character, as Python's re saw it
        ("\\d+", "١٢", False),  # Arabic-Indic digits: \d is ASCII, as in Go
        ("\\w+", "é", False),
    ],
)
def test_regexes_match_non_ascii_values_by_character(regex, value, matched):
    assert Matcher("a", "=~", regex).matches({"a": value}) is matched
    assert Matcher("a", "!~", regex).matches({"a": value}) is not matched


def test_a_catastrophic_backtracking_regex_matches_in_linear_time():
    """``(a+)+$`` against 'a'*n + '!' doubled Python's re's time with each 'a' (40 s at
    30); RE2 reads the value once."""
    matcher = Matcher("a", "=~", "(a+)+$")
    started = time.monotonic()
    assert not matcher.matches({"a": "a" * 100_000 + "!"})
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(
    "text",
    [
        'a="' + "x" + " " * 50_000 + 'x"',
        "a" + " " * 50_000 + "b=c",
        "my-" + " " * 50_000 + "-x=y",
    ],
)
def test_parsing_a_matcher_with_long_runs_of_blanks_is_linear(text):
    """The parser's own patterns once backtracked over each run of blanks at each
    character: seconds for 20,000 spaces in a ``filter=``."""
    started = time.monotonic()
    with contextlib.suppress(ValueError):
        parse(text)
    assert time.monotonic() - started < 0.5


def test_the_regexes_of_one_list_have_a_compile_budget_together():
    """Each is fine alone; 60 of them in one request's filters are refused as a whole
    once they would take more than MAX_LIST_COST instructions to compile."""
    one = 'a=~"x.{0,1000}"'
    assert len(parse(one)) == 1
    texts = [f'a{i}=~"x{i}.{{0,1000}}"' for i in range(60)]
    started = time.monotonic()
    with pytest.raises(TooCostly, match="too large together: over 250000 RE2 instructions"):
        parse_all(texts)
    assert time.monotonic() - started < 1
    assert problems(texts, "matchers") == [
        "matchers[27]: the regular expressions of these matchers are too large together:"
        " over 250000 RE2 instructions"
    ]


def test_unicode_classes_are_paid_for_before_compiling():
    """RE2 spends half a millisecond parsing each \\pL: 10,000 of them are refused
    before it starts (5 s): a bound of 1 s, as three test processes share two cores."""
    started = time.monotonic()
    with pytest.raises(TooCostly, match="too large together"):
        parse('a=~"' + "\\pL" * 10_000 + '"')
    assert time.monotonic() - started < 1
