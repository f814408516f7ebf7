"""A small client for the hub's HTTP API, used by the command line.

Standard library only (``urllib``): the CLI sends a handful of JSON requests with a
bearer token and a timeout; that needs no extra dependency.

Every failure is a ``ClientError`` whose message is one line a person can act on:

- ``ApiError``: the hub answered with an error status; ``status``, ``title`` and
  ``detail`` come from its ``application/problem+json`` body.
- ``Unreachable``: no usable answer (refused, unknown host, timeout, not JSON);
  the message names the URL it tried.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from email.message import Message
from typing import Any

Query = Iterable[tuple[str, object]]
# One link of an RFC 8288 Link header whose relation types include "next".
_NEXT_LINK = re.compile(r'<(?P<url>[^>]*)>[^,]*?;\s*rel="?(?:[^",;]*\s)?next(?=[\s";,]|$)')


class ClientError(Exception):
    """The request gave no answer the CLI can show."""


class ApiError(ClientError):
    """The hub refused the request; ``str()`` names the status and the hub's detail."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")


class Unreachable(ClientError):
    """No answer from the hub: the message says where the CLI tried to connect."""


class Client:
    """JSON requests to one hub, each with the token and a timeout in seconds."""

    def __init__(self, base_url: str, token: str | None, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, path: str, query: Query = ()) -> Any:
        return self.request("GET", path, query)

    def get_all(self, path: str, query: Query = ()) -> list[Any]:
        """Every row of a paged list: each page's rows in turn, asking for the next with
        the cursor of its ``Link: rel="next"`` until a page has none. Only the cursor is
        taken from the link, so a hub behind a proxy is asked at ``base_url`` still."""
        asked, rows = list(query), []
        cursor = None
        while True:
            page, headers = self.exchange("GET", path, [*asked, ("cursor", cursor)])
            rows.extend(page)
            cursor = next_cursor(headers.get("Link"))
            if cursor is None:
                return rows

    def post(self, path: str, body: object = None) -> Any:
        return self.request("POST", path, body=body)

    def put(self, path: str, body: object) -> Any:
        return self.request("PUT", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(self, method: str, path: str, query: Query = (), body: object = None) -> Any:
        """The decoded JSON answer; ``query`` pairs whose value is None are left out."""
        return self.exchange(method, path, query, body)[0]

    def exchange(
        self, method: str, path: str, query: Query = (), body: object = None
    ) -> tuple[Any, Message]:
        """The decoded JSON answer and the answer's headers."""
        url = self.base_url + path
        params = [(name, str(value)) for name, value in query if value is not None]
        if params:
            url += "?" + urllib.parse.urlencode(params)
        # S310: ``cli_api.base_url`` admits only http and https URLs.
        request = urllib.request.Request(url, method=method, headers=self._headers(body))  # noqa: S310
        if body is not None:
            request.data = json.dumps(body).encode()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                return _json(answer.read(), url), answer.headers
        except urllib.error.HTTPError as e:
            raise _api_error(e) from e
        except urllib.error.URLError as e:
            raise self._unreachable(e.reason) from e
        except (TimeoutError, ConnectionError, http.client.HTTPException) as e:
            raise self._unreachable(e) from e

    def _unreachable(self, reason: object) -> Unreachable:
        if isinstance(reason, TimeoutError):
            return Unreachable(f"no answer from {self.base_url} within {self.timeout:g}s")
        return Unreachable(f"cannot connect to {self.base_url}: {_reason(reason)}")

    def _headers(self, body: object) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers


def next_cursor(link: str | None) -> str | None:
    """The ``cursor`` of a ``Link`` header's ``rel="next"`` URL; None on the last page."""
    found = _NEXT_LINK.search(link or "")
    if found is None:
        return None
    cursors = urllib.parse.parse_qs(urllib.parse.urlsplit(found["url"]).query).get("cursor")
    return cursors[0] if cursors else None


def _json(raw: bytes, url: str) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError as e:
        raise Unreachable(f"the answer from {url} is not JSON: is this a hub?") from e


def _api_error(error: urllib.error.HTTPError) -> ApiError:
    """The hub's problem details, or the bare status when the body is not one (a proxy)."""
    try:
        problem = json.loads(error.read())
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        return ApiError(error.code, error.reason, "")
    return ApiError(
        error.code, str(problem.get("title") or error.reason), str(problem.get("detail") or "")
    )


def _reason(reason: object) -> str:
    """``Connection refused`` rather than ``[Errno 111] Connection refused``."""
    return getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
