"""The API's lists page by page: keyset cursors and the ``Link`` header.

A page is a JSON array, as before paging existed. When rows remain after it, the
answer carries ``Link: <https://hub.example/api/v1/incidents?status=resolved&cursor=...>;
rel="next"`` (RFC 8288): the request's own URL, filters included, with a ``cursor``
naming the last row the page looked at. The next page starts strictly after that row
in the list's order (its time column, then the id that breaks ties), never at an
offset: a row written meanwhile sorts before the cursor or after it, so it shifts no
other row into a page already read or out of the next one. There is no total count:
counting a big store would scan it on every page.

A cursor is opaque to clients (base64url of the JSON ``[list, *key]``) and belongs to
its list: one from another list, or anything else hub did not give out, is a 400
naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response
from litestar.datastructures import ResponseHeader
from litestar.params import QueryParameter

from hub.api_params import invalid_value
from hub.store import ROW_ID_MAX, Position

PAGE_MAX = 1000
SCAN_MAX = 100_000
"""Rows a page filtered in Python (label matchers) may read before it stops short: a
page of fewer rows, even none, with a ``next`` link that resumes after the last row read."""

Limit = Annotated[
    int, QueryParameter(ge=1, le=PAGE_MAX, description="at most this many rows in the page")
]
Cursor = Annotated[
    str | None,
    QueryParameter(
        description='where the page starts: the cursor of the previous page\'s Link rel="next"'
        " URL (follow that URL as given rather than building one)"
    ),
]
NEXT_LINK = ResponseHeader(
    name="Link",
    documentation_only=True,
    value="",  # only its type is read: the header is documented as a string
    description='<URL>; rel="next" when rows remain after this page: the same URL and filters'
    " with a cursor, on [server] public_url when it is set; absent on the last page",
    example="<https://hub.example/api/v1/alerts?status=resolved"
    '&cursor=WyJhbGVydHMiLDE3NjQzMzEyMDAuNSw0Ml0>; rel="next"',
)


@dataclass(frozen=True)
class Page:
    """The rows to show and the cursor of the next page (None: this is the last)."""

    rows: list[dict[str, Any]]
    next: str | None


@dataclass(frozen=True)
class Listing:
    """One paged list: its name in cursors and the store's order it is read in (time
    columns, then ``id``), so a row's key is where a page after it starts."""

    name: str
    order: tuple[str, ...]
    _decoder: msgspec.json.Decoder = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """A cursor decodes as ``[name, time..., id]``, the id within SQLite's integers."""
        row_id = Annotated[int, msgspec.Meta(ge=0, le=ROW_ID_MAX)]
        kinds = [row_id if column == "id" else float for column in self.order]
        key = tuple[(Literal[self.name], *kinds)]  # type: ignore[misc]
        object.__setattr__(self, "_decoder", msgspec.json.Decoder(key))

    def page(
        self,
        read: Callable[[int, Position | None], Iterable[dict[str, Any]]],
        cursor: str | None,
        limit: int,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Page:
        """The first ``limit`` rows after ``cursor`` that ``keep`` accepts (all, if it is
        None); ``read(n, after)`` gives up to n rows after a position, in order.

        The next page starts after the last row shown when another accepted row
        follows it, or after the last row read when a filtered page used up
        ``SCAN_MAX`` rows first; there is none when the rows ran out."""
        budget = limit if keep is None else SCAN_MAX
        shown: list[dict[str, Any]] = []
        last: dict[str, Any] = {}
        for examined, row in enumerate(read(budget + 1, self.position(cursor))):
            if examined == budget:
                return Page(shown, self.cursor(last))
            if keep is None or keep(row):
                if len(shown) == limit:
                    return Page(shown, self.cursor(shown[-1]))
                shown.append(row)
            last = row
        return Page(shown, None)

    def cursor(self, row: dict[str, Any]) -> str:
        key = msgspec.json.encode([self.name, *(row[column] for column in self.order)])
        return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")

    def position(self, cursor: str | None) -> Position | None:
        """The key a cursor names; a 400 naming ``cursor`` when this list did not make it."""
        if cursor is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            _, *key = self._decoder.decode(raw)
        except (binascii.Error, ValueError, msgspec.DecodeError) as e:
            raise invalid_value(
                "cursor",
                f'not a cursor of the {self.name} list; follow the Link rel="next" URL'
                " of a previous page as given",
            ) from e
        return tuple(key)


def respond(request: Request, rows: list[dict[str, Any]], cursor: str | None) -> Response:
    """The page as a JSON array, with a ``next`` link when ``cursor`` says more follow."""
    if cursor is None:
        return Response(rows)
    return Response(rows, headers={"Link": f'<{next_url(request, cursor)}>; rel="next"'})


def next_url(request: Request, cursor: str) -> str:
    """The request's URL with ``cursor`` replaced, absolute as most clients follow it: on
    ``[server] public_url`` when set (the address clients reach hub at, behind a proxy
    too), else on the address the request was sent to."""
    base = request.app.state.hub.config.server.public_url or str(request.base_url)
    kept = [(name, value) for name, value in request.query_params.multi_items() if name != "cursor"]
    query = urllib.parse.urlencode([*kept, ("cursor", cursor)])
    return f"{base.rstrip('/')}{request.url.path}?{query}"
