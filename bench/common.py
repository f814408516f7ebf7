"""What every benchmark shares: free ports, starting the hub and Alertmanager as
pinned subprocesses, running wrk, and reading a process's CPU time and memory.

Cores: the server under test runs on core 0 and the load generator (wrk) on
core 1, so the generator is not the bottleneck and both sides of a ratio get
the same share of the machine. Set BENCH_PIN=0 to let the OS schedule freely.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HUB_CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
max_body_bytes = 4194304
[storage]
path = "{db}"
[[sources]]
name = "bench"
auth = {{ type = "bearer", tokens = ["bench-token"] }}
[[sources]]
name = "prom"
format = "prometheus"
auth = {{ type = "none" }}
[[receivers]]
name = "log"
urls = ["{receiver_url}"]
[route]
receiver = "log"
group_by = {group_by}
group_wait = "{group_wait}"
"""

ALERTMANAGER_CONFIG = """
route:
  receiver: blackhole
  group_by: [alertname, instance]
receivers:
  - name: blackhole
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def pinned(core: int, command: list[str]) -> list[str]:
    if os.environ.get("BENCH_PIN", "1") == "0" or not shutil.which("taskset"):
        return command
    return ["taskset", "-c", str(core), *command]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def start_hub(
    workdir: Path,
    port: int,
    receiver_url: str = "logfile://notifications.log",
    group_by: str = '["alertname", "instance"]',
    group_wait: str = "0s",
    extra: str = "",
) -> subprocess.Popen:
    """``hub serve`` durable (synchronous=FULL), logging warnings only; ``extra`` is
    config text added at the end (``[[inhibit_rules]]``, say)."""
    text = HUB_CONFIG.format(
        port=port,
        db=(workdir / "hub.db").as_posix(),
        receiver_url=receiver_url,
        group_by=group_by,
        group_wait=group_wait,
    )
    text += extra
    (workdir / "bench.toml").write_text(text)
    args = ["-m", "hub", "serve", "--config", "bench.toml", "--log-level", "warning"]
    return start_python(args, workdir, port)


def start_python(args: list[str], cwd: Path, port: int) -> subprocess.Popen:
    """This Python running ``args`` on core 0, once it listens on ``port``."""
    process = subprocess.Popen(pinned(0, [sys.executable, *args]), cwd=cwd, env=env())
    wait_listening(port)
    return process


def start_alertmanager(workdir: Path, port: int) -> subprocess.Popen | None:
    """Debian's Alertmanager, in memory as it always is, or None when not installed."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        return None
    (workdir / "am.yml").write_text(ALERTMANAGER_CONFIG)
    command = [
        binary,
        f"--config.file={workdir / 'am.yml'}",
        f"--storage.path={workdir / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    process = subprocess.Popen(pinned(0, command), cwd=workdir, stderr=subprocess.DEVNULL)
    wait_listening(port)
    return process


def wait_drained(port: int, timeout: float = 300) -> None:
    """Wait until the hub has sent every notification it queued (new alerts notify):
    a measurement of re-sends must not pay for the first sends of the alerts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        busy = re.findall(r'hub_outbox_notifications\{state="(?:pending|sending)"\} (\S+)', text)
        if busy and all(float(value) == 0 for value in busy):
            time.sleep(2)  # the dispatcher's last round
            return
        time.sleep(1)
    raise RuntimeError("the hub's outbox did not drain")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def run_wrk(
    url: str, script: str, seconds: int, connections: int, extra_env: dict[str, str] | None = None
) -> dict[str, float]:
    """Requests (in all and a second), p50 and p99 in ms, and non-2xx answers of one
    wrk run."""
    command = pinned(
        1,
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / script),
            url,
        ],
    )
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(extra_env or {})},
        timeout=seconds + 60,
    ).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def warm_then_measure(
    url: str,
    script: str,
    seconds: int,
    connections: int,
    options: dict[str, str],
    drain_port: int | None = None,
    server_pid: int | None = None,
) -> dict[str, float]:
    """Two seconds of warm-up, then the measured run; with ``drain_port`` the hub first
    sends what the warm-up's new alerts queued. With ``server_pid``, also the server's
    CPU time per request (``cpu_us``), which tells what hub adds to a request in
    microseconds rather than as a share."""
    run_wrk(url, script, 2, connections, options)
    if drain_port is not None:
        wait_drained(drain_port)
    before = cpu_seconds(server_pid) if server_pid is not None else 0.0
    result = run_wrk(url, script, seconds, connections, options)
    if server_pid is not None:
        result["cpu_us"] = (cpu_seconds(server_pid) - before) / result["requests"] * 1e6
    return result


def median_run(results: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median rate: a noisy machine makes single runs vary by 15%."""
    return sorted(results, key=lambda result: result["rate"])[len(results) // 2]


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The process's resident memory now, or its peak so far with ``field="VmHWM"``."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) / 1024


def require_wrk() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
