"""The config loader: typed, environment-resolved, and every fault listed at once."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import BASE_CONFIG, free_port, mail_url, wait_for
from hypothesis import given
from hypothesis import strategies as st

from hub import config
from hub.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

BROKEN = """
[server]
port = "eighty"
colour = "blue"

[[sources]]
name = "shop"
format = "carrier-pigeon"
auth = { type = "bearer", tokens = ["${SHOP_TOKEN}"] }

[[sources]]
name = "crm"
auth = { type = "telepathy" }

[[receivers]]
name = "ops"
urls = ["mailto://127.0.0.1:25?from=hub@example.com&to=a@example.com"]

[route]
receiver = "ops"
group_wait = "soon"
"""


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.parse(text, environ or {})
    return caught.value.problems


def test_every_fault_is_listed_with_its_table_and_key():
    problems = problems_of(BROKEN)
    assert (
        "sources[0] (shop).auth.tokens[0]: environment variable SHOP_TOKEN is not set" in problems
    )
    assert any(p.startswith("server.colour: unknown key") for p in problems)
    assert "server.port: Expected `int`, got 'eighty'" in problems
    assert (
        "sources[1] (crm).auth.type: Invalid enum value 'telepathy' (expected one of: none,"
        " bearer, basic, hmac, standard-webhooks)" in problems
    )
    assert any(p.startswith("route.group_wait: expected a duration") for p in problems)
    assert (
        "sources[0] (shop).format: unknown format 'carrier-pigeon' (expected one of: "
        "alertmanager, generic, grafana, native, pagerduty, prometheus)" in problems
    ), "a type error elsewhere does not hide it"
    assert len(problems) == 6


def test_cross_references_are_checked_once_the_shape_is_right():
    text = BROKEN.replace('port = "eighty"\ncolour = "blue"', "port = 8080")
    text = text.replace('{ type = "telepathy" }', '{ type = "none" }')
    text = text.replace('group_wait = "soon"', 'group_wait = "1m30s"')
    text = text.replace('receiver = "ops"\ngroup', 'receiver = "pager"\ngroup')
    problems = problems_of(text, {"SHOP_TOKEN": "t"})
    assert problems == [
        "sources[0] (shop).format: unknown format 'carrier-pigeon' (expected one of: "
        "alertmanager, generic, grafana, native, pagerduty, prometheus)",
        'route.receiver: undefined receiver "pager"',
    ]


@pytest.mark.parametrize("name", ["heartbeat", "expiry"])
def test_the_names_of_hubs_own_deliveries_are_not_source_names(name):
    text = BROKEN.replace('port = "eighty"\ncolour = "blue"', "port = 8080")
    text = text.replace('{ type = "telepathy" }', '{ type = "none" }')
    text = text.replace('group_wait = "soon"', 'group_wait = "1m30s"')
    text = text.replace('format = "carrier-pigeon"', 'format = "native"')
    text = text.replace('name = "crm"', f'name = "{name}"')
    assert problems_of(text, {"SHOP_TOKEN": "t"}) == [
        f"sources[1] ({name}).name: reserved for hub's own deliveries (heartbeats, ends)"
    ]


def test_a_source_name_is_one_path_segment():
    text = BROKEN.replace('port = "eighty"\ncolour = "blue"', "port = 8080")
    text = text.replace('{ type = "telepathy" }', '{ type = "none" }')
    text = text.replace('group_wait = "soon"', 'group_wait = "1m30s"')
    text = text.replace('format = "carrier-pigeon"', 'format = "native"')
    text = text.replace('name = "crm"', 'name = "crm/eu"')
    assert problems_of(text, {"SHOP_TOKEN": "t"}) == [
        "sources[1] (crm/eu).name: no '/' allowed (it is a URL path segment)"
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("4h", 14400), ("1h30m", 5400), ("250ms", 0.25), ("1d", 86400)],
)
def test_durations_read_like_alertmanager(text, seconds):
    assert config.Duration.parse(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (60, "1m"),
        (90, "90s"),
        (5400, "90m"),
        (86400, "1d"),
        (604801, "1w1s"),
        (3600.5, "1h500ms"),
        (0.25, "250ms"),
        (1.5, "1.5s"),
        (2_000_000, "2000000s"),
        (0.0001, "0.0001s"),
    ],
)
def test_a_duration_is_written_in_the_shortest_text_that_reads_back_exactly(seconds, text):
    assert config.Duration(seconds).text() == text
    assert config.Duration.parse(text) == seconds


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False))
def test_any_duration_reads_back_from_its_text_to_the_same_seconds(seconds):
    assert config.Duration.parse(config.Duration(seconds).text()) == seconds


def test_a_duration_too_long_to_count_is_not_a_duration():
    with pytest.raises(ValueError, match="expected a duration"):
        config.Duration.parse("9" * 400 + "s")


def test_environment_references_and_defaults_are_resolved():
    text = BROKEN.replace('port = "eighty"\ncolour = "blue"', "port = 8080")
    text = text.replace('{ type = "telepathy" }', '{ type = "bearer", tokens = ["${CRM:-x}"] }')
    text = text.replace('format = "carrier-pigeon"', 'format = "native"')
    text = text.replace('group_wait = "soon"', 'group_wait = "10s"')
    loaded = config.parse(text, {"SHOP_TOKEN": "from-env"})
    assert loaded.sources[0].auth.tokens == ["from-env"]
    assert loaded.sources[1].auth.tokens == ["x"]
    assert loaded.route.group_wait == 10


VALID = """
[[receivers]]
name = "ops"
urls = ["json://127.0.0.1:9/"]

[route]
receiver = "ops"
group_wait = "0s"
{route}

[[route.routes]]
matchers = ['severity="critical"']
{child}

{tables}
"""


def valid(route: str = "", child: str = "", tables: str = "") -> str:
    """VALID with a line added to the root route, to its child, or a table at the end."""
    return VALID.format(route=route, child=child, tables=tables)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            valid(route='group_interval = "0s"'),
            "route.group_interval: must be longer than 0s, got '0s'",
        ),
        (
            valid(route='repeat_interval = "0m"'),
            "route.repeat_interval: must be longer than 0s, got '0m'",
        ),
        (
            valid(child='group_interval = "0ms"'),
            "route.routes[0].group_interval: must be longer than 0s, got '0ms'",
        ),
        (
            valid(child='repeat_interval = "0h0m"'),
            "route.routes[0].repeat_interval: must be longer than 0s, got '0h0m'",
        ),
        (
            valid(tables="[notifier]\nmax_attempts = 0"),
            "notifier.max_attempts: must be at least 1, got 0",
        ),
        (
            valid(tables="[notifier]\nmax_attempts = -3"),
            "notifier.max_attempts: must be at least 1, got -3",
        ),
        (
            valid(tables="[notifier]\nconcurrency = 0"),
            "notifier.concurrency: must be at least 1, got 0",
        ),
        (
            valid(tables='[notifier]\nbackoff = "0s"'),
            "notifier.backoff: must be longer than 0s, got '0s'",
        ),
        (
            valid(tables='[notifier]\nmax_backoff = "0s"'),
            "notifier.max_backoff: must be longer than 0s, got '0s'",
        ),
        (
            valid(tables='[server]\nack_link_ttl = "0s"'),
            "server.ack_link_ttl: must be longer than 0s, got '0s'",
        ),
        (
            valid(tables="[server]\nmax_connections = 0"),
            "server.max_connections: must be at least 1, got 0",
        ),
        (
            valid(tables="[server]\nread_concurrency = 0"),
            "server.read_concurrency: must be at least 1, got 0",
        ),
        (
            valid(tables='[server]\nrequest_timeout = "0s"'),
            "server.request_timeout: must be longer than 0s, got '0s'",
        ),
        (
            valid(tables='[retention]\nhistory = "0d"'),
            "retention.history: must be longer than 0s, got '0d'",
        ),
    ],
)
def test_a_zero_that_would_repeat_without_pause_or_expire_at_once_is_refused_naming_the_key(
    text, problem
):
    assert problems_of(text) == [problem]


ESCALATION = '[[escalations]]\nname = "page"\nsteps = [{ after = "0s", notify = ["ops"] }]\n'
HEARTBEAT = '[[heartbeats]]\nname = "backup"\n'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            valid(tables=ESCALATION + 'repeat = 2\nrepeat_after = "0s"'),
            "escalations[0] (page).repeat_after: "
            "must be longer than 0s when repeat is set, got '0s'",
        ),
        (
            valid(tables=HEARTBEAT + 'period = "0s"'),
            "heartbeats[0] (backup).period: must be longer than 0s",
        ),
    ],
)
def test_a_repeating_period_of_zero_is_refused(text, problem):
    assert problems_of(text) == [problem]


def test_a_heartbeat_waits_at_most_ten_years():
    """A deadline thousands of years ahead could not be shown: the list failed."""
    text = valid(tables=HEARTBEAT + 'period = "99999999999w"\ngrace = "3651d"')
    assert problems_of(text) == [
        "heartbeats[0] (backup).period: at most 3650d, got 99999999999w",
        "heartbeats[0] (backup).grace: at most 3650d, got 3651d",
    ]


def test_zeros_that_mean_at_once_or_never_load():
    """A first message or page at once, no slack for a heartbeat, no reopening."""
    text = valid(
        route='escalation = "page"',
        tables=ESCALATION
        + 'repeat_after = "0s"\n'
        + HEARTBEAT
        + 'period = "1h"\ngrace = "0s"\n[incidents]\nreopen_window = "0s"',
    )
    loaded = config.parse(text, {})
    assert loaded.escalations[0].steps[0].after == 0
    assert loaded.escalations[0].repeat == 0, "repeat_after is unused without repeat"
    assert loaded.heartbeats[0].grace == 0
    assert loaded.incidents.reopen_window == 0


def test_a_negative_duration_is_not_a_duration():
    assert problems_of(valid(route='group_interval = "-5m"')) == [
        "route.group_interval: expected a duration like '30s', '5m' or '4h', got '-5m'"
    ]


def test_group_wait_zero_still_loads_so_the_first_message_goes_at_once():
    loaded = config.parse(valid(child='group_wait = "0s"'), {})
    assert loaded.route.group_wait == 0
    assert loaded.route.routes[0].group_wait == 0
    assert loaded.route.routes[0].group_interval is None, "inherited from the root, not zero"


def test_the_repository_example_config_is_valid_without_any_secret_set():
    loaded = config.parse((ROOT / "alerts.toml").read_text(), {})
    assert loaded.route.receiver == "ops"
    assert loaded.server.host == "127.0.0.1"


def run_hub(
    *args: str, cwd: Path, environ: dict[str, str] | None = None, prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess:
    """``hub ARGS`` run as a command would be, under ``prefix`` (``setpriv ...``)."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "hub", *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **(environ or {})},
    )


def test_check_config_prints_every_problem_and_exits_non_zero(tmp_path):
    (tmp_path / "bad.toml").write_text(BROKEN)
    result = run_hub("check-config", "bad.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert "6 problem(s)" in result.stderr
    assert "environment variable SHOP_TOKEN is not set" in result.stderr
    assert "server.port: Expected `int`, got 'eighty'" in result.stderr
    assert "route.group_wait" in result.stderr
    assert "sources[0] (shop).format: unknown format 'carrier-pigeon'" in result.stderr


def test_check_config_refuses_zero_group_and_repeat_intervals(tmp_path):
    text = valid(route='group_interval = "0s"\nrepeat_interval = "0s"')
    (tmp_path / "flood.toml").write_text(text)
    result = run_hub("check-config", "flood.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert "2 problem(s)" in result.stderr
    assert "route.group_interval: must be longer than 0s, got '0s'" in result.stderr
    assert "route.repeat_interval: must be longer than 0s, got '0s'" in result.stderr


TYPOS = """
[[receivers]]
name = "dba"
urls = ["json://127.0.0.1:9/"]
title = "{{ sevrity | upper }} {{ common_labels.servce }}: {{ title }}"
body = "{{ alerts[0].sumary }}"

[route]
receiver = "dba"
"""


def test_check_config_names_each_misspelled_template_variable_and_field(tmp_path):
    """Each would render as nothing in every message; a label some alerts lack
    (common_labels.servce) is no typo hub can tell, and renders empty."""
    (tmp_path / "typos.toml").write_text(TYPOS)
    result = run_hub("check-config", "typos.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert "2 problem(s)" in result.stderr
    failed = "template fails on a sample incident:"
    said = f"receivers[0] (dba).title: {failed} 'sevrity' is undefined; did you mean \"severity\"?"
    assert said in result.stderr
    said = f"receivers[0] (dba).body: {failed} alerts[0] has no field 'sumary'; did you mean"
    said += ' "summary"? (fields: '
    assert said in result.stderr


def test_relative_paths_are_the_config_files_folders_and_absolute_ones_stay(tmp_path, monkeypatch):
    text = (
        '[storage]\npath = "data/hub.db"\n'
        '[[receivers]]\nname = "ops"\n'
        f'urls = ["logfile://out/n.jsonl?cto=3", "logfile://{tmp_path}/n.jsonl",'
        ' "json://127.0.0.1:9/"]\n'
        '[[schedules]]\nname = "team"\n'
        'rotations = [{ participants = ["al"], start = 2026-01-05 }]\n'
        'people = [{ name = "al", urls = ["logfile://al.jsonl"] }]\n'
        '[route]\nreceiver = "ops"\n'
    )
    (tmp_path / "etc" / "out").mkdir(parents=True)
    (tmp_path / "etc" / "alerts.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    loaded = config.load("etc/alerts.toml")
    folder = (tmp_path / "etc").as_posix()
    assert loaded.storage.path == f"{folder}/data/hub.db"
    assert loaded.receivers[0].urls == [
        f"logfile://{folder}/out/n.jsonl?cto=3",
        f"logfile://{tmp_path}/n.jsonl",
        "json://127.0.0.1:9/",
    ]
    assert loaded.schedules[0].people[0].urls == [f"logfile://{folder}/al.jsonl"]
    absolute = config.load(tmp_path / "etc" / "alerts.toml")
    assert absolute.storage.path == loaded.storage.path


def test_serve_refuses_to_start_on_a_bad_config(tmp_path):
    (tmp_path / "alerts.toml").write_text(BROKEN)
    result = run_hub("serve", cwd=tmp_path)
    assert result.returncode == 2
    assert "server.colour: unknown key" in result.stderr
    assert not (tmp_path / "hub.db").exists()


def test_check_config_warns_about_unauthenticated_sources(tmp_path):
    text = (
        (ROOT / "alerts.toml")
        .read_text()
        .replace(
            'auth = { type = "bearer", tokens = ["${HUB_DEMO_TOKEN:-demo-token}"] }',
            'auth = { type = "none" }',
        )
    )
    (tmp_path / "open.toml").write_text(text)
    result = run_hub("check-config", "open.toml", cwd=tmp_path)
    assert result.returncode == 0
    assert "warning: sources[0] (demo): auth type 'none'" in result.stdout


@pytest.mark.parametrize(
    ("server", "link"),
    [
        ('host = "0.0.0.0"\nport = 9000', "http://0.0.0.0:9000"),
        ('host = "::"', "http://[::]:8080"),
    ],
)
def test_links_on_an_address_that_binds_every_interface_are_warned_about(server, link):
    """No one can open ``http://0.0.0.0:9000/ack/...``: without ``public_url`` such a
    hub sends links that lead nowhere."""
    loaded = config.parse(valid(tables=f"[server]\n{server}"), {})
    assert loaded.server.base_url == link
    assert [w for w in config.warnings(loaded) if w.startswith("server.")] == [
        f"server.public_url: not set, so links in notifications point at {link}, the"
        " address hub listens on, which no one can open; set it to the address people"
        " reach hub at"
    ]


@pytest.mark.parametrize(
    "server",
    [
        'host = "0.0.0.0"\npublic_url = "https://hub.example.com"',
        'host = "10.0.0.5"',
        'host = "hub.internal"',
        'host = "::1"',
    ],
)
def test_links_on_a_public_url_or_an_address_of_the_host_are_not_warned_about(server):
    loaded = config.parse(valid(tables=f"[server]\n{server}"), {})
    assert not [w for w in config.warnings(loaded) if w.startswith("server.")]


def test_check_config_and_serve_warn_about_links_on_every_address(tmp_path, hub_factory, caplog):
    (tmp_path / "any.toml").write_text(valid(tables='[server]\nhost = "0.0.0.0"'))
    result = run_hub("check-config", "any.toml", cwd=tmp_path)
    assert result.returncode == 0
    assert "warning: server.public_url: not set, so links in notifications point at" in (
        result.stdout
    )
    every_address = BASE_CONFIG.replace('host = "127.0.0.1"', 'host = "0.0.0.0"')
    with caplog.at_level(logging.WARNING, logger="hub.app"):
        hub = hub_factory(every_address, mail_url=mail_url(free_port()))
        wait_for(lambda: 'detail="server.public_url' in caplog.text)
    assert (
        'event=config_warning detail="server.public_url: not set, so links in notifications'
        f" point at http://0.0.0.0:{hub.port}, the address"
    ) in caplog.text


@pytest.mark.parametrize("port", [0, -1, 65536, 99999])
def test_a_port_outside_1_to_65535_is_refused_not_bound_modulo_65536(tmp_path, port):
    """Port 99999 used to load, and the hub listened on 34463 while logging 99999."""
    assert problems_of(valid(tables=f"[server]\nport = {port}")) == [
        f"server.port: must be 1-65535, got {port}"
    ]
    (tmp_path / "alerts.toml").write_text(valid(tables="[server]\nport = 8080"))
    result = run_hub("serve", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2
    assert f"argument --port: expected a port 1-65535, got '{port}'" in result.stderr
    assert not (tmp_path / "hub.db").exists()


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "hub.example.com",
        "ftp://hub.example.com",
        "https://",
        "https://hub.example.com:99999",
        "https://ops.example/hub",
        "https://hub.example.com/?from=mail",
        "http://hub example.com",
    ],
)
def test_a_public_url_links_cannot_be_built_on_is_refused_quoting_it(url):
    """A public_url of "not a url" used to load, and every ack and incident link in a
    notification read "not a url/ack/..."; a path prefix is refused too, as the ack
    page posts to /ack/... at the root."""
    assert problems_of(valid(tables=f'[server]\npublic_url = "{url}"')) == [public_url_problem(url)]


def public_url_problem(url: str) -> str:
    return (
        "server.public_url: expected the http:// or https:// address hub is reached at, like"
        " https://hub.example.com (no user or password: every notification would carry them;"
        f" no path, query or fragment: hub serves its pages at the root), got {url!r}"
    )


def test_a_public_url_with_a_password_is_refused_without_quoting_it():
    """Every ack and incident link would hand the password to whoever reads the message."""
    problems = problems_of(
        valid(tables='[server]\npublic_url = "https://ops:pw-9x@hub.example.com"')
    )
    assert problems == [
        public_url_problem("x").replace("'x'", "a URL with a user or password (not shown)")
    ]


def test_check_config_refuses_people_who_share_a_name_or_cannot_be_reached(tmp_path):
    """Rotations, overrides and ack links name a person: two of one name would page the
    first and log the second's acks as the first's. A person without URLs is paged in
    vain, the escalation moving on as if someone had been told."""
    schedule = (
        '[[schedules]]\nname = "primary"\n'
        'people = [{ name = "alice", urls = ["logfile://alice.log"] },'
        ' { name = "alice", urls = ["logfile://other.log"] }, { name = "bob", urls = [] }]\n'
        'rotations = [{ participants = ["alice", "bob"], start = 2026-03-27 }]'
    )
    (tmp_path / "alerts.toml").write_text(valid(tables=schedule))
    result = run_hub("check-config", "alerts.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert "2 problem(s)" in result.stderr
    assert 'schedules[0] (primary).people[0] and people[1]: duplicate name "alice"' in result.stderr
    assert (
        "schedules[0] (primary).people[2] (bob).urls: at least one URL is needed" in result.stderr
    )


def test_check_config_refuses_a_public_url_that_is_no_url(tmp_path):
    (tmp_path / "alerts.toml").write_text(valid(tables='[server]\npublic_url = "not a url"'))
    result = run_hub("check-config", "alerts.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert public_url_problem("not a url") in result.stderr


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://hub.example.com", "https://hub.example.com"),
        ("https://hub.example.com/", "https://hub.example.com"),
        ("http://10.0.0.5:8080", "http://10.0.0.5:8080"),
        ("", "http://127.0.0.1:8080"),
    ],
)
def test_a_root_public_url_is_the_base_of_links(url, base):
    loaded = config.parse(valid(tables=f'[server]\npublic_url = "{url}"'), {})
    assert loaded.server.base_url == base


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            '[notifier]\nmax_attempts = "three"',
            "notifier.max_attempts: Expected `int`, got 'three'",
        ),
        ("[flapping]\nthreshold = 2.5", "flapping.threshold: Expected `int`, got 2.5"),
        ("[server]\nhost = true", "server.host: Expected `str`, got true"),
        (
            '[[receivers]]\nname = "pager"\nurls = ["json://127.0.0.1:9/", 5]',
            "receivers[1] (pager).urls[1]: Expected `str`,"
            " got an integer (not shown: it may hold a secret)",
        ),
        (
            '[[heartbeats]]\nname = "nightly"\nperiod = "1d"\nlabels = { "app.io/tier" = 3 }',
            'heartbeats[0] (nightly).labels."app.io/tier": Expected `str`, got 3',
        ),
        (
            '[[silences]]\nmatchers = [\'a="b"\']\ncomment = { text = "x" }',
            'silences[0].comment: Expected `str`, got {"text": "x"}',
        ),
        (
            "[[silences]]\nmatchers = ['a=\"b\"']\nstarts_at = 2026-01-05T09:00:00",
            "silences[0].starts_at: Expected `datetime` with a timezone component"
            " (got 2026-01-05T09:00:00)",
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_quoted_under_its_key_path(table, problem):
    """The problem used to name only the type found (got `str`), and a table's key
    was lost from the path: the operator had to hunt for the value."""
    assert problems_of(valid(tables=table)) == [problem]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            valid(child='receiver = "pager"', tables='[notifier]\nmax_attempts = "three"'),
            [
                "notifier.max_attempts: Expected `int`, got 'three'",
                'route.routes[0].receiver: undefined receiver "pager"',
            ],
        ),
        (
            valid(
                route='group_wait = "soon"\nmute_time_intervals = ["nights"]',
                tables="[[inhibit_rules]]\nsource_matchers = ['a=~\"(\"']\n"
                'target_matchers = [\'b="c"\']\nequal = "b"',
            ).replace('group_wait = "0s"\n', ""),
            [
                "route.group_wait: expected a duration like '30s', '5m' or '4h', got 'soon'",
                "inhibit_rules[0].equal: Expected `array`, got 'b'",
                'route.mute_time_intervals: undefined time interval "nights"',
                "inhibit_rules[0].source_matchers[0]: bad regular expression '(': missing ): ("
                " (RE2 syntax, as Alertmanager's Go regexp: no lookaround or backreferences)",
            ],
        ),
        (
            valid(tables='[[receivers]]\nname = "pager"\nurls = ["json://127.0.0.1:9/", 5]')
            + '[[escalations]]\nname = "page"\nsteps = [{ notify = ["nobody"] }]\n',
            [
                "receivers[1] (pager).urls[1]: Expected `str`, got an integer"
                " (not shown: it may hold a secret)",
                'escalations[0] (page).steps[0].notify: undefined receiver or schedule "nobody"',
            ],
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_one_problem_among_the_rest(text, expected):
    """A type error used to be all that was reported: an undefined receiver, a bad
    matcher or an unknown time interval elsewhere showed only once it was fixed."""
    assert problems_of(text) == expected


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            '[[sources]]\nname = "crm"\nauth = { type = "telepathy", tokens = ["t"] }',
            "sources[0] (crm).auth.type: Invalid enum value 'telepathy' (expected one of: none,"
            " bearer, basic, hmac, standard-webhooks)",
        ),
        (
            '[[sources]]\nname = "crm"\nauth = "bearer"',
            "sources[0] (crm).auth: Expected `object`, got a string"
            " (not shown: it may hold a secret)",
        ),
        (
            '[[sources]]\nname = "crm"\nauth = { type = "bearer", tokens = ["${CRM_TOKEN}"] }',
            "sources[0] (crm).auth.tokens[0]: environment variable CRM_TOKEN is not set",
        ),
        (
            '[[maintenance]]\nname = "db"\nstarts_at = "soon"\n'
            "ends_at = 2026-01-05T09:00:00Z\nmatchers = ['a=\"b\"']",
            "maintenance[0] (db).starts_at: Invalid RFC3339 encoded datetime (got 'soon')",
        ),
    ],
)
def test_what_hub_stood_in_for_a_wrong_value_is_not_reported_again(table, problem):
    """The rest of the file is checked with a wrong value left out (its default) or,
    where the key is required, stood in for: nothing is said about the stand-in (no
    "the root route needs a receiver", no "tokens not used by auth type none")."""
    assert problems_of(valid(tables=table)) == [problem]


def test_a_root_receiver_of_the_wrong_type_is_not_also_missing():
    text = valid().replace('receiver = "ops"', "receiver = 5")
    assert problems_of(text) == ["route.receiver: Expected `str`, got 5"]


@pytest.mark.parametrize(
    ("tables", "problems"),
    [
        (
            '[[receivers]]\nname = "ops"\nurls = ["json://127.0.0.1:9/"]\n'
            '[[receivers]]\nname = "pager"\nurl = ["json://127.0.0.1:9/"]\n',
            [
                "receivers[2] (pager).url: unknown key (expected one of: body, name, send_resolved,"
                ' timeout, title, urls); did you mean "urls"?',
                "receivers[2] (pager).urls: required key is missing",
                'receivers[0] and receivers[1]: duplicate name "ops"',
            ],
        ),
        (
            '[[heartbeats]]\nname = "nightly"\nperiod = "1d"\n'
            '[[heartbeats]]\nname = "nightly"\nperiod = "1d"\n'
            '[[heartbeats]]\nname = "hourly"\n',
            [
                "heartbeats[2] (hourly).period: required key is missing",
                'heartbeats[0] and heartbeats[1]: duplicate name "nightly"',
            ],
        ),
        (
            '[api]\ntokens = [{ name = "ci", token = "a", role = "read" },'
            ' { name = "ci", token = "b", role = "read" }, { name = "ops", token = "c" }]\n',
            [
                "api.tokens[2] (ops).role: required key is missing",
                'api.tokens[0] and tokens[1]: duplicate name "ci"',
            ],
        ),
        (
            '[[maintenance]]\nname = "db"\nstarts_at = 2026-01-05T09:00:00Z\n'
            "ends_at = 2026-01-05T10:00:00Z\nmatchers = ['a=\"b\"']\n"
            '[[maintenance]]\nname = "db"\nstarts_at = 2026-01-06T09:00:00Z\n'
            "ends_at = 2026-01-06T10:00:00Z\nmatchers = ['a=\"b\"']\n"
            '[[maintenance]]\nname = "web"\nstarts_at = "soon"\n'
            "ends_at = 2026-01-06T10:00:00Z\nmatchers = ['a=\"b\"']\n",
            [
                "maintenance[2] (web).starts_at: Invalid RFC3339 encoded datetime (got 'soon')",
                'maintenance[0] and maintenance[1]: duplicate name "db"',
            ],
        ),
        (
            '[[schedules]]\nname = "primary"\n'
            'people = [{ name = "alice", urls = ["logfile://a.log"] },'
            ' { name = "alice", urls = ["logfile://b.log"] }, { name = "bob", url = [] }]\n'
            'rotations = [{ participants = ["alice"], start = 2026-03-27 }]\n',
            [
                "schedules[0] (primary).people[2] (bob).url: unknown key"
                ' (expected one of: name, urls); did you mean "urls"?',
                "schedules[0] (primary).people[2] (bob).urls: required key is missing",
                'schedules[0] (primary).people[0] and people[1]: duplicate name "alice"',
            ],
        ),
    ],
)
def test_duplicate_names_are_listed_with_a_bad_entry_of_the_same_list(tables, problems):
    """A bad entry used to hide every duplicate of its list until it was fixed: the
    second run of check-config found a problem the first should have listed."""
    assert problems_of(valid(tables=tables)) == problems


def test_names_hub_made_up_for_entries_are_no_duplicates():
    tables = '[[heartbeats]]\nperiod = "1d"\n[[heartbeats]]\nname = 5\nperiod = "1d"\n'
    assert problems_of(valid(tables=tables)) == [
        "heartbeats[0].name: required key is missing",
        "heartbeats[1].name: Expected `str`, got 5",
    ]


def test_check_config_lists_a_duplicate_beside_a_typo_in_one_pass(tmp_path):
    tables = (
        '[[receivers]]\nname = "ops"\nurls = ["json://127.0.0.1:9/"]\n'
        '[[receivers]]\nname = "pager"\nurl = ["json://127.0.0.1:9/"]\n'
    )
    (tmp_path / "alerts.toml").write_text(valid(tables=tables))
    result = run_hub("check-config", "alerts.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert "3 problem(s)" in result.stderr
    assert 'receivers[0] and receivers[1]: duplicate name "ops"' in result.stderr


def test_a_read_token_cannot_speak_for_others(tmp_path):
    """It makes no silences: the option says something the token will never do."""
    tables = (
        '[api]\ntokens = [{ name = "grafana", token = "g", role = "read",'
        ' speaks_for_others = true }, { name = "karma", token = "k", role = "write",'
        " speaks_for_others = true }]\n"
    )
    problem = (
        "api.tokens[0] (grafana).speaks_for_others: a read token makes no silences, so it"
        " speaks for nobody; give it role write (or admin), or leave the option out"
    )
    assert problems_of(valid(tables=tables)) == [problem]
    (tmp_path / "alerts.toml").write_text(valid(tables=tables))
    result = run_hub("check-config", "alerts.toml", cwd=tmp_path)
    assert (result.returncode, problem_lines(result.stderr)) == (1, [problem])


ENTRIES_OF_THE_WRONG_TYPE = """
[api]
tokens = [{ name = "ci", token = "ci-token", role = "root" }]

[[sources]]
name = "shop"
auth = { type = "bearer", tokens = ["shop-token"] }
rate_limit = "fast"

[[sources]]
name = "${CRM_SOURCE}"
auth = { type = "bearer", tokens = ["crm-token"] }
burst = "many"

[[receivers]]
name = "ops"
urls = ["json://127.0.0.1:9/"]

[[receivers]]
name = "pager"
urls = ["json://127.0.0.1:9/"]
send_resolved = "no"

[[receivers]]
name = 7
urls = ["json://127.0.0.1:9/"]
timeout = 10

[[escalations]]
name = "page"
steps = [{ notify = ["ops"], after = 5 }]

[[schedules]]
name = "primary"
people = [
  { name = "alice", urls = ["json://127.0.0.1:9/"] },
  { name = "bob", urls = "json://127.0.0.1:9/" },
]
rotations = [{ name = "weekly", participants = ["alice", "eve"], start = 2026-03-27, handoff = 9 }]

[[heartbeats]]
name = "nightly"
period = 86400

[[silences]]
matchers = 'a="b"'

[route]
receiver = "ops"

[[route.routes]]
matchers = ['a="b"']
group_wait = 30
"""


@pytest.mark.parametrize(
    ("environ", "crm"), [({}, "sources[1]"), ({"CRM_SOURCE": "crm"}, "sources[1] (crm)")]
)
def test_check_config_names_each_entry_as_the_file_does(tmp_path, environ, crm):
    """A wrong type used to name its entry by index alone (``receivers[1].send_resolved``)
    while every other problem named it (``receivers[1] (pager)``): counting entries
    to find the one meant is easy to get wrong. An entry with no name, or a name hub
    could not take, keeps its index alone."""
    (tmp_path / "alerts.toml").write_text(ENTRIES_OF_THE_WRONG_TYPE)
    result = run_hub("check-config", "alerts.toml", cwd=tmp_path, environ=environ)
    assert result.returncode == 1
    duration = "expected a duration like '30s', '5m' or '4h', got"
    unset = ["sources[1].name: environment variable CRM_SOURCE is not set"] if not environ else []
    assert problem_lines(result.stderr) == [
        *unset,
        "api.tokens[0] (ci).role: Invalid enum value 'root' (expected one of: read, write, admin)",
        "sources[0] (shop).rate_limit: Expected `float`, got 'fast'",
        f"{crm}.burst: Expected `int`, got 'many'",
        "receivers[1] (pager).send_resolved: Expected `bool`, got 'no'",
        "receivers[2].name: Expected `str`, got 7",
        f"receivers[2].timeout: {duration} 10",
        f"route.routes[0].group_wait: {duration} 30",
        "silences[0].matchers: Expected `array`, got 'a=\"b\"'",
        f"escalations[0] (page).steps[0].after: {duration} 5",
        "schedules[0] (primary).people[1] (bob).urls: Expected `array`, got a string"
        " (not shown: it may hold a secret)",
        "schedules[0] (primary).rotations[0] (weekly).handoff: Expected `str`, got 9",
        f"heartbeats[0] (nightly).period: {duration} 86400",
        'schedules[0] (primary).rotations[0] (weekly).participants: "eve" is not in people',
    ]


def problem_lines(stderr: str) -> list[str]:
    return [line.removeprefix("  - ") for line in stderr.splitlines() if line.startswith("  - ")]


TOKEN_SOURCE = """
[[sources]]
name = "prom"
auth = {{ type = "bearer", tokens = ["{token}"] }}
"""


def source_tokens(token: str, environ: dict[str, str]) -> list[str]:
    return (
        config.parse(valid(tables=TOKEN_SOURCE.format(token=token)), environ).sources[0].auth.tokens
    )


@pytest.mark.parametrize(
    ("environ", "token"),
    [({}, "fallback"), ({"PROM_TOKEN": ""}, "fallback"), ({"PROM_TOKEN": "set"}, "set")],
)
def test_a_default_stands_for_an_unset_or_empty_variable_as_in_the_shell(environ, token):
    """``PROM_TOKEN=`` in a compose or env file sets it empty: hub used the empty value
    and refused the example config with "empty token" instead of taking the default."""
    assert source_tokens("${PROM_TOKEN:-fallback}", environ) == [token]


def test_an_empty_value_from_the_environment_names_its_variable():
    text = valid(tables=TOKEN_SOURCE.format(token="${PROM_TOKEN}"))
    assert problems_of(text, {"PROM_TOKEN": ""}) == [
        "sources[0] (prom).auth.tokens[0]: empty token (from ${PROM_TOKEN})"
    ]


def test_the_example_config_takes_its_default_token_when_the_variable_is_empty():
    result = run_hub("check-config", "alerts.toml", cwd=ROOT, environ={"HUB_DEMO_TOKEN": ""})
    assert result.returncode == 0, result.stderr
    assert "alerts.toml: ok" in result.stdout


@pytest.mark.parametrize(
    "token", ["${ PROM_TOKEN }", "${PROM-TOKEN}", "${PROM_TOKEN", "s3cr${t", "${1TOKEN}"]
)
def test_a_malformed_reference_is_refused_without_showing_the_value(token):
    """These were taken as the literal token: a sender had to send "${PROM-TOKEN}"."""
    problems = problems_of(valid(tables=TOKEN_SOURCE.format(token=token)), {"PROM": "p"})
    assert problems == [
        "sources[0] (prom).auth.tokens[0]: '${' starts no environment reference (the value is not"
        " shown): write ${NAME} or ${NAME:-default}, NAME of letters, digits and _ (a value"
        " that holds '${' belongs in a variable)"
    ]


def test_a_dollar_without_braces_is_a_literal_value():
    assert source_tokens("pa$$word$PROM_TOKEN", {"PROM_TOKEN": "x"}) == ["pa$$word$PROM_TOKEN"]


def test_check_config_names_a_log_file_whose_folder_does_not_exist(tmp_path):
    """These passed and failed at every send with Apprise's unreadable error."""
    (tmp_path / "alerts.toml").write_text(
        valid(
            tables='[[receivers]]\nname = "audit"\n'
            'urls = ["logfile://missing/audit.log", "logfile://", "logfile://audit.log"]\n'
            '[[schedules]]\nname = "primary"\n'
            'people = [{ name = "alice", urls = ["logfile:///no/such/folder/alice.log"] }]\n'
            'rotations = [{ participants = ["alice"], start = 2026-03-27 }]\n'
        )
    )
    result = run_hub("check-config", "alerts.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        f"  - receivers[1] (audit).urls[0]: the folder {tmp_path}/missing does not exist"
        " (for the file audit.log)",
        f"  - receivers[1] (audit).urls[1]: {tmp_path} is a folder: name the file to append"
        " to (logfile://notifications.log)",
        "  - schedules[0] (primary).people[0] (alice).urls[0]: the folder /no/such/folder"
        " does not exist (for the file alice.log)",
    ]


def test_a_person_url_apprise_cannot_load_is_named_without_its_value():
    tables = (
        '[[schedules]]\nname = "primary"\n'
        'people = [{ name = "alice", urls = ["nosuch://secret@host"] }]\n'
        'rotations = [{ participants = ["alice"], start = 2026-03-27 }]\n'
    )
    assert problems_of(valid(tables=tables)) == [
        "schedules[0] (primary).people[0] (alice).urls[0]: Apprise cannot load this 'nosuch' URL"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            valid(tables='[sources]\nname = "shop"\nauth = { type = "none" }'),
            "sources: Expected `array`, got a table (not shown: it may hold a secret);"
            " write [[sources]] (an array of tables), one per source",
        ),
        (
            valid(tables='[[notifier]]\nbackoff = "1s"'),
            'notifier: Expected `object`, got [{"backoff": "1s"}];'
            " write [notifier] (a table), not [[notifier]]",
        ),
    ],
)
def test_a_table_written_as_an_array_of_tables_or_back_says_how_to_write_it(text, problem):
    """TOML's two headers differ by a bracket; the message named only "array" and "object"."""
    assert problems_of(text) == [problem]


def test_an_array_of_tables_for_the_root_route_says_how_to_write_it():
    text = valid().replace("[route]", "[[route]]").split("[[route.routes]]")[0]
    assert problems_of(text) == [
        'route: Expected `object`, got [{"receiver": "ops", "group_wait": "0s"}];'
        " write [route] (a table), not [[route]]"
    ]


@pytest.mark.parametrize(
    ("notifier", "problem"),
    [
        (
            'backoff = "10m"',
            "notifier.backoff: '10m' is longer than max_backoff '5m', which caps every retry delay",
        ),
        (
            'backoff = "30s"\nmax_backoff = "10s"',
            "notifier.backoff: '30s' is longer than max_backoff '10s', which caps every retry"
            " delay",
        ),
    ],
)
def test_a_backoff_longer_than_its_cap_is_refused_naming_both(notifier, problem):
    assert problems_of(valid(tables=f"[notifier]\n{notifier}")) == [problem]


def test_a_route_sends_to_receivers_not_to_a_scheduled_person():
    """As escalation steps refuse it: a person is paged through an escalation's
    schedule:NAME step, which finds whoever is on call; a route to one person was
    accepted by accident (it is how the delivery log names such a page)."""
    tables = (
        '[[schedules]]\nname = "primary"\n'
        'people = [{ name = "alice", urls = ["json://127.0.0.1:9/"] }]\n'
        'rotations = [{ participants = ["alice"], start = 2026-03-27 }]\n'
    )
    text = valid(child='receiver = "schedule:primary/alice"', tables=tables)
    assert problems_of(text) == [
        'route.routes[0].receiver: undefined receiver "schedule:primary/alice"'
    ]


MISTYPED_NAMES = valid(
    route='group_wiat = "1s"\nmute_time_intervals = ["weekend"]',
    child='receiver = "pagr"\nescalation = "critcal"',
    tables='[[receivers]]\nname = "pager"\nurls = ["json://127.0.0.1:9/"]\n'
    '[[sources]]\nname = "prom"\nformat = "promethues"\nauth = { type = "berer", tokens = ["t"] }\n'
    '[[escalations]]\nname = "critical"\nsteps = [{ notify = ["opps"] }]\n'
    '[[time_intervals]]\nname = "weekends"\ntime_intervals = [{ weekdays = ["saturday"] }]\n'
    '[[schedules]]\nname = "team"\npeople = [{ name = "alice", urls = ["logfile://a.log"] }]\n'
    'rotations = [{ participants = ["alcie"], start = 2026-01-05 }]\n',
)


def test_check_config_suggests_the_closest_name_for_a_typo(tmp_path):
    """An unknown key or name used to be listed with every valid one (or none): the
    operator had to spot the typo. The closest valid name is now suggested."""
    (tmp_path / "alerts.toml").write_text(MISTYPED_NAMES)
    result = run_hub("check-config", "alerts.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert problem_lines(result.stderr) == [
        "sources[0] (prom).auth.type: Invalid enum value 'berer' (expected one of: none,"
        ' bearer, basic, hmac, standard-webhooks); did you mean "bearer"?',
        "route.group_wiat: unknown key (expected one of: active_time_intervals, continue,"
        " escalation, group_by, group_interval, group_wait, matchers, mute_time_intervals,"
        ' receiver, repeat_interval, routes); did you mean "group_wait"?',
        "sources[0] (prom).format: unknown format 'promethues' (expected one of: alertmanager,"
        ' generic, grafana, native, pagerduty, prometheus); did you mean "prometheus"?',
        'route.mute_time_intervals: undefined time interval "weekend"; did you mean "weekends"?',
        'route.routes[0].receiver: undefined receiver "pagr"; did you mean "pager"?',
        'route.routes[0].escalation: undefined escalation "critcal"; did you mean "critical"?',
        'schedules[0] (team).rotations[0].participants: "alcie" is not in people;'
        ' did you mean "alice"?',
        'escalations[0] (critical).steps[0].notify: undefined receiver or schedule "opps";'
        ' did you mean "ops"?',
    ]


def test_no_name_is_suggested_when_none_is_close():
    text = valid(route='colour = "blue"', child='receiver = "database-team"')
    assert problems_of(text) == [
        "route.colour: unknown key (expected one of: active_time_intervals, continue,"
        " escalation, group_by, group_interval, group_wait, matchers, mute_time_intervals,"
        " receiver, repeat_interval, routes)",
        'route.routes[0].receiver: undefined receiver "database-team"',
    ]
