"""The API's path and query parameters, and the faults of the bodies Litestar checks,
in the client's terms.

A filter the handler does not take (``?outcome=dead`` where the filter is ``state``)
would otherwise be ignored and the whole list returned, which reads as an answer to
the question asked; so it is refused, naming what the endpoint takes. So is a
parameter given twice that takes one value. A bad value, in the path (``/incidents/abc``)
or the query, is explained with the parameter's name as the client wrote it, not as
hub's code spells it, and what it takes; a body field by its JSON path (``$.duraton``),
as a webhook's 422 names it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIFormat
from litestar.params import ParameterKwarg, QueryParameter
from litestar.typing import FieldDefinition

from hub import config, matchers
from hub.errors import HubError, InvalidPayload
from hub.events import in_utc

API_PREFIX = "/api/"
# The longest comment (an ack's, a snooze's, a resolve's, a silence's, a dismissal's
# why) the API and the console take: the console's text boxes stop there too.
COMMENT_MAX = 2000
# Parameters Litestar fills from the request itself, never from the query string.
_RESERVED = frozenset({"request", "state", "scope", "headers", "cookies", "query", "data", "body"})
# msgspec's words for a field it names rather than points at, as the client reads them.
_NAMED_FIELD = re.compile(r"Object (contains unknown|missing required) field `(.*)`")
_FIELD_FAULTS = {"contains unknown": "unknown field", "missing required": "missing field"}
# Litestar's message for a request without a body: the KeyError of the ``data`` argument.
_ABSENT = "'data'"
_PLUS_AS_SPACE = re.compile(r" ([0-9]{2}:?[0-9]{2})$")


class BadQueryParameter(HubError):
    """A query parameter hub cannot take or a value it cannot read: the client's
    request is wrong (400), not a body of the wrong shape (422)."""

    status = 400
    title = "Bad request"


def check_comment(text: str, field: str = "comment") -> None:
    """Refuse a comment (or a pause's ``reason``) over ``COMMENT_MAX``, naming the field
    and the limit, rather than storing a wall of text or cutting it short unseen."""
    if len(text) > COMMENT_MAX:
        raise InvalidPayload(
            f"{field}: at most {COMMENT_MAX} characters; this one has {len(text)}",
            field=f"$.{field}",
        )


def invalid_value(name: str, reason: str) -> BadQueryParameter:
    """A value a handler cannot read, worded as Litestar's refusals are explained."""
    return BadQueryParameter(f"invalid query parameter {name!r}: {reason}")


def query_matchers(name: str, texts: list[str] | None) -> list[matchers.Matcher]:
    """A repeatable query parameter of Alertmanager matchers (each may be a set); a bad
    one is a 400 naming the parameter."""
    try:
        return matchers.parse_all(texts or [])
    except ValueError as e:
        raise invalid_value(name, str(e)) from e


def moment(name: str, text: str) -> datetime:
    """A time given in the query string: RFC 3339 with an offset, as a body's times are,
    since a time without one is a different instant in each time zone. A ``+`` written
    unencoded in a query string (``+02:00``) arrives as a space, which can mean nothing
    else in a time: it is read as the ``+``."""
    text = _PLUS_AS_SPACE.sub(r"+\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as e:
        raise invalid_value(name, f"expected an RFC 3339 time, got {text!r}") from e
    if parsed.tzinfo is None:
        raise invalid_value(name, "give the time with an offset, e.g. 2026-03-29T09:00:00Z")
    if in_utc(parsed) is None:
        raise invalid_value(name, f"{text!r} is outside the years 1 to 9999 in UTC")
    return parsed


Since = Annotated[
    str | None,
    QueryParameter(
        description="changed at or after: an RFC 3339 time with an offset",
        format=OpenAPIFormat.DATE_TIME,
    ),
]
"""A list's ``since`` filter, read with ``since_timestamp``: a client catching up after
a walk (README, "Paging through long lists") asks for what changed from then on."""


def since_timestamp(text: str) -> float:
    """The stored time a ``since`` of ``text`` starts at. The API shows times rounded to
    the microsecond, so a row shown at exactly ``text`` may be stored up to half a
    microsecond earlier: it is at or after the time the client read, and is included."""
    return moment("since", text).timestamp() - 0.5e-6


TAKES_ANY_QUERY = "takes_any_query"
"""Set in a layer's ``opt``: its handlers pass over the query parameters they do not
take, as the API they answer for does (Alertmanager's, whose readers send their own)."""


def refuse_bad_query(request: Request) -> None:
    """Before an API handler runs: a query parameter it does not take, or one given more
    than once that it takes only once, is a 400. Only the last of repeated values would
    reach the handler, so ``?status=firing&status=resolved`` would filter by one of the
    two as if it were the answer to both."""
    if not request.url.path.startswith(API_PREFIX) or request.route_handler.opt.get(
        TAKES_ANY_QUERY
    ):
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
    """Litestar's validation errors as one sentence each: a bad path or query parameter
    by its name with what it takes, a bad body field by its JSON path (``$.duration``);
    None when they are about something else."""
    if not isinstance(errors, list) or not all(
        _is_parameter_error(e) or _is_body_error(e) for e in errors
    ):
        return None
    fields = request.route_handler.parsed_fn_signature.parameters
    return "; ".join(
        _explain_parameter(request, error)
        if _is_parameter_error(error)
        else _explain_body(error, fields["data"])
        for error in errors
        if not (_is_absent_body(error) and fields["data"].has_default)
    )


def _explain_parameter(request: Request, error: dict[str, Any]) -> str:
    """A path parameter by its name in the route, a query parameter by its name in the
    URL, with the values it takes."""
    handler = request.route_handler
    key = error["key"]
    if error["source"] is ParamType.PATH:
        where, name, given = "path", key, request.path_params.get(key)
    else:
        taken = query_names(handler, frozenset(request.path_params))
        where, name = "query", taken.get(key, key)
        given = request.query_params.get(name)
    field = handler.parsed_fn_signature.parameters.get(key)
    reason = (_takes(field, given) if field else None) or error["message"]
    part = f"{where} parameter {name!r}: {reason}"
    choices = config.choices(field.annotation) if field else ()
    return f"{part} (one of: {', '.join(choices)})" if choices else part


def _takes(field: FieldDefinition, given: str | None) -> str | None:
    """What a yes/no or a whole-number parameter takes and what it was given, where
    msgspec's words (``Expected `int | null`, got `str```) name Python's types, while
    every value in a URL is text. None for other kinds: msgspec's words say it."""
    if field.is_subclass_of(bool) or field.has_inner_subclass_of(bool):
        return f"expected true or false, got {given!r}"
    kwarg = field.kwarg_definition
    bounded = isinstance(kwarg, ParameterKwarg) and None not in (kwarg.ge, kwarg.le)
    if bounded and (field.is_subclass_of(int) or field.has_inner_subclass_of(int)):
        return f"expected a whole number from {kwarg.ge} to {kwarg.le}, got {given!r}"
    return None


def _explain_body(error: dict[str, Any], body: FieldDefinition) -> str:
    """One body fault by its JSON path, as a 422 of a webhook names it: Litestar keys the
    body's root as ``data`` and a field below it by its path without ``$.``, and words an
    unknown or missing field as a fault of the object holding it. No body at all is
    worded as the fields it lacks, as for ``{}``."""
    if _is_absent_body(error):
        fields = msgspec.structs.fields(body.annotation)
        needed = [f"$.{field.encode_name}" for field in fields if field.required]
        return f"body: missing field {', '.join(needed)} (no body was sent)"
    key = error.get("key", "data")
    path = "$" if key == "data" else f"$.{key}"
    named = _NAMED_FIELD.fullmatch(error["message"])
    if named:
        return f"body: {_FIELD_FAULTS[named.group(1)]} {path}.{named.group(2)}"
    message = error["message"]
    return f"body: {path}: {message[:1].lower()}{message[1:]}"


def _is_parameter_error(error: object) -> bool:
    return (
        isinstance(error, dict)
        and error.get("source") in (ParamType.QUERY, ParamType.PATH)
        and "key" in error
    )


def _is_body_error(error: object) -> bool:
    return isinstance(error, dict) and error.get("source") == "body" and "message" in error


def _is_absent_body(error: dict[str, Any]) -> bool:
    """No body was sent. Litestar says so of an optional body too, beside another
    parameter's fault, where it is none."""
    return error.get("key") == "data" and error.get("message") == _ABSENT
