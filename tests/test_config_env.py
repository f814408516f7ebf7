"""Numbers and booleans from the environment: a key that takes one may be written as one
``${NAME}`` reference, as a container's settings come in variables."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from conftest import TLS_CONTEXT, free_port
from hub_process import HubProcess, hub_process
from test_config import ROOT, problem_lines, run_hub

from hub import config

FROM_ENV = """
[server]
host = "127.0.0.1"
port = "${HUB_PORT:-{port}}"

[storage]
path = "{db}"

[notifier]
max_attempts = "${HUB_ATTEMPTS}"

[[sources]]
name = "shop"
auth = { type = "bearer", tokens = ["shop-token"] }
rate_limit = "${SHOP_RATE:-2.5}"

[[receivers]]
name = "ops"
urls = ["logfile://notifications.log"]
send_resolved = "${OPS_SEND_RESOLVED:-true}"

[route]
receiver = "ops"
"""


def check_config(tmp_path: Path, environ: dict[str, str], text: str = FROM_ENV):
    (tmp_path / "alerts.toml").write_text(text.replace("{port}", "8080").replace("{db}", "hub.db"))
    return run_hub("check-config", "alerts.toml", cwd=tmp_path, environ=environ)


def test_numbers_and_booleans_are_read_from_whole_references():
    loaded = config.parse(
        FROM_ENV.replace("{port}", "8080"),
        {"HUB_PORT": "9100", "HUB_ATTEMPTS": "3", "SHOP_RATE": "0.5", "OPS_SEND_RESOLVED": "false"},
    )
    assert loaded.server.port == 9100
    assert loaded.notifier.max_attempts == 3
    assert loaded.sources[0].rate_limit == 0.5
    assert loaded.receivers[0].send_resolved is False
    defaults = config.parse(FROM_ENV.replace("{port}", "8181"), {"HUB_ATTEMPTS": "+7"})
    assert (defaults.server.port, defaults.notifier.max_attempts) == (8181, 7)
    assert (defaults.sources[0].rate_limit, defaults.receivers[0].send_resolved) == (2.5, True)


def test_check_config_takes_numbers_and_booleans_from_the_environment(tmp_path):
    result = check_config(
        tmp_path, {"HUB_PORT": "9100", "HUB_ATTEMPTS": "3", "OPS_SEND_RESOLVED": "false"}
    )
    assert result.returncode == 0, result.stderr
    assert "alerts.toml: ok (1 sources, 1 receivers)" in result.stdout


def test_check_config_names_an_unset_variable_once(tmp_path):
    """The unset variable's value used to be reported a second time, as an empty
    string where an integer belongs."""
    result = check_config(tmp_path, {})
    assert result.returncode == 1
    assert "1 problem(s)" in result.stderr
    assert "notifier.max_attempts: environment variable HUB_ATTEMPTS is not set" in result.stderr


def test_check_config_names_a_bad_number_or_boolean_by_its_reference_never_its_value(tmp_path):
    environ = {
        "HUB_PORT": "eighty",
        "HUB_ATTEMPTS": "3.0",
        "SHOP_RATE": "fast",
        "OPS_SEND_RESOLVED": "yes",
    }
    result = check_config(tmp_path, environ)
    assert result.returncode == 1
    assert problem_lines(result.stderr) == [
        "server.port: expected an integer, but ${HUB_PORT:-8080} gives text that is not an integer",
        "notifier.max_attempts: expected an integer, but ${HUB_ATTEMPTS} gives text that is"
        " not an integer",
        "sources[0] (shop).rate_limit: expected a number, but ${SHOP_RATE:-2.5} gives text"
        " that is not a number",
        "receivers[0] (ops).send_resolved: expected true or false, but"
        " ${OPS_SEND_RESOLVED:-true} gives text that is not true or false",
    ]
    assert not {"eighty", "fast", "'yes'"} & set(result.stderr.split()), "values not shown"


def test_check_config_says_where_a_number_from_the_environment_is_out_of_range(tmp_path):
    result = check_config(tmp_path, {"HUB_PORT": "99999", "HUB_ATTEMPTS": "0"})
    assert result.returncode == 1
    assert problem_lines(result.stderr) == [
        "server.port: must be 1-65535, got 99999 (from ${HUB_PORT})",
        "notifier.max_attempts: must be at least 1, got 0 (from ${HUB_ATTEMPTS})",
    ]


@pytest.mark.parametrize("written", ["80${HUB_PORT}", "${HUB_PORT}${HUB_PORT}", " ${HUB_PORT}"])
def test_check_config_refuses_text_around_a_reference_in_a_number(tmp_path, written):
    text = FROM_ENV.replace("${HUB_PORT:-{port}}", written)
    result = check_config(tmp_path, {"HUB_PORT": "80", "HUB_ATTEMPTS": "3"}, text)
    assert result.returncode == 1
    assert problem_lines(result.stderr) == [
        "server.port: expected an integer, got a string of more than a reference alone"
        " (${HUB_PORT}): a number or a boolean comes from the environment only as the whole"
        ' value ("${NAME}" or "${NAME:-default}")'
    ]


def test_serve_listens_on_the_port_from_the_environment_or_its_default(tmp_path):
    by_default = hub_process(tmp_path, FROM_ENV)
    from_env = HubProcess(by_default.config_path, free_port(), tmp_path / "env.log")
    for hub, environ in ((from_env, {"HUB_PORT": str(from_env.port)}), (by_default, {})):
        try:
            hub.start(env={**environ, "HUB_ATTEMPTS": "3"})
            assert (
                httpx.get(f"{hub.url}/healthz", timeout=10, verify=TLS_CONTEXT).status_code == 200
            )
        finally:
            hub.stop()


def test_serve_refuses_a_port_from_the_environment_that_is_no_number(tmp_path):
    hub = hub_process(tmp_path, FROM_ENV)
    result = run_hub(
        "serve",
        "--config",
        str(hub.config_path),
        cwd=tmp_path,
        environ={"HUB_PORT": "http", "HUB_ATTEMPTS": "3"},
    )
    assert result.returncode == 2
    assert "server.port: expected an integer, but ${HUB_PORT:-" in result.stderr
    assert "http" not in result.stderr
    assert not (tmp_path / "hub.db").exists()


def test_the_readmes_example_of_numbers_from_the_environment_loads():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    [example] = [b for b in re.findall(r"```toml\n(.*?)```", section, re.S) if "HUB_PORT" in b]
    environ = {"SMTP_USER": "hub", "SMTP_PASSWORD": "pw", "OPS_SEND_RESOLVED": "false"}
    loaded = config.parse(example + '[route]\nreceiver = "ops"\n', environ)
    assert (loaded.server.port, loaded.receivers[0].send_resolved) == (8080, False)
    assert loaded.receivers[0].timeout == 10
