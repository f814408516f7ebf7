"""Email over TLS through hub's channels, against a real aiosmtpd server with a real
certificate (from a throwaway CA): STARTTLS and SMTPS still encrypt and still verify,
while plain SMTP no longer builds a TLS context it never uses (``hub.smtp_tls``)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trustme
from aiosmtpd.controller import Controller

from hub.channels import open_channel, route_apprise_logs
from hub.templates import Rendered
from tests.conftest import Mailbox, free_port, mail_url

MODES = {"starttls": "mailto", "ssl": "mailtos"}
DISK_FULL = Rendered(title="Disk full", body="db-1", body_format="text", notify_type="failure")


class TLSMailbox(Mailbox):
    """Also notes whether each message came over an encrypted session."""

    def __init__(self) -> None:
        super().__init__()
        self.encrypted: list[bool] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.encrypted.append(server.transport.get_extra_info("sslcontext") is not None)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(params=sorted(MODES))
def tls_smtp(request, certificate_authority) -> Iterator[tuple[TLSMailbox, int, str]]:
    """A server requiring STARTTLS, or speaking TLS from the first byte (SMTPS)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(context)
    mailbox, port, mode = TLSMailbox(), free_port(), request.param
    if mode == "starttls":
        options = {"tls_context": context, "require_starttls": True}
    else:
        options = {"ssl_context": context}
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield mailbox, port, mode
    finally:
        controller.stop()


def tls_url(port: int, mode: str, verify: str) -> str:
    query = f"from=hub@example.com&to=ops@example.com&mode={mode}&verify={verify}"
    return f"{MODES[mode]}://127.0.0.1:{port}?{query}"


@pytest.fixture
def contexts_built(monkeypatch) -> list[bool]:
    """Counts verifying TLS contexts built (the expensive part: the CA bundle).
    Apprise's logging is set up as the hub's sender sets it, so failures have reasons."""
    route_apprise_logs()
    built: list[bool] = []
    real = ssl.create_default_context

    def counting(*args, **kwargs) -> ssl.SSLContext:
        built.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    return built


def test_email_without_verification_is_still_sent_encrypted(tls_smtp, contexts_built):
    mailbox, port, mode = tls_smtp
    failure = open_channel(tls_url(port, mode, "no"), 10).send(DISK_FULL)
    assert failure is None
    assert mailbox.subjects() == ["Disk full"]
    assert mailbox.encrypted == [True]
    assert len(contexts_built) == 1


def test_a_certificate_nobody_trusts_is_refused_when_verifying(tls_smtp, contexts_built):
    """The context built on demand verifies as Apprise's own did: the throwaway CA is
    in no trust store, so nothing is sent and the reason names the certificate."""
    mailbox, port, mode = tls_smtp
    failure = open_channel(tls_url(port, mode, "yes"), 10).send(DISK_FULL)
    assert failure is not None
    assert "CERTIFICATE_VERIFY_FAILED" in failure, failure
    assert mailbox.subjects() == []
    assert len(contexts_built) == 1


def test_plain_email_builds_no_tls_context(smtp, contexts_built):
    mailbox, port = smtp
    assert open_channel(mail_url(port), 10).send(DISK_FULL) is None
    assert mailbox.subjects() == ["Disk full"]
    assert contexts_built == []
