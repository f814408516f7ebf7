"""Paging the API's lists: every page a JSON array, a ``Link: rel="next"`` while rows
remain, keyset cursors in each list's order. A walk returns every row once, in order,
filters kept, whatever is written while it walks."""

from __future__ import annotations

import base64
import itertools
import json
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from conftest import AUTH, BASE_CONFIG, mail_url, wait_for

from hub import api, api_incidents, paging
from hub.store import Store, opened

LISTS = ("/api/v1/alerts", "/api/v1/incidents", "/api/v1/events", "/api/v1/notifications")
EACH_ALERT_ITS_INCIDENT = BASE_CONFIG + 'group_by = ["..."]\n'


@pytest.fixture
def hub(hub_factory, smtp):
    return hub_factory(EACH_ALERT_ITS_INCIDENT, mail_url=mail_url(smtp[1]))


def post(http: httpx.Client, *events: dict) -> None:
    answer = http.post("/webhooks/shop", json=list(events), headers=AUTH)
    assert answer.status_code == 202, answer.text


def firing(n: int, **labels: str) -> dict:
    """A firing event of its own alert (and, grouped by all labels, its own incident)."""
    return {"status": "firing", "summary": f"alert {n}", "labels": {"n": str(n), **labels}}


def walk(
    http: httpx.Client, path: str, params: dict, between: Callable[[], None] = lambda: None
) -> list[httpx.Response]:
    """Every page from the first, following each Link rel="next" as given, calling
    ``between`` before each next page is asked for."""
    pages = [http.get(path, params=params)]
    while "next" in pages[-1].links:
        assert pages[-1].status_code == 200, pages[-1].text
        between()
        pages.append(http.get(pages[-1].links["next"]["url"]))
    assert pages[-1].status_code == 200, pages[-1].text
    return pages


def ids(pages: list[httpx.Response]) -> list[int]:
    return [row["id"] for page in pages for row in page.json()]


def everything(http: httpx.Client, path: str, params: dict) -> list[int]:
    answer = http.get(path, params={**params, "limit": 1000})
    assert "link" not in answer.headers
    return [row["id"] for row in answer.json()]


def test_walking_the_alerts_returns_each_once_in_order_with_the_filters_kept(hub):
    """One batch stores its alerts with the same last_change: the id breaks the tie."""
    with hub.client() as http:
        post(http, *(firing(n) for n in range(5)))
        post(http, *(firing(n, team="db") for n in range(5, 8)))
        post(http, *({**firing(n), "status": "resolved"} for n in range(8, 11)))
        expected = everything(http, "/api/v1/alerts", {"status": "firing"})
        pages = walk(http, "/api/v1/alerts", {"status": "firing", "limit": 4})
    assert len(expected) == 8
    assert ids(pages) == expected
    assert [len(page.json()) for page in pages] == [4, 4]
    assert "link" not in pages[-1].headers, "a last page that is full has no next link"
    link = urllib.parse.urlsplit(pages[0].links["next"]["url"])
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{hub.url}/api/v1/alerts"
    query = urllib.parse.parse_qs(link.query)
    assert (query["status"], query["limit"], len(query["cursor"])) == (["firing"], ["4"], 1)
    assert all(row["status"] == "firing" for page in pages for row in page.json())


@pytest.mark.parametrize("path", ["/api/v1/alerts", "/api/v1/incidents"])
def test_a_walk_filtered_by_labels_returns_each_match_once_in_order(hub, path):
    """Matchers are applied after the query: a page is filled from as many rows as it
    takes, and resumes after the last row it showed."""
    teams = ["a", "b", "b", "a", "a", "b", "a", "b", "b", "b", "a", "a", "b", "a", "a", "a"]
    with hub.client() as http:
        post(http, *(firing(n, team=team) for n, team in enumerate(teams)))
        expected = everything(http, path, {"label": 'team="a"'})
        pages = walk(http, path, {"label": 'team="a"', "limit": 3})
    assert len(expected) == teams.count("a") == 9
    assert ids(pages) == expected
    assert [len(page.json()) for page in pages] == [3, 3, 3]
    assert "link" not in pages[-1].headers


@pytest.mark.parametrize("path", LISTS)
def test_rows_written_between_pages_are_neither_repeated_nor_make_a_row_skipped(hub, path):
    """Each page adds a delivery, an alert, an incident and a notification, newer than
    any row walked: with an offset, every one of them would push a row seen already
    into the next page."""
    made = itertools.count(100)
    with hub.client() as http:
        for n in range(7):
            post(http, firing(n))
        wait_for(lambda: len(http.get("/api/v1/notifications").json()) == 7)
        expected = everything(http, path, {})
        pages = walk(http, path, {"limit": 2}, between=lambda: post(http, firing(next(made))))
    assert len(expected) == 7
    assert ids(pages) == expected
    assert len(pages) == 4


def test_a_walk_of_all_alerts_interleaves_firing_and_resolved_in_order(hub):
    """All alerts are read a status at a time and merged: one batch's alerts share
    their last_change, so ids must break the tie across statuses too."""
    with hub.client() as http:
        post(http, *({**firing(n), "status": "resolved"} if n % 2 else firing(n) for n in range(6)))
        post(http, firing(6), {**firing(7), "status": "resolved"})
        pages = walk(http, "/api/v1/alerts", {"limit": 3})
    rows = [row for page in pages for row in page.json()]
    order = sorted(rows, key=lambda row: (datetime.fromisoformat(row["last_change"]), row["id"]))
    assert ids(pages) == [row["id"] for row in reversed(order)]
    assert {row["status"] for row in rows} == {"firing", "resolved"}
    assert len(rows) == 8


def test_an_older_row_written_while_walking_is_met_once_where_it_sorts(hub):
    """An alert whose event happened long ago sorts after the rows not yet walked."""
    with hub.client() as http:
        post(http, *(firing(n) for n in range(6)))
        expected = everything(http, "/api/v1/alerts", {})
        old = {**firing(99), "occurred_at": "2020-01-01T00:00:00Z"}
        pages = walk(http, "/api/v1/alerts", {"limit": 4}, between=lambda: post(http, old))
        late = http.get("/api/v1/alerts", params={"label": 'n="99"'}).json()
    assert ids(pages) == [*expected, late[0]["id"]]


WITH_A_WRITER = (
    EACH_ALERT_ITS_INCIDENT
    + '[api]\ntokens = [{{ name = "dana", token = "write-token", role = "write" }}]\n'
)


def test_an_incident_changed_ahead_of_the_walk_is_missed_and_since_finds_it(hub_factory, smtp):
    """The README's catch-up: an incident changed while a walk is under way moves ahead
    of the pages read, so the walk never meets it; ``since`` the newest ``updated_at``
    of the first page lists it, as it is now."""
    hub = hub_factory(WITH_A_WRITER, mail_url=mail_url(smtp[1]))
    with hub.client(headers={"Authorization": "Bearer write-token"}) as http:
        for n in range(6):
            post(http, firing(n))
        oldest = everything(http, "/api/v1/incidents", {})[-1]
        acks = iter([f"/api/v1/incidents/{oldest}/ack"])

        def acknowledge_once() -> None:
            for path in acks:
                http.post(path, json={"comment": "on it"}).raise_for_status()

        pages = walk(http, "/api/v1/incidents", {"limit": 2}, between=acknowledge_once)
        newest = pages[0].json()[0]["updated_at"]
        changed = http.get("/api/v1/incidents", params={"since": newest}).json()
    assert len(ids(pages)) == 5 and oldest not in ids(pages)
    assert [row["status"] for row in changed if row["id"] == oldest] == ["acknowledged"]


def test_an_alert_changed_ahead_of_the_walk_is_missed_and_since_finds_it(hub):
    """The same catch-up for alerts: one that resolves during a walk moves ahead of the
    pages read; ``since`` the newest ``last_change`` of the first page lists it, resolved,
    and only what changed from then on."""
    with hub.client() as http:
        for n in range(6):
            post(http, firing(n))
        oldest = everything(http, "/api/v1/alerts", {})[-1]
        resolves = iter([{**firing(0), "status": "resolved"}])

        def resolve_once() -> None:
            for event in resolves:
                post(http, event)

        pages = walk(http, "/api/v1/alerts", {"limit": 2}, between=resolve_once)
        newest = pages[0].json()[0]["last_change"]
        changed = http.get("/api/v1/alerts", params={"since": newest})
        bad = http.get("/api/v1/alerts", params={"since": "yesterday"})
    assert len(ids(pages)) == 5 and oldest not in ids(pages)
    assert changed.status_code == 200
    assert [(row["id"], row["status"]) for row in changed.json()] == [
        (oldest, "resolved"),
        (ids(pages)[0], "firing"),
    ]
    assert bad.status_code == 400
    assert bad.json()["detail"] == (
        "invalid query parameter 'since': expected an RFC 3339 time, got 'yesterday'"
    )


def cursor_of(listing: str, *key: object) -> str:
    raw = json.dumps([listing, *key]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    "cursor",
    ["not a cursor", "", "WyJhbGVydHMiXQ", cursor_of("silences", 1)],
    ids=["garbage", "empty", "no-key", "other-list"],
)
def test_a_cursor_hub_did_not_give_out_is_a_400_naming_it(hub, path, cursor):
    listing = path.rsplit("/", 1)[1]
    with hub.client() as http:
        post(http, firing(1))
        answer = http.get(path, params={"cursor": cursor})
        listed = http.get(path)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["detail"] == (
        f"invalid query parameter 'cursor': not a cursor of the {listing} list;"
        ' follow the Link rel="next" URL of a previous page as given'
    )
    assert listed.status_code == 200


def test_a_cursor_of_another_list_or_past_sqlites_ids_is_a_400_not_a_500(hub):
    with hub.client() as http:
        post(http, firing(1), firing(2))
        incidents = http.get("/api/v1/incidents", params={"limit": 1}).links["next"]["url"]
        foreign = urllib.parse.parse_qs(urllib.parse.urlsplit(incidents).query)["cursor"][0]
        answers = [
            http.get("/api/v1/alerts", params={"cursor": foreign}),
            http.get("/api/v1/alerts", params={"cursor": cursor_of("alerts", 1.5, 2**63)}),
            http.get("/api/v1/events", params={"cursor": cursor_of("events", -1)}),
            http.get("/api/v1/notifications", params={"cursor": cursor_of("notifications", 1.5)}),
        ]
    assert [answer.status_code for answer in answers] == [400] * 4
    assert all("'cursor'" in answer.json()["detail"] for answer in answers)


def test_a_cursor_given_twice_is_a_400_naming_it(hub):
    with hub.client() as http:
        post(http, firing(1), firing(2))
        first = http.get("/api/v1/alerts", params={"limit": 1})
        cursor = urllib.parse.parse_qs(urllib.parse.urlsplit(first.links["next"]["url"]).query)
        twice = http.get("/api/v1/alerts", params=[("cursor", cursor["cursor"][0])] * 2)
    assert twice.status_code == 400
    assert twice.json()["detail"].startswith("query parameter 'cursor' given more than once")


def test_the_next_link_is_on_public_url_when_it_is_set(hub_factory, smtp):
    config = BASE_CONFIG.replace("[storage]", 'public_url = "https://hub.example"\n[storage]')
    hub = hub_factory(config, mail_url=mail_url(smtp[1]))
    with hub.client() as http:
        post(http, firing(1), firing(2))
        link = http.get("/api/v1/alerts", params={"limit": 1}).links["next"]["url"]
    assert link.startswith("https://hub.example/api/v1/alerts?limit=1&cursor=")


# -- a filtered page's scan limit: the pager alone, over rows made here ---------------

ROWS = [{"id": n} for n in range(250_000, 0, -1)]


def read(n: int, after: tuple | None) -> itertools.islice:
    """Up to n of ROWS after a position, newest first: the store's keyset read, in memory."""
    return itertools.islice((row for row in ROWS if after is None or row["id"] < after[0]), n)


def walk_pager(keep: Callable[[dict], bool], limit: int) -> list[paging.Page]:
    listing = paging.Listing("events", ("id",))
    pages = [listing.page(read, None, limit, keep)]
    while pages[-1].next is not None:
        pages.append(listing.page(read, pages[-1].next, limit, keep))
    return pages


def test_a_filtered_page_stops_after_its_scan_limit_and_the_next_resumes_after_it():
    """Matchers that select few rows of many must not read the whole store for one page:
    a page reads at most SCAN_MAX rows, and its next link resumes after the last read."""
    pages = walk_pager(lambda row: row["id"] % 50_000 == 0, limit=10)
    assert [[row["id"] for row in page.rows] for page in pages] == [
        [250_000, 200_000],
        [150_000, 100_000],
        [50_000],
    ]
    assert pages[0].next is not None
    assert paging.Listing("events", ("id",)).position(pages[0].next) == (150_001,)


def test_pages_of_a_rare_match_may_be_empty_but_still_lead_to_it():
    pages = walk_pager(lambda row: row["id"] == 1, limit=10)
    assert [page.rows for page in pages] == [[], [], [{"id": 1}]]


ALERT_FILTERS = ("status", "severity", "source")
ALERT_VALUES = {"status": "firing", "severity": "critical", "source": "shop"}
RESOLVED_CRITICAL = {"status": "resolved", "severity": "critical"}
NOTIFICATION_VALUES = {"incident_id": 1, "receiver": "ops", "state": "sent"}


def subsets(values: dict[str, object]) -> list[dict[str, object]]:
    names = list(values)
    return [
        {name: values[name] for name in chosen}
        for size in range(len(names) + 1)
        for chosen in itertools.combinations(names, size)
    ]


def listing_queries(store: Store) -> Iterable[tuple[str, Callable[[], object]]]:
    """Every filter each list offers, on a first page and a later one, as the API asks."""
    since = datetime.fromisoformat("2025-01-01T00:00:00+00:00")
    for after in (None, (1.7e9, 10)):
        for given in [*subsets(ALERT_VALUES), {"status": "resolved"}, RESOLVED_CRITICAL]:
            where, params = api.equalities(given)
            yield (
                f"alerts {given} {after}",
                lambda w=where, p=params, a=after: list(store.alerts(w, p, 101, a)),
            )
        for given in subsets({"status": "resolved", "severity": "warning", "since": since}):
            cursor = (
                None
                if after is None
                else api_incidents.INCIDENTS.cursor({"updated_at": after[0], "id": after[1]})
            )
            yield (
                f"incidents {given} {after}",
                lambda g=given, c=cursor: api_incidents.find(store, [], limit=100, cursor=c, **g),
            )
        for given in subsets(NOTIFICATION_VALUES):
            position = None if after is None else after[1:]
            yield (
                f"notifications {given} {after}",
                lambda g=given, p=position: store.notifications(g, 101, p),
            )
        for source in (None, "shop"):
            position = None if after is None else after[1:]
            yield (
                f"deliveries {source} {after}",
                lambda s=source, p=position: store.deliveries(s, 101, p),
            )


def test_every_list_reads_in_the_order_of_an_index_without_sorting(tmp_path: Path):
    """A page must cost the same with a million rows as with a thousand: each list's
    query, for every filter it offers, reads an index in its order and stops at the
    page's end. A sort ("USE TEMP B-TREE FOR ORDER BY") reads every matching row: only
    the firing alerts are sorted (as many as fire at once), the resolved ones, nearly
    all of a big store's, are read through their own index."""
    path = (tmp_path / "hub.db").as_posix()
    issued: list[str] = []
    with opened(path) as store, sqlite3.connect(path) as planner:
        store._reader.set_trace_callback(issued.append)  # the SQL with its values bound
        for name, run in listing_queries(store):
            issued.clear()
            run()
            [sql] = [text for text in issued if "ORDER BY" in text]
            plan = [row[3] for row in planner.execute(f"EXPLAIN QUERY PLAN {sql}")]
            sorts = [step for step in plan if "TEMP B-TREE" in step]
            if name.startswith("alerts"):
                resolved = "'firing'" not in name
                assert len(sorts) == ("'resolved'" not in name), (name, plan)
                assert resolved == any("alerts_resolved_changed" in s for s in plan), (name, plan)
                continue
            assert not sorts, (name, plan)
            reads = [step for step in plan if step.startswith(("SCAN", "SEARCH"))]
            by_time = name.startswith(("alerts", "incidents"))
            assert reads and all("INDEX" in step for step in reads if by_time), (name, plan)
