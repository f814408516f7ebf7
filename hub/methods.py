"""The methods a path takes, said alike by ``OPTIONS`` and by a 405's ``Allow`` (RFC
9110): its handlers' methods, ``HEAD`` wherever ``GET`` is, and ``OPTIONS`` itself.

Litestar answers OPTIONS by itself, but on a path several handlers share (GET and
POST of ``/api/v1/silences``) it lists only the methods of the one registered first,
and it takes HEAD only where a handler declares it, though RFC 9110 has every GET
resource take HEAD (monitors and ``curl -I`` send it). ``MethodDoor`` sits in front of
Litestar and answers both: OPTIONS with 204 and the whole ``Allow``, HEAD as the GET
without its body.
"""

from __future__ import annotations

from collections.abc import Iterable

from litestar import Litestar
from litestar.exceptions import HTTPException
from litestar.types import Message, Receive, Scope, Send
from litestar.utils import normalize_path


def full(declared: Iterable[str]) -> list[str]:
    """What ``Allow`` lists for a path whose handlers declare ``declared``, sorted."""
    methods = {*declared, "OPTIONS"}
    return sorted(methods | {"HEAD"} if "GET" in methods else methods)


def declared(app: Litestar, path: str) -> set[str] | None:
    """The methods the handlers of ``path`` declare, or None when no route has it.

    Litestar's routing finds the route (its own OPTIONS handler is on every one),
    and its map of each route's handlers gives all of that route's methods."""
    try:
        _, handler, *_ = app.asgi_router.handle_routing(path=normalize_path(path), method="OPTIONS")
    except HTTPException:  # no route: Litestar answers the request itself (404)
        return None
    return {method for route in handler.paths for method in app.route_handler_method_map[route]}


def allowed(app: Litestar, path: str) -> list[str] | None:
    """``Allow`` for ``path`` as a list, or None when no route has it."""
    found = declared(app, path)
    return None if found is None else full(found)


async def answer_options(send: Send, methods: list[str]) -> None:
    """204 naming the methods; no Content-Length, which a 204 must not carry."""
    allow = ", ".join(methods).encode()
    await send({"type": "http.response.start", "status": 204, "headers": [(b"allow", allow)]})
    await send({"type": "http.response.body", "body": b""})


class MethodDoor:
    """OPTIONS and HEAD for every Litestar path, before Litestar routes them; every
    other request, and one for a path no route has, goes on to Litestar."""

    def __init__(self, app: Litestar) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if method in ("OPTIONS", "HEAD"):
            found = declared(self.app, scope["path"])
            if found is not None and method == "OPTIONS":
                await answer_options(send, full(found))
                return
            if found is not None and "GET" in found and "HEAD" not in found:
                await self.app({**scope, "method": "GET"}, receive, _bodiless(send))
                return
        await self.app(scope, receive, send)


def _bodiless(send: Send) -> Send:
    """``send`` for a HEAD answered as its GET: the status and headers (Content-Length
    included, as RFC 9110 allows), never the body."""

    async def head(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return head
