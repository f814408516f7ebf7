"""Silences over HTTP: created, listed by state, expired early; bad ones store nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from conftest import BASE_CONFIG, MovedClock, mail_url, render_config
from test_access import CREDENTIALS, WITH_TOKENS

from hub import config
from hub import store as store_module
from hub.app import Runtime
from hub.silences import Silence

TOKENS = """
[api]
tokens = [
  {{ name = "rita", token = "read-token", role = "read" }},
  {{ name = "will", token = "write-token", role = "write" }},
]

[[silences]]
matchers = ['env="staging"']
comment = "staging never pages"
"""
WRITER = {"Authorization": "Bearer write-token"}
DEPLOY = {"matchers": ['service="checkout"'], "duration": "1h", "comment": "deploy 4.2"}


@pytest.fixture
def hub(hub_factory, smtp):
    return hub_factory(BASE_CONFIG + TOKENS, mail_url=mail_url(smtp[1]))


def listed(http, state: str) -> list[str]:
    answer = http.get("/api/v1/silences", params={"state": state})
    assert answer.status_code == 200
    return [s["id"] for s in answer.json()]


def stored_silences(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM silences").fetchone()[0]


def test_a_silence_is_created_listed_as_active_expired_and_listed_as_expired(hub):
    with hub.client(headers=WRITER) as http:
        created = http.post("/api/v1/silences", json=DEPLOY)
        assert created.status_code == 201
        silence = created.json()
        assert silence["matchers"] == ['service="checkout"']
        assert silence["created_by"] == "will", "the token's name is the default author"
        assert silence["state"] == "active" and silence["static"] is False
        assert listed(http, "active")[0] == silence["id"]
        assert silence["id"] not in listed(http, "expired")
        assert http.get(f"/api/v1/silences/{silence['id']}").json() == silence

        expired = http.delete(f"/api/v1/silences/{silence['id']}")
        assert expired.status_code == 200
        assert expired.json()["state"] == "expired"
        assert silence["id"] in listed(http, "expired")
        assert silence["id"] not in listed(http, "active")

        again = http.delete(f"/api/v1/silences/{silence['id']}")
        assert again.status_code == 409
        assert "already expired" in again.json()["detail"]


def test_a_silence_starting_later_is_pending(hub):
    starts = datetime.now(UTC) + timedelta(hours=2)
    body = {**DEPLOY, "starts_at": starts.isoformat(), "duration": "30m"}
    with hub.client(headers=WRITER) as http:
        created = http.post("/api/v1/silences", json=body).json()
        assert created["state"] == "pending"
        assert listed(http, "pending") == [created["id"]]


def test_a_silence_may_name_its_own_token_as_author(hub):
    with hub.client(headers=WRITER) as http:
        created = http.post("/api/v1/silences", json={**DEPLOY, "created_by": "will"})
        assert created.status_code == 201
        assert created.json()["created_by"] == "will"
        assert http.get("/api/v1/silences").json()[0]["created_by"] == "will"


def test_a_silence_naming_someone_else_as_author_is_refused_and_stores_nothing(hub, tmp_path):
    with hub.client(headers=WRITER) as http:
        refused = http.post("/api/v1/silences", json={**DEPLOY, "created_by": "ana"})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    detail = refused.json()["detail"]
    assert '"ana"' in detail and '"will"' in detail, detail
    assert stored_silences(tmp_path / "hub.db") == 0


def test_a_token_that_speaks_for_others_records_whom_it_names_beside_itself(hub_factory, smtp):
    """A chat bot's or a dashboard's one token names the person it acts for: the silence
    is theirs, made via the token, and so is a change naming someone; with no name the
    token is the author, as for any token, and a blank name or one on two lines stores
    nothing."""
    hub = hub_factory(WITH_TOKENS, mail_url=mail_url(smtp[1]))
    with hub.client(headers=CREDENTIALS["grafana"]) as http:
        for_ana = http.post("/api/v1/silences", json={**DEPLOY, "created_by": "ana"}).json()
        own = http.post("/api/v1/silences", json=DEPLOY).json()
        blank = http.post("/api/v1/silences", json={**DEPLOY, "created_by": " "})
        two_lines = http.post("/api/v1/silences", json={**DEPLOY, "created_by": "ana\nroot"})
        path = f"/api/v1/silences/{for_ana['id']}"
        by_bo = http.put(path, json={**DEPLOY, "created_by": "bo", "comment": "longer"}).json()
    assert (for_ana["created_by"], for_ana["created_via"]) == ("ana", "grafana")
    assert (own["created_by"], own["created_via"]) == ("grafana", None)
    assert (blank.status_code, blank.json()["field"]) == (422, "$.created_by")
    assert (two_lines.status_code, two_lines.json()["field"]) == (422, "$.created_by")
    assert (by_bo["created_by"], by_bo["created_via"]) == ("ana", "grafana")
    assert (by_bo["updated_by"], by_bo["updated_via"]) == ("bo", "grafana")
    assert silence_row(hub, for_ana["id"]) == ("ana", "grafana", "bo", "grafana")
    assert silence_row(hub, own["id"]) == ("grafana", None, None, None)


def silence_row(hub, silence_id: str) -> tuple:
    """Who made and last changed a silence, and through which token, as stored."""
    with sqlite3.connect(hub.config_path.parent / "hub.db") as conn:
        query = "SELECT created_by, created_via, updated_by, updated_via FROM silences WHERE id = ?"
        return conn.execute(query, (silence_id,)).fetchone()


def test_config_silences_are_listed_as_static_and_cannot_be_deleted(hub):
    with hub.client(headers=WRITER) as http:
        static = [s for s in http.get("/api/v1/silences").json() if s["static"]]
        assert [s["matchers"] for s in static] == [['env="staging"']]
        refused = http.delete(f"/api/v1/silences/{static[0]['id']}")
        assert refused.status_code == 409
        assert "config file" in refused.json()["detail"]
        assert http.delete("/api/v1/silences/no-such-id").status_code == 404
        one = http.get(f"/api/v1/silences/{static[0]['id']}").json()
        assert one == static[0]
        unknown = http.get("/api/v1/silences/no-such-id")
        assert unknown.status_code == 404
        assert unknown.json()["detail"] == "no silence with id no-such-id"


def test_the_list_keeps_the_silences_having_each_matcher_asked_for(hub):
    """amtool's rule for ``silence query``: a silence is listed when each matcher asked
    for is one of its own (label, operator and value), not when it would mute such an
    alert: ``service=~".+"`` mutes checkout alerts and is not listed for them."""
    bodies = [
        {**DEPLOY, "matchers": ['service="checkout"', 'env="prod"']},
        {**DEPLOY, "matchers": ["service=checkout"]},
        {**DEPLOY, "matchers": ['service=~".+"']},
        {**DEPLOY, "matchers": ['service!="checkout"', 'env="dev"']},
    ]
    with hub.client(headers=WRITER) as http:
        both, bare, wide, _ = [http.post("/api/v1/silences", json=b).json()["id"] for b in bodies]

        def having(*wanted: str) -> list[str]:
            answer = http.get("/api/v1/silences", params={"matcher": list(wanted)})
            assert answer.status_code == 200
            return [s["id"] for s in answer.json()]

        assert having('service="checkout"') == [bare, both], "newest first, quoting aside"
        assert having("service=checkout", 'env="prod"') == [both]
        assert having('{service="checkout", env="prod"}') == [both]
        assert having('service=~".+"') == [wide]
        static = http.get("/api/v1/silences").json()[-1]
        assert having('env="staging"') == [static["id"]], "the config's too"
        assert having('team="db"') == []
        bad = http.get("/api/v1/silences", params={"matcher": 'service=~"("'})
    assert bad.status_code == 400
    assert "'matcher'" in bad.json()["detail"] and "bad regular expression" in bad.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field", "detail_has"),
    [
        ({"matchers": []}, "$.matchers", "at least one matcher"),
        ({"matchers": ['env=~".*"']}, "$.matchers", "mute every alert"),
        ({"matchers": ['service=~"("']}, "$.matchers[0]", "bad regular expression"),
        (
            {
                "starts_at": "2099-01-01T02:00:00Z",
                "ends_at": "2099-01-01T01:00:00Z",
                "duration": None,
            },
            "$.ends_at",
            "must be after starts_at",
        ),
        ({"ends_at": "2001-01-01T00:00:00Z", "duration": None}, "$.ends_at", "in the future"),
        ({"duration": None}, "$.ends_at", "give ends_at or duration"),
        ({"duration": "soon"}, "$.duration", "expected a duration"),
        ({"duration": "0s"}, "$.duration", "duration: must be positive, got '0s'"),
        ({"duration": "99999999999w"}, "$.duration", "ends after the year 9999"),
        (
            {"starts_at": "9999-12-31T23:00:00Z", "duration": "2h"},
            "$.duration",
            "ends after the year 9999",
        ),
        (
            {
                "starts_at": "0001-01-01T00:00:00+01:00",
                "ends_at": "2099-01-01T00:00:00Z",
                "duration": None,
            },
            "$.starts_at",
            "0001-01-01T00:00:00+01:00 is not between",
        ),
        (
            {"ends_at": "9999-12-31T23:59:59-05:00", "duration": None},
            "$.ends_at",
            "9999-12-31T23:59:59-05:00 is not between",
        ),
        ({"comment": " "}, "$.comment", "say why"),
        ({"comment": None}, "$.comment", "Object missing required field `comment`"),
        ({"matchers": "service=checkout"}, "$.matchers", "Expected `array`"),
    ],
    ids=[
        "no-matchers",
        "matches-everything",
        "bad-regex",
        "end-before-start",
        "end-in-the-past",
        "no-end",
        "bad-duration",
        "no-duration",
        "duration-past-9999",
        "end-past-9999",
        "start-before-year-1-in-utc",
        "end-after-9999-in-utc",
        "no-comment",
        "comment-missing",
        "matchers-not-a-list",
    ],
)
def test_a_bad_silence_gets_422_naming_the_field_and_stores_nothing(
    hub, tmp_path, change, field, detail_has
):
    body = {key: value for key, value in {**DEPLOY, **change}.items() if value is not None}
    with hub.client(headers=WRITER) as http:
        answer = http.post("/api/v1/silences", json=body)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == field
    assert detail_has in answer.json()["detail"]
    assert stored_silences(tmp_path / "hub.db") == 0


def static_silences(http) -> list[dict]:
    return [s for s in http.get("/api/v1/silences").json() if s["static"]]


def test_a_static_silence_was_created_when_the_hub_first_loaded_it(hub_factory, smtp):
    """Its ``created_at`` was the time of each request; a reload keeps it for a silence
    the new file still holds, and dates one it adds."""
    clock = MovedClock()
    admin = '  {{ name = "ada", token = "admin-token", role = "admin" }},\n]'
    hub = hub_factory(
        BASE_CONFIG + TOKENS.replace("\n]", "\n" + admin, 1),
        clock=clock,
        mail_url=mail_url(smtp[1]),
    )
    with hub.client(headers={"Authorization": "Bearer admin-token"}) as http:
        [loaded] = static_silences(http)
        clock.advance(60)
        assert static_silences(http) == [loaded]
        assert http.get(f"/api/v1/silences/{loaded['id']}").json() == loaded
        added = '\n[[silences]]\nmatchers = [\'env="dev"\']\ncomment = "dev never pages"\n'
        hub.config_path.write_text(hub.config_path.read_text() + added)
        assert http.post("/-/reload").status_code == 200
        kept, new = static_silences(http)
    assert kept == loaded
    assert new["matchers"] == ['env="dev"']
    waited = datetime.fromisoformat(new["created_at"]) - datetime.fromisoformat(
        loaded["created_at"]
    )
    assert waited >= timedelta(seconds=60)


def test_the_store_hands_the_mute_stage_only_the_silences_in_force(tmp_path):
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    hour = timedelta(hours=1)
    spans = {"past": (-2, -1), "now": (-1, 1), "later": (1, 2)}
    with store_module.opened(str(tmp_path / "hub.db")) as store:
        for name, (start, end) in spans.items():
            silence = Silence(
                id=name,
                matchers=['service="checkout"'],
                starts_at=now + start * hour,
                ends_at=now + end * hour,
                created_by="ana",
                created_at=now,
            )
            asyncio.run(store.write(lambda tx, s=silence: tx.insert_silence(s)))
        active = store.active_silences(now)
        assert [s.id for s in active] == ["now"]
        assert active[0].ends_at == now + hour
        assert {s.id for s in store.silences()} == set(spans)


def test_the_runtime_merges_static_silences_in_force_with_the_stores(tmp_path):
    now = datetime.now(UTC)
    text = render_config(
        BASE_CONFIG + TOKENS,
        port=1,
        db=(tmp_path / "hub.db").as_posix(),
        mail_url=mail_url(25),
        max_attempts=1,
    )
    ended = (now - timedelta(hours=1)).isoformat()
    text += f"\n[[silences]]\nmatchers = ['env=\"dev\"']\nends_at = {ended}\n"
    runtime = Runtime(config.parse(text, {}))
    runtime.store.open()
    try:
        api_silence = Silence(
            id="api",
            matchers=['service="x"'],
            starts_at=now,
            ends_at=now + timedelta(hours=1),
            created_by="will",
            created_at=now,
        )
        asyncio.run(runtime.store.write(lambda tx: tx.insert_silence(api_silence)))
        merged = runtime.active_silences(now)
    finally:
        runtime.store.close()
    assert [s.matchers for s in merged] == [['env="staging"'], ['service="x"']]
