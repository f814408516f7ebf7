"""``/api/v1/schedules``: the configured on-call schedules and who is on call when."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, get
from litestar.openapi.spec import OpenAPIFormat
from litestar.params import FromPath, QueryParameter

from hub import oncall
from hub.access import BEARER, require
from hub.api import iso
from hub.api_params import invalid_value, moment
from hub.config import Schedule
from hub.errors import NotFound
from hub.problems import refusals


@get(
    "/api/v1/schedules",
    summary="List on-call schedules",
    guards=[require("read")],
    security=BEARER,
    responses=refusals(400, 401),
)
async def list_schedules(request: Request) -> list[dict[str, Any]]:
    """Each schedule with its people (names only: their URLs are secrets) and who is on
    call now."""
    hub = request.app.state.hub
    now = datetime.fromtimestamp(hub.clock(), UTC)
    return [
        {
            "name": schedule.name,
            "time_zone": schedule.time_zone,
            "people": [p.name for p in schedule.people],
            "on_call": answer(schedule, now),
        }
        for schedule in hub.config.schedules
    ]


@get(
    "/api/v1/schedules/{name:str}/oncall",
    summary="Who is on call at a time",
    guards=[require("read")],
    security=BEARER,
    responses=refusals(400, 401, 404),
)
async def who_is_on_call(
    request: Request,
    name: FromPath[str],
    at: Annotated[
        str | None,
        QueryParameter(
            description="RFC 3339 time with an offset; default now", format=OpenAPIFormat.DATE_TIME
        ),
    ] = None,
) -> dict[str, Any]:
    """``person`` on call at ``at``, ``until`` when that changes, ``next`` who follows."""
    hub = request.app.state.hub
    schedule = hub.config.schedule(name)
    if schedule is None:
        raise NotFound(f"no schedule named {name!r}")
    when = datetime.fromtimestamp(hub.clock(), UTC) if at is None else moment("at", at)
    try:
        return answer(schedule, when)
    except OverflowError:  # a handoff to work out falls after the year 9999
        raise invalid_value("at", f"{at!r} is too near the year 9999 for this schedule") from None


def answer(schedule: Schedule, at: datetime) -> dict[str, Any]:
    until = oncall.next_handoff(schedule, at)
    return {
        "schedule": schedule.name,
        "at": iso(at.timestamp()),
        "person": oncall.on_call(schedule, at),
        "until": iso(until.timestamp()) if until else None,
        "next": oncall.on_call(schedule, until) if until else None,
    }


HANDLERS = [list_schedules, who_is_on_call]
