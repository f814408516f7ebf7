"""Console sessions and CSRF tokens: signed, expiring, bound to the token they were
made with, and refused when anything about them was changed."""

from __future__ import annotations

import pytest

from hub.config import ApiToken
from hub.console import render, sessions, viewer

KEY = b"test-session-key"
NOW = 1_800_000_000.0
ALICE = ApiToken(name="alice", token="alice-secret", role="write")


def made() -> tuple[sessions.Session, str]:
    session = sessions.start(KEY, ALICE, NOW, ttl=3600)
    return session, sessions.encode(KEY, session)


def test_a_session_cookie_reads_back_as_the_session_it_was_made_from():
    session, cookie = made()
    assert sessions.decode(KEY, cookie, NOW + 10) == session
    assert sessions.token_of(KEY, session, [ALICE]) == ALICE


def test_a_session_expires_at_its_ttl():
    _, cookie = made()
    assert sessions.decode(KEY, cookie, NOW + 3599) is not None
    assert sessions.decode(KEY, cookie, NOW + 3600) is None


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda c: c.split(".")[0] + ".AAAA", id="bad signature"),
        pytest.param(lambda c: "x" + c, id="payload changed"),
        pytest.param(lambda c: c.replace(".", ""), id="no signature"),
        pytest.param(lambda c: c + ".extra", id="three parts"),
        pytest.param(lambda c: "", id="empty"),
        pytest.param(lambda c: "ünïcode.é", id="not ascii"),
        pytest.param(
            lambda c: sessions.encode(b"another key", sessions.decode(KEY, c, NOW)), id="other key"
        ),
    ],
)
def test_a_forged_or_tampered_cookie_reads_as_no_session(mangle):
    _, cookie = made()
    assert sessions.decode(KEY, mangle(cookie), NOW) is None


def test_a_cookie_signed_for_one_name_cannot_be_relabelled_as_another():
    _, cookie = made()
    signature = cookie.split(".")[1]
    ada = ApiToken(name="ada", token="ada-secret", role="admin")
    other_payload = sessions.encode(KEY, sessions.start(KEY, ada, NOW, 3600)).split(".")[0]
    assert sessions.decode(KEY, f"{other_payload}.{signature}", NOW) is None


def test_a_rotated_or_revoked_token_ends_its_sessions():
    session, _ = made()
    rotated = ApiToken(name="alice", token="new-secret", role="write")
    assert sessions.token_of(KEY, session, [rotated]) is None
    assert sessions.token_of(KEY, session, []) is None


def test_a_sign_out_ends_the_sessions_of_its_token_issued_until_then():
    session, _ = made()
    ended = sessions.SignOuts({"alice": NOW})
    assert ended.ended(session), "issued at the very time of the sign-out"
    assert not ended.ended(sessions.start(KEY, ALICE, NOW + 0.001, ttl=3600))
    assert not sessions.SignOuts({"ada": NOW + 10}).ended(session)
    assert not sessions.SignOuts().ended(session)


def test_each_sign_in_gets_its_own_nonce():
    assert made()[0].nonce != made()[0].nonce


def test_a_csrf_token_is_accepted_only_for_the_nonce_it_was_made_for():
    token = sessions.csrf_token(KEY, "nonce-1")
    assert sessions.csrf_ok(KEY, "nonce-1", token)
    assert not sessions.csrf_ok(KEY, "nonce-2", token)
    assert not sessions.csrf_ok(b"another key", "nonce-1", token)
    assert not sessions.csrf_ok(KEY, "nonce-1", "")
    assert not sessions.csrf_ok(KEY, "nonce-1", "ünïcode")
    assert not sessions.csrf_ok(KEY, "", sessions.csrf_token(KEY, ""))


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/incidents/7?done=ack", "/incidents/7?done=ack"),
        ("/", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("relative", "/"),
    ],
)
def test_sign_in_only_returns_to_a_path_on_this_hub(target, kept):
    assert viewer.local(target) == kept


def test_a_banner_is_a_fixed_message_chosen_by_its_code():
    assert render.notice_for("/incidents/7?done=acked-by-link") == "Incident #7 is acknowledged."
    assert render.notice_for("/incidents/7?done=<script>") == ""
    assert render.notice_for("/silences?done=silenced") == "The silence is in force."
