"""The console in real headless Chromium: an operator signs in, watches an incident
arrive without reloading, acknowledges it, silences alerts like it, retries a dead
letter, and a read-only viewer gets no buttons and no way around them.

Screenshots of the main pages go to ``artifacts/console/`` (not committed).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from conftest import AUTH, TLS_CONTEXT, Mailbox, free_port, mail_url, wait_for
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
    expect(page).to_have_url(f"{hub.url}/incidents/{incident_id}")  # the banner shows once
    expect(page.locator(".banner.ok")).to_have_text(f"Incident #{incident_id} is acknowledged.")
    expect(page.locator("li[data-kind='acknowledged']")).to_contain_text("by will")

    page.click("text=Silence alerts like this")
    expect(page.locator("#matchers")).to_have_value('service="checkout"')
    page.fill("#silence-comment", "checkout maintenance")
    shoot(page, "silence_form")
    page.click("button:has-text('Create silence')")
    expect(page.locator(".banner.ok")).to_have_text(
        "The silence is in force; it mutes 1 firing alert now."
    )

    fire(hub.url, "checkout payments failing", alertname="Payments")
    with httpx.Client(base_url=hub.url, verify=TLS_CONTEXT) as http:
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
    with httpx.Client(
        base_url=hub.url, headers={"Authorization": "Bearer admin-token"}, verify=TLS_CONTEXT
    ) as http:
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
        assert page.url.endswith("/notifications?state=dead"), "back on the tab it was on"
        wait_for(lambda: mailbox.messages)
        page.goto(f"{hub.url}/notifications")
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
    with httpx.Client(
        base_url=hub.url, headers={"Authorization": "Bearer read-token"}, verify=TLS_CONTEXT
    ) as http:
        assert http.get(f"/api/v1/incidents/{incident_id}").json()["status"] == "open"


LIVE = 20_000  # ms: two refresh periods of the slowest live part, and some


def test_the_whole_incident_page_follows_a_change_made_elsewhere(hub_factory, smtp, page):
    hub = hub_factory(CONSOLE_CONFIG, mail_url=mail_url(smtp[1]))
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    sign_in(page, hub.url, "write-token")
    expect(page.locator(".tabs a.current")).to_have_text("Open (1)")
    page.evaluate("window.stayed = true")
    fire(hub.url, "search down", service="search")
    expect(page.locator(".tabs a.current")).to_have_text("Open (2)", timeout=LIVE)

    page.goto(f"{hub.url}/incidents/{incident_id}")
    page.fill("#comment", "half-typed")
    page.locator("h1").click()  # away from the box: the refresh may swap it now
    page.evaluate("window.stayed = true")
    admin = {"Authorization": "Bearer admin-token"}
    httpx.post(
        f"{hub.url}/api/v1/incidents/{incident_id}/ack",
        headers=admin,
        timeout=10,
        verify=TLS_CONTEXT,
    )
    header = page.locator("#live .card .badge.st-acknowledged")
    expect(header).to_have_text("acknowledged", timeout=LIVE)
    expect(page.get_by_role("button", name="Acknowledge", exact=True)).to_have_count(0)
    expect(page.locator("#comment")).to_have_value("half-typed")
    assert page.evaluate("window.stayed === true"), "the page reloaded"


def test_a_banner_is_shown_once_and_a_refused_action_leaves_the_page_live(hub_factory, smtp, page):
    hub = hub_factory(CONSOLE_CONFIG, mail_url=mail_url(smtp[1]))
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    sign_in(page, hub.url, "write-token")
    page.goto(f"{hub.url}/incidents/{incident_id}")
    page.click("button:has-text('Acknowledge')")
    expect(page.locator(".banner.ok")).to_have_text(f"Incident #{incident_id} is acknowledged.")
    expect(page).to_have_url(f"{hub.url}/incidents/{incident_id}")
    page.reload()
    expect(page.locator("#live .card .badge.st-acknowledged")).to_be_visible()
    expect(page.locator(".banner.ok")).to_have_count(0)

    admin = {"Authorization": "Bearer admin-token"}
    httpx.post(
        f"{hub.url}/api/v1/incidents/{incident_id}/resolve",
        headers=admin,
        timeout=10,
        verify=TLS_CONTEXT,
    )
    page.click("button:has-text('Unacknowledge')")  # the page still offers it: 409
    expect(page.locator(".banner.err")).to_contain_text("resolved")
    expect(page).to_have_url(f"{hub.url}/incidents/{incident_id}")
    expect(page.locator("#live")).to_have_attribute("data-refreshed", re.compile("."), timeout=LIVE)
    page.reload()
    expect(page.locator("h1")).to_contain_text("checkout down")


PHONE = {"width": 390, "height": 844}
WIDE = "https://grafana.example.com/d/" + "a1b2c3d4" * 20 + "?orgId=1&var-service=checkout"


def test_long_words_and_links_wrap_on_a_phone(hub_factory, smtp, page):
    hub = hub_factory(CONSOLE_CONFIG, mail_url=mail_url(smtp[1]))
    event = {
        "status": "firing",
        "summary": "disk full on " + "volume" * 40,
        "labels": {"service": "checkout", "volume": "pvc-" + "0123456789abcdef" * 8},
        "annotations": {"dashboard": WIDE},
    }
    answer = httpx.post(
        f"{hub.url}/webhooks/shop", json=event, headers=AUTH, timeout=10, verify=TLS_CONTEXT
    )
    incident_id = answer.json()["alerts"][0]["incident_id"]
    sign_in(page, hub.url, "write-token")
    page.goto(f"{hub.url}/incidents/{incident_id}")
    page.fill("#comment", "x" * 2000)
    page.click("button:has-text('Acknowledge')")
    expect(page.locator(".banner.ok")).to_be_visible()
    page.set_viewport_size(PHONE)
    for path in ("/?status=acknowledged", f"/incidents/{incident_id}"):
        page.goto(hub.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide on a phone"
    shoot(page, "incident_phone")


def test_the_delivery_log_fits_a_phone_and_the_dismiss_box_is_usable(hub_factory, page):
    hub = hub_factory(CONSOLE_CONFIG, mail_url=mail_url(free_port()), max_attempts=1)
    fire(hub.url, "checkout down")
    with httpx.Client(
        base_url=hub.url, headers={"Authorization": "Bearer admin-token"}, verify=TLS_CONTEXT
    ) as http:
        wait_for(lambda: http.get("/api/v1/notifications", params={"state": "dead"}).json())
    sign_in(page, hub.url, "admin-token")
    page.goto(f"{hub.url}/notifications")
    reason = page.locator("tr[data-notification] input[name=comment]")
    assert reason.bounding_box()["width"] >= 160, "room to say why"

    page.set_viewport_size(PHONE)
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    row = page.locator("tr[data-notification]")
    for part in (row.locator(".badge"), row.get_by_role("button", name="Retry"), reason):
        box = part.bounding_box()  # on screen without scrolling sideways
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    shoot(page, "notifications_phone")
