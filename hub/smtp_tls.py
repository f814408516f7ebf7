"""Build Apprise's SMTP TLS context only for a connection that uses TLS.

Apprise's SMTP controller calls ``ssl.create_default_context()`` for every email,
plain SMTP included, and loading the system's CA bundle costs about 50 ms of CPU
while holding the GIL: that is most of the time from event to accepted email
(``python -m bench.latency``), and every request the hub serves meanwhile waits.
``install`` gives that module a context that records what Apprise sets on it (no
verification for ``verify=no``) and builds the real, verifying context, with those
settings, when a connection actually starts TLS.
"""

from __future__ import annotations

import logging
import ssl
import types
from typing import Any

from apprise.plugins.email import smtp as apprise_smtp

log = logging.getLogger("hub.smtp_tls")


class ContextOnDemand:
    """Stands in for an ``ssl.SSLContext`` that Apprise configures and then may use."""

    def __init__(self) -> None:
        object.__setattr__(self, "settings", {})

    def __setattr__(self, name: str, value: Any) -> None:
        self.settings[name] = value  # in order: check_hostname before verify_mode

    def build(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        for name, value in self.settings.items():
            setattr(context, name, value)
        return context

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        """What smtplib calls for SMTP over TLS and for STARTTLS."""
        return self.build().wrap_socket(*args, **kwargs)


class _SSLWithContextOnDemand(types.ModuleType):
    """The ``ssl`` module as Apprise's SMTP controller sees it after ``install``."""

    def __init__(self) -> None:
        super().__init__("ssl")

    def __getattr__(self, name: str) -> Any:
        return getattr(ssl, name)

    @staticmethod
    def create_default_context() -> ContextOnDemand:
        return ContextOnDemand()


def install() -> None:
    """Idempotent; does nothing (and says so) if Apprise no longer works this way."""
    if isinstance(getattr(apprise_smtp, "ssl", None), _SSLWithContextOnDemand):
        return
    if getattr(apprise_smtp, "ssl", None) is not ssl:
        log.info("event=smtp_tls_unchanged reason=apprise_has_no_module_ssl")
        return
    apprise_smtp.ssl = _SSLWithContextOnDemand()
