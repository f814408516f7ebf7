"""Apprise URLs as channels: what kind of message each wants and how to send one.

The kind decides the message shape (``hub.templates``): an SMS must fit 160
characters, chat takes Markdown, email takes HTML (Apprise adds the plain-text
part), and machine endpoints (json/form/xml) get the context as JSON.

``open_channel`` builds a fresh plugin object for every send: Apprise throttles
each plugin object on its own (5.5 s between emails), and the outbox, not Apprise,
owns retries and pacing. ``Channel.send`` calls the plugin in the caller's thread
(not through Apprise's own thread pool), so the reason for a failure can be taken
from Apprise's log lines of that thread and kept, instead of a bare "failed".
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

import apprise

from hub import logfile, smtp_tls
from hub.config import Receiver, Schedule, entry

if TYPE_CHECKING:  # templates imports this module for its kinds
    from hub.templates import Rendered

Kind = Literal["email", "sms", "chat", "structured"]

SMS_LIMIT = 160

_EMAIL = ("mailto", "mailtos", "ses", "sendgrid", "mailgun", "sparkpost", "smtp2go")
_EMAIL += ("resend", "postmark", "brevo", "mailersend", "sendpulse", "o365", "azure")
_SMS = ("twilio", "vonage", "nexmo", "sns", "clicksend", "bulksms", "bulkvs", "burstsms")
_SMS += ("kudosity", "msg91", "plivo", "sinch", "d7sms", "46elks", "elks", "atalk")
_SMS += ("clickatell", "freemobile", "httpsms", "infobip", "kavenegar", "msgbird", "ringc")
_SMS += ("serwersms", "seven", "sfr", "smsc", "smsmanager", "smsmgr", "telnyx", "voipms")
_SMS += ("mobilemessage", "mobilemsg", "smseagle", "smseagles")
_STRUCTURED = ("json", "jsons", "form", "forms", "xml", "xmls")

KINDS: dict[str, Kind] = {
    **dict.fromkeys(_EMAIL, "email"),
    **dict.fromkeys(_SMS, "sms"),
    **dict.fromkeys(_STRUCTURED, "structured"),
}


@dataclass(frozen=True)
class Channel:
    """One Apprise URL ready for one send.

    ``limit`` is the most characters an SMS body may have on this service.
    """

    service: Any
    kind: Kind
    limit: int

    def send(self, message: Rendered) -> str | None:
        """Send one message; None on success, else the reason Apprise logged."""
        capture = _ThreadLogCapture()
        _APPRISE_LOG.addHandler(capture)
        try:
            with _kept_from_the_log():
                ok = self.service.notify(
                    title=message.title,
                    body=message.body,
                    body_format=message.body_format,
                    notify_type=message.notify_type,
                )
        finally:
            _APPRISE_LOG.removeHandler(capture)
        if ok:
            return None
        reason = "; ".join(capture.lines) or "Apprise reported a failure without a reason"
        return without_url_paths(reason)


# What of a URL may name a secret in a failure's text: its user and password, its path
# and query (a Slack or Discord webhook's tokens, a json:// receiver's secret path), and
# the path urllib3 quotes ("Max retries exceeded with url: /services/T000/B000/XXXX").
_URL = re.compile(
    r"\b(?P<scheme>[a-z][a-z0-9+.-]*://)(?:[^@/\s'\"]*@)?(?P<host>[^/\s'\"?#]+)"
    r"(?P<tail>[/?#][^\s'\"]*)?",
    re.IGNORECASE,
)
_QUOTED_PATH = re.compile(r"(\burl: )[^\s'\"]+")


def without_url_paths(text: str) -> str:
    """A failure's text as it may be stored, shown and logged: each URL cut to its
    scheme and host, since the rest of a receiver's URL holds its tokens."""
    return _QUOTED_PATH.sub(r"\1(path hidden)", _URL.sub(_cut_url, text))


def _cut_url(found: re.Match[str]) -> str:
    hidden = "/(path hidden)" if found["tail"] else ""
    return f"{found['scheme']}{found['host']}{hidden}"


def schema(url: str) -> str:
    return url.partition("://")[0].lower()


def url_key(url: str) -> str:
    """The digest a notification names a URL by (``notifications.url_keys``), so that
    it goes to its URL wherever a reload moves it among its receiver's; the URL
    itself holds secrets, which the store does not keep."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def kind(url: str) -> Kind:
    """The message shape a URL wants; anything not email, SMS or structured is chat."""
    return KINDS.get(schema(url), "chat")


def open_channel(url: str, timeout: float) -> Channel:
    """A fresh, unthrottled Apprise object for ``url`` with ``timeout`` applied.

    Raises ValueError (naming only the schema: URLs hold secrets) when Apprise
    cannot load the URL; ``check`` reports that at config load.
    """
    smtp_tls.install()  # every send comes here: email no longer pays for unused TLS
    service = apprise.Apprise.instantiate(with_timeouts(url, timeout))
    if service is None:
        raise ValueError(f"Apprise cannot load a {schema(url)!r} URL")
    service.request_rate_per_sec = 0
    limit = min(SMS_LIMIT, service.body_maxlen or SMS_LIMIT)
    return Channel(service, kind(url), limit)


def with_timeouts(url: str, timeout: float) -> str:
    """Add Apprise's connect (``cto``) and read (``rto``) timeouts unless the URL sets them.

    The query starts at the first "?": Apprise URLs use "#" for channels, not fragments.
    """
    given = parse_qs(url.partition("?")[2])
    extra = "&".join(f"{key}={timeout:g}" for key in ("cto", "rto") if key not in given)
    if not extra:
        return url
    return f"{url}{'&' if '?' in url else '?'}{extra}"


def redact(url: str, timeout: float) -> str:
    """The URL as a send with ``timeout`` uses it (Apprise's ``cto``/``rto``, not its
    defaults), passwords and tokens masked as Apprise prints them; a ``logfile://`` URL
    whole, as its path is where to look and holds no secret."""
    if schema(url) == logfile.SCHEMA:
        return url.partition("?")[0]
    service = apprise.Apprise.instantiate(with_timeouts(url, timeout))
    return service.url(privacy=True) if service is not None else f"{schema(url)}://..."


def check(receivers: list[Receiver], schedules: list[Schedule]) -> list[str]:
    """Receivers without URLs, and receiver and on-call people's URLs a send would fail
    on, named by position (never by value: URLs hold secrets)."""
    logfile.register()
    found = [
        f"{entry(f'receivers[{i}]', r.name)}.urls: at least one URL is needed"
        for i, r in enumerate(receivers)
        if not r.urls
    ]
    for i, receiver in enumerate(receivers):
        found += _url_problems(f"{entry(f'receivers[{i}]', receiver.name)}.urls", receiver.urls)
    for i, schedule in enumerate(schedules):
        for j, person in enumerate(schedule.people):
            person_at = entry(f"people[{j}]", person.name)
            where = f"{entry(f'schedules[{i}]', schedule.name)}.{person_at}.urls"
            found += _url_problems(where, person.urls)
    return found


def _url_problems(where: str, urls: list[str]) -> list[str]:
    return [f"{where}[{j}]: {reason}" for j, url in enumerate(urls) if (reason := _problem(url))]


def _problem(url: str) -> str | None:
    if schema(url) == logfile.SCHEMA:
        return logfile.problem(url)
    with _kept_from_the_log():
        loaded = apprise.Apprise.instantiate(url)
    return None if loaded is not None else f"Apprise cannot load this {schema(url)!r} URL"


_APPRISE_LOG = logging.getLogger("apprise")
_KEPT = threading.local()


@contextlib.contextmanager
def _kept_from_the_log() -> Iterator[None]:
    """Apprise's lines from this thread meanwhile stay out of hub's log: what it says
    while loading a URL quotes the URL's tokens ("An invalid Slack (second) Token
    (...) was specified"), where the config check names the URL by position, and what
    it says during a send is that send's failure reason, logged once with the attempt
    (``notification_pending``, ``notification_dead``), not again on a line of its own."""
    _KEPT.on = True
    try:
        yield
    finally:
        _KEPT.on = False


def route_apprise_logs() -> None:
    """Let Apprise's debug detail reach the per-send capture, but only its warnings
    reach hub's log (as ``hub.apprise``): the reason a send failed is often only in a
    debug line ("Socket Exception: [Errno 111] Connection refused")."""
    if any(isinstance(h, _ForwardWarnings) for h in _APPRISE_LOG.handlers):
        return
    _APPRISE_LOG.setLevel(logging.DEBUG)
    _APPRISE_LOG.propagate = False
    _APPRISE_LOG.addHandler(_ForwardWarnings())


class _ForwardWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        """Apprise's warning, its URLs cut (``without_url_paths``) as a failure's are."""
        if getattr(_KEPT, "on", False):
            return
        record.msg, record.args = without_url_paths(record.getMessage()), None
        logging.getLogger("hub.apprise").handle(record)


# A debug line in which a plugin dumps the request it is about to send ("SMSEagle
# Payload: {...'access_token': ...}", "ntfy Headers: {...}"): it may hold the service's
# token, and it never says why a send failed.
_REQUEST_DUMP = re.compile(r"[^:\n]{0,60}\b(?:payload|headers|params)\b[^:\n]*:", re.IGNORECASE)


class _ThreadLogCapture(logging.Handler):
    """Collects the failure detail Apprise logs from the current thread only."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread and _tells_why(record):
            self.lines.append(record.getMessage().strip())


def _tells_why(record: logging.LogRecord) -> bool:
    """Whether an Apprise line may say why a send failed: a warning, or a debug line
    about an exception or the service's response, never a dump of the request (whose
    body may merely mention a response: "responsetype", an alert about response times)."""
    if record.levelno >= logging.WARNING:
        return True
    message = record.getMessage()
    if _REQUEST_DUMP.match(message):
        return False
    return "xception" in message or "esponse" in message
