"""Listing only what is muted, or only what is not: an on-call engineer at night asks
for what fires and nothing holds back. Mutes are worked out per request, never stored,
so the filter must still page as the lists page: full pages while matching rows remain.

The scene has a silence, an inhibition and a snooze in play. A snooze is an
acknowledgement that lapses, not a mute: a snoozed incident is muted only when a mute
holds its firing alerts, as for any other."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from conftest import AUTH, free_port, mail_url
from console_support import CONSOLE_CONFIG, fire, sign_in

INHIBITION = """
[[inhibit_rules]]
source_matchers = ['kind="outage"']
target_matchers = ['kind="symptom"']
equal = ["dc"]
"""
WRITER = {"Authorization": "Bearer write-token"}
READER = {"Authorization": "Bearer read-token"}


def start(hub_factory):
    return hub_factory(CONSOLE_CONFIG + INHIBITION, mail_url=mail_url(free_port()), max_attempts=1)


def silence(http: httpx.Client, *matchers: str) -> None:
    body = {"matchers": list(matchers), "duration": "1h", "comment": "staging is noisy"}
    assert http.post("/api/v1/silences", json=body, headers=WRITER).status_code == 201


@pytest.fixture
def scene(hub_factory):
    """Incidents (grouped by service), each named by its service:

    - checkout: two alerts, the staging one silenced: not muted, one firing alert is heard
    - test: its one alert silenced: muted
    - network: an outage, the source of an inhibition: not muted
    - web: a symptom of that outage, inhibited: muted
    - db: snoozed, nothing mutes its alert: acknowledged, not muted
    - cache: snoozed and silenced: acknowledged and muted
    - old: resolved: not muted
    """
    hub = start(hub_factory)
    fire(hub.url, "checkout down in prod", env="prod")
    fire(hub.url, "checkout down in staging", env="staging")
    fire(hub.url, "test alert", service="test", env="staging")
    fire(hub.url, "east is down", service="network", kind="outage", dc="east")
    fire(hub.url, "web slow in east", service="web", kind="symptom", dc="east")
    fire(hub.url, "db replica lag", service="db")
    fire(hub.url, "cache misses", service="cache", env="staging")
    fire(hub.url, "old trouble", service="old")
    gone = {"status": "resolved", "summary": "old trouble", "labels": {"service": "old"}}
    with hub.client() as http:
        assert http.post("/webhooks/shop", json=gone, headers=AUTH).status_code == 202
        silence(http, 'env="staging"')
        ids = {row["labels"]["service"]: row["id"] for row in incidents(http)}
        for name in ("db", "cache"):
            body = {"duration": "4h", "comment": "after the deploy"}
            answer = http.post(f"/api/v1/incidents/{ids[name]}/snooze", json=body, headers=WRITER)
            assert answer.status_code == 200, answer.text
    hub.ids = ids
    return hub


def incidents(http: httpx.Client, **params: object) -> list[dict]:
    answer = http.get("/api/v1/incidents", params=params, headers=READER)
    assert answer.status_code == 200, answer.text
    return answer.json()


def services(rows: list[dict]) -> set[str]:
    return {row["labels"]["service"] for row in rows}


def test_the_incident_list_keeps_the_muted_ones_or_the_others(scene):
    with scene.client() as http:
        muted = incidents(http, muted="true")
        heard = incidents(http, muted="false")
        everything = incidents(http)
        open_heard = incidents(http, status="open", muted="false")
        acknowledged = {
            wanted: incidents(http, status="acknowledged", muted=wanted)
            for wanted in ("true", "false")
        }
    assert services(muted) == {"test", "web", "cache"}
    assert services(heard) == {"checkout", "network", "db", "old"}
    assert sorted(row["id"] for row in muted + heard) == sorted(row["id"] for row in everything)
    assert services(open_heard) == {"checkout", "network"}
    assert services(acknowledged["true"]) == {"cache"}, "snoozed, and silenced"
    assert services(acknowledged["false"]) == {"db"}, "a snooze alone is no mute"
    assert {row["snooze_reason"] for rows in acknowledged.values() for row in rows} == {"snooze"}


def test_the_alert_list_keeps_the_alerts_a_mute_holds_back_or_the_others(scene):
    with scene.client(headers=READER) as http:
        muted = http.get("/api/v1/alerts", params={"muted": "true"}).json()
        heard = http.get("/api/v1/alerts", params={"muted": "false"}).json()
        resolved_muted = http.get("/api/v1/alerts", params={"muted": "true", "status": "resolved"})
    reasons = {row["summary"]: [mute["reason"] for mute in row["mutes"]] for row in muted}
    assert reasons == {
        "checkout down in staging": ["silence"],
        "test alert": ["silence"],
        "web slow in east": ["inhibition"],
        "cache misses": ["silence"],
    }
    assert {row["summary"] for row in heard} == {
        "checkout down in prod",
        "east is down",
        "db replica lag",
        "old trouble",
    }
    assert all(row["mutes"] == [] for row in heard)
    assert resolved_muted.status_code == 200 and resolved_muted.json() == []


@pytest.mark.parametrize("path", ["/api/v1/alerts", "/api/v1/incidents"])
def test_a_muted_filter_that_is_not_true_or_false_is_refused_naming_it(scene, path):
    with scene.client(headers=READER) as http:
        answer = http.get(path, params={"muted": "unmuted"})
    assert answer.status_code == 400
    assert answer.json()["detail"] == (
        "invalid query parameter 'muted': expected true or false, got 'unmuted'"
    )


def walk(http: httpx.Client, path: str, params: dict) -> list[list[dict]]:
    """Every page from the first, following each Link rel="next" as given."""
    pages = [http.get(path, params=params)]
    while "next" in pages[-1].links:
        pages.append(http.get(pages[-1].links["next"]["url"]))
    assert all(page.status_code == 200 for page in pages), pages[-1].text
    return [page.json() for page in pages]


def services_down(count: int) -> list[dict]:
    """``count`` services down, every third in staging (which the tests silence)."""
    return [
        {
            "status": "firing",
            "summary": f"service {n} down",
            "labels": {"service": f"s{n}", "env": "staging" if n % 3 == 0 else "prod"},
        }
        for n in range(count)
    ]


def test_pages_of_a_muted_filter_are_full_while_matching_rows_remain(hub_factory):
    """Muted and heard incidents interleave in the list's order, so a filter applied to
    the rows a page read would leave pages short; the next link keeps the filter."""
    hub = start(hub_factory)
    events = services_down(14)
    with hub.client(headers=READER) as http:
        assert http.post("/webhooks/shop", json=events, headers=AUTH).status_code == 202
        silence(http, 'env="staging"')
        whole = [row["id"] for row in incidents(http)]
        muted = walk(http, "/api/v1/incidents", {"muted": "true", "limit": 2})
        heard = walk(http, "/api/v1/incidents", {"muted": "false", "limit": 4})
        alerts = walk(http, "/api/v1/alerts", {"muted": "false", "limit": 4})
    assert [len(page) for page in muted] == [2, 2, 1]
    assert [len(page) for page in heard] == [4, 4, 1]
    assert [len(page) for page in alerts] == [4, 4, 1]
    muted_ids = [row["id"] for page in muted for row in page]
    heard_ids = [row["id"] for page in heard for row in page]
    assert muted_ids == [i for i in whole if i not in heard_ids], "in order, each once"
    assert heard_ids == [i for i in whole if i not in muted_ids]
    staging = {f"service {n} down" for n in range(0, 14, 3)}
    assert {row["title"] for page in muted for row in page} == staging
    assert {row["labels"]["env"] for page in alerts for row in page} == {"prod"}


def rows(page: str) -> dict[int, str]:
    """The incident list's rows by incident id."""
    return {
        int(i): row for i, row in re.findall(r'<tr data-incident="(\d+)">(.*?)</tr>', page, re.S)
    }


def test_the_console_shows_only_what_is_not_muted_and_every_link_keeps_the_choice(scene):
    ids = scene.ids
    with scene.client() as http:
        sign_in(http, "read-token")
        heard = http.get("/", params={"muted": "false"}).text
        refreshed = http.get("/?muted=false", headers={"X-Console-Part": "live"}).text
        muted = http.get("/", params={"status": "acknowledged", "muted": "true"}).text
        everything = http.get("/").text
    assert set(rows(heard)) == {ids["checkout"], ids["network"]}
    marked = [i for i, row in rows(heard).items() if "st-muted" in row]
    assert not marked, "checkout's staging alert is silenced, its prod one is not"
    assert rows(refreshed).keys() == rows(heard).keys(), "the refresh asks the same URL"
    assert 'data-here="/?muted=false"' in heard
    assert ">Open (2)</a>" in heard and ">Acknowledged (1)</a>" in heard
    assert '<a href="/?status=acknowledged&amp;muted=false" class="">' in heard
    assert '<input type="hidden" name="muted" value="false">' in heard
    assert re.search(
        r'<a href="/\?status=open&amp;muted=false" class="current"[^>]*>Not muted', heard
    )
    assert set(rows(muted)) == {ids["cache"]}
    assert '<span class="badge st-muted">muted</span>' in rows(muted)[ids["cache"]]
    assert ">Open (2)</a>" in muted and ">Acknowledged (1)</a>" in muted
    assert set(rows(everything)) == {ids[name] for name in ("checkout", "test", "network", "web")}
    assert ">Open (4)</a>" in everything and ">Acknowledged (2)</a>" in everything


def test_the_console_says_which_muted_filters_there_are(scene):
    with scene.client() as http:
        sign_in(http, "read-token")
        answer = http.get("/", params={"muted": "unmuted"})
    assert answer.status_code == 400
    assert (
        "There is no muted filter &#39;unmuted&#39;: give false (not muted) or true (muted only),"
        " or none for all." in answer.text
    )
    assert not rows(answer.text)


def test_the_console_pages_a_muted_filter_across_its_hundred_rows(hub_factory):
    """More incidents not muted than a page shows, muted ones between them: the first
    page is full, its Older link keeps the filter, and the two pages hold each once."""
    hub = start(hub_factory)
    events = services_down(220)
    with hub.client() as http:
        assert http.post("/webhooks/shop", json=events, headers=AUTH).status_code == 202
        silence(http, 'env="staging"')
        sign_in(http, "read-token")
        first = http.get("/", params={"muted": "false"}).text
        older = re.search(r'<a href="(/\?[^"]*)" rel="next">Older</a>', first)
        assert older, first
        second = http.get(html.unescape(older.group(1))).text
        muted = http.get("/", params={"muted": "true"}).text
    assert "muted=false" in older.group(1)
    assert len(rows(first)) == 100 and len(rows(second)) == 46
    assert "Showing the 100 most recently changed of 146." in first
    assert not rows(first).keys() & rows(second).keys()
    assert not any("st-muted" in row for row in [*rows(first).values(), *rows(second).values()])
    assert '<a href="/?status=open&amp;muted=false">Newest</a>' in second
    assert len(rows(muted)) == 74 and 'rel="next"' not in muted
    assert all("st-muted" in row for row in rows(muted).values())
