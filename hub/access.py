"""Who may use the API: bearer tokens from ``[api] tokens``, each with a role.

Roles are ordered ``read < write < admin``; a handler declares the least role it
needs with ``guards=[require("write")]``. A missing or unknown token gets 401 with a
``WWW-Authenticate: Bearer`` challenge, a known token with too low a role gets 403.
The token's name becomes the request's actor (``actor(request)``), which is what
acks and silences record as "who"; a token that speaks for others (``caller``) lets
its tool (Grafana, karma, a chat bot) name the person a silence or an incident's
action is for, recorded with the token beside them (``Caller.naming``).

With no tokens configured the read API stays open (a fresh install is usable
from the box it runs on) and every mutation is refused with 403: changes must be
attributable to someone, so they need a configured token. ``hub check-config``
warns about this setup.

Tokens are read from the runtime's config at request time, so a reload that adds or
revokes a token takes effect on the next request.
"""

from __future__ import annotations

import hmac
import logging
import unicodedata
from dataclasses import dataclass

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import SecurityRequirement, SecurityScheme

from hub import logs
from hub.config import ApiToken, Role
from hub.errors import AuthError, Forbidden, InvalidPayload

log = logging.getLogger("hub.access")
ROLES: tuple[Role, ...] = ("read", "write", "admin")
ACTOR_KEY = "hub_actor"
CHALLENGE = 'Bearer realm="hub"'
PERSON_MAX = 200
"""The longest name a token may give for the person it acts for: a login or an e-mail
address fits, a pasted paragraph is a mistake."""

SCHEME = "bearer"
BEARER: list[SecurityRequirement] = [{SCHEME: []}]
"""``security=`` of every guarded operation, so clients know to send the token."""
SECURITY_SCHEMES = {
    SCHEME: SecurityScheme(
        type="http",
        scheme="bearer",
        description=(
            "A token from [api] tokens; its role (read < write < admin) decides what it may"
            " do. With no tokens configured, reads need none and changes are refused."
        ),
    )
}


@dataclass(frozen=True)
class Guard:
    """A Litestar guard admitting tokens whose role is at least ``role``."""

    role: Role

    def __call__(self, connection: ASGIConnection, _: BaseRouteHandler) -> None:
        ensure_role(connection, self.role)


def ensure_role(connection: ASGIConnection, role: Role) -> None:
    """Admit the request's token if its role is at least ``role``, and record its name
    as the actor; for a handler whose needed role depends on its parameters. A refusal
    is logged (``event=api_refused``), naming the token but never its value."""
    tokens = connection.app.state.hub.config.api.tokens
    if not tokens:
        _open_mode(connection, role)
        return
    try:
        token = identify(tokens, connection.headers.get("authorization", ""))
    except AuthError as e:
        _log_refusal(connection, e.status, e.reason)
        raise
    if not at_least(token.role, role):
        _log_refusal(connection, Forbidden.status, "role_too_low", token=token, needs=role)
        raise Forbidden(f'token "{token.name}" has role {token.role}; this needs {role} or higher')
    connection.scope[ACTOR_KEY] = token  # type: ignore[literal-required]


def _open_mode(connection: ASGIConnection, role: Role) -> None:
    if role != "read":
        _log_refusal(connection, Forbidden.status, "no_api_tokens", needs=role)
        raise Forbidden(
            "changes through the API need a token: configure [api] tokens "
            "with a write or admin role"
        )


def _log_refusal(
    connection: ASGIConnection,
    status: int,
    reason: str,
    token: ApiToken | None = None,
    needs: Role | None = None,
) -> None:
    """One warning per refused API request: a wrong token may be someone guessing, a
    role too low a client configured with the wrong token."""
    named = f" token={logs.value(token.name)} role={token.role}" if token else ""
    log.warning(
        "event=api_refused status=%d method=%s path=%s reason=%s%s%s",
        status,
        connection.scope.get("method", "-"),
        logs.value(connection.scope["path"]),
        reason,
        named,
        f" needs={needs}" if needs else "",
    )


def require(role: Role) -> Guard:
    """The guard for handlers that need ``role``: ``guards=[require("write")]``."""
    return Guard(role)


def identify(tokens: list[ApiToken], header: str) -> ApiToken:
    """The configured token in an ``Authorization: Bearer`` header."""
    scheme, _, given = header.partition(" ")
    if not header:
        raise AuthError("missing_header", "missing header Authorization", CHALLENGE)
    if scheme.lower() != "bearer":
        raise AuthError("bad_token", "expected Authorization: Bearer <token>", CHALLENGE)
    found = match(tokens, given)
    if found is None:
        raise AuthError("bad_token", "the bearer token is not valid for the API", CHALLENGE)
    return found


def match(tokens: list[ApiToken], given: str) -> ApiToken | None:
    """The configured token equal to ``given``, compared in constant time against every
    entry; shared by the bearer header and the console's sign-in form."""
    found = None
    for entry in tokens:
        if hmac.compare_digest(given.strip().encode(), entry.token.encode()):
            found = entry
    return found


def at_least(role: Role, wanted: Role) -> bool:
    """Whether ``role`` may do what needs ``wanted``."""
    return ROLES.index(role) >= ROLES.index(wanted)


def actor(connection: ASGIConnection) -> str | None:
    """The name of the token that passed the guard; None on the open read API."""
    token = _token(connection)
    return token.name if token else None


@dataclass(frozen=True)
class Caller:
    """Who asks for a change: the token's name (or the console's, or ``api``), and
    whether that token may name the person it acts for (``speaks_for_others``), as
    Grafana's and karma's one token does for each of their users."""

    name: str
    speaks_for_others: bool = False

    def naming(self, given: str | None, field: str, recorded: str) -> tuple[str, str | None]:
        """Who a change is recorded as made by, and the token that vouched for them (None:
        the token itself). ``given`` is the body's ``field``; ``recorded`` says, for the
        refusal, what the token alone would be recorded as doing. Naming someone else is
        refused, not overridden, so a script never believes it recorded them, unless the
        token speaks for others; a name that cannot be shown on one line is refused first,
        so no refusal repeats it."""
        if given is None:
            return self.name, None
        _check_person(given, field)
        if given == self.name:
            return self.name, None
        if not self.speaks_for_others:
            raise Forbidden(
                f'{field} "{given}" is not this token\'s name "{self.name}": {recorded};'
                f" leave {field} out, or, for a tool that names its users (Grafana, karma, a"
                " chat bot), set speaks_for_others = true on its token in [api] tokens"
            )
        return given, self.name


def _check_person(given: str, field: str) -> None:
    """Refuse a person's name that is blank, longer than ``PERSON_MAX`` or holds control
    or format characters (a line break, a bidi override): it is shown in the timeline,
    the console and the log as one line, naming someone."""
    problem = None
    if not given.strip():
        problem = "name the person it is for, or leave it out"
    elif len(given) > PERSON_MAX:
        problem = f"at most {PERSON_MAX} characters; this one has {len(given)}"
    elif any(unicodedata.category(c) in ("Cc", "Cf") for c in given):
        problem = "a name on one line, without control characters"
    if problem:
        raise InvalidPayload(f"{field}: {problem}", field=f"$.{field}")


def caller(connection: ASGIConnection) -> Caller:
    """The request's caller, from the token that passed the guard."""
    token = _token(connection)
    return Caller(token.name, token.speaks_for_others) if token else Caller("api")


def _token(connection: ASGIConnection) -> ApiToken | None:
    return connection.scope.get(ACTOR_KEY)  # type: ignore[return-value]
