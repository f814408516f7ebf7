"""Floods of connections and slow clients against a real ``hub serve``: a client that
sends nothing, drips its headers or its body is answered 408 within
``[server] request_timeout`` and its connection freed; headers over the limit are
431 before they fill memory; thousands of idle connections leave a webhook, the
store and ``/readyz`` working; the soft limit on open files is raised at start.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from conftest import wait_for
from hub_process import HubProcess, hub_process

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc")

TIMEOUT = 1.0
IDLE_CONNECTIONS = 2000
RSS_GROWTH_CAP_KB = 64 * 1024

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
request_timeout = "%s"

[storage]
path = "{db}"

[[sources]]
name = "shop"
format = "native"
auth = { type = "none" }

[[receivers]]
name = "ops"
urls = ["logfile://sent.jsonl"]

[route]
receiver = "ops"

[api]
tokens = [{ name = "ops", token = "ops-token", role = "write" }]
"""

WEBHOOK_HEAD = b"POST /webhooks/shop HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
SILENCE_HEAD = (
    b"POST /api/v1/silences HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer ops-token\r\n"
    b"Content-Type: application/json\r\n"
)


@pytest.fixture
def hub(tmp_path):
    process = hub_process(tmp_path, CONFIG % "1s").start()
    yield process
    process.stop()


def connect(hub: HubProcess, first: bytes = b"") -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", hub.port), timeout=10)
    conn.sendall(first)
    return conn


def drip(conns: list[socket.socket], seconds: float) -> None:
    """One byte to each connection every 0.2 s: never idle, never done."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for conn in conns:
            with contextlib.suppress(OSError):  # answered and closed: what the test waits for
                conn.sendall(b"x")
        time.sleep(0.2)


def answer(conn: socket.socket) -> tuple[str, dict[str, str], dict]:
    """The status line, headers and JSON body the hub sent before closing ``conn``."""
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return status, headers, json.loads(body)


def deliver(hub: HubProcess, key: str) -> httpx.Response:
    body = {"status": "firing", "summary": f"disk full {key}", "dedup_key": key}
    return httpx.post(f"{hub.url}/webhooks/shop", json=body, timeout=10)


def stored_keys(hub: HubProcess) -> set[str]:
    db = hub.config_path.with_suffix(".db")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {row[0].partition("/")[2] for row in conn.execute("SELECT fingerprint FROM alerts")}


def open_fds(hub: HubProcess) -> int:
    assert hub.process is not None
    return len(os.listdir(f"/proc/{hub.process.pid}/fd"))


def test_clients_too_slow_with_headers_or_body_get_408_and_their_connections_are_freed(hub):
    baseline = open_fds(hub)
    silent = connect(hub)
    headers = connect(hub, b"POST /webhooks/shop HTTP/1.1\r\nHost: hub\r\n")
    body = connect(hub, WEBHOOK_HEAD + b"Content-Length: 100000\r\n\r\n{")
    api_body = connect(hub, SILENCE_HEAD + b"Content-Length: 100000\r\n\r\n{")
    assert deliver(hub, "during").status_code == 202, "a prompt client is not held up"
    drip([headers, body, api_body], TIMEOUT + 1.0)

    slow = [(silent, "headers"), (headers, "headers"), (body, "body"), (api_body, "body")]
    for conn, phase in slow:
        status, answered, problem = answer(conn)
        assert status == "HTTP/1.1 408 Request Timeout"
        assert answered["content-type"] == "application/problem+json"
        assert answered["connection"] == "close"
        assert problem["status"] == 408
        assert problem["detail"] == (
            f"the request's {phase} did not arrive within 1s ([server] request_timeout)"
        )
    wait_for(lambda: open_fds(hub) <= baseline)
    log = hub.log()
    assert log.count("event=request_timeout phase=headers timeout=1s") == 2
    assert log.count("event=request_timeout phase=body timeout=1s") == 2
    assert "Exception in ASGI application" not in log
    assert stored_keys(hub) == {"during"}, "the dripped webhook was never applied"
    silences = httpx.get(
        f"{hub.url}/api/v1/silences", headers={"Authorization": "Bearer ops-token"}
    )
    assert silences.json() == [], "nor the dripped silence"


def test_headers_over_64_kib_are_431_before_they_fill_memory(hub):
    rss_before = hub.rss_kb()
    conn = connect(hub, b"POST /webhooks/shop HTTP/1.1\r\nHost: hub\r\n")
    with pytest.raises(OSError):  # the hub closes the connection as the headers go on
        for _ in range(400):  # 40 MB if nothing stopped them
            conn.sendall(b"X-Padding: " + b"a" * 100_000 + b"\r\n")
    status, _, problem = answer(conn)
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    assert problem["detail"] == "the request's line and headers are over 65536 bytes"
    assert hub.rss_kb() - rss_before < RSS_GROWTH_CAP_KB
    assert deliver(hub, "after").status_code == 202


def test_thousands_of_idle_connections_leave_webhooks_the_store_and_readiness_working(tmp_path):
    hub = hub_process(tmp_path, CONFIG % "6s").start()
    try:
        baseline, rss_before = open_fds(hub), hub.rss_kb()
        idle = [connect(hub) for _ in range(IDLE_CONNECTIONS)]
        # the readiness probe's keep-alive connection of the start may have closed since
        wait_for(lambda: open_fds(hub) >= baseline + IDLE_CONNECTIONS - 5)
        assert deliver(hub, "in-the-crowd").status_code == 202
        ready = httpx.get(f"{hub.url}/readyz", timeout=10)
        assert ready.json() == {
            "status": "ready",
            "checks": {"store": True, "scheduler": True, "workers": True},
        }
        assert hub.rss_kb() - rss_before < RSS_GROWTH_CAP_KB
        wait_for(lambda: open_fds(hub) <= baseline + 5, timeout=10)  # all timed out, freed
        for conn in idle:
            conn.close()
        assert stored_keys(hub) == {"in-the-crowd"}
    finally:
        hub.stop()


def test_hub_serve_raises_its_soft_limit_on_open_files_to_the_hard_one(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 512:
        pytest.skip("needs a finite hard limit above 512 to show the raise")
    hub = hub_process(tmp_path, CONFIG % "30s")
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))  # inherited by hub serve
    try:
        hub.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert hub.process is not None
        assert resource.prlimit(hub.process.pid, resource.RLIMIT_NOFILE) == (hard, hard)
        assert f"event=open_files_limit soft={hard} hard={hard} raised_from=512" in hub.log()
    finally:
        hub.stop()
