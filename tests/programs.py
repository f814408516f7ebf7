"""Real third-party servers for tests (Prometheus, Alertmanager): found on PATH, run on
a free 127.0.0.1 port with a temporary directory, always stopped at the end.

``.ci/run`` installs them from Debian's packages. Outside CI a test skips when its
program is absent; in CI (the ``CI`` environment variable set) it fails instead, so a
broken CI image can never turn these tests into silent skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from conftest import TLS_CONTEXT, free_port

STOP_SECONDS = 10


def require(program: str, package: str) -> str:
    """The program's path; a skip outside CI when it is absent, a failure in CI."""
    path = shutil.which(program)
    if path:
        return path
    reason = f"{program} is not installed (Debian package {package!r})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI must run this test")
    pytest.skip(reason)


class Program:
    """One server process; ``args`` get ``--web.listen-address`` on a free port."""

    def __init__(self, args: list[str], workdir: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = workdir / f"{Path(args[0]).name}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*args, f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> bool:
        """Both Prometheus and Alertmanager answer ``/-/ready`` once they serve."""
        assert self.process.poll() is None, self.log.read_text()
        try:
            return (
                httpx.get(f"{self.url}/-/ready", timeout=1, verify=TLS_CONTEXT).status_code == 200
            )
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_SECONDS)
