"""The web console at ``/``: server-rendered pages for watching incidents, silences,
heartbeats, on-call, webhook deliveries and the delivery log, and plain HTML forms for
acting on them. No external assets: CSS is inline and one small script of our own
(``/static/console.js``) refreshes live tables and submits an ack link's form.

Modules: ``sessions`` (signed session cookie, CSRF tokens), ``viewer`` (sign-in and
the checks on every post), ``render`` (templates and banners), ``pages`` (reads),
``actions`` (forms), ``acklink`` (the one-click acknowledgement link).
"""

from __future__ import annotations

from litestar import Request, Response, Router
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from hub import problems
from hub.console import acklink, actions, pages, render, viewer
from hub.errors import HubError, RateLimited, Unavailable

# Paths a program calls, whose errors stay problem JSON; every other path is the
# console's, a person's, whose errors are pages.
PROGRAM_PATHS = (
    "/api/",
    "/-/",
    "/webhooks/",
    "/ping/",
    "/metrics",
    "/healthz",
    "/readyz",
    "/schema",
)


def router() -> Router:
    """The console's routes; errors on them are pages, not problem JSON."""
    return Router(
        path="/",
        route_handlers=[
            *viewer.HANDLERS,
            *pages.HANDLERS,
            *actions.HANDLERS,
            *acklink.HANDLERS,
            create_static_files_router("/static", [render.HERE / "static"]),
        ],
        dependencies={"viewer": Provide(viewer.viewer)},
        exception_handlers={
            viewer.SignInNeeded: viewer.to_sign_in,
            HubError: _error_page,
            Exception: _crash_page,
        },
        include_in_schema=False,
    )


def template_config() -> TemplateConfig:
    return render.template_config()


def http_error(request: Request, exc: HTTPException) -> Response:
    """Litestar's own refusals (an unknown path, a wrong method, a bad id): on a console
    path a page in the console's layout, elsewhere the problem document."""
    if request.url.path.startswith(PROGRAM_PATHS):
        return problems.handle_http_exception(request, exc)
    title, detail = problems.http_exception_words(request, exc)
    page = _page(request, exc.status_code, title, detail)
    page.headers.update(problems.http_exception_headers(request, exc))  # a 405's Allow
    return page


def _error_page(request: Request, exc: HubError) -> Response:
    """hub's refusal as a page, with the ``Retry-After`` of one to retry."""
    page = _page(request, exc.status, exc.title, exc.detail)
    if isinstance(exc, RateLimited | Unavailable):
        page.headers["Retry-After"] = str(exc.retry_after)
    return page


def _crash_page(request: Request, exc: Exception) -> Response:
    """A failure hub did not expect, logged with its traceback as on any path, and told
    as a page: a person at the console reads the page, not a problem document."""
    body, _ = problems.unexpected_problem(request.url.path)
    return _page(request, 500, str(body["title"]), str(body["detail"]))


def _page(request: Request, status: int, title: str, detail: str) -> Response:
    shown = viewer.identify(request)
    return render.page(request, shown, "error.html", status=status, title=title, detail=detail)
