"""Config reload: a good file is swapped in whole, a bad one is refused and the old
config keeps serving; ``POST /-/reload`` and SIGHUP do the same."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest
from conftest import BASE_CONFIG, TLS_CONTEXT, free_port, mail_url, render_config, wait_for
from hub_process import HubProcess
from notify_support import ACK_SECRET, ack_link_in, fire, metric, start_hub
from notify_support import receiver as receiver_table
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from test_metrics_catalogue import label_values

from hub import acklinks, config
from hub.app import Runtime
from hub.errors import Conflict

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"Authorization": "Bearer admin-token"}
TOKENS = """
[api]
tokens = [{{ name = "ada", token = "admin-token", role = "admin" }}]
"""
CRM = """
[[sources]]
name = "crm"
auth = { type = "bearer", tokens = ["crm-token"] }
"""
EVENT = {"status": "firing", "summary": "payment provider down"}


def post_event(url: str, source: str, token: str) -> int:
    answer = httpx.post(
        f"{url}/webhooks/{source}",
        json=EVENT,
        headers={"Authorization": f"Bearer {token}"},
        verify=TLS_CONTEXT,
    )
    return answer.status_code


@pytest.fixture
def hub(hub_factory, smtp):
    return hub_factory(BASE_CONFIG + TOKENS, mail_url=mail_url(smtp[1]))


def test_a_good_reload_swaps_the_config_and_a_new_source_is_accepted(hub):
    assert post_event(hub.url, "crm", "crm-token") == 404
    hub.config_path.write_text(hub.config_path.read_text() + CRM)
    with hub.client(headers=ADMIN) as http:
        answer = http.post("/-/reload")
        assert answer.status_code == 200
        assert answer.json() == {"status": "reloaded", "needs_restart": [], "warnings": []}
        metrics = http.get("/metrics").text
    assert post_event(hub.url, "crm", "crm-token") == 202
    assert post_event(hub.url, "shop", "shop-secret-token") == 202
    assert 'hub_config_reloads_total{outcome="success"} 1.0' in metrics


def test_a_reload_answer_names_the_changed_settings_that_wait_for_a_restart(hub, tmp_path):
    """A deploy script reading the answer learns the new store path, connection cap and
    read threads did not take."""
    text = hub.config_path.read_text()
    running = (tmp_path / "hub.db").as_posix()
    assert f'path = "{running}"' in text
    text = text.replace(running, (tmp_path / "other.db").as_posix())
    hub.config_path.write_text(
        text.replace("[server]\n", "[server]\nmax_connections = 1\nread_concurrency = 1\n")
    )
    with hub.client(headers=ADMIN) as http:
        answer = http.post("/-/reload")
        stored = http.get("/api/v1/alerts").status_code
    assert answer.status_code == 200
    assert answer.json()["needs_restart"] == [
        "server.max_connections",
        "server.read_concurrency",
        "storage.path",
    ]
    assert stored == 200
    assert post_event(hub.url, "shop", "shop-secret-token") == 202
    assert not (tmp_path / "other.db").exists(), "the running store stays until a restart"


PAGER = """
[[receivers]]
name = "pager"
urls = ["json://127.0.0.1:9/page"]
"""
PRIMARY = """
[[schedules]]
name = "primary"
people = [{ name = "al", urls = ["json://127.0.0.1:9/al"] }]
rotations = [{ participants = ["al"], start = 2026-01-05 }]
"""
ONCALL = PAGER + PRIMARY


def test_a_receiver_and_an_on_call_person_added_by_a_reload_have_their_series_at_zero(hub):
    """Their first dead letter must be an increase from 0 (HubDeadLetters), not a series
    born at 1, which increase() does not see."""
    hub.config_path.write_text(hub.config_path.read_text() + ONCALL)
    with hub.client(headers=ADMIN) as http:
        assert http.post("/-/reload").status_code == 200
        metrics = http.get("/metrics").text
    for receiver in ("pager", "schedule:primary/al"):
        for outcome in ("sent", "failed", "dead"):
            series = f'integration="json",outcome="{outcome}",receiver="{receiver}"'
            assert f"hub_notifications_total{{{series}}} 0.0" in metrics
    for receiver in ("pager", "schedule:primary/al"):
        for latency in ("delivery_seconds", "event_latency_seconds"):
            series = f'hub_notification_{latency}_count{{receiver="{receiver}"}} 0.0'
            assert series in metrics
    assert 'hub_notification_attempt_duration_seconds_count{integration="json"} 0.0' in metrics


def test_a_broken_file_is_refused_with_every_problem_and_the_old_config_keeps_serving(hub):
    broken = hub.config_path.read_text().replace('format = "native"', 'format = "pigeon"')
    hub.config_path.write_text(broken + '[api.extra]\ncolour = "${NO_SUCH_VARIABLE}"\n')
    with hub.client(headers=ADMIN) as http:
        answer = http.post("/-/reload")
        assert answer.status_code == 400
        assert answer.headers["content-type"].startswith("application/problem+json")
        problems = answer.json()["problems"]
        assert "api.extra.colour: environment variable NO_SUCH_VARIABLE is not set" in problems
        assert any(p.startswith("api.extra: unknown key") for p in problems)
        assert http.get("/api/v1/alerts").status_code == 200, "the old tokens still work"
        metrics = http.get("/metrics").text
    assert post_event(hub.url, "shop", "shop-secret-token") == 202
    assert 'hub_config_reloads_total{outcome="failure"} 1.0' in metrics


def reload_gauges(text: str) -> tuple[float | None, float | None]:
    """Whether the last config load succeeded, and when the last good one was."""
    return (
        metric(text, "hub_config_last_reload_successful"),
        metric(text, "hub_config_last_reload_success_timestamp_seconds"),
    )


def test_the_reload_gauges_say_whether_the_last_reload_took_and_when_the_last_good_one_was(
    hub_factory, smtp
):
    """As Alertmanager's: 1 and the start time from the start, 0 after a refused file
    with the last good time kept, 1 and a new time after a good reload."""
    before_start = time.time()
    hub = hub_factory(BASE_CONFIG + TOKENS, mail_url=mail_url(smtp[1]))
    original = hub.config_path.read_text()
    scrapes = []
    with hub.client(headers=ADMIN) as http:
        scrapes.append(http.get("/metrics").text)
        hub.config_path.write_text(original.replace('format = "native"', 'format = "pigeon"'))
        assert http.post("/-/reload").status_code == 400
        scrapes.append(http.get("/metrics").text)
        hub.config_path.write_text(original)
        before_reload = time.time()
        assert http.post("/-/reload").status_code == 200
        scrapes.append(http.get("/metrics").text)
    (ok, started), refused, (ok_again, reloaded) = map(reload_gauges, scrapes)
    assert ok == 1 and before_start <= started <= before_reload
    assert refused == (0, started)
    assert ok_again == 1 and before_reload <= reloaded <= time.time()


def test_a_reload_refused_by_the_cross_checks_lists_them_too(hub):
    broken = hub.config_path.read_text().replace('format = "native"', 'format = "pigeon"')
    hub.config_path.write_text(broken)
    with hub.client(headers=ADMIN) as http:
        answer = http.post("/-/reload")
    assert answer.status_code == 400
    assert any("unknown format 'pigeon'" in p for p in answer.json()["problems"])
    assert post_event(hub.url, "shop", "shop-secret-token") == 202


def test_a_reload_to_zero_intervals_is_refused_like_a_bad_file_at_start(hub):
    zero = hub.config_path.read_text().replace('group_interval = "200ms"', 'group_interval = "0s"')
    hub.config_path.write_text(zero.replace('repeat_interval = "1h"', 'repeat_interval = "0s"'))
    with hub.client(headers=ADMIN) as http:
        answer = http.post("/-/reload")
        metrics = http.get("/metrics").text
    assert answer.status_code == 400
    assert answer.json()["problems"] == [
        "route.group_interval: must be longer than 0s, got '0s'",
        "route.repeat_interval: must be longer than 0s, got '0s'",
    ]
    assert 'hub_config_reloads_total{outcome="failure"} 1.0' in metrics


def test_a_reload_keeps_the_address_and_store_the_hub_started_with():
    def parsed(port: int, db: str) -> config.Config:
        text = render_config(BASE_CONFIG, port=port, db=db, mail_url=mail_url(25), max_attempts=1)
        return config.parse(text, {})

    running = parsed(8080, "hub.db")
    loaded = msgspec.structs.replace(parsed(9090, "other.db"), route=config.Route(receiver="ops"))
    kept, differ = config.keep_startup_settings(running, loaded)
    assert (kept.server.port, kept.storage.path) == (8080, running.storage.path)
    assert running.storage.path.endswith("/hub.db")
    assert kept.route is loaded.route
    assert differ == ["server.port", "storage.path"]


def test_a_hub_started_without_a_config_file_has_nothing_to_reload(tmp_path):
    text = render_config(
        BASE_CONFIG,
        port=1,
        db=(tmp_path / "hub.db").as_posix(),
        mail_url=mail_url(25),
        max_attempts=1,
    )
    runtime = Runtime(config.parse(text, {}))
    with pytest.raises(Conflict, match="without a config file"):
        runtime.reload(by="test")


def test_sighup_makes_a_running_hub_serve_reload_its_config(tmp_path, smtp):
    port = free_port()
    path = tmp_path / "alerts.toml"
    path.write_text(
        render_config(
            BASE_CONFIG,
            port=port,
            db=(tmp_path / "hub.db").as_posix(),
            mail_url=mail_url(smtp[1]),
            max_attempts=1,
        )
    )
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "hub.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--config", str(path)],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )
        try:
            wait_for(lambda: _ready(url), timeout=30)
            assert post_event(url, "crm", "crm-token") == 404
            good = path.read_text() + CRM
            path.write_text(good)
            process.send_signal(signal.SIGHUP)
            wait_for(lambda: post_event(url, "crm", "crm-token") == 202)
            reloaded = reload_gauges(httpx.get(f"{url}/metrics", verify=TLS_CONTEXT).text)
            path.write_text(good.replace('format = "native"', 'format = "pigeon"'))
            process.send_signal(signal.SIGHUP)
            refused = wait_for(lambda: _refused(url))
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert "event=config_reload outcome=success" in (tmp_path / "hub.log").read_text()
    assert reloaded[0] == 1
    assert refused == (0, reloaded[1]), "a refused reload keeps the last good time"


def _refused(url: str) -> tuple[float | None, float | None] | None:
    """The reload gauges once the last reload was refused, else None."""
    gauges = reload_gauges(httpx.get(f"{url}/metrics", verify=TLS_CONTEXT).text)
    return gauges if gauges[0] == 0 else None


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", verify=TLS_CONTEXT).status_code == 200
    except httpx.TransportError:
        return False


def test_a_reload_hands_the_old_and_new_config_to_the_change_hook(tmp_path):
    path = tmp_path / "alerts.toml"
    text = render_config(
        BASE_CONFIG,
        port=1,
        db=(tmp_path / "hub.db").as_posix(),
        mail_url=mail_url(25),
        max_attempts=1,
    )
    path.write_text(text)
    runtime = Runtime(config.load(path), config_path=path)
    first = runtime.config
    changes = []
    runtime.on_config_change = lambda old, new: changes.append((old, new))
    path.write_text(text + CRM)
    assert runtime.reload(by="test").problems == []
    assert changes == [(first, runtime.config)]
    assert runtime.config.source("crm") is not None
    path.write_text(text + "[nonsense]\n")
    refused = runtime.reload(by="test").problems
    assert len(refused) == 1 and refused[0].startswith("nonsense: unknown key")
    assert len(changes) == 1 and runtime.config is changes[0][1]


def refused_reload(hub, old: str, new: str) -> list[str]:
    """Reload the config with ``old`` replaced by ``new``: it must be refused with a 400
    and the hub keep serving as before; the problems it names."""
    hub.config_path.write_text(hub.config_path.read_text().replace(old, new))
    with hub.client(headers=ADMIN) as http:
        answer = http.post("/-/reload")
    assert answer.status_code == 400
    assert post_event(hub.url, "shop", "shop-secret-token") == 202
    return answer.json()["problems"]


def test_a_reload_to_a_value_outside_a_keys_choices_names_the_choices(hub):
    """An operator reading the refusal learns what the key takes, not only that it is wrong."""
    problems = refused_reload(hub, 'format = "native"', 'format = "native"\nmode = "dry"')
    assert problems == [
        "sources[0] (shop).mode: Invalid enum value 'dry' (expected one of: live, test)"
    ]


def test_a_reload_removes_the_attempt_durations_of_an_integration_nobody_uses_any_more(hub):
    """The json series stays while an on-call person still pages through it, and goes
    with the last one; email, which ops still uses, keeps its series throughout."""
    original = hub.config_path.read_text()
    scrapes = []
    with hub.client(headers=ADMIN) as http:
        for text in (original + ONCALL, original + PRIMARY, original):
            hub.config_path.write_text(text)
            assert http.post("/-/reload").status_code == 200
            scrapes.append(http.get("/metrics").text)
    name = "hub_notification_attempt_duration_seconds_count"
    assert [metric(text, name, integration="json") for text in scrapes] == [0, 0, None]
    assert [metric(text, name, integration="mailto") for text in scrapes] == [0, 0, 0]


def test_the_template_error_series_follows_the_receivers_with_templates_of_their_own(hub):
    """Only a receiver's own template can fail: ops has its series at 0 while it has
    one, and loses it with its last; pager, without, never has one."""
    original = hub.config_path.read_text()
    titled = original.replace('name = "ops"', 'name = "ops"\ntitle = "{{ title }}"', 1)
    assert titled != original
    scrapes = []
    with hub.client(headers=ADMIN) as http:
        for text in (titled + PAGER, original + PAGER):
            hub.config_path.write_text(text)
            assert http.post("/-/reload").status_code == 200
            scrapes.append(http.get("/metrics").text)
    name = "hub_notification_template_errors_total"
    assert [label_values(text, name, "receiver") for text in scrapes] == [{("ops",): 0}, {}]


def test_a_kept_receiver_that_drops_an_integration_loses_only_that_channels_series(hub):
    """ops pages through json as well as email, then through email alone: its json
    notification series go, its email series and its latency series stay."""
    original = hub.config_path.read_text()
    with_json = original.replace('urls = ["mailto', 'urls = ["json://127.0.0.1:9/ops", "mailto', 1)
    assert with_json != original
    scrapes = []
    with hub.client(headers=ADMIN) as http:
        for text in (with_json, original):
            hub.config_path.write_text(text)
            assert http.post("/-/reload").status_code == 200
            scrapes.append(http.get("/metrics").text)
    name = "hub_notifications_total"
    json_ops = {"receiver": "ops", "integration": "json", "outcome": "dead"}
    email_ops = {"receiver": "ops", "integration": "mailto", "outcome": "dead"}
    assert [metric(text, name, **json_ops) for text in scrapes] == [0, None]
    assert [metric(text, name, **email_ops) for text in scrapes] == [0, 0]
    latency = "hub_notification_delivery_seconds_count"
    assert [metric(text, latency, receiver="ops") for text in scrapes] == [0, 0]


def test_a_reload_changing_a_sources_auth_type_keeps_only_the_failures_the_new_one_can_have(
    hub,
):
    """A bearer source turned hmac can no longer refuse a bad token, but may now refuse a
    signature; the reason both have keeps its count."""
    bearer = 'auth = { type = "bearer", tokens = ["shop-secret-token"] }'
    signed = 'auth = { type = "hmac", secrets = ["s3cret"], header = "X-Signature" }'
    assert post_event(hub.url, "shop", "wrong-token") == 401
    with hub.client(headers=ADMIN) as http:
        basic = {"Authorization": "Basic c2hvcDpwdw=="}
        assert http.post("/webhooks/shop", json=EVENT, headers=basic).status_code == 401
        hub.config_path.write_text(hub.config_path.read_text().replace(bearer, signed))
        assert http.post("/-/reload").status_code == 200
        metrics = http.get("/metrics").text
    failures = label_values(metrics, "hub_auth_failures_total", "source", "reason")
    assert failures == {
        ("shop", "missing_header"): 0,
        ("shop", "malformed_header"): 1,
        ("shop", "signature_mismatch"): 0,
    }


def test_a_reload_changing_a_sources_format_and_limits_keeps_only_the_series_they_can_move(
    hub,
):
    """shop turned from native to a generic mapping that reads a status can now refuse
    a batch's items and acknowledge; with a rate limit it can be rate limited. Turned
    back, those go again. The counts both configs share are kept."""
    limit = "max_body_bytes = 4096"
    mapping = f'{limit}\nrate_limit = 100\n[sources.mapping]\nsummary = "summary"\nstatus = "s"'
    assert post_event(hub.url, "shop", "shop-secret-token") == 202
    original = hub.config_path.read_text()
    generic = original.replace('format = "native"', 'format = "generic"').replace(limit, mapping)
    scrapes = []
    with hub.client(headers=ADMIN) as http:
        for text in (generic, original):
            hub.config_path.write_text(text)
            assert http.post("/-/reload").status_code == 200
            scrapes.append(http.get("/metrics").text)
    events = [label_values(text, "hub_events_total", "source", "outcome") for text in scrapes]
    webhooks = [
        label_values(text, "hub_webhooks_received_total", "source", "outcome") for text in scrapes
    ]
    added = {"acknowledged", "ignored", "rejected"}
    native = {"ignored"}  # a resolve without a summary of an alert hub does not have
    assert [{o for (source, o) in e if source == "shop"} & added for e in events] == [added, native]
    assert [e[("shop", "new")] for e in events] == [1, 1]
    assert [w.get(("shop", "rate_limited")) for w in webhooks] == [0, None]
    assert [w[("shop", "accepted")] for w in webhooks] == [1, 1]


def pager(port: int) -> str:
    """A receiver ``pager`` taking every notification beside ops, at an address that
    takes the connection and never answers, so its sends are in flight at a reload."""
    return f"""
[[receivers]]
name = "pager"
urls = ["json://127.0.0.1:{port}/page"]
timeout = "1s"

[[route.routes]]
receiver = "pager"
continue = true

[[route.routes]]
receiver = "ops"
"""


def test_a_reload_removes_the_series_of_removed_sources_and_receivers(hub):
    """Kept ones keep their counts; a send to the removed receiver in flight at the reload
    (then dead-lettered) does not bring its series back, nor those of its integration,
    which nothing else uses; a source added back counts anew. Its incident is resolved
    first: a reload may not remove a receiver open incidents notify."""
    original = hub.config_path.read_text()
    with socket.create_server(("127.0.0.1", 0)) as silent, hub.client(headers=ADMIN) as http:
        hub.config_path.write_text(original + CRM + pager(silent.getsockname()[1]))
        assert http.post("/-/reload").status_code == 200
        assert post_event(hub.url, "shop", "shop-secret-token") == 202
        assert post_event(hub.url, "crm", "crm-token") == 202
        wait_for(lambda: scraped(http, "hub_notifications_total", receiver="ops", outcome="sent"))
        wait_for(lambda: scraped(http, "hub_outbox_notifications", state="sending"))
        for incident in http.get("/api/v1/incidents", params={"status": "open"}).json():
            assert http.post(f"/api/v1/incidents/{incident['id']}/resolve").status_code == 200
        hub.config_path.write_text(original)
        assert http.post("/-/reload").status_code == 200
        wait_for(lambda: scraped(http, "hub_outbox_notifications", state="dead"))
        wait_for(lambda: scraped(http, "hub_outbox_notifications", state="sending") == 0)
        metrics = http.get("/metrics").text
        hub.config_path.write_text(original + CRM)
        assert http.post("/-/reload").status_code == 200
        assert post_event(hub.url, "crm", "crm-token") == 202
        again = http.get("/metrics").text
    labels = [sample.labels for sample in samples(metrics)]
    assert [series for series in labels if series.get("source") == "crm"] == []
    assert [series for series in labels if series.get("receiver") == "pager"] == []
    assert [series for series in labels if series.get("integration") == "json"] == []
    assert metric(metrics, "hub_webhooks_received_total", source="shop", outcome="accepted") == 1
    assert metric(metrics, "hub_events_total", source="shop", outcome="new") == 1
    assert metric(metrics, "hub_notifications_total", receiver="ops", outcome="sent") >= 1
    assert metric(again, "hub_webhooks_received_total", source="crm", outcome="accepted") == 1
    assert metric(again, "hub_events_total", source="crm", outcome="duplicate") == 1


def scraped(http: httpx.Client, name: str, **labels: str) -> float:
    return metric(http.get("/metrics").text, name, **labels) or 0


def samples(exposition: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(exposition) for s in family.samples]


def test_a_reload_to_a_public_url_that_is_no_url_is_refused_quoting_it(hub):
    problems = refused_reload(hub, "[server]", '[server]\npublic_url = "not a url"')
    assert problems == [
        "server.public_url: expected the http:// or https:// address hub is reached at, like"
        " https://hub.example.com (no user or password: every notification would carry them;"
        " no path, query or fragment: hub serves its pages at the root), got 'not a url'"
    ]


def test_a_reload_rotating_the_ack_secret_applies_at_once(hub_factory, smtp):
    """Rotating a leaked secret is why it changes: links signed with the old one stop
    working now, not at the next restart, and links sent since work after one. Removed,
    the secret kept in the store signs the links again."""
    mailbox, port = smtp
    hub = start_hub(hub_factory, receiver_table("ops", mail_url(port)))
    text = hub.config_path.read_text()
    rotated = text.replace(f'ack_secret = "{ACK_SECRET}"', 'ack_secret = "rotated-secret"')
    links = []
    with hub.client(headers=ADMIN) as http:
        for service, config_text in [
            ("checkout", text),
            ("search", rotated),
            ("billing", rotated.replace('ack_secret = "rotated-secret"', "")),
        ]:
            hub.config_path.write_text(config_text)
            assert http.post("/-/reload").json()["needs_restart"] == []
            fire(http, f"{service} down", service=service)
            wait_for(lambda: len(mailbox.messages) == len(links) + 1)
            links.append(ack_link_in(mailbox.text_of(len(links)), hub.url))
    with hub.client() as browser:
        answers = [browser.get(link).status_code for link in links]
    assert answers == [403, 403, 200]
    stored = sqlite3.connect(hub.runtime.store.path).execute(
        "SELECT value FROM settings WHERE name = 'ack_secret'"
    )
    token = links[2].rsplit("/", 1)[1]
    now = datetime.now(UTC)
    assert acklinks.verify(stored.fetchone()[0].encode(), token, now).incident_id
    hub.config_path.write_text(rotated)
    with hub.client(headers=ADMIN) as http:
        assert http.post("/-/reload").status_code == 200
    with hub.client() as browser:
        assert [browser.get(link).status_code for link in links] == [403, 200, 403]


def test_a_reload_compares_with_the_address_given_on_the_command_line(tmp_path, smtp):
    """Started with --host/--port over the file's, every reload (the file untouched)
    named server.host and server.port as waiting for a restart, which would change
    nothing: the command line still wins. A real change is still named."""
    db = (tmp_path / "hub.db").as_posix()
    path = tmp_path / "alerts.toml"
    text = render_config(
        BASE_CONFIG + TOKENS, port=free_port(), db=db, mail_url=mail_url(smtp[1]), max_attempts=1
    ).replace('host = "127.0.0.1"', 'host = "localhost"')
    path.write_text(text)
    port = free_port()
    hub = HubProcess(path, port, tmp_path / "hub.log")
    hub.start(args=("--host", "127.0.0.1", "--port", str(port)))
    answers = []
    try:
        with hub.client(headers=ADMIN) as http:
            for changed in (text, text.replace(db, (tmp_path / "other.db").as_posix())):
                path.write_text(changed)
                answers.append(http.post("/-/reload").json()["needs_restart"])
    finally:
        hub.stop()
    assert answers == [[], ["storage.path"]]
    reloads = [line for line in hub.log().splitlines() if "event=config_reload" in line]
    assert "needs_restart" not in reloads[0]
    assert reloads[1].endswith("needs_restart=storage.path")


def test_the_api_takes_bodies_up_to_the_reloaded_limit_and_its_413_names_it(hub):
    """Webhooks followed a reloaded [server] max_body_bytes and the API kept the
    start's, answering a bare "Request Entity Too Large"."""
    silence = {"matchers": ['service="checkout"'], "duration": "1h", "comment": "x" * 1500}
    body = msgspec.json.encode(silence)
    text = hub.config_path.read_text()
    answers = []
    with hub.client(headers=ADMIN) as http:
        for limit in (1200, 4000):
            server = f'host = "127.0.0.1"\nmax_body_bytes = {limit}'
            hub.config_path.write_text(text.replace('host = "127.0.0.1"', server))
            assert http.post("/-/reload").status_code == 200
            for content in (body, iter([body[:800], body[800:]])):  # declared, chunked
                answer = http.post(
                    "/api/v1/silences",
                    content=content,
                    headers={"Content-Type": "application/json"},
                )
                answers.append((answer.status_code, answer.json().get("detail")))
    over = f"body of {len(body)} bytes is over the limit of 1200 bytes"
    assert answers == [(413, over), (413, over), (201, None), (201, None)]


def test_a_reload_warns_about_the_new_configs_risky_settings_as_a_start_does(hub, caplog):
    """A source added with no authentication was warned about by check-config and at
    start, but a reload bringing it in answered 200 and logged nothing."""
    open_source = '[[sources]]\nname = "crm"\nauth = { type = "none" }\n'
    hub.config_path.write_text(hub.config_path.read_text() + open_source)
    with caplog.at_level(logging.WARNING, logger="hub.app"), hub.client(headers=ADMIN) as http:
        answer = http.post("/-/reload").json()
    warning = "sources[1] (crm): auth type 'none' accepts anyone who can reach the hub"
    assert answer == {"status": "reloaded", "needs_restart": [], "warnings": [warning]}
    assert f'event=config_warning detail="{warning}"' in caplog.text


DC_DOWN_MUTES = """
[[inhibit_rules]]
source_matchers = ['alertname="DatacenterDown"']
target_matchers = ['severity="warning"']
equal = ["dc"]
"""
CRITICAL_MUTES = """
[[inhibit_rules]]
source_matchers = ['severity="critical"', 'team="ops"']
target_matchers = ['severity="warning"']
equal = ["service"]
"""
REGION_DOWN_MUTES = """
[[inhibit_rules]]
source_matchers = ['region=~"eu-.*"', 'alertname!="Watchdog"']
target_matchers = ['severity="warning"']
equal = ["region"]
"""
ANY_SOURCE_MUTES = """
[[inhibit_rules]]
source_matchers = ['alertname!="Watchdog"']
target_matchers = ['severity="info"']
"""


def indexed_labels(db: Path) -> list[str]:
    """The labels the store indexes its firing alerts by, from its index names."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'"
            " AND name LIKE 'alerts\\_firing\\_label\\_%' ESCAPE '\\'"
        ).fetchall()
    return sorted(name.removeprefix("alerts_firing_label_").rsplit("_", 1)[0] for (name,) in names)


def test_the_labels_inhibit_rules_find_their_sources_by_are_indexed_as_reloads_change_them(
    hub_factory, smtp, tmp_path
):
    """Each dispatcher round finds the rules' firing sources through these indexes, not
    by reading every firing alert: one index a rule, by its first plain equality, else
    by a regex. A rule with a negation alone reads them all, so it needs none, and a
    reload drops what no rule uses any more."""
    text = BASE_CONFIG + TOKENS + DC_DOWN_MUTES
    hub = hub_factory(text, mail_url=mail_url(smtp[1]))
    db = tmp_path / "hub.db"
    assert indexed_labels(db) == ["alertname"]
    with hub.client(headers=ADMIN) as http:
        hub.config_path.write_text(hub.config_path.read_text() + CRITICAL_MUTES)
        assert http.post("/-/reload").status_code == 200
        wait_for(lambda: indexed_labels(db) == ["alertname", "severity"])
        hub.config_path.write_text(hub.config_path.read_text() + REGION_DOWN_MUTES)
        assert http.post("/-/reload").status_code == 200
        wait_for(lambda: indexed_labels(db) == ["alertname", "region", "severity"])
        hub.config_path.write_text(hub.config_path.read_text() + ANY_SOURCE_MUTES)
        assert http.post("/-/reload").status_code == 200
        wait_for(lambda: indexed_labels(db) == [])
    text = hub.config_path.read_text().replace(ANY_SOURCE_MUTES, "")
    hub.config_path.write_text(text.replace(REGION_DOWN_MUTES, ""))
    hub.restart()
    assert indexed_labels(db) == ["alertname", "severity"]
