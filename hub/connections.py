"""What one client connection may hold of the server: time and header bytes; and how
many connections the server holds at once.

uvicorn closes a connection idle *between* requests (``timeout_keep_alive``), but
nothing bounds one that opens and sends nothing, sends its headers a byte every few
seconds, or declares a body it never finishes, nor the size of the headers it sends:
each such connection held its descriptor forever and its header bytes in memory
without limit. ``protocol`` is uvicorn's own HTTP protocol with both bounds, checked
by one timer per connection rather than by work on every request.

Past the open-files limit the kernel refuses new connections without a word, webhooks
and ``/readyz`` alike, so ``Census`` caps them below it, as nginx's
``worker_connections``: at the cap the connection idle longest between requests makes
room, and with none idle the new one is answered 503. Connections are counted as they
open and close, never per request. A few connections past the cap are let in for the
requests that watch the hub, a Prometheus scrape or a probe: a flood is when the ops
people need its metrics, and a liveness probe refused at the cap restarted the hub in
the middle of one.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import OrderedDict
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

RESERVED_DESCRIPTORS = 256
"""Open files kept from connections by the default ``[server] max_connections``: the
store's (its write and read connections, the readiness probe, checkpoint and backup,
each a database, WAL and shared-memory file), the log file, the listening socket and
the event loop's own, the outbox's sends (``[notifier] concurrency`` at a time, each
a connection or two), refused connections in their last second (``LINGERING_MAX``) and
those let in past the cap to watch the hub (``WATCH_RESERVE``)."""

UNLIMITED_FILES = 1_048_576
"""The open-files limit taken when there is none: Linux's own ceiling (``nr_open``)."""

RETRY_AFTER = 1
"""Seconds a refused client is told to wait: connections free as requests end, most
within milliseconds, the slowest within ``[server] request_timeout``."""

LINGER = 1.0
"""Seconds a refused connection stays open reading what its client sends, so that the
503 is read before the close: closing with the request unread resets the connection,
and the client may lose the answer."""

LINGERING_MAX = RESERVED_DESCRIPTORS // 2
"""Refused connections lingering at once, at most: past it one is closed after its
answer at once, so that a flood of clients that never close takes no more of the
descriptors kept for hub's own files than this."""

WATCH_RESERVE = 8
"""Connections let in past the cap, at most at once, each for one request to a path in
``WATCH_PATHS``: Prometheus scrapes each target over one connection, and a probe
opens one at a time."""

WATCH_PATHS = frozenset({b"/metrics", b"/healthz", b"/readyz"})
"""What a connection past the cap may ask for (``GET`` or ``HEAD``): the hub's metrics
and its probes, none of which writes or waits on a client."""

LOG_EVERY = 10.0
"""Seconds between two ``connections_capped`` lines while a burst goes on."""

Phase = Literal["headers", "body"]
Admission = Literal["counted", "watch", "refused"]


def protocol(
    request_timeout: float, timeout_text: str, census: Census
) -> Callable[..., asyncio.Protocol]:
    """uvicorn's httptools protocol answering a request whose headers or body do not
    arrive within ``request_timeout`` seconds with 408, and headers over
    ``MAX_HEADER_BYTES`` with 431, closing the connection either way; its connections
    are counted and capped by ``census``."""

    class BoundedProtocol(_BoundedProtocol):
        timeout = request_timeout
        timeout_written = timeout_text
        counted = census

    return BoundedProtocol


class Census:
    """The connections one server holds, at most ``limit``, and what the cap did.

    A connection is idle between two requests, while uvicorn's keep-alive timer runs:
    ``idle`` holds those in the order their wait began, and as every timer lasts the
    same ``timeout_keep_alive``, the first is the one idle longest. Finding it costs
    the same with twenty connections as with twenty thousand: a pass over them all
    took 15-20 ms of the event loop for each new connection at a cap of 19,744, when
    the hub is busiest (``bench.idle_scan``).
    """

    def __init__(self, limit: int, on_refused: Callable[[], None]) -> None:
        self.limit = limit
        self.open: set[HttpToolsProtocol] = set()
        self.watching: set[HttpToolsProtocol] = set()  # let in past the cap (``WATCH_RESERVE``)
        # an OrderedDict finds its first key at once; a dict walks past the holes left
        # by the keys taken from its front (7 us at 10,000 against 0.9)
        self.idle: OrderedDict[HttpToolsProtocol, None] = OrderedDict()
        self._on_refused = on_refused
        self._refused = self._closed_idle = 0  # since the last log line
        self._log_timer: asyncio.TimerHandle | None = None
        self.lingering = 0  # refused connections in their last moment (``_Lingering``)

    def admit(self, conn: HttpToolsProtocol) -> Admission:
        """Count ``conn`` in, closing the longest-idle connection if at the cap; at the
        cap with none idle, let it in to watch the hub while ``WATCH_RESERVE`` allows,
        else refuse it (not counted)."""
        if len(self.open) < self.limit or self._close_longest_idle(conn):
            self.open.add(conn)
            return "counted"
        if len(self.watching) < WATCH_RESERVE:
            self.watching.add(conn)
            return "watch"
        self.refused(conn)
        return "refused"

    def refused(self, conn: HttpToolsProtocol) -> None:
        """Count and log ``conn`` refused at the cap."""
        self._refused += 1
        self._on_refused()
        self._log_soon(conn.loop)

    def leave(self, conn: HttpToolsProtocol) -> None:
        """Count ``conn`` out: it closed, or is no longer an HTTP connection."""
        self.open.discard(conn)
        self.watching.discard(conn)
        self.idle.pop(conn, None)

    def _close_longest_idle(self, conn: HttpToolsProtocol) -> bool:
        if not self.idle:
            return False
        idle = next(iter(self.idle))
        self.leave(idle)
        idle.timeout_keep_alive_handler()  # uvicorn's own close of an idle connection
        self._closed_idle += 1
        self._log_soon(conn.loop)
        return True

    def _log_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        """Log the first of a burst at once, then what more came every ``LOG_EVERY``."""
        if self._log_timer is None:
            self._log(loop)

    def _log(self, loop: asyncio.AbstractEventLoop) -> None:
        if not (self._refused or self._closed_idle):
            self._log_timer = None  # the burst is over
            return
        log.warning(
            "event=connections_capped max_connections=%d refused=%d idle_closed=%d",
            self.limit,
            self._refused,
            self._closed_idle,
        )
        self._refused = self._closed_idle = 0
        self._log_timer = loop.call_later(LOG_EVERY, self._log, loop)


class _BoundedProtocol(HttpToolsProtocol):
    timeout: float
    timeout_written: str
    counted: Census

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        admission = self.counted.admit(self)
        if admission == "refused":
            _refuse_at_cap(transport, self.counted)
            return
        # a watching connection's request line, held until it is whole and judged
        self._held: bytearray | None = bytearray() if admission == "watch" else None
        super().connection_made(transport)
        self._phase: Phase | None = "headers"
        self._since = self.loop.time()
        self._header_bytes = 0
        self._timer = self.loop.call_later(self.timeout, self._check_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        """Hand the connection to uvicorn's websocket protocol, which hub's app refuses:
        this protocol hears nothing of it after, its close included, so it leaves the
        count now (as it leaves uvicorn's), else each upgrade held a place for good and
        ``max_connections`` of them had every later client answered 503; and its
        deadline goes, else a 408 was written into the websocket's stream."""
        self._leave()
        super().handle_websocket_upgrade()

    def _leave(self) -> None:
        self.counted.leave(self)
        self._timer.cancel()

    def data_received(self, data: bytes) -> None:
        if self._held is not None:
            data = self._watch_request(data)
            if not data:
                return
        self.counted.idle.pop(self, None)  # uvicorn stops its keep-alive timer for any byte
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

    def _watch_request(self, data: bytes) -> bytes:
        """What of ``data`` goes on to uvicorn on a connection let in past the cap:
        nothing until the request line is whole, then all of it held if it asks to
        watch the hub; anything else is refused as at the cap, before uvicorn sees it."""
        assert self._held is not None
        self._held += data
        line, whole, _ = self._held.partition(b"\r\n")
        if not whole and len(self._held) <= MAX_HEADER_BYTES:
            return b""
        method, _, rest = bytes(line).partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        if whole and method in (b"GET", b"HEAD") and path in WATCH_PATHS:
            held, self._held = bytes(self._held), None
            return held
        self._leave()
        self.connections.discard(self)  # uvicorn's count, as its websocket upgrade does
        self.counted.refused(self)
        _refuse_at_cap(self.transport, self.counted)
        return b""

    def on_response_complete(self) -> None:
        """Start the connection's idle time if uvicorn starts its keep-alive timer: not
        when a pipelined request follows, nor on a closing connection. A connection let
        in past the cap closes after its one request."""
        if self in self.counted.watching:
            self.transport.close()
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:
            self.counted.idle[self] = None

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
        self.transport.write(_problem_answer(status, title, detail))
        self.transport.close()


def _problem_answer(status: int, title: str, detail: str, **extra: object) -> bytes:
    """A whole HTTP answer carrying a problem document, closing the connection."""
    body, headers = problem_body(status, title, detail, **extra)
    encoded = msgspec.json.encode(body)
    lines = "".join(f"{name.lower()}: {value}\r\n" for name, value in headers.items())
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: {MEDIA_TYPE}\r\n"
        f"content-length: {len(encoded)}\r\n{lines}connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + encoded


def _refuse_at_cap(transport: asyncio.Transport, census: Census) -> None:
    """Answer 503 before reading anything, then linger (``_Lingering``) unless
    ``LINGERING_MAX`` connections already do: then close at once."""
    detail = (
        f"hub holds its most connections at once ({census.limit}, [server] max_connections),"
        " none of them idle; retry after Retry-After seconds"
    )
    transport.write(_problem_answer(503, "Service unavailable", detail, retry_after=RETRY_AFTER))
    if census.lingering < LINGERING_MAX:
        transport.set_protocol(_Lingering(transport, census))
    else:
        transport.close()


class _Lingering(asyncio.Protocol):
    """A refused connection's last moment: its output is shut, and what its client
    still sends is read and dropped until it closes, ``LINGER`` seconds at most."""

    def __init__(self, transport: asyncio.Transport, census: Census) -> None:
        self.transport = transport
        self._census = census
        census.lingering += 1
        transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        pass  # the request is not read: it was answered before it came

    def eof_received(self) -> bool:
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._census.lingering -= 1
        self._timer.cancel()


def raise_open_files_limit() -> int:
    """Raise the soft limit on open descriptors to the hard one, as nginx and most
    servers do, log both and return the one in effect: every connection takes one, and
    so does each SQLite file hub opens (readiness, checkpoint, backup). At the usual
    soft limit of 1024, a thousand idle connections left none for them, and a new
    client's connection was dropped without a word in the log."""
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
    return hard if raised else soft


def max_connections(configured: int | None, open_files: int) -> int:
    """The cap on connections: ``configured``, or by default the open-files limit less
    ``RESERVED_DESCRIPTORS`` (half the limit when that leaves less). One configured
    above that is lowered to it with a warning, as nginx does, rather than refused: the
    same file may run where ``ulimit -n`` differs, and hub should start there too."""
    files = UNLIMITED_FILES if open_files == resource.RLIM_INFINITY else open_files
    allowed = max(files - RESERVED_DESCRIPTORS, files // 2)
    if configured is None or configured <= allowed:
        cap = allowed if configured is None else configured
        log.info("event=max_connections max_connections=%d open_files=%d", cap, files)
        return cap
    log.warning(
        "event=max_connections max_connections=%d open_files=%d configured=%d",
        allowed,
        files,
        configured,
    )
    return allowed
