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
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from hub.console import acklink, actions, pages, render, viewer
from hub.errors import HubError


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
        exception_handlers={viewer.SignInNeeded: viewer.to_sign_in, HubError: _error_page},
        include_in_schema=False,
    )


def template_config() -> TemplateConfig:
    return render.template_config()


def _error_page(request: Request, exc: HubError) -> Response:
    shown = viewer.identify(request)
    return render.page(
        request, shown, "error.html", status=exc.status, title=exc.title, detail=exc.detail
    )
