"""How console pages are rendered: the Jinja environment and its filters, the page
helper that adds what every page needs, and the banners a redirect may ask for.

Banners are fixed messages chosen by a code in ``?done=`` (or ``?undone=`` for what
was not done), so a link can never make the console show text of the linker's
choosing; the only value a banner takes from a link is a number or an incident id.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from litestar import Request, Response
from litestar.enums import MediaType
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template import TemplateConfig

from hub import logs
from hub.api_params import COMMENT_MAX
from hub.spans import span

if TYPE_CHECKING:
    from hub.console.viewer import Viewer

HERE = Path(__file__).parent
PART_HEADER = "x-console-part"
NOTICES = {
    "ack": "Incident #{id} is acknowledged.",
    "snooze": "Incident #{id} is snoozed: it pages again when the snooze ends.",
    "unack": "Incident #{id} is open again.",
    "resolve": "Incident #{id} is resolved.",
    "acked-by-link": "Incident #{id} is acknowledged.",
    "acked-by-shared-link": (
        "Incident #{id} is acknowledged, recorded as ack-link: a link sent to a shared"
        " channel cannot tell who clicked it. Sign in to the console first to be named."
    ),
    "acked-by-shared-link-open": (
        "Incident #{id} is acknowledged, recorded as ack-link: a link sent to a shared"
        " channel cannot tell who clicked it, and this hub has no [api] tokens to sign in"
        " with."
    ),
    "already-acknowledged": "Incident #{id} was already acknowledged.",
    "already-yours": "Incident #{id} was already acknowledged by you: the link changed nothing.",
    "already-resolved": "Incident #{id} was already resolved.",
    "earlier-episode": "The link was for an earlier episode of incident #{id}: it changed nothing.",
    "silenced": "The silence is in force.",
    "silenced-0": "The silence is in force; it mutes 0 firing alerts now — check the matchers.",
    "silenced-1": "The silence is in force; it mutes 1 firing alert now.",
    "silenced-n": "The silence is in force; it mutes {mutes} firing alerts now.",
    "updated": "The silence is changed; it keeps its id.",
    "expired": "The silence has expired.",
    "retry": "The notification will be sent again.",
    "dismiss": "The dead letter is dismissed; the incident's timeline says by whom.",
    "replayed": "The delivery was ingested again; this is the new one.",
    "paused": "The heartbeat is paused: it raises nothing until a ping or a resume.",
    "resumed": "The heartbeat is watched again: its next deadline is a period and grace from now.",
    "signed-out": "You are signed out: every console session of your token has ended.",
}
WARNINGS = {
    "signed-out": (
        "You were signed out before that took effect, so it was not done: it is done"
        " only when a green banner says so. Do it again."
    ),
}
LABELS_SHOWN = 50
LABEL_CHARS = 200
ANNOTATIONS_SHOWN = 20
ANNOTATION_CHARS = 2000
"""How much of an alert's labels and annotations a page shows, as an email shows them:
the first 50 labels by name (then "+N more"), each ``name=value`` cut at 200
characters, and the first 20 annotations, each cut at 2000. A sender may send
thousands of labels or a value of hundreds of kilobytes, which shown whole made an
incident's page megabytes long and held up every webhook while it was rendered. The
API keeps them whole."""
_INCIDENT_PATH = re.compile(r"/incidents/(\d+)")
# Each form's action URL and the page it is posted from: where a refused post, a
# reload of its answer or a stray visit to the action URL should lead.
_ACTION_PAGES = [
    (re.compile(r"/incidents/(\d+)/[^/]+"), "/incidents/{}"),
    (re.compile(r"/notifications/\d+/[^/]+"), "/notifications"),
    (re.compile(r"/silences/[^/]+/expire"), "/silences"),
    (re.compile(r"/silences"), "/silences/new"),
    (re.compile(r"/deliveries/(\d+)/replay"), "/deliveries/{}"),
    (re.compile(r"/heartbeats/[^/]+/[^/]+"), "/heartbeats"),
    (re.compile(r"/logout"), "/"),
]
_ONCE = ("done", "undone", "mutes")
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Vary": "Cookie, X-Console-Part",
}


def template_config() -> TemplateConfig:
    """Templates from this package, autoescaped, with the console's time filters."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=ago, utc=utc, hhmm=hhmm, span=span, took=took, pretty_kind=pretty_kind)
    env.globals.update(
        query=query,
        comment_max=COMMENT_MAX,
        labels_shown=LABELS_SHOWN,
        label_chars=LABEL_CHARS,
        annotations_shown=ANNOTATIONS_SHOWN,
        annotation_chars=ANNOTATION_CHARS,
    )
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(env))


def page(
    request: Request,
    who: Viewer,
    template: str,
    *,
    live: str | None = None,
    status: int = 200,
    **context: Any,
) -> Template:
    """A console page; only its ``live`` part when the auto-refresh script asks for it.
    ``here`` is the address the page stands for (what its refresh asks), when it is not
    the one asked for. Every whole page counts the dead letters, which its header links
    to when there are any: someone not told waits for a person wherever they are."""
    hub = request.app.state.hub
    name = live if live and request.headers.get(PART_HEADER) == "live" else template
    if name == template:
        context.setdefault("dead_letters", hub.store.notification_state_counts().get("dead", 0))
    target = f"{request.url.path}?{request.url.query}"
    context.setdefault("notice", notice_for(target))
    context.setdefault("warning", warning_for(target))
    here = context.pop("here", None) or (
        page_of(request.url.path, request.url.path)
        if request.method == "POST"
        else without_banners(target)
    )
    return Template(
        template_name=name,
        context={
            "viewer": who,
            "now": hub.clock(),
            "path": request.url.path,
            "here": here,
            **context,
        },
        status_code=status,
        headers=_SECURITY_HEADERS,
    )


def rendered(request: Request, template: Template) -> Response:
    """``template`` rendered now, in the calling thread: a page over thousands of rows
    (an incident's alerts, every silence) takes as long to render as to read them, so
    a page read aside (``Store.read_aside``) is rendered there too, not on the event
    loop, where Litestar renders a ``Template``."""
    engine = request.app.template_engine
    context = template.create_template_context(request)
    body = engine.get_template(template.template_name).render(**context)
    return Response(
        body,
        status_code=template.status_code,
        headers=template.headers,
        media_type=MediaType.HTML,
    )


def notice_for(target: str) -> str:
    """The banner a page shows for its ``?done=`` code; the sign-in form shows the one of
    the page it leads to, so an ack link's confirmation shows before signing in."""
    parts = urlsplit(target)
    params = parse_qs(parts.query)
    code = params.get("done", [""])[0]
    mutes = params.get("mutes", [""])[0]
    if code == "silenced" and mutes.isdigit():
        code = f"silenced-{mutes if int(mutes) < 2 else 'n'}"
    found = _INCIDENT_PATH.fullmatch(parts.path)
    return NOTICES.get(code, "").format(id=found.group(1) if found else "", mutes=mutes)


def warning_for(target: str) -> str:
    """The warning a page shows for its ``?undone=`` code: what was not done, and why."""
    return WARNINGS.get(parse_qs(urlsplit(target).query).get("undone", [""])[0], "")


def page_of(path: str, default: str = "/") -> str:
    """The page a form posting to ``path`` is on (``/incidents/6/ack`` is on
    ``/incidents/6``); ``default`` for a path no console form posts to."""
    for pattern, page_path in _ACTION_PAGES:
        found = pattern.fullmatch(path)
        if found:
            return page_path.format(*found.groups())
    return default


def without_banners(target: str) -> str:
    """A page's address without its banner codes: what a reload or the auto-refresh
    asks for once the banner was shown, so neither shows it again when it is stale."""
    parts = urlsplit(target)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _ONCE]
    return parts.path + (f"?{urlencode(kept)}" if kept else "")


def query(**params: Any) -> str:
    """A query string from the non-empty params (lists repeat their key)."""
    pairs = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            if item not in (None, ""):
                pairs.append((key, item))
    return urlencode(pairs)


@pass_context
def ago(context: Any, value: float | datetime | str | None) -> str:
    """How long ago (or how soon) a moment is, the way a person on call reads it."""
    if value is None:
        return "-"
    moment = _moment(value, UTC)
    if moment is None:
        return logs.text(value)
    delta = context["now"] - moment.timestamp()
    text = span(abs(delta))
    return f"{text} ago" if delta >= 0 else f"in {text}"


def utc(value: float | datetime | str | None) -> str:
    if value is None:
        return "-"
    moment = _moment(value, UTC)
    return logs.text(value) if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@pass_context
def hhmm(context: Any, value: float | datetime | str, zone: str = "UTC") -> str:
    """A time of day as a wake-up time is read at a glance (in UTC, or a schedule's
    ``zone``), with its date unless it is that day's: "00:54" a day ahead would read
    as tonight."""
    where = ZoneInfo(zone)
    moment = _moment(value, where)
    if moment is None:
        return logs.text(value)
    today = datetime.fromtimestamp(context["now"], where).date()
    shown = moment.strftime("%H:%M" if moment.date() == today else "%Y-%m-%d %H:%M")
    return f"{shown} {zone}"


def pretty_kind(kind: str) -> str:
    """A timeline entry's kind as words: ``alert_joined`` -> ``alert joined``."""
    return kind.replace("_", " ")


def took(start: float | datetime | str, end: float | datetime | str) -> str:
    """The time between two moments at the scale a notification's delay is read:
    milliseconds under a second, then tenths up to a minute, then ``span``; "-" when
    either is no time."""
    first, last = _moment(start, UTC), _moment(end, UTC)
    if first is None or last is None:
        return "-"
    seconds = max((last - first).total_seconds(), 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 60 else span(seconds)


def _moment(value: float | datetime | str, zone: tzinfo) -> datetime | None:
    """The moment ``value`` names (epoch seconds, an RFC 3339 text or a datetime) in
    ``zone``, or None for a value that is none: the API shows a time column a hand edit
    left as text as that text, and the page shows it so rather than fail."""
    try:
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, datetime):
            return value.astimezone(zone)
        return datetime.fromtimestamp(value, zone)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
