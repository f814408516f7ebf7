"""Single-event native ingest through the real hub vs a bare Litestar endpoint that
only decodes the same body. One run measures both, so the ratio is meaningful on a
shared, noisy machine.

    python bench/ingest.py [--seconds 10] [--connections 64]

Cores: the server under test is pinned to core 0 and wrk (Debian package ``wrk``)
to core 1. The hub runs durable (synchronous=FULL) with a notification per new
alert going to a log file. Scenarios: ``new`` (every request a new alert: state
change, history row, outbox row) and ``repeat`` (1000 alerts re-sent: de-dup path).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
[storage]
path = "{db}"
[[sources]]
name = "bench"
auth = {{ type = "bearer", tokens = ["bench-token"] }}
[[receivers]]
name = "log"
urls = ["logfile://notifications.log"]
[route]
receiver = "log"
group_wait = "0s"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def pinned(core: int, command: list[str]) -> list[str]:
    if os.environ.get("BENCH_PIN", "1") == "0" or not shutil.which("taskset"):
        return command
    return ["taskset", "-c", str(core), *command]


def start_hub(workdir: Path, port: int) -> subprocess.Popen:
    (workdir / "bench.toml").write_text(
        CONFIG.format(port=port, db=(workdir / "hub.db").as_posix())
    )
    command = [
        sys.executable,
        "-m",
        "hub",
        "serve",
        "--config",
        "bench.toml",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(pinned(0, command), cwd=workdir, env=_env())


def start_bare(port: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(pinned(0, command), cwd=ROOT, env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def run_wrk(port: int, seconds: int, connections: int, keys: int) -> dict[str, float]:
    command = pinned(
        1,
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "ingest.lua"),
            f"http://127.0.0.1:{port}",
        ],
    )
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_KEYS": str(keys)},
        timeout=seconds + 30,
    ).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def measure(start, seconds: int, connections: int, keys: int) -> dict[str, float]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        process = start(Path(tmp), port) if start is start_hub else start(port)
        try:
            wait_listening(port)
            run_wrk(port, 2, connections, keys)  # warm-up
            return run_wrk(port, seconds, connections, keys)
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    bare = measure(start_bare, args.seconds, args.connections, 0)
    print(f"{'scenario':<28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'ratio':>8}")
    print(
        f"{'bare Litestar (decode only)':<28}{bare['rate']:>10.0f}{bare['p50_ms']:>9.2f}"
        f"{bare['p99_ms']:>9.2f}{bare['errors']:>9.0f}{1:>8.2f}"
    )
    for name, keys in (("hub: new alert each", 0), ("hub: repeats of 1000", 1000)):
        hub = measure(start_hub, args.seconds, args.connections, keys)
        print(
            f"{name:<28}{hub['rate']:>10.0f}{hub['p50_ms']:>9.2f}{hub['p99_ms']:>9.2f}"
            f"{hub['errors']:>9.0f}{hub['rate'] / bare['rate']:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
