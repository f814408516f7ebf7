"""Who is looking at the console: sign-in and sign-out, the session cookie, and the
check every form post goes through (CSRF token first, then the role).

Roles are the API's (``[api] tokens``): a read token sees every page, a write token
also acknowledges, resolves, silences and pauses heartbeats, an admin token also
retries dead letters. With no tokens configured the console is open and read-only, like the API.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.datastructures.multi_dicts import FormMultiDict
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from hub import access, logs
from hub.config import ApiToken, Role
from hub.console import render, sessions
from hub.errors import Forbidden

log = logging.getLogger("hub.console")

SESSION_COOKIE = "hub_session"
LOGIN_COOKIE = "hub_login"
LOGIN_TTL = 3600


class SignInNeeded(Exception):
    """A console page was asked for without a session while tokens are configured."""


@dataclass(frozen=True)
class Viewer:
    """The person behind a request: their token (None when signed out or in open mode)
    and the CSRF token their forms carry."""

    token: ApiToken | None
    nonce: str
    csrf: str
    open_mode: bool

    @property
    def name(self) -> str | None:
        return self.token.name if self.token else None

    @property
    def caller(self) -> access.Caller:
        """The viewer as a silence records them: by their token's name, since the
        console's forms name nobody else."""
        return access.Caller(self.name or "console")

    def can(self, role: Role) -> bool:
        return self.token is not None and access.at_least(self.token.role, role)


def identify(request: Request) -> Viewer:
    """The viewer a request's session cookie names; signed out if it names nobody valid."""
    hub = request.app.state.hub
    key, tokens = hub.session_key, hub.config.api.tokens
    session = sessions.decode(key, request.cookies.get(SESSION_COOKIE, ""), hub.clock())
    if session and hub.sign_outs.ended(session):
        session = None
    token = sessions.token_of(key, session, tokens) if session else None
    nonce = session.nonce if token and session else ""
    csrf = sessions.csrf_token(key, nonce) if nonce else ""
    return Viewer(token, nonce, csrf, open_mode=not tokens)


async def viewer(request: Request) -> Viewer:
    """The dependency of every console page: a signed-in viewer, or in open mode anyone."""
    found = identify(request)
    if found.token is None and not found.open_mode:
        raise SignInNeeded
    return found


async def posted(request: Request, who: Viewer, role: Role) -> FormMultiDict:
    """A form post's fields, once its CSRF token and the viewer's role are checked."""
    form = await request.form()
    key = request.app.state.hub.session_key
    if not sessions.csrf_ok(key, who.nonce, str(form.get("_csrf", ""))):
        raise Forbidden("this form did not come from your console session; reload and retry")
    if not who.can(role):
        held = who.token.role if who.token else "no token"
        raise Forbidden(f"this needs the {role} role or higher; you have {held}")
    return form


@get("/login", name="console:login")
async def login_form(
    request: Request,
    target: Annotated[str, QueryParameter(name="next")] = "/",
    done: Annotated[str, QueryParameter()] = "",
) -> Response:
    """The sign-in form, with a login cookie whose nonce its CSRF token signs; after a
    sign-out it says what the sign-out ended."""
    target = local(target)
    if identify(request).token is not None:
        return Redirect(target)
    signed_out = render.NOTICES["signed-out"] if done == "signed-out" else ""
    return _login_page(request, target, notice=signed_out)


@post("/login", name="console:sign-in")
async def sign_in(request: Request) -> Response:
    """Check the CSRF token, then the API token; a good one starts a new session."""
    hub = request.app.state.hub
    form = await request.form()
    target = local(str(form.get("next", "/")))
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not sessions.csrf_ok(hub.session_key, nonce, str(form.get("_csrf", ""))):
        raise Forbidden("the sign-in form expired or did not come from this hub; reload it")
    token = access.match(hub.config.api.tokens, str(form.get("token", "")))
    if token is None:
        return _login_page(request, target, error="That token is not valid here.", status=401)
    session = sessions.start(hub.session_key, token, hub.clock(), sessions.SESSION_TTL)
    log.info("event=console_sign_in name=%s role=%s", logs.value(token.name), token.role)
    answer = Redirect(target, status_code=303)
    answer.set_cookie(_cookie(request, SESSION_COOKIE, sessions.encode(hub.session_key, session)))
    answer.delete_cookie(LOGIN_COOKIE, path="/")
    return answer


@post("/logout", name="console:sign-out")
async def sign_out(request: Request) -> Response:
    """End every console session of the viewer's token, not just this browser's cookie,
    so a copy of it taken earlier dies too (the form still needs its CSRF token)."""
    hub = request.app.state.hub
    who = await viewer(request)
    await posted(request, who, "read")
    if who.name:
        await hub.sign_outs.sign_out(hub.store, who.name, hub.clock())
    log.info("event=console_sign_out name=%s", logs.value(who.name or ""))
    answer = Redirect("/login?done=signed-out", status_code=303)
    answer.delete_cookie(SESSION_COOKIE, path="/")
    return answer


def _login_page(
    request: Request, target: str, error: str = "", status: int = 200, notice: str = ""
) -> Template:
    key = request.app.state.hub.session_key
    nonce = request.cookies.get(LOGIN_COOKIE) or sessions.new_nonce()
    signed_out = Viewer(None, "", "", open_mode=not request.app.state.hub.config.api.tokens)
    page = render.page(
        request,
        signed_out,
        "login.html",
        status=status,
        next=target,
        login_csrf=sessions.csrf_token(key, nonce),
        error=error,
        notice=notice or render.notice_for(target),
        warning=render.warning_for(target),
    )
    page.cookies.append(_cookie(request, LOGIN_COOKIE, nonce, LOGIN_TTL))
    return page


def _cookie(request: Request, name: str, value: str, ttl: int = sessions.SESSION_TTL) -> Cookie:
    """HttpOnly and SameSite=Strict always; Secure whenever the console is on HTTPS."""
    return Cookie(
        key=name,
        value=value,
        max_age=ttl,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def local(target: str) -> str:
    """Only a path on this hub may be a redirect target (no open redirect)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target[1:2] in ("/", "\\"):
        return "/"
    return target


def to_sign_in(request: Request, _: Any) -> Response:
    """SignInNeeded becomes a redirect to the form, coming back here afterwards. A post
    comes back to the page it was made on, saying it was not done: signing in must not
    repeat a change nobody saw the page of, and the action URL is no page to land on."""
    if request.method == "POST":
        here = f"{render.page_of(request.url.path)}?undone=signed-out"
    else:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/login?{render.query(next=here)}")


HANDLERS = [login_form, sign_in, sign_out]
