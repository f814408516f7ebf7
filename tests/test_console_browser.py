"""The console in real headless Chromium: an operator signs in, watches an incident
arrive without reloading, acknowledges it, silences alerts like it, retries a dead
letter, and a read-only viewer gets no buttons and no way around them.

Screenshots of the main pages go to ``artifacts/console/`` (not committed).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from conftest import Mailbox, free_port, mail_url, wait_for
from console_support import CONSOLE_CONFIG, fire
from notify_support import metric

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "console"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent (Debian package chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


if _missing():
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests: {_missing()}", pytrace=False)
    pytest.skip(str(_missing()), allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A fresh Chromium profile per test; everything it opens is on 127.0.0.1."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            args=ARGS,
            headless=True,
            viewport={"width": 1200, "height": 800},
        )
        context.set_default_timeout(10_000)
        try:
            yield context.new_page()
        finally:
            context.close()


def sign_in(page: Page, base_url: str, token: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#token", token)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{base_url}/")


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_an_incident_appears_without_reloading_and_is_acknowledged_with_a_comment(
    hub_factory, smtp, page
):
    hub = hub_factory(CONSOLE_CONFIG, mail_url=mail_url(smtp[1]))
    sign_in(page, hub.url, "write-token")
    expect(page.locator(".empty")).to_contain_text("No open incidents")
    page.evaluate("window.stayed = true")

    incident_id = fire(hub.url, "checkout API error rate above 5%", env="prod")["incident_id"]
    row = page.locator(f"tr[data-incident='{incident_id}']")
    expect(row).to_contain_text("checkout API error rate above 5%")
    assert page.evaluate("window.stayed === true"), "the page reloaded"
    shoot(page, "incidents")

    row.locator("a").first.click()
    page.fill("#comment", "rolling back the 4.2 deploy")
    page.click("button:has-text('Acknowledge')")
    expect(page.locator(".banner.ok")).to_have_text(f"Incident #{incident_id} is acknowledged.")
    entry = page.locator("li[data-kind='acknowledged']")
    expect(entry).to_contain_text("by will")
    expect(entry).to_contain_text("rolling back the 4.2 deploy")
    shoot(page, "incident")

    forged = page.request.post(
        f"{hub.url}/incidents/{incident_id}/resolve", form={"_csrf": "forged"}
    )
    assert forged.status == 403, "a post without the page's CSRF token is refused"
    for name, path in [
        ("heartbeats", "/heartbeats"),
        ("oncall", "/oncall"),
        ("sources", "/sources"),
    ]:
        page.goto(hub.url + path)
        shoot(page, name)


def test_the_ack_link_lands_on_the_incident_and_a_silence_like_it_mutes_the_next_alert(
    hub_factory, smtp, page
):
    mailbox, port = smtp
    hub = hub_factory(CONSOLE_CONFIG, mail_url=mail_url(port))
    sign_in(page, hub.url, "write-token")
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    wait_for(lambda: mailbox.messages)
    ack_url = next(w for w in mailbox.text_of(0).split() if "/ack/" in w)

    page.goto(ack_url)
    expect(page).to_have_url(f"{hub.url}/incidents/{incident_id}?done=acked-by-link")
    expect(page.locator(".banner.ok")).to_have_text(f"Incident #{incident_id} is acknowledged.")
    expect(page.locator("li[data-kind='acknowledged']")).to_contain_text("by will")

    page.click("text=Silence alerts like this")
    expect(page.locator("#matchers")).to_have_value('service="checkout"')
    page.fill("#silence-comment", "checkout maintenance")
    shoot(page, "silence_form")
    page.click("button:has-text('Create silence')")
    expect(page.locator(".banner.ok")).to_have_text("The silence is in force.")

    fire(hub.url, "checkout payments failing", alertname="Payments")
    with httpx.Client(base_url=hub.url) as http:
        wait_for(
            lambda: metric(
                http.get("/metrics").text, "hub_notifications_suppressed_total", reason="silence"
            )
        )
    page.reload()
    expect(page.locator("#live")).to_contain_text("checkout payments failing")
    assert len(mailbox.messages) == 1, "the silenced alert sent no email"
    page.goto(f"{hub.url}/silences")
    expect(page.locator("tr[data-silence]")).to_contain_text("checkout maintenance")
    shoot(page, "silences")


def test_a_dead_letter_shows_its_error_and_retry_delivers_it(hub_factory, page):
    port = free_port()
    hub = hub_factory(CONSOLE_CONFIG, mail_url=mail_url(port), max_attempts=1)
    sign_in(page, hub.url, "admin-token")
    fire(hub.url, "checkout down")
    with httpx.Client(base_url=hub.url, headers={"Authorization": "Bearer admin-token"}) as http:
        wait_for(lambda: http.get("/api/v1/notifications", params={"state": "dead"}).json())
    page.goto(f"{hub.url}/notifications?state=dead")
    dead = page.locator("tr[data-notification]")
    expect(dead).to_contain_text("dead")
    expect(dead).to_contain_text("Connection refused")
    shoot(page, "notifications")

    mailbox = Mailbox()
    server = Controller(mailbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        dead.locator("button:has-text('Retry')").click()
        expect(page.locator(".banner.ok")).to_have_text("The notification will be sent again.")
        wait_for(lambda: mailbox.messages)
        expect(page.locator("tr[data-notification] .badge")).to_have_text("sent")
    finally:
        server.stop()
    assert mailbox.subjects() == [mailbox.subjects()[0]]


def test_a_read_token_sees_no_action_buttons_and_a_forged_form_is_refused(hub_factory, smtp, page):
    hub = hub_factory(CONSOLE_CONFIG, mail_url=mail_url(smtp[1]))
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    sign_in(page, hub.url, "read-token")
    page.goto(f"{hub.url}/incidents/{incident_id}")
    expect(page.locator("h1")).to_contain_text("checkout down")
    for label in ("Acknowledge", "Resolve", "Silence alerts like this"):
        expect(page.get_by_text(label, exact=True)).to_have_count(0)
    page.goto(f"{hub.url}/silences")
    expect(page.get_by_text("New silence")).to_have_count(0)

    for form in ({}, {"_csrf": "forged"}):
        answer = page.request.post(f"{hub.url}/incidents/{incident_id}/ack", form=form)
        assert answer.status == 403, form
    with httpx.Client(base_url=hub.url, headers={"Authorization": "Bearer read-token"}) as http:
        assert http.get(f"/api/v1/incidents/{incident_id}").json()["status"] == "open"
