"""What one client connection may hold of the server: time and header bytes.

uvicorn closes a connection idle *between* requests (``timeout_keep_alive``), but
nothing bounds one that opens and sends nothing, sends its headers a byte every few
seconds, or declares a body it never finishes, nor the size of the headers it sends:
each such connection held its descriptor forever and its header bytes in memory
without limit. ``protocol`` is uvicorn's own HTTP protocol with both bounds, checked
by one timer per connection rather than by work on every request.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from http import HTTPStatus
from typing import Literal

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hub import logs
from hub.problems import MEDIA_TYPE, problem_body

log = logging.getLogger("hub.connections")

MAX_HEADER_BYTES = 65_536
"""The most bytes a request's line and headers may take: nginx's default is 32 KiB,
Node's 16 KiB; hub's own clients send well under 4 KiB."""

Phase = Literal["headers", "body"]


def protocol(request_timeout: float, timeout_text: str) -> Callable[..., asyncio.Protocol]:
    """uvicorn's httptools protocol answering a request whose headers or body do not
    arrive within ``request_timeout`` seconds with 408, and headers over
    ``MAX_HEADER_BYTES`` with 431, closing the connection either way."""

    class BoundedProtocol(_BoundedProtocol):
        timeout = request_timeout
        timeout_written = timeout_text

    return BoundedProtocol


class _BoundedProtocol(HttpToolsProtocol):
    timeout: float
    timeout_written: str

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._phase: Phase | None = "headers"
        self._since = self.loop.time()
        self._header_bytes = 0
        self._timer = self.loop.call_later(self.timeout, self._check_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._phase == "headers":  # this chunk did not complete them
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                detail = f"the request's line and headers are over {MAX_HEADER_BYTES} bytes"
                self._refuse(431, "Request header fields too large", detail)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase is None:  # a request after an answered one
            self._phase, self._since, self._header_bytes = "headers", self.loop.time(), 0

    def on_headers_complete(self) -> None:
        self._phase, self._since = "body", self.loop.time()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = None
        super().on_message_complete()

    def _check_deadline(self) -> None:
        """Answer 408 if the request being read is late, else look again when it would be."""
        if self.transport.is_closing():
            return
        now = self.loop.time()
        left = self.timeout if self._phase is None else self._since + self.timeout - now
        if left > 0:
            self._timer = self.loop.call_later(left, self._check_deadline)
            return
        timeout = logs.value(self.timeout_written)
        log.warning("event=request_timeout phase=%s timeout=%s", self._phase, timeout)
        if self._phase == "body" and self.cycle.response_started:
            self.transport.close()  # an answer is on its way: nothing else can be said
            return
        detail = (
            f"the request's {self._phase} did not arrive within {self.timeout_written}"
            " ([server] request_timeout)"
        )
        self._refuse(408, "Request timeout", detail)

    def _refuse(self, status: int, title: str, detail: str) -> None:
        """Answer with a problem document and close: the rest of the request is not read.
        A handler still waiting for the body is told the client went away."""
        body, _ = problem_body(status, title, detail)
        encoded = msgspec.json.encode(body)
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: {MEDIA_TYPE}\r\n"
            f"content-length: {len(encoded)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode("latin-1") + encoded)
        self.transport.close()


def raise_open_files_limit() -> None:
    """Raise the soft limit on open descriptors to the hard one, as nginx and most
    servers do, and log both: every connection takes one, and so does each SQLite file
    hub opens (readiness, checkpoint, backup). At the usual soft limit of 1024, a
    thousand idle connections left none for them, and a new client's connection was
    dropped without a word in the log."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raised = hard != resource.RLIM_INFINITY and soft < hard
    if raised:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    log.info(
        "event=open_files_limit soft=%s hard=%s raised_from=%s",
        hard if raised else soft,
        hard,
        soft if raised else "-",
    )
