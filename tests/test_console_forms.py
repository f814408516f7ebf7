"""The console's forms and error pages over plain HTTP, where an on-call engineer's
session ends, a link is mistyped or a comment runs long: every answer is a console
page that says what happened, and nothing is done that the engineer did not see done."""

from __future__ import annotations

import html
import threading
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from conftest import AUTH, TLS_CONTEXT, WAIT_SECONDS, free_port, mail_url, wait_for
from console_support import CONSOLE_CONFIG, csrf_in, fire, sign_in

WRITER = {"Authorization": "Bearer write-token"}
ADMIN = {"Authorization": "Bearer admin-token"}


def start(hub_factory):
    return hub_factory(CONSOLE_CONFIG, mail_url=mail_url(free_port()), max_attempts=1)


def status_of(hub, incident_id: int) -> str:
    answer = httpx.get(
        f"{hub.url}/api/v1/incidents/{incident_id}", headers=WRITER, timeout=10, verify=TLS_CONTEXT
    )
    return answer.json()["status"]


def test_an_action_posted_after_the_session_ended_comes_back_to_its_page_undone(hub_factory):
    hub = start(hub_factory)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        sign_in(http, "write-token")
        csrf = csrf_in(http.get(f"/incidents/{incident_id}").text)
        http.cookies.clear()  # the session ended while the page was open
        refused = http.post(f"/incidents/{incident_id}/ack", data={"_csrf": csrf})
        assert refused.status_code == 302
        target = parse_qs(urlsplit(refused.headers["location"]).query)["next"][0]
        assert urlsplit(target).path == f"/incidents/{incident_id}"
        form = http.get(refused.headers["location"])
        assert "was not done" in form.text
        signed_in = http.post(
            "/login", data={"token": "write-token", "_csrf": csrf_in(form.text), "next": target}
        )
        assert signed_in.headers["location"] == target
        landed = http.get(target)
    assert landed.status_code == 200
    assert "was not done" in landed.text
    assert "is acknowledged." not in landed.text
    assert status_of(hub, incident_id) == "open"


@pytest.mark.parametrize(
    ("action", "page"),
    [
        ("/incidents/{id}/ack", "/incidents/{id}"),
        ("/incidents/{id}/resolve", "/incidents/{id}"),
        ("/notifications/3/retry", "/notifications"),
        ("/silences/abc/expire", "/silences"),
        ("/deliveries/4/replay", "/deliveries/4"),
        ("/heartbeats/etl/pause", "/heartbeats"),
    ],
)
def test_opening_an_action_url_leads_to_the_page_it_belongs_to(hub_factory, action, page):
    hub = start(hub_factory)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        sign_in(http, "write-token")
        answer = http.get(action.format(id=incident_id))
    assert answer.status_code == 303
    assert answer.headers["location"] == page.format(id=incident_id)
    assert status_of(hub, incident_id) == "open"


def test_a_refused_action_shows_its_page_which_then_stands_for_the_page_itself(hub_factory):
    hub = start(hub_factory)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        sign_in(http, "write-token")
        csrf = csrf_in(http.get(f"/incidents/{incident_id}").text)
        http.post(f"/api/v1/incidents/{incident_id}/resolve", headers=ADMIN).raise_for_status()
        refused = http.post(f"/incidents/{incident_id}/ack", data={"_csrf": csrf})
        forged = http.post(f"/incidents/{incident_id}/ack", data={"_csrf": "forged"})
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("text/html")
    assert f'data-here="/incidents/{incident_id}"' in refused.text, "reload and refresh go there"
    assert forged.status_code == 403
    assert forged.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("path", "status", "said"),
    [
        (
            "/incidents/abc",
            400,
            "invalid path parameter 'incident_id': expected a whole number from 1 to"
            " 9223372036854775807, got 'abc'",
        ),
        ("/incidents/0", 400, "invalid path parameter 'incident_id'"),
        (f"/silences/new?incident={2**64}", 400, "invalid query parameter 'incident'"),
        ("/deliveries/abc", 400, "invalid path parameter 'delivery_id'"),
        ("/incidents/999", 404, "no incident with id 999"),
        ("/no/such/page", 404, "Not Found"),
        ("/deliveries/999", 404, "no delivery with id 999"),
    ],
)
def test_a_wrong_console_address_answers_a_console_page(hub_factory, path, status, said):
    hub = start(hub_factory)
    with hub.client() as http:
        sign_in(http, "read-token")
        answer = http.get(path)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    assert said in html.unescape(answer.text)
    assert 'class="brand"' in answer.text, "in the console's layout"


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/v1/incidents/abc", 400), ("/api/v1/nothing", 404), ("/api/v1/incidents/999", 404)],
)
def test_api_paths_keep_answering_problem_json(hub_factory, path, status):
    hub = start(hub_factory)
    answer = httpx.get(hub.url + path, headers=AUTH | WRITER, timeout=10, verify=TLS_CONTEXT)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_wrong_method_on_a_console_page_answers_a_console_page(hub_factory):
    hub = start(hub_factory)
    with hub.client() as http:
        sign_in(http, "read-token")
        answer = http.delete("/heartbeats")
    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["allow"] == "GET, HEAD, OPTIONS"
    assert "DELETE is not allowed on /heartbeats; it takes GET, HEAD" in answer.text


def test_an_unknown_incident_tab_is_said_to_be_unknown(hub_factory):
    hub = start(hub_factory)
    with hub.client() as http:
        sign_in(http, "read-token")
        answer = http.get("/?status=bogus")
    assert answer.status_code == 400
    assert "no tab" in html.unescape(answer.text)
    # the page shows the Open tab, and stands for it: its refresh asks for that, not a 400
    assert '<main data-here="/">' in answer.text


LONG = "x" * 2001


@pytest.mark.parametrize("action", ["ack", "snooze", "resolve"])
def test_an_incident_comment_over_the_limit_is_refused_naming_it(hub_factory, action):
    hub = start(hub_factory)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        sign_in(http, "write-token")
        csrf = csrf_in(http.get(f"/incidents/{incident_id}").text)
        form = {"_csrf": csrf, "comment": LONG, "duration": "1h"}
        answer = http.post(f"/incidents/{incident_id}/{action}", data=form)
        api = http.post(
            f"/api/v1/incidents/{incident_id}/{action}",
            json={"comment": LONG, "duration": "1h"} if action == "snooze" else {"comment": LONG},
            headers=WRITER,
        )
    assert answer.status_code == 422
    assert "comment: at most 2000 characters" in answer.text
    assert api.status_code in (400, 422)
    assert "comment" in api.json()["detail"]
    assert "2000" in api.json()["detail"]
    assert status_of(hub, incident_id) == "open"


def test_a_silence_comment_over_the_limit_is_refused_in_the_console_and_the_api(hub_factory):
    hub = start(hub_factory)
    with hub.client() as http:
        sign_in(http, "write-token")
        csrf = csrf_in(http.get("/silences/new").text)
        form = {"_csrf": csrf, "matchers": 'service="checkout"', "duration": "1h"}
        answer = http.post("/silences", data=form | {"comment": LONG})
        api = http.post(
            "/api/v1/silences",
            json={"matchers": ['service="checkout"'], "duration": "1h", "comment": LONG},
            headers=WRITER,
        )
        left = http.get("/api/v1/silences", headers=WRITER).json()
    assert answer.status_code == 422
    assert "comment: at most 2000 characters" in answer.text
    assert api.status_code == 422
    assert api.json()["field"] == "$.comment"
    assert left == []


def test_a_dismiss_reason_over_the_limit_is_refused(hub_factory):
    hub = start(hub_factory)
    fire(hub.url, "checkout down")
    with hub.client() as http:
        sign_in(http, "admin-token")
        dead = wait_for(lambda: http.get("/api/v1/notifications?state=dead", headers=ADMIN).json())
        letter = dead[0]["id"]
        csrf = csrf_in(http.get("/notifications").text)
        answer = http.post(
            f"/notifications/{letter}/dismiss", data={"_csrf": csrf, "comment": LONG}
        )
        api = http.post(
            f"/api/v1/notifications/{letter}/dismiss", json={"comment": LONG}, headers=ADMIN
        )
        still = http.get("/api/v1/notifications?state=dead", headers=ADMIN).json()
    assert answer.status_code == 422
    assert "comment: at most 2000 characters" in answer.text
    assert api.status_code in (400, 422)
    assert "2000" in api.json()["detail"]
    assert [n["id"] for n in still] == [letter]


def test_the_silence_banner_says_how_many_firing_alerts_it_mutes(hub_factory):
    hub = start(hub_factory)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        sign_in(http, "write-token")
        shown = {}
        for name, matcher in (("typo", 'service="chekout"'), ("right", 'service="checkout"')):
            form = http.get(f"/silences/new?matcher={matcher}&incident={incident_id}").text
            done = http.post(
                "/silences",
                data={
                    "_csrf": csrf_in(form),
                    "matchers": matcher,
                    "duration": "1h",
                    "comment": "deploy",
                    "incident": str(incident_id),
                },
            )
            shown[name] = (form, html.unescape(http.get(done.headers["location"]).text))
    typo_form, typo_page = shown["typo"]
    right_form, right_page = shown["right"]
    assert "it mutes 0 firing alerts now" in typo_page
    assert "check the matchers" in typo_page
    assert "it mutes 1 firing alert now" in right_page
    assert "data-caught" not in typo_form
    assert "data-caught" in right_form and "checkout down" in right_form


def test_a_silence_made_while_every_read_thread_is_busy_is_made_and_says_so_uncounted(
    hub_factory,
):
    """The count reads every firing alert, in a read thread; with none free it is left
    out, rather than the silence's maker getting a 503 for a silence that was made."""
    text = CONSOLE_CONFIG.replace("port = {port}\n", "port = {port}\nread_concurrency = 1\n")
    hub = hub_factory(text, mail_url=mail_url(free_port()), max_attempts=1)
    fire(hub.url, "checkout down")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        release.wait(WAIT_SECONDS)

    holder = threading.Thread(target=hub.run, args=(hub.runtime.store.read_aside(hold),))
    with hub.client() as http:
        sign_in(http, "write-token")
        form = http.get("/silences/new").text
        holder.start()
        try:
            assert held.wait(WAIT_SECONDS)
            done = http.post(
                "/silences",
                data={
                    "_csrf": csrf_in(form),
                    "matchers": 'service="checkout"',
                    "duration": "1h",
                    "comment": "deploy",
                },
            )
        finally:
            release.set()
            holder.join()
        assert done.status_code == 303
        assert "mutes=" not in done.headers["location"]
        page = html.unescape(http.get(done.headers["location"]).text)
        made = http.get("/api/v1/silences", headers=WRITER).json()
    assert "The silence is in force." in page and "it mutes" not in page
    assert [silence["matchers"] for silence in made] == [['service="checkout"']]


STATIC_SILENCE = """
[[silences]]
matchers = ['env="staging"']
comment = "staging never pages"
"""


def test_a_silence_is_edited_in_place_from_the_list(hub_factory):
    """The list's Edit opens the form filled in (duration from its start); saving keeps
    the id; a refused edit shows what was typed and changes nothing; static and expired
    silences have no Edit, and their edit address is refused."""
    hub = hub_factory(CONSOLE_CONFIG + STATIC_SILENCE, mail_url=mail_url(free_port()))
    with hub.client(headers=WRITER) as api:
        body = {"matchers": ['service="checkout"'], "duration": "2h", "comment": "deploy"}
        made = api.post("/api/v1/silences", json=body).json()
        gone = api.post("/api/v1/silences", json=body).json()
        assert api.delete(f"/api/v1/silences/{gone['id']}").status_code == 200
        [static] = [s for s in api.get("/api/v1/silences").json() if s["static"]]
    edit = f"/silences/{made['id']}/edit"
    with hub.client() as http:
        sign_in(http, "write-token")
        listed = http.get("/silences").text
        form = html.unescape(http.get(edit).text)
        refused = http.post(edit, data={"_csrf": csrf_in(form), **body, "duration": "soon"})
        forged = http.post(edit, data={"_csrf": "forged", **body, "duration": "4h"})
        unchanged = http.get(f"/api/v1/silences/{made['id']}", headers=WRITER).json()
        sent = {"matchers": 'service="checkout"\nenv="prod"', "duration": "4h", "comment": "late"}
        saved = http.post(edit, data={"_csrf": csrf_in(form), **sent})
        shown = http.get(saved.headers["location"]).text
        others = [http.get(f"/silences/{s['id']}/edit") for s in (gone, static)]
        changed = http.get(f"/api/v1/silences/{made['id']}", headers=WRITER).json()
    assert f'href="{edit}"' in listed
    assert f"/silences/{gone['id']}/edit" not in listed
    assert f"/silences/{static['id']}/edit" not in listed
    assert f'action="{edit}"' in form and "Edit silence" in form
    assert '>service="checkout"</textarea>' in form and 'value="2h"' in form
    assert refused.status_code == 422
    assert "duration: expected a duration" in html.unescape(refused.text)
    assert 'value="soon"' in refused.text, "what was typed is shown again"
    assert forged.status_code == 403
    assert unchanged == made
    assert saved.status_code == 303
    assert saved.headers["location"] == "/silences?done=updated"
    assert "The silence is changed; it keeps its id." in shown
    assert [answer.status_code for answer in others] == [409, 409]
    assert "has already expired" in others[0].text
    assert "comes from the config file" in others[1].text
    assert changed["id"] == made["id"] and changed["created_by"] == "will"
    assert changed["matchers"] == ['service="checkout"', 'env="prod"']
    assert (changed["comment"], changed["updated_by"]) == ("late", "will")
    lasts = datetime.fromisoformat(changed["ends_at"]) - datetime.fromisoformat(made["starts_at"])
    assert lasts == timedelta(hours=4), "from its start, as the form says"


def test_a_reader_sees_no_edit_and_cannot_post_one(hub_factory):
    hub = start(hub_factory)
    body = {"matchers": ['service="checkout"'], "duration": "2h", "comment": "deploy"}
    made = httpx.post(
        f"{hub.url}/api/v1/silences", json=body, headers=WRITER, verify=TLS_CONTEXT
    ).json()
    edit = f"/silences/{made['id']}/edit"
    with hub.client() as http:
        sign_in(http, "read-token")
        listed = http.get("/silences").text
        form = http.get(edit).text
        refused = http.post(edit, data={"_csrf": csrf_in(form), **body, "duration": "4h"})
        after = http.get(f"/api/v1/silences/{made['id']}", headers=WRITER).json()
    assert edit not in listed
    assert "Your role cannot change silences." in form
    assert refused.status_code == 403
    assert after == made
