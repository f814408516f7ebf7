"""The app factory: builds the runtime (store, sender, scheduler, metrics) for one
config and the Litestar app that serves it. Nothing is global: two apps in one
process (as in tests) share nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from importlib.metadata import PackageNotFoundError, version

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from litestar import Litestar
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig

from hub import api, logfile
from hub.config import Config
from hub.errors import HubError
from hub.ingest import Target
from hub.metrics import Metrics
from hub.outbox import Sender, integration
from hub.problems import handle_http_exception, handle_hub_error, handle_unexpected
from hub.store import Store

log = logging.getLogger("hub.app")

CHECKPOINT_SECONDS = 30


def hub_version() -> str:
    try:
        return version("hub")
    except PackageNotFoundError:
        return "0+unknown"


class Runtime:
    """Everything one running hub owns; handlers reach it through ``app.state.hub``."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.metrics = Metrics(
            [s.name for s in config.sources], [r.name for r in config.receivers], hub_version()
        )
        self.store = Store(
            config.storage.path,
            synchronous=config.storage.synchronous,
            batch_max=config.storage.batch_max,
            on_commit=self.metrics.observe_commit,
        )
        self.metrics.watch_store(
            self.store.active_alert_counts, self.store.notification_state_counts
        )
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.sender: Sender | None = None
        self._sender_task: asyncio.Task | None = None

    def current_config(self) -> Config:
        return self.config

    def route(self, labels: Mapping[str, str], kind: str) -> list[Target]:
        """The root route's receiver, one target per URL; resolved only if it wants it."""
        receiver = self.config.receiver(self.config.route.receiver or "")
        if receiver is None or (kind == "resolved" and not receiver.send_resolved):
            return []
        return [(receiver.name, i, integration(url)) for i, url in enumerate(receiver.urls)]

    async def start(self) -> None:
        logfile.register()
        self.store.open()
        self.sender = Sender(self.store, self.current_config, self.metrics, clock=self.clock)
        self._sender_task = asyncio.create_task(self.sender.run(), name="hub-outbox")
        self.scheduler.add_job(
            self.store.checkpoint, "interval", seconds=CHECKPOINT_SECONDS, id="wal-checkpoint"
        )
        self.scheduler.start()
        log.info(
            "event=hub_started store=%s sources=%d receivers=%d",
            self.config.storage.path,
            len(self.config.sources),
            len(self.config.receivers),
        )

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.sender is not None:
            await self.sender.stop()
        if self._sender_task is not None:
            self._sender_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender_task
        self.store.close()
        log.info("event=hub_stopped")

    def ready(self) -> dict[str, bool]:
        """What readiness checks: the store takes writes, background work is running."""
        return {
            "store": self.store.writable(),
            "scheduler": self.scheduler.running,
            "sender": self._sender_task is not None and not self._sender_task.done(),
        }

    def poke_sender(self) -> None:
        if self.sender is not None:
            self.sender.poke()


def create_app(config: Config, *, clock: Callable[[], float] = time.time) -> Litestar:
    """Build the app for one config; the lifespan starts and stops its runtime."""
    runtime = Runtime(config, clock)

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    body_limit = max(
        [config.server.max_body_bytes, *(s.max_body_bytes or 0 for s in config.sources)]
    )
    return Litestar(
        route_handlers=api.HANDLERS,
        lifespan=[lifespan],
        state=State({"hub": runtime}),
        request_max_body_size=body_limit,
        exception_handlers={
            HubError: handle_hub_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        openapi_config=OpenAPIConfig(title="hub", version=hub_version()),
        logging_config=None,
    )
