"""What a new connection costs the event loop at ``[server] max_connections`` while
every connection held is idle between requests: each one makes room by closing the
connection idle longest.

    python -m bench.idle_scan [--connections 19744] [--admits 2000]

The connections are hub's own protocol (uvicorn's, with hub's bounds and census) on
uvloop, as ``hub serve`` runs it, each after one answered request, so its keep-alive
timer runs. Only the socket is left out: both ends of ~20,000 connections in one
process would need twice the open files a process gets here, so each protocol writes
into a transport that keeps nothing. The cap is the default at an open-files limit of
20,000. Printed: microseconds a new connection takes to be admitted, at the cap and
below it, and the whole pass.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

import uvicorn
import uvloop
from uvicorn.server import ServerState

from hub import connections

REQUEST = b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n"
KEEP_ALIVE = 3600.0  # seconds: no connection expires, nor times out, during the bench


async def app(scope: dict, receive: Callable, send: Callable) -> None:
    """The smallest ASGI answer: the bench measures admission, not the app."""
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


class Transport(asyncio.Transport):
    """A connection's transport that drops what is written and, on close, tells its
    protocol the connection is lost on the loop's next turn, as a socket's does."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._closing = False
        self.protocol: asyncio.Protocol | None = None

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing and self.protocol is not None:
            self._closing = True
            self._loop.call_soon(self.protocol.connection_lost, None)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def run(limit: int, admits: int) -> tuple[list[float], list[float]]:
    """Admission times (seconds) of ``admits`` new connections below the cap, then
    at it with ``limit`` idle ones held."""
    loop = asyncio.get_running_loop()
    census = connections.Census(limit, lambda: None)
    protocol = connections.protocol(KEEP_ALIVE, "1h", census)
    config = uvicorn.Config(app, timeout_keep_alive=KEEP_ALIVE, log_config=None)
    state = ServerState()

    def connect(request: bytes = b"") -> float:
        conn = protocol(config=config, server_state=state, app_state={}, _loop=loop)
        transport = Transport(loop)
        transport.protocol = conn
        started = time.perf_counter()
        conn.connection_made(transport)
        took = time.perf_counter() - started
        if request:
            conn.data_received(request)
        return took

    below = [connect(REQUEST) for _ in range(admits)]
    for _ in range(limit - admits):
        connect(REQUEST)
    while state.total_requests < limit:  # every answer sent: each connection idle
        await asyncio.sleep(0.01)
    at_cap = []
    for _ in range(admits):
        at_cap.append(connect())
        await asyncio.sleep(0)  # the closed connection is lost, as a socket's would be
    assert len(census.open) == limit, "each new connection took an idle one's place"
    return below, at_cap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=20_000 - 256)
    parser.add_argument("--admits", type=int, default=500)
    args = parser.parse_args()
    below, at_cap = uvloop.run(run(args.connections, args.admits))
    for name, times in (("below the cap", below), ("at the cap, all idle", at_cap)):
        micros = sorted(t * 1e6 for t in times)
        print(
            f"{name}: median {statistics.median(micros):.1f} us,"
            f" p99 {micros[len(micros) * 99 // 100]:.1f} us, mean {statistics.fmean(micros):.1f} us"
            f" ({len(micros)} new connections, {args.connections} held)"
        )


if __name__ == "__main__":
    main()
