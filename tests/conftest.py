"""Shared test fixtures: a real hub on a real uvicorn server, a real SMTP server.

Everything listens on 127.0.0.1 on free ports, uses a temporary SQLite file, and
stops by itself at the end of the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import gc
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller

from hub import config as config_module
from hub.app import create_app

WAIT_SECONDS = 10.0
TLS_CONTEXT = ssl.create_default_context()
"""The one TLS context every test's HTTP client is given. The tests talk plain HTTP to
127.0.0.1, yet httpx builds each client a context of its own, loading the system's
certificates into it: 25-55 ms of CPU a client, hundreds of clients a run."""
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bound_socket(port: int = 0) -> socket.socket:
    """A socket bound on 127.0.0.1 (to ``port``, or one the system picks) for a server to
    listen on. A port only looked up, then bound by the server later, could be taken in
    between by another test's client connection, which draws from the same range."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def wait_for(predicate: Callable[[], object], timeout: float = WAIT_SECONDS) -> object:
    """Poll until ``predicate`` returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s")


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def text_of(self, index: int) -> str:
        message = self.messages[index]
        part = message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part else ""


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def no_cyclic_collection() -> Iterator[None]:
    """The cyclic collector off, as hub serve leaves it for long spells (it collects
    young objects only every 10,000 allocations): an error's traceback is a cycle, and
    whatever its frames hold lives until the collector runs."""
    gc.disable()
    yield
    gc.enable()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener completes connections and never answers a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def mail_url(port: int) -> str:
    return f"mailto://127.0.0.1:{port}?from=hub@example.com&to=ops@example.com&mode=insecure"


class MovedClock:
    """hub's clock (``create_app(clock=...)``): the real time plus what a test moved it
    forward by, so that a wait of an hour passes at once. Every part of hub reads the
    same clock, so they all move together."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead

    def advance(self, seconds: float) -> None:
        self.ahead += seconds


class PromptServer(uvicorn.Server):
    """uvicorn's server, woken when told to stop: its main loop looks for
    ``should_exit`` every 0.1 s, a wait every one of the suite's hundreds of stops
    paid. The loop is uvicorn's own otherwise, ticks and all."""

    stop_now: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self.stop_now = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_now.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown less its fixed 0.1 s pause after it tells connections to
        close, a wait the suite's hundreds of stops paid: the connections are let close
        first, then uvicorn waits as it does for any still busy, and ends the lifespan."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await asyncio.sleep(0)  # the closed connections' ``connection_lost`` run
        await self._wait_tasks_to_complete()
        await self.lifespan.shutdown()

    def stop(self) -> None:
        """From any thread: exit at once, as ``should_exit`` does at the next tick."""
        self.should_exit = True
        if self.stop_now is not None and self.servers:
            self.servers[0].get_loop().call_soon_threadsafe(self.stop_now.set)


class RunningHub:
    """The real app on a real uvicorn server in a background thread."""

    def __init__(
        self,
        config_path: Path,
        port: int,
        clock: Callable[[], float] = time.time,
        sock: socket.socket | None = None,
    ) -> None:
        self.config_path = config_path
        self.port = port
        self._sock = sock  # bound to ``port`` already, for the first start
        self.clock = clock
        self.url = f"http://127.0.0.1:{port}"
        self._server: PromptServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> RunningHub:
        app = create_app(config_module.load(self.config_path), self.config_path, clock=self.clock)
        self.runtime = app.hub
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self._server = PromptServer(config)
        sockets = [self._sock or bound_socket(self.port)]
        self._sock = None
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": sockets}, daemon=True
        )
        self._thread.start()
        wait_for(lambda: self._server.started)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.stop()
            self._thread.join(timeout=WAIT_SECONDS)
            assert not self._thread.is_alive(), "uvicorn did not stop"
        self._server = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs, verify=TLS_CONTEXT)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the server's event loop, where hub's workers run, so that
        a test can order its steps against theirs; its result."""
        assert self._server is not None, "the hub is not running"
        loop = self._server.servers[0].get_loop()
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(WAIT_SECONDS)


BASE_CONFIG = """
[server]
host = "127.0.0.1"
port = {port}

[storage]
path = "{db}"

[notifier]
max_attempts = {max_attempts}
backoff = "100ms"
max_backoff = "200ms"

[[sources]]
name = "shop"
format = "native"
auth = {{ type = "bearer", tokens = ["shop-secret-token"] }}
max_body_bytes = 4096

[[receivers]]
name = "ops"
urls = ["{mail_url}"]
timeout = "2s"

[route]
receiver = "ops"
group_wait = "{group_wait}"
group_interval = "{group_interval}"
repeat_interval = "{repeat_interval}"
"""


DEFAULTS = {
    "max_attempts": 5,
    "group_wait": "0s",
    "group_interval": "200ms",
    "repeat_interval": "1h",
}


def render_config(text: str = BASE_CONFIG, **values: object) -> str:
    """Config text with its ``{placeholders}`` filled: the given values, else DEFAULTS."""
    return text.format(**{**DEFAULTS, **values})


@pytest.fixture
def hub_factory(tmp_path: Path) -> Iterator[Callable[..., RunningHub]]:
    """Start hubs from config text; ``{port}``, ``{db}`` are filled in. ``clock`` is the
    hub's (a ``MovedClock`` lets a test skip ahead)."""
    started: list[RunningHub] = []

    def start(
        text: str = BASE_CONFIG, *, clock: Callable[[], float] = time.time, **values: object
    ) -> RunningHub:
        sock = bound_socket()
        port = sock.getsockname()[1]
        path = tmp_path / f"alerts-{len(started)}.toml"
        db = tmp_path / "hub.db"
        path.write_text(render_config(text, port=port, db=db.as_posix(), **values))
        hub = RunningHub(path, port, clock, sock).start()
        started.append(hub)
        return hub

    yield start
    for hub in started:
        hub.stop()


AUTH = {"Authorization": "Bearer shop-secret-token"}
