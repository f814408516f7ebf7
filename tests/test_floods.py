"""Floods of connections and slow clients against a real ``hub serve``: a client that
sends nothing, drips its headers or its body is answered 408 within
``[server] request_timeout`` and its connection freed; headers over the limit are
431 before they fill memory; thousands of idle connections leave a webhook, the
store and ``/readyz`` working; the soft limit on open files is raised at start. At
``[server] max_connections`` the longest-idle keep-alive connection makes room for a
new client, and with none idle the new client is answered 503 with ``Retry-After``,
unless it asks for the hub's metrics or a probe, a few at a time; a connection
upgraded to a websocket frees its place when it closes, and a flood of refused clients
leaves the hub its reserve of open files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import TLS_CONTEXT, wait_for
from hub_process import HubProcess, hub_process

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc")

TIMEOUT = 1.0
IDLE_CONNECTIONS = 2000
RSS_GROWTH_CAP_KB = 64 * 1024
CAP = 20
RESERVED = 256  # hub.connections.RESERVED_DESCRIPTORS, as the log shows it
WATCH_RESERVE = 8  # hub.connections.WATCH_RESERVE: connections past the cap for /metrics

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


@pytest.fixture
def capped(tmp_path):
    process = hub_process(tmp_path, with_server_keys(f"max_connections = {CAP}")).start()
    yield process
    process.stop()


def with_server_keys(keys: str, timeout: str = "30s") -> str:
    return (CONFIG % timeout).replace("[server]\n", f"[server]\n{keys}\n")


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


def keep_alive(hub: HubProcess) -> socket.socket:
    """A connection that had one answer and waits between requests, as a client's pool
    keeps it."""
    conn = connect(hub)
    ready(conn)
    return conn


def ready(conn: socket.socket, head: bytes = b"GET /readyz HTTP/1.1\r\nHost: hub\r\n") -> None:
    """Send ``head`` and its end on ``conn``, and read the hub's 200 to the end: the
    connection then waits between requests."""
    conn.sendall(head + b"\r\n")
    data = b""
    while not data.endswith(b"}"):  # /readyz answers a JSON object
        chunk = conn.recv(65536)
        assert chunk, f"closed by the hub after {data!r}"
        data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")


def deliver(hub: HubProcess, key: str) -> httpx.Response:
    body = {"status": "firing", "summary": f"disk full {key}", "dedup_key": key}
    return httpx.post(f"{hub.url}/webhooks/shop", json=body, timeout=10, verify=TLS_CONTEXT)


def stored_keys(hub: HubProcess) -> set[str]:
    db = hub.config_path.with_suffix(".db")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {row[0].partition("/")[2] for row in conn.execute("SELECT fingerprint FROM alerts")}


def open_fds(hub: HubProcess) -> int:
    assert hub.process is not None
    return len(os.listdir(f"/proc/{hub.process.pid}/fd"))


def open_sockets(hub: HubProcess) -> int:
    """The hub's open sockets: unlike its files, which the store's readers open as
    they first read."""
    assert hub.process is not None
    count = 0
    for fd in Path(f"/proc/{hub.process.pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # closed since the listing
            count += os.readlink(fd).startswith("socket:")
    return count


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
        f"{hub.url}/api/v1/silences",
        headers={"Authorization": "Bearer ops-token"},
        verify=TLS_CONTEXT,
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
        ready = httpx.get(f"{hub.url}/readyz", timeout=10, verify=TLS_CONTEXT)
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
        default = f"event=max_connections max_connections={hard - RESERVED} open_files={hard}"
        assert default in hub.log(), "the cap is taken from the raised limit"
    finally:
        hub.stop()


def test_at_max_connections_the_longest_idle_keep_alive_connection_makes_room(capped):
    idle = [keep_alive(capped) for _ in range(CAP)]
    assert deliver(capped, "newcomer").status_code == 202
    assert idle[0].recv(1) == b"", "the connection idle longest was closed for it"
    idle[-1].sendall(b"GET /readyz HTTP/1.1\r\nHost: hub\r\n\r\n")
    assert idle[-1].recv(65536).startswith(b"HTTP/1.1 200 OK\r\n"), "the others stay"
    assert "event=connections_capped max_connections=20 refused=0 idle_closed=1" in capped.log()
    for conn in idle:
        conn.close()


def test_at_max_connections_the_connection_idle_longest_goes_not_a_busy_or_newer_one(capped):
    readyz_head = b"GET /readyz HTTP/1.1\r\nHost: hub\r\n"
    busy = connect(capped, readyz_head)  # the oldest connection, its request unfinished
    revived = keep_alive(capped)  # idle first, then asks again: idle since last
    longest = keep_alive(capped)
    newer = keep_alive(capped)
    ready(revived)
    crowd = [connect(capped, readyz_head) for _ in range(CAP - 4)]
    assert deliver(capped, "newcomer").status_code == 202

    for conn in (busy, *crowd):
        ready(conn, b"")  # their requests go on
    for conn in (revived, newer):
        ready(conn)  # they still wait for their next request
    assert longest.recv(1) == b"", "the connection idle longest was closed for it"
    assert "event=connections_capped max_connections=20 refused=0 idle_closed=1" in capped.log()
    for conn in (busy, revived, longest, newer, *crowd):
        conn.close()


def test_at_max_connections_with_none_idle_a_new_client_is_answered_503_with_retry_after(
    capped,
):
    baseline = open_fds(capped)
    # headers not finished; the hub takes connections in the order they came, so these
    # are all counted when the next one arrives
    busy = [connect(capped, WEBHOOK_HEAD) for _ in range(CAP)]
    refused = deliver(capped, "refused")
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == "application/problem+json"
    detail = (
        "hub holds its most connections at once (20, [server] max_connections),"
        " none of them idle; retry after Retry-After seconds"
    )
    assert refused.json() == {
        "type": "about:blank",
        "status": 503,
        "title": "Service unavailable",
        "detail": detail,
    }
    reserve = [connect(capped) for _ in range(WATCH_RESERVE)]  # past the cap, silent
    status, headers, problem = answer(connect(capped))  # answered before it says anything
    assert (status, headers["retry-after"], problem["detail"]) == (
        "HTTP/1.1 503 Service Unavailable",
        "1",
        detail,
    )

    for conn in busy + reserve:
        conn.close()
    wait_for(lambda: open_fds(capped) <= baseline)
    assert deliver(capped, "after").status_code == 202
    alerts = httpx.get(
        f"{capped.url}/api/v1/alerts",
        headers={"Authorization": "Bearer ops-token"},
        verify=TLS_CONTEXT,
    ).json()
    assert [alert["summary"] for alert in alerts] == ["disk full after"]
    metrics = httpx.get(f"{capped.url}/metrics", verify=TLS_CONTEXT).text
    assert "\nhub_connections_refused_total 2.0\n" in metrics
    assert f"\nhub_connections_max {CAP}.0\n" in metrics, "the cap beside the open count"
    open_now = re.search(r"\nhub_connections_open (\d+)\.0\n", metrics)
    assert open_now is not None and 1 <= int(open_now[1]) <= 2  # the scrape's, the last post's
    log = capped.log()
    assert log.count("event=connections_capped") == 1, "one line for the burst"
    assert "event=connections_capped max_connections=20 refused=1 idle_closed=0" in log


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "server.max_connections: must be at least 1, got 0"),
        ('"many"', "server.max_connections: Expected `int`, got 'many'"),
    ],
)
def test_hub_serve_refuses_a_bad_max_connections_naming_the_key(tmp_path, value, problem):
    hub = hub_process(tmp_path, with_server_keys(f"max_connections = {value}"))
    checked = subprocess.run(
        [sys.executable, "-m", "hub", "serve", "--config", str(hub.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 2
    assert problem in checked.stdout + checked.stderr


def test_a_max_connections_over_the_open_files_limit_is_lowered_to_it(tmp_path):
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    hub = hub_process(tmp_path, with_server_keys("max_connections = 100000000")).start()
    try:
        allowed = f"max_connections={max(soft - RESERVED, soft // 2)} open_files={soft}"
        assert f"level=warning logger=hub.connections event=max_connections {allowed}" in (
            hub.log()
        )
        assert "configured=100000000" in hub.log()
        assert deliver(hub, "served").status_code == 202
    finally:
        hub.stop()


WEBSOCKET_UPGRADE = (
    b"GET /readyz HTTP/1.1\r\nHost: hub\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)


def test_connections_upgraded_to_websocket_free_their_place_when_they_close(capped):
    baseline = open_fds(capped)
    for _ in range(CAP):
        conn = connect(capped, WEBSOCKET_UPGRADE)
        conn.recv(65536)  # hub serves no websocket: the handshake is refused
        conn.close()
    wait_for(lambda: open_fds(capped) <= baseline)
    assert deliver(capped, "after").status_code == 202


def test_a_flood_of_refused_clients_never_takes_the_descriptors_kept_for_the_hub(capped):
    """A client refused at the cap is kept a moment to read its 503: a flood of them
    that never close ran the hub out of open files, and the kernel's reset answered
    clients past it. The hub's limit is lowered to what it holds plus the reserve."""
    baseline = open_fds(capped)
    busy = [connect(capped, WEBHOOK_HEAD) for _ in range(CAP)]
    assert capped.process is not None
    limit = open_fds(capped) + RESERVED
    resource.prlimit(capped.process.pid, resource.RLIMIT_NOFILE, (limit, limit))
    flood = [connect(capped, WEBHOOK_HEAD + b"Content-Length: 2\r\n\r\n{}") for _ in range(400)]
    for conn in flood:
        assert conn.recv(65536).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert open_fds(capped) < limit
    for conn in busy + flood:
        conn.close()
    wait_for(lambda: open_fds(capped) <= baseline)  # the hub sees each close in its own time
    assert deliver(capped, "after").status_code == 202


def test_at_max_connections_with_none_idle_the_hub_can_still_be_watched(capped):
    """A flood is when the ops people need hub's metrics, and a liveness probe refused
    at the cap restarts hub in the middle of one: a few connections past the cap are let
    in for a scrape or a probe, one request each; anything else on them is refused as at
    the cap, once its request line is read."""
    baseline = open_sockets(capped)
    busy = [connect(capped, WEBHOOK_HEAD) for _ in range(CAP)]
    assert deliver(capped, "refused").status_code == 503
    for path in ("/healthz", "/readyz", "/readyz?verbose=1"):
        assert httpx.get(f"{capped.url}{path}", verify=TLS_CONTEXT).status_code == 200
    assert httpx.head(f"{capped.url}/healthz", verify=TLS_CONTEXT).status_code == 200
    metrics = httpx.get(f"{capped.url}/metrics", verify=TLS_CONTEXT).text
    assert "\nhub_connections_refused_total 1.0\n" in metrics
    assert "\nhub_connections_open 20.0\n" in metrics  # counted against the cap: not these

    probe = b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n"
    pipelined = connect(capped, probe + probe)
    data = b""
    while chunk := pipelined.recv(65536):
        data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.count(b"HTTP/1.1 ") == 1, "the second request on it is not read"

    dripped = connect(capped, b"GET /met")  # the request line is judged once it is whole
    dripped.sendall(b"rics HTTP/1.1\r\nHost: hub\r\n\r\n")
    assert dripped.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    for head in (b"POST /metrics HTTP/1.1\r\n", b"GET /metrics/x HTTP/1.1\r\n"):
        status, headers, _ = answer(connect(capped, head))
        assert (status, headers["retry-after"]) == ("HTTP/1.1 503 Service Unavailable", "1")

    reserve = [connect(capped) for _ in range(WATCH_RESERVE)]  # silent: they hold it
    status, _, _ = answer(connect(capped, probe))
    assert status == "HTTP/1.1 503 Service Unavailable", "the reserve is bounded"
    assert stored_keys(capped) == set()
    for conn in busy + reserve + [pipelined, dripped]:
        conn.close()
    wait_for(lambda: open_sockets(capped) <= baseline)
    assert deliver(capped, "after").status_code == 202
    metrics = httpx.get(f"{capped.url}/metrics", verify=TLS_CONTEXT).text
    assert "\nhub_connections_refused_total 4.0\n" in metrics
