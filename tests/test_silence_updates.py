"""Silences changed in place (``PUT /api/v1/silences/{id}``) on a real server with real
email: the id, the creator and the creation time stay and who changed it when is
recorded; a change that narrows or shortens a silence tells what it held back as
expiring does, one that widens it holds what it now catches; a refused change
(unknown, static, expired, invalid) changes no stored row."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from conftest import WAIT_SECONDS, MovedClock, wait_for
from notify_support import ADMIN, WRITER, fire, when
from test_silence_ends import AT_ONCE, DEPLOY, held_back, sent, silence, silenced_hub
from test_snooze import after_a_worker_round

STATIC = """
[[silences]]
matchers = ['env="staging"']
comment = "staging never pages"
"""


def change(http, silence_id: str, body: dict, headers: dict = ADMIN):
    return http.put(f"/api/v1/silences/{silence_id}", json=body, headers=headers)


def stored(hub) -> list[tuple]:
    """Every silence row as the store holds it."""
    with sqlite3.connect(hub.config_path.parent / "hub.db") as conn:
        return conn.execute("SELECT * FROM silences ORDER BY id").fetchall()


def stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def test_a_changed_silence_keeps_its_id_and_creator_and_says_who_changed_it(hub_factory, smtp):
    hub = silenced_hub(hub_factory, smtp)
    with hub.client(headers=WRITER) as http:
        made = silence(http, "2h")
        body = {"matchers": ['service="checkout"', 'env="prod"'], "duration": "4h"}
        answer = change(http, made["id"], {**body, "comment": "deploy 4.2 runs late"})
        assert answer.status_code == 200, answer.text
        changed = answer.json()
        assert http.get(f"/api/v1/silences/{made['id']}").json() == changed
        assert [s["id"] for s in http.get("/api/v1/silences").json()] == [made["id"]]
    assert changed["matchers"] == body["matchers"]
    assert changed["comment"] == "deploy 4.2 runs late"
    kept = ("id", "starts_at", "created_by", "created_at", "state")
    assert {key: changed[key] for key in kept} == {key: made[key] for key in kept}
    assert made["created_by"] == "will" and made["updated_by"] is None
    assert changed["updated_by"] == "ada"
    assert when(changed["updated_at"]) >= when(made["created_at"])
    assert when(changed["ends_at"]) - when(made["starts_at"]) == 4 * 3600, "from its start"


def test_a_pending_silence_changed_without_a_start_stays_pending(hub_factory, smtp):
    hub = silenced_hub(hub_factory, smtp)
    starts = datetime.now(UTC) + timedelta(hours=2)
    with hub.client(headers=WRITER) as http:
        later = {**DEPLOY, "starts_at": starts.isoformat(), "duration": "30m"}
        made = http.post("/api/v1/silences", json=later).json()
        answer = change(http, made["id"], {**DEPLOY, "duration": "1h"}, WRITER)
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "pending"
    assert answer.json()["starts_at"] == made["starts_at"]
    assert when(answer.json()["ends_at"]) == when(made["starts_at"]) + 3600


def test_narrowing_a_silence_tells_what_it_held_back_at_once(hub_factory, smtp):
    """Grouping would look again a group_interval (an hour) later."""
    mailbox, _ = smtp
    hub = silenced_hub(hub_factory, smtp)
    with hub.client(headers=WRITER) as http:
        made = silence(http, "2h")
        fire(http, "checkout down")
        wait_for(lambda: held_back(http) == 1.0)
        assert mailbox.messages == []
        narrowed = {**DEPLOY, "matchers": ['service="checkout"', 'env="staging"'], "duration": "2h"}
        answer = change(http, made["id"], narrowed)
        assert answer.status_code == 200, answer.text
        (note,) = wait_for(lambda: sent(http))
    changed_at = when(answer.json()["updated_at"])
    assert changed_at <= when(note["created_at"]) < changed_at + WAIT_SECONDS, AT_ONCE
    assert len(mailbox.messages) == 1
    assert "checkout down" in mailbox.messages[0]["Subject"]


def test_a_shortened_silence_tells_what_it_held_back_at_its_new_end(hub_factory, smtp):
    clock = MovedClock()
    hub = silenced_hub(hub_factory, smtp, clock=clock)
    with hub.client(headers=WRITER) as http:
        made = silence(http, "2h")
        fire(http, "checkout down")
        wait_for(lambda: held_back(http) == 1.0)
        shorter = {**DEPLOY, "ends_at": stamp(clock() + 600)}
        answer = change(http, made["id"], shorter)
        assert answer.status_code == 200, answer.text
        ends_at = when(answer.json()["ends_at"])
        clock.advance(599)  # a second before the new end, an hour and more before the old
        (note,) = wait_for(lambda: sent(http))
    assert ends_at <= when(note["created_at"]) < ends_at + WAIT_SECONDS, AT_ONCE


def test_a_widened_silence_holds_the_alerts_it_now_catches(hub_factory, smtp):
    mailbox, _ = smtp
    hub = silenced_hub(hub_factory, smtp)
    with hub.client(headers=WRITER) as http:
        made = silence(http, "2h", service="checkout", env="staging")
        assert change(http, made["id"], {**DEPLOY, "duration": "2h"}).status_code == 200
        fire(http, "checkout down", env="prod")
        wait_for(lambda: held_back(http) == 1.0)
        after_a_worker_round()
        assert sent(http) == []
    assert mailbox.messages == []


@pytest.mark.parametrize(
    ("body", "field", "detail_has"),
    [
        ({"matchers": []}, "$.matchers", "at least one matcher"),
        ({"matchers": ['env=~".*"']}, "$.matchers", "mute every alert"),
        ({"ends_at": "2001-01-01T00:00:00Z", "duration": None}, "$.ends_at", "in the future"),
        ({"duration": None}, "$.ends_at", "give ends_at or duration"),
        ({"duration": "0s"}, "$.duration", "must be positive"),
        ({"duration": "99999999999w"}, "$.duration", "ends after the year 9999"),
        (
            {"ends_at": "9999-12-31T23:59:59-05:00", "duration": None},
            "$.ends_at",
            "is not between",
        ),
        ({"comment": " "}, "$.comment", "say why"),
        ({"created_by": "ada"}, "$.created_by", 'created by "will"'),
        ({"colour": "red"}, "$.colour", "unknown field"),
    ],
    ids=[
        "no-matchers",
        "matches-everything",
        "end-in-the-past",
        "no-end",
        "no-duration",
        "duration-past-9999",
        "end-after-9999-in-utc",
        "no-comment",
        "another-creator",
        "unknown-field",
    ],
)
def test_a_bad_change_gets_422_naming_the_field_and_changes_nothing(
    hub_factory, smtp, body, field, detail_has
):
    hub = silenced_hub(hub_factory, smtp)
    with hub.client(headers=WRITER) as http:
        made = silence(http, "2h")
        before = stored(hub)
        wanted = {**DEPLOY, "duration": "1h", **body}
        answer = change(http, made["id"], {k: v for k, v in wanted.items() if v is not None})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == field
    assert detail_has in answer.json()["detail"]
    assert stored(hub) == before


def test_an_unknown_static_or_expired_silence_is_refused_and_nothing_changes(hub_factory, smtp):
    hub = silenced_hub(hub_factory, smtp, tables=STATIC)
    body = {**DEPLOY, "duration": "1h"}
    with hub.client(headers=WRITER) as http:
        [static] = [s for s in http.get("/api/v1/silences").json() if s["static"]]
        gone = silence(http, "2h")
        assert http.delete(f"/api/v1/silences/{gone['id']}").status_code == 200
        before = stored(hub)
        answers = {
            "unknown": change(http, "no-such-id", body),
            "static": change(http, static["id"], body),
            "expired": change(http, gone["id"], body),
            "malformed": http.put(f"/api/v1/silences/{gone['id']}", content=b"{", headers=ADMIN),
        }
        assert http.get(f"/api/v1/silences/{static['id']}").json() == static
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "unknown": 404,
        "static": 409,
        "expired": 409,
        "malformed": 400,
    }
    details = {name: answer.json()["detail"] for name, answer in answers.items()}
    assert details["unknown"] == "no silence with id no-such-id"
    assert "comes from the config file; change it there" in details["static"]
    assert f"silence {gone['id']} has already expired" in details["expired"]
    assert all(
        answer.headers["content-type"].startswith("application/problem+json")
        for answer in answers.values()
    )
    assert stored(hub) == before
