"""``hub serve`` as a real subprocess: for tests that kill it, measure it or read its
log. It listens on 127.0.0.1 only, writes its log to a file of the test's temporary
directory, and is always stopped (SIGTERM, then SIGKILL) by ``stop``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from conftest import TLS_CONTEXT, free_port

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 60.0


class HubProcess:
    """One ``python -m hub serve --config PATH`` process at a time for one config file."""

    def __init__(self, config_path: Path, port: int, log_path: Path) -> None:
        self.config_path = config_path
        self.port = port
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> HubProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hub", "serve", "--config", str(self.config_path), *args],
                cwd=self.config_path.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", ""), **(env or {})},
            )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"hub exited with {self.process.returncode}:\n{self.log()}")
            try:
                if (
                    httpx.get(f"{self.url}/readyz", timeout=2, verify=TLS_CONTEXT).status_code
                    == 200
                ):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"hub not ready within {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine or the OOM killer stops it."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def rss_kb(self) -> int:
        """Resident memory of the process, from ``/proc/<pid>/status``."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs, verify=TLS_CONTEXT)


def hub_process(tmp_path: Path, config_text: str, name: str = "hub") -> HubProcess:
    """A HubProcess for ``config_text`` with ``{port}`` and ``{db}`` filled in (not started)."""
    port = free_port()
    db = tmp_path / f"{name}.db"
    path = tmp_path / f"{name}.toml"
    path.write_text(config_text.replace("{port}", str(port)).replace("{db}", db.as_posix()))
    return HubProcess(path, port, tmp_path / f"{name}.log")
