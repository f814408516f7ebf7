"""The console over plain HTTP: who may see and do what, and the CSRF check on every
form. (tests/test_console_browser.py drives the same pages in a real browser.)"""

from __future__ import annotations

import html
import logging
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conftest import AUTH, BASE_CONFIG, TLS_CONTEXT, MovedClock, free_port, mail_url, wait_for
from console_support import CONSOLE_CONFIG, csrf_in, fire, sign_in

from hub.console import render
from hub.console.sessions import SESSION_TTL


def start(hub_factory, more: str = ""):
    return hub_factory(CONSOLE_CONFIG + more, mail_url=mail_url(free_port()), max_attempts=1)


def test_pages_ask_to_sign_in_and_come_back_afterwards(hub_factory):
    hub = start(hub_factory)
    with hub.client() as http:
        answer = http.get("/silences?x=1")
        assert answer.status_code == 302
        assert answer.headers["location"] == "/login?next=%2Fsilences%3Fx%3D1"
        form = http.get(answer.headers["location"])
        assert 'name="next" value="/silences?x=1"' in form.text
        signed_in = http.post(
            "/login",
            data={"token": "read-token", "_csrf": csrf_in(form.text), "next": "/silences?x=1"},
        )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/silences?x=1"


def test_the_session_cookie_is_httponly_and_samesite_strict(hub_factory):
    hub = start(hub_factory)
    with hub.client() as http:
        answer = sign_in(http, "write-token")
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith("hub_session=")
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "secure" not in cookie, "plain HTTP on loopback: a Secure cookie would be dropped"


def test_a_wrong_token_makes_no_session(hub_factory):
    hub = start(hub_factory)
    with hub.client() as http:
        answer = sign_in(http, "not-a-token")
        assert answer.status_code == 401
        assert "That token is not valid here." in answer.text
        assert http.get("/").status_code == 302


def test_signing_in_without_the_forms_csrf_token_is_refused(hub_factory):
    hub = start(hub_factory)
    with hub.client() as http:
        http.get("/login")
        answer = http.post("/login", data={"token": "admin-token", "_csrf": "forged"})
        assert answer.status_code == 403
        assert "hub_session" not in answer.headers.get("set-cookie", "")


def test_every_form_post_needs_the_sessions_csrf_token(hub_factory):
    hub = start(hub_factory)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        sign_in(http, "write-token")
        page = http.get(f"/incidents/{incident_id}")
        ack = f"/incidents/{incident_id}/ack"
        assert http.post(ack, data={"comment": "no token"}).status_code == 403
        assert http.post(ack, data={"_csrf": "wrong", "comment": "bad"}).status_code == 403
        assert http.post("/silences/abc/expire", data={}).status_code == 403
        done = http.post(ack, data={"_csrf": csrf_in(page.text), "comment": "on it"})
        assert done.status_code == 303
        assert done.headers["location"] == f"/incidents/{incident_id}?done=ack"
        shown = http.get(done.headers["location"]).text
    assert f"Incident #{incident_id} is acknowledged." in shown
    assert "on it" in shown


def test_acknowledging_an_incident_someone_else_holds_shows_who_and_changes_nothing(hub_factory):
    hub = start(hub_factory)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        sign_in(http, "admin-token")
        csrf = csrf_in(http.get(f"/incidents/{incident_id}").text)  # seen while still open
        writer = {"Authorization": "Bearer write-token"}
        http.post(f"/api/v1/incidents/{incident_id}/ack", headers=writer).raise_for_status()
        answer = http.post(f"/incidents/{incident_id}/ack", data={"_csrf": csrf})
        incident = http.get(f"/api/v1/incidents/{incident_id}", headers=writer).json()
    assert answer.status_code == 409
    assert f"incident {incident_id} is already acknowledged by will at " in answer.text
    assert f"Incident #{incident_id} is acknowledged." not in answer.text
    assert incident["acknowledged_by"] == "will"
    assert [t["actor"] for t in incident["timeline"] if t["kind"] == "acknowledged"] == ["will"]


def test_resolving_from_a_page_left_open_after_the_incident_resolved_shows_it(hub_factory):
    """A page opened while the incident was open still has its Resolve button: a click
    after someone else resolved it shows the incident, saying so, and records nothing."""
    hub = start(hub_factory)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        sign_in(http, "admin-token")
        csrf = csrf_in(http.get(f"/incidents/{incident_id}").text)
        writer = {"Authorization": "Bearer write-token"}
        http.post(f"/api/v1/incidents/{incident_id}/resolve", headers=writer).raise_for_status()
        answer = http.post(f"/incidents/{incident_id}/resolve", data={"_csrf": csrf})
        shown = http.get(answer.headers["location"])
        incident = http.get(f"/api/v1/incidents/{incident_id}", headers=writer).json()
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/incidents/{incident_id}?done=already-resolved"
    assert shown.status_code == 200
    assert f"Incident #{incident_id} was already resolved." in shown.text
    assert incident["resolved_by"] == "will"
    assert [t["actor"] for t in incident["timeline"] if t["kind"] == "resolved"] == ["will"]


def test_a_snooze_button_acknowledges_for_a_while_and_the_page_says_until_when(hub_factory):
    hub = start(hub_factory)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    snooze = f"/incidents/{incident_id}/snooze"
    with hub.client() as http:
        sign_in(http, "write-token")
        page = http.get(f"/incidents/{incident_id}").text
        for length in ("1h", "4h", "24h"):
            assert f'name="duration" value="{length}" formaction="{snooze}"' in page
        csrf = csrf_in(page)
        refused = http.post(snooze, data={"_csrf": csrf, "duration": "30s"})
        done = http.post(snooze, data={"_csrf": csrf, "duration": "24h", "comment": "tomorrow"})
        assert done.status_code == 303
        assert done.headers["location"] == f"/incidents/{incident_id}?done=snooze"
        shown = http.get(done.headers["location"]).text
        listed = http.get("/?status=acknowledged").text
        incident = http.get(
            f"/api/v1/incidents/{incident_id}", headers={"Authorization": "Bearer write-token"}
        ).json()
    assert refused.status_code == 422
    assert "duration: must be from 1m to 7d, got &#39;30s&#39;" in refused.text
    until = datetime.fromisoformat(incident["snoozed_until"])
    assert incident["acknowledged_by"] == "will"
    assert f"Incident #{incident_id} is snoozed" in shown
    for text in (shown, listed):
        # a day ahead: the date says it is not tonight
        wakes = rf"snoozed until <time[^>]*>{until:%Y-%m-%d %H:%M} UTC</time> \(in 1d\)"
        assert re.search(wakes, text), text
    assert "tomorrow" in shown


@pytest.mark.parametrize(
    ("now", "shown"),
    [
        ("2026-01-01T09:00:00+00:00", "17:30 UTC"),
        ("2026-01-01T00:00:00+00:00", "17:30 UTC"),
        ("2025-12-31T23:59:00+00:00", "2026-01-01 17:30 UTC"),
        ("2026-01-02T08:00:00+00:00", "2026-01-01 17:30 UTC"),
    ],
)
def test_a_wake_up_time_shows_its_date_unless_it_is_today(now, shown):
    wakes = datetime.fromisoformat("2026-01-01T17:30:00+00:00")
    assert render.hhmm({"now": datetime.fromisoformat(now).timestamp()}, wakes) == shown


def test_snooze_buttons_show_only_where_a_snooze_would_be_taken(hub_factory):
    """Anyone may snooze an open incident; once acknowledged, only its holder: the API
    refuses anyone else with 409, so they see no button to click into it."""
    hub = start(hub_factory)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    snooze = f'formaction="/incidents/{incident_id}/snooze"'
    with hub.client() as will, hub.client() as ada:
        sign_in(will, "write-token")
        sign_in(ada, "admin-token")
        page = f"/incidents/{incident_id}"
        assert snooze in will.get(page).text and snooze in ada.get(page).text, "open"
        acked = will.post(f"{page}/ack", data={"_csrf": csrf_in(will.get(page).text)})
        assert acked.status_code == 303
        holder, other = will.get(page).text, ada.get(page).text
    assert snooze in holder
    assert snooze not in other
    for action in ("unack", "resolve"):
        assert f'formaction="/incidents/{incident_id}/{action}"' in other, "taking over stays"


def test_a_read_token_sees_no_actions_and_its_posts_are_refused(hub_factory):
    hub = start(hub_factory)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        sign_in(http, "read-token")
        page = http.get(f"/incidents/{incident_id}")
        assert page.status_code == 200
        assert "Acknowledge" not in page.text
        assert "Silence alerts like this" not in page.text
        csrf = csrf_in(page.text)  # the sign-out form's: valid, but the role is too low
        answer = http.post(f"/incidents/{incident_id}/ack", data={"_csrf": csrf})
    assert answer.status_code == 403
    assert "needs the write role" in answer.text


def test_without_api_tokens_the_console_is_open_and_read_only(hub_factory, smtp):
    hub = hub_factory(BASE_CONFIG, mail_url=mail_url(smtp[1]))
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        page = http.get(f"/incidents/{incident_id}")
        assert page.status_code == 200
        assert "read-only" in page.text
        assert "<form" not in page.text
        assert http.post(f"/incidents/{incident_id}/ack", data={}).status_code == 403


@pytest.mark.parametrize("path", ["/", "/incidents/1", "/heartbeats", "/sources", "/notifications"])
def test_the_live_part_of_a_page_comes_alone_when_asked_for(hub_factory, path):
    hub = start(hub_factory)
    fire(hub.url, "checkout down")
    with hub.client() as http:
        sign_in(http, "read-token")
        whole = http.get(path)
        part = http.get(path, headers={"X-Console-Part": "live"})
    assert whole.status_code == part.status_code == 200
    assert 'id="live"' in whole.text
    assert "<html" not in part.text


def test_signing_out_ends_the_session(hub_factory):
    hub = start(hub_factory)
    with hub.client() as http:
        sign_in(http, "read-token")
        page = http.get("/")
        assert "Ends every console session of your token" in page.text
        answer = http.post("/logout", data={"_csrf": csrf_in(page.text)})
        assert answer.headers["location"] == "/login?done=signed-out"
        assert (
            "every console session of your token has ended"
            in http.get(answer.headers["location"]).text
        )
        assert http.get("/").status_code == 302


def sign_out_keeping_a_copy(hub, token: str) -> dict[str, str]:
    """Sign in, copy the session cookie as a thief would, then sign out; the copy."""
    with hub.client() as http:
        sign_in(http, token)
        copy = dict(http.cookies)
        page = http.get("/")
        assert http.post("/logout", data={"_csrf": csrf_in(page.text)}).status_code == 303
    return copy


def assert_signed_out(hub, cookies: dict[str, str]) -> None:
    with hub.client(cookies=cookies) as http:
        answer = http.get("/silences")
    assert answer.status_code == 302
    assert answer.headers["location"] == "/login?next=%2Fsilences"


def test_a_copy_of_the_session_cookie_dies_with_the_sign_out(hub_factory):
    """Sign-out ends every session of the token, not only the cookie of the browser
    that signed out; other tokens' sessions go on, and signing in again works."""
    hub = start(hub_factory)
    with hub.client() as other_browser, hub.client() as colleague:
        sign_in(other_browser, "read-token")
        sign_in(colleague, "write-token")
        copy = sign_out_keeping_a_copy(hub, "read-token")
        assert_signed_out(hub, copy)
        assert other_browser.get("/").status_code == 302
        assert colleague.get("/").status_code == 200
    with hub.client() as http:
        sign_in(http, "read-token")
        assert http.get("/silences").status_code == 200


def test_a_sign_out_survives_a_restart(hub_factory):
    hub = start(hub_factory)
    copy = sign_out_keeping_a_copy(hub, "read-token")
    hub.restart()
    assert_signed_out(hub, copy)
    with hub.client() as http:
        sign_in(http, "read-token")
        assert http.get("/silences").status_code == 200


def sign_outs_stored(hub) -> set[str]:
    """The token names whose sign-out the store keeps."""
    with sqlite3.connect(hub.runtime.config.storage.path) as db:
        rows = db.execute("SELECT name FROM settings WHERE name LIKE 'signed_out:%'").fetchall()
    return {name.removeprefix("signed_out:") for (name,) in rows}


def reload_without(hub, line: str) -> None:
    """Take ``line`` out of the running hub's config file and reload it."""
    hub.config_path.write_text(hub.config_path.read_text().replace(line, ""))
    reload(hub)


def reload(hub) -> None:
    answer = httpx.post(
        f"{hub.url}/-/reload", headers={"Authorization": "Bearer admin-token"}, verify=TLS_CONTEXT
    )
    assert answer.status_code == 200, answer.text


RITA = '  { name = "rita", token = "read-token", role = "read" },\n'


def test_the_sign_out_of_a_removed_token_is_deleted_at_reload_and_at_start(hub_factory):
    """Each sign-out was kept for ever, also of tokens long gone from the config; one
    of a token still configured stays, as its copied cookies must stay dead."""
    clock = MovedClock()
    hub = hub_factory(CONSOLE_CONFIG, clock=clock, mail_url=mail_url(free_port()), max_attempts=1)
    for token in ("read-token", "write-token", "admin-token"):
        sign_out_keeping_a_copy(hub, token)
    assert sign_outs_stored(hub) == {"rita", "will", "ada"}
    clock.advance(SESSION_TTL)
    reload_without(hub, RITA)
    wait_for(lambda: sign_outs_stored(hub) == {"will", "ada"})
    hub.stop()
    hub.config_path.write_text(hub.config_path.read_text().replace('"will"', '"bill"'))
    hub.start()
    assert sign_outs_stored(hub) == {"ada"}


def test_a_token_put_back_the_same_day_does_not_revive_a_signed_out_cookie(hub_factory):
    """A sign-out of a removed token is kept until every session it ended has expired:
    forgotten at once, a token put back with the same value would let a copy of a
    signed-out cookie in again."""
    clock = MovedClock()
    hub = hub_factory(CONSOLE_CONFIG, clock=clock, mail_url=mail_url(free_port()), max_attempts=1)
    copy = sign_out_keeping_a_copy(hub, "read-token")
    clock.advance(SESSION_TTL - 60)
    original = hub.config_path.read_text()
    reload_without(hub, RITA)
    hub.restart()
    hub.config_path.write_text(original)
    reload(hub)
    assert sign_outs_stored(hub) == {"rita"}
    assert_signed_out(hub, copy)


def test_a_delivery_can_be_replayed_as_a_dry_run_or_ingested_again(hub_factory):
    hub = start(hub_factory)
    fire(hub.url, "checkout down")
    with hub.client() as http:
        sign_in(http, "write-token")
        page = http.get("/deliveries/1")
        assert "Replay as a dry run" in page.text and "Ingest again" not in page.text
        dry = http.post("/deliveries/1/replay", data={"_csrf": csrf_in(page.text), "dry_run": "1"})
        assert dry.status_code == 200
        assert "What a replay would do now" in dry.text and "duplicate" in dry.text
        assert "Ingest again" not in dry.text, "only an admin may ingest again"
        refused = http.post("/deliveries/1/replay", data={"_csrf": csrf_in(page.text)})
        assert refused.status_code == 403
        http.post("/logout", data={"_csrf": csrf_in(page.text)})
        sign_in(http, "admin-token")
        page = http.get("/deliveries/1")
        again = http.post(
            "/deliveries/1/replay", data={"_csrf": csrf_in(page.text), "dry_run": "0"}
        )
        assert again.status_code == 303
        assert again.headers["location"] == "/deliveries/2?done=replayed"
        shown = http.get(again.headers["location"]).text
    assert "replay of" in shown and "#1" in shown


def test_a_delivery_hub_made_itself_offers_no_replay(hub_factory):
    """A heartbeat's alert has no sender's body: the page says so instead of offering a
    dry run that could only be refused."""
    hub = start(hub_factory, more='[[heartbeats]]\nname = "nightly"\nperiod = "1d"\n')
    with hub.client() as http:
        assert http.post("/ping/nightly/fail").status_code == 200
        sign_in(http, "admin-token")
        page = http.get("/deliveries/1")
    assert page.status_code == 200
    assert "hub made this delivery itself (heartbeat)" in html.unescape(page.text)
    assert "Replay as a dry run" not in page.text


def test_an_admin_sees_that_a_replay_would_reopen_and_page_before_ingesting_again(hub_factory):
    """Ingesting an old firing body again reopens its resolved alert and pages: the
    button to do it is offered only with the dry run that says so."""
    hub = start(hub_factory)
    fired = fire(hub.url, "checkout down")
    resolved = {"status": "resolved", "summary": "checkout down", "labels": {"service": "checkout"}}
    answer = httpx.post(
        f"{hub.url}/webhooks/shop", json=resolved, headers=AUTH, timeout=10, verify=TLS_CONTEXT
    )
    assert answer.json()["alerts"][0]["status"] == "resolved"
    with hub.client() as http:
        sign_in(http, "admin-token")
        page = http.get("/deliveries/1")
        assert "Replay as a dry run" in page.text and "Ingest again" not in page.text
        dry = http.post("/deliveries/1/replay", data={"_csrf": csrf_in(page.text), "dry_run": "1"})
        effects = re.findall(r"<li>([^<]*)</li>", dry.text.split('class="effects"')[1])
        assert effects == [f"{fired['fingerprint']}: reopens a resolved alert", "notifies ops"]
        assert "Ingest again" in dry.text
    alert = httpx.get(
        f"{hub.url}/api/v1/alerts/{fired['id']}",
        headers={"Authorization": "Bearer admin-token"},
        timeout=10,
        verify=TLS_CONTEXT,
    )
    assert alert.json()["status"] == "resolved", "a dry run changes nothing"


def test_a_delivery_page_counts_the_stale_events_the_sender_was_told_of(hub_factory):
    hub = start(hub_factory)
    event = {"status": "resolved", "summary": "checkout down", "dedup_key": "checkout"}
    late = {**event, "status": "firing", "occurred_at": "2020-01-01T00:00:00Z"}
    with hub.client(headers=AUTH) as http:
        http.post("/webhooks/shop", json=event)
        delivery_id = http.post("/webhooks/shop", json=late).json()["delivery_id"]
    with hub.client() as http:
        sign_in(http, "read-token")
        page = http.get(f"/deliveries/{delivery_id}")
    assert "1 accepted, 1 stale" in page.text


def test_a_sent_notification_shows_how_long_after_the_change_it_went_out(hub_factory, smtp):
    mailbox, port = smtp
    hub = hub_factory(CONSOLE_CONFIG, mail_url=mail_url(port), max_attempts=1)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    wait_for(lambda: mailbox.messages)
    with hub.client() as http:
        sign_in(http, "read-token")
        shown = wait_for(
            lambda: "after the change" in (text := http.get("/notifications").text) and text
        )
        incident_page = http.get(f"/incidents/{incident_id}").text
    assert re.search(r"sent <time[^>]*>[^<]*</time>, \d+ ms after the change", shown), shown
    assert "after the change" in incident_page


def test_an_incident_page_notes_which_silence_holds_each_muted_alert(hub_factory):
    hub = start(hub_factory)
    held = fire(hub.url, "checkout down", host="web-1")
    fire(hub.url, "checkout down", host="web-2")
    body = {"matchers": ['host="web-1"'], "duration": "1h", "comment": "rebooting web-1"}
    writer = {"Authorization": "Bearer write-token"}
    with hub.client(headers=writer) as api:
        silence_id = api.post("/api/v1/silences", json=body).json()["id"]
    with hub.client() as http:
        sign_in(http, "read-token")
        page = http.get(f"/incidents/{held['incident_id']}").text
        silences = http.get("/silences").text
    notes = re.findall(r'<div class="sub muted-by">(.*?)</div>', page, re.S)
    assert len(notes) == 1, "only the silenced alert of the two is noted"
    assert f'<a href="/silences#silence-{silence_id}">{silence_id}</a>' in notes[0]
    assert "muted by silence" in notes[0]
    assert f'id="silence-{silence_id}"' in silences, "the link lands on the silence's row"


def test_the_incident_list_shows_the_latest_hundred_and_links_to_older_ones(hub_factory):
    """A list cut at 100 rows must say so and lead on, or the older incidents look gone."""
    hub = start(hub_factory)
    events = [
        {"status": "firing", "summary": f"service {i} down", "labels": {"service": f"s{i}"}}
        for i in range(101)
    ]
    with hub.client() as http:
        assert http.post("/webhooks/shop", json=events, headers=AUTH).status_code == 202
        sign_in(http, "read-token")
        listed = http.get("/").text
        older_link = re.search(r'<a href="(/\?[^"]*cursor=[^"]*)" rel="next">Older</a>', listed)
        assert older_link, listed
        older = http.get(html.unescape(older_link.group(1))).text
        one = http.get("/", params={"label": 'service="s7"'}).text
    assert len(re.findall(r"<tr data-incident=", listed)) == 100
    assert "Showing the 100 most recently changed of 101." in listed
    assert "service 0 down" not in listed
    assert re.findall(r"<tr data-incident=", older) == ["<tr data-incident="]
    assert "service 0 down" in older, "the first incident opened is the oldest changed"
    assert 'rel="next"' not in older and '<a href="/?status=open">Newest</a>' in older
    assert "data-more" not in one and "service 7 down" in one


def test_an_incident_page_shows_each_alerts_annotations_with_links(hub_factory):
    """The runbook is what a person opening the incident looks for first."""
    hub = start(hub_factory)
    event = {
        "status": "firing",
        "summary": "checkout down",
        "labels": {"service": "checkout"},
        "annotations": {
            "runbook": "https://wiki.example/checkout",
            "description": "<b>5xx</b> above 5%",
        },
    }
    with hub.client() as http:
        answer = http.post("/webhooks/shop", json=event, headers=AUTH)
        sign_in(http, "read-token")
        page = http.get(f"/incidents/{answer.json()['alerts'][0]['incident_id']}").text
    notes = re.findall(r'<div class="sub annotation">(.*?)</div>', page, re.S)
    assert notes == [
        "description: &lt;b&gt;5xx&lt;/b&gt; above 5%",
        'runbook: <a href="https://wiki.example/checkout" rel="noopener">'
        "https://wiki.example/checkout</a>",
    ]


def test_the_heartbeats_page_shows_a_started_run_and_since_when(hub_factory):
    hub = start(hub_factory)
    writer = {"Authorization": "Bearer write-token"}
    with hub.client() as http:
        made = http.post("/api/v1/heartbeats", json={"name": "etl", "period": "1h"}, headers=writer)
        assert made.status_code == 201, made.text
        assert http.post("/ping/etl/start").status_code == 200
        sign_in(http, "read-token")
        page = http.get("/heartbeats").text
    row = re.search(r'<tr data-heartbeat="etl">.*?</tr>', page, re.S)
    assert row, page
    assert '<span class="badge st-started">started</span>' in row.group(0)
    assert re.search(r'started <time title="[^"]+ UTC">\d+s ago</time>', row.group(0))


def test_the_heartbeats_page_shows_a_paused_heartbeat_with_who_paused_it_and_why(hub_factory):
    hub = start(hub_factory)
    writer = {"Authorization": "Bearer write-token"}
    with hub.client() as http:
        made = http.post("/api/v1/heartbeats", json={"name": "etl", "period": "1h"}, headers=writer)
        assert made.status_code == 201, made.text
        why = {"reason": "host in maintenance"}
        paused = http.post("/api/v1/heartbeats/etl/pause", json=why, headers=writer)
        assert paused.status_code == 200, paused.text
        sign_in(http, "read-token")
        page = http.get("/heartbeats").text
    row = re.search(r'<tr data-heartbeat="etl">.*?</tr>', page, re.S)
    assert row, page
    assert '<span class="badge st-paused">paused</span>' in row.group(0)
    assert re.search(
        r'<div class="sub" data-paused><time title="[^"]+ UTC">\d+s ago</time> by will'
        r" · host in maintenance</div>",
        row.group(0),
    )


ETL = '[[heartbeats]]\nname = "etl"\nperiod = "1h"\n'


def etl_row(page: str) -> str:
    row = re.search(r'<tr data-heartbeat="etl">.*?</tr>', page, re.S)
    assert row, page
    return row.group(0)


def etl_state(http) -> dict:
    return http.get("/api/v1/heartbeats/etl", headers={"Authorization": "Bearer read-token"}).json()


def test_a_writer_pauses_a_heartbeat_with_why_and_resumes_it_from_the_console(hub_factory, caplog):
    """Pausing one took curl or the CLI; the console's buttons record the signed-in
    person, as its incident actions do, and the paused gauge follows them."""
    caplog.set_level(logging.INFO, logger="hub.heartbeats")
    hub = start(hub_factory, more=ETL)
    with hub.client() as http:
        sign_in(http, "write-token")
        listed = http.get("/heartbeats").text
        assert 'action="/heartbeats/etl/pause"' in etl_row(listed)
        csrf = csrf_in(listed)
        forged = http.post("/heartbeats/etl/pause", data={"_csrf": "forged", "reason": "x"})
        assert forged.status_code == 403
        assert etl_state(http)["state"] == "new", "a forged post changed nothing"

        why = {"_csrf": csrf, "reason": "host in maintenance"}
        paused = http.post("/heartbeats/etl/pause", data=why)
        assert (paused.status_code, paused.headers["location"]) == (
            303,
            "/heartbeats?done=paused",
        )
        shown = http.get(paused.headers["location"]).text
        assert render.NOTICES["paused"] in html.unescape(shown)
        assert 'action="/heartbeats/etl/resume"' in etl_row(shown)
        row = etl_state(http)
        assert (row["state"], row["paused_by"], row["paused_via"], row["pause_reason"]) == (
            "paused",
            "will",
            None,
            "host in maintenance",
        )
        assert 'hub_heartbeat_paused{heartbeat="etl"} 1.0' in http.get("/metrics").text

        resumed = http.post("/heartbeats/etl/resume", data={"_csrf": csrf})
        assert resumed.headers["location"] == "/heartbeats?done=resumed"
        assert render.NOTICES["resumed"] in html.unescape(http.get("/heartbeats?done=resumed").text)
        assert etl_state(http)["state"] == "new"
        assert 'hub_heartbeat_paused{heartbeat="etl"} 0.0' in http.get("/metrics").text
        again = http.post("/heartbeats/etl/resume", data={"_csrf": csrf})
        assert again.status_code == 409
        assert "heartbeat &#39;etl&#39; is not paused" in again.text
        too_long = http.post("/heartbeats/etl/pause", data={"_csrf": csrf, "reason": "x" * 2001})
        assert too_long.status_code == 422
        assert "reason: at most 2000 characters" in too_long.text
        assert etl_state(http)["state"] == "new"
    logged = [r.getMessage() for r in caplog.records if r.name == "hub.heartbeats"]
    assert logged == [
        'event=heartbeat_paused name=etl by=will via=console reason="host in maintenance"',
        "event=heartbeat_resumed name=etl by=will via=console",
    ]


def test_a_reader_sees_no_heartbeat_buttons_and_cannot_post_one(hub_factory):
    hub = start(hub_factory, more=ETL)
    with hub.client() as http:
        sign_in(http, "read-token")
        listed = http.get("/heartbeats").text
        refused = http.post("/heartbeats/etl/pause", data={"_csrf": csrf_in(listed)})
        assert etl_state(http)["state"] == "new"
    assert "<form" not in etl_row(listed)
    assert refused.status_code == 403
    assert "this needs the write role or higher; you have read" in html.unescape(refused.text)


PROMETHEUS_SOURCE = """
[[sources]]
name = "prom"
format = "prometheus"
auth = {{ type = "none" }}
"""


def test_a_first_prometheus_delivery_shows_what_it_changed_not_a_repeat(hub_factory):
    """Alertmanager's API answers 200 with no body, first time or not: the inspector
    said "repeated delivery" of a first one and showed its empty answer as ``null``.
    What a delivery did comes from its events; Prometheus re-sending a firing alert
    changes nothing, and says so."""
    hub = start(hub_factory, more=PROMETHEUS_SOURCE)
    now = datetime.now(UTC)
    alert = {
        "labels": {"alertname": "DiskFull", "instance": "db1"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (now + timedelta(minutes=4)).isoformat(),
    }
    with hub.client() as http:
        for _ in range(2):
            answer = http.post("/webhooks/prom/api/v2/alerts", json=[alert])
            assert (answer.status_code, answer.content) == (200, b"")
        sign_in(http, "read-token")
        sources = html.unescape(http.get("/sources").text)
        first = html.unescape(http.get("/deliveries/1").text)
    table = sources.split('data-source="prom"')[1].split("<tbody>")[1].split("</tbody>")[0]
    rows = table.split("<tr>")[1:]
    outcomes = [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]
    assert "no alert changed (repeats or ignored)" in outcomes[0], "the newest, a re-send"
    assert "1 new" in outcomes[1], outcomes
    assert "repeated delivery" not in sources + first
    assert re.search(r"<dt>Answered</dt><dd>200 · \s*1 new", first)
    assert "<pre>(empty body)</pre>" in first and "<pre>null</pre>" not in first
