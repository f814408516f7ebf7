"""The API's query parameters, and the faults of the bodies Litestar checks, in the
client's terms.

A filter the handler does not take (``?outcome=dead`` where the filter is ``state``)
would otherwise be ignored and the whole list returned, which reads as an answer to
the question asked; so it is refused, naming what the endpoint takes. So is a
parameter given twice that takes one value. A bad value is
explained with the parameter's name as the client wrote it, not as hub's code
spells it; a body field by its JSON path (``$.duraton``), as a webhook's 422 names it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from litestar import Request
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.params import ParameterKwarg

from hub import config
from hub.errors import HubError

API_PREFIX = "/api/"
# Parameters Litestar fills from the request itself, never from the query string.
_RESERVED = frozenset({"request", "state", "scope", "headers", "cookies", "query", "data", "body"})
# msgspec's words for a field it names rather than points at, as the client reads them.
_NAMED_FIELD = re.compile(r"Object (contains unknown|missing required) field `(.*)`")
_FIELD_FAULTS = {"contains unknown": "unknown field", "missing required": "missing field"}


class BadQueryParameter(HubError):
    """A query parameter hub cannot take or a value it cannot read: the client's
    request is wrong (400), not a body of the wrong shape (422)."""

    status = 400
    title = "Bad request"


def invalid_value(name: str, reason: str) -> BadQueryParameter:
    """A value a handler cannot read, worded as Litestar's refusals are explained."""
    return BadQueryParameter(f"invalid query parameter {name!r}: {reason}")


def refuse_bad_query(request: Request) -> None:
    """Before an API handler runs: a query parameter it does not take, or one given more
    than once that it takes only once, is a 400. Only the last of repeated values would
    reach the handler, so ``?status=firing&status=resolved`` would filter by one of the
    two as if it were the answer to both."""
    if not request.url.path.startswith(API_PREFIX):
        return
    handler, path_params = request.route_handler, frozenset(request.path_params)
    taken = query_names(handler, path_params)
    unknown = sorted(set(request.query_params) - set(taken.values()))
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        offered = ", ".join(sorted(taken.values())) or "no query parameters"
        raise BadQueryParameter(
            f"unknown query parameter {names}; {request.method} {request.url.path} takes {offered}"
        )
    given = [name for name, _ in request.query_params.multi_items()]
    once = set(taken.values()) - repeatable_names(handler, path_params)
    repeated = sorted({name for name in given if name in once and given.count(name) > 1})
    if repeated:
        raise BadQueryParameter(
            "; ".join(
                f"query parameter {name!r} given more than once"
                f" ({', '.join(map(repr, request.query_params.getall(name)))}); give it once"
                for name in repeated
            )
        )


@functools.cache
def query_names(handler: HTTPRouteHandler, path_params: frozenset[str]) -> Mapping[str, str]:
    """The handler's query parameters: the name in its signature -> the name in the URL."""
    names = {}
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if name in path_params or name in _RESERVED:
            continue
        if kwarg is None:
            names[name] = name
        elif isinstance(kwarg, ParameterKwarg) and kwarg.param_type is ParamType.QUERY:
            names[name] = kwarg.query or kwarg.name or name
    return names


@functools.cache
def repeatable_names(handler: HTTPRouteHandler, path_params: frozenset[str]) -> frozenset[str]:
    """The URL names of the handler's query parameters that take a list (``label``)."""
    fields = handler.parsed_fn_signature.parameters
    taken = query_names(handler, path_params)
    return frozenset(url for name, url in taken.items() if fields[name].is_non_string_sequence)


def explain_invalid(request: Request, errors: Any) -> str | None:
    """Litestar's validation errors as one sentence each: a bad query parameter with
    the values it may take when they are a fixed set, a bad body field by its JSON path
    (``$.duration``); None when they are about something else."""
    if not isinstance(errors, list) or not all(
        _is_query_error(e) or _is_body_error(e) for e in errors
    ):
        return None
    return "; ".join(
        _explain_query(request, error) if _is_query_error(error) else _explain_body(error)
        for error in errors
    )


def _explain_query(request: Request, error: dict[str, Any]) -> str:
    handler = request.route_handler
    taken = query_names(handler, frozenset(request.path_params))
    fields = handler.parsed_fn_signature.parameters
    key = error["key"]
    part = f"query parameter {taken.get(key, key)!r}: {error['message']}"
    choices = config.choices(fields[key].annotation) if key in fields else ()
    return f"{part} (one of: {', '.join(choices)})" if choices else part


def _explain_body(error: dict[str, Any]) -> str:
    """One body fault by its JSON path, as a 422 of a webhook names it: Litestar keys the
    body's root as ``data`` and a field below it by its path without ``$.``, and words an
    unknown or missing field as a fault of the object holding it."""
    key = error.get("key", "data")
    path = "$" if key == "data" else f"$.{key}"
    named = _NAMED_FIELD.fullmatch(error["message"])
    if named:
        return f"body: {_FIELD_FAULTS[named.group(1)]} {path}.{named.group(2)}"
    message = error["message"]
    return f"body: {path}: {message[:1].lower()}{message[1:]}"


def _is_query_error(error: object) -> bool:
    return isinstance(error, dict) and error.get("source") is ParamType.QUERY and "key" in error


def _is_body_error(error: object) -> bool:
    return isinstance(error, dict) and error.get("source") == "body" and "message" in error
