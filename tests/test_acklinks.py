from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from hub import acklinks, config
from hub.errors import Forbidden

SECRET = b"s3cret-for-tests"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=24)


def test_a_valid_link_names_its_incident_and_episode():
    token = acklinks.sign(SECRET, 4242, 3, EXPIRES)
    assert acklinks.verify(SECRET, token, NOW) == acklinks.Link(incident_id=4242, episode=3)


def test_a_link_made_before_episodes_is_read_as_for_the_first_episode():
    """A link in a notification sent before the upgrade keeps acknowledging an incident
    that never reopened (made by the earlier code for incident 7 until EXPIRES)."""
    old = "AAAAAAAAAAdrDBPA.1EUSuW6A4_9jQ11BFBh5LA"
    assert acklinks.verify(SECRET, old, NOW) == acklinks.Link(incident_id=7, episode=1)
    with pytest.raises(Forbidden, match="expired"):
        acklinks.verify(SECRET, old, EXPIRES)


def test_a_link_made_before_links_named_a_person_is_read_as_a_shared_channels():
    """A link in a notification sent before links named a person keeps working and
    names nobody (made by the earlier code for episode 2 of incident 7 until EXPIRES)."""
    old = "AAAAAAAAAAdrDBPAAAAAAg.gsh0GMBg95E8dvqpcSLK-Q"
    assert acklinks.verify(SECRET, old, NOW) == acklinks.Link(7, 2, person=None)


@pytest.mark.parametrize(
    ("person", "query"), [("alice", "?by=alice"), ("Zoë Ng", "?by=Zo%C3%AB%20Ng"), (None, "")]
)
def test_a_link_sent_to_a_person_acknowledges_as_them_with_the_same_short_token(person, query):
    token = acklinks.sign(SECRET, 4242, 3, EXPIRES, person)
    assert len(token) == 45
    assert acklinks.path(token, person) == f"/ack/{token}{query}"
    assert acklinks.verify(SECRET, token, NOW, person) == acklinks.Link(4242, 3, person)


def test_a_token_is_url_safe_and_short_enough_for_an_sms():
    token = acklinks.sign(SECRET, 2**63 - 1, 2**32 - 1, EXPIRES)
    assert len(token) == 45
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def flip(token: str, index: int) -> str:
    """The token with one character changed: a tampered link."""
    swapped = "A" if token[index] != "A" else "B"
    return token[:index] + swapped + token[index + 1 :]


def respelled(token: str, part: int) -> str:
    """The token with the last character of one part changed only in the bits that
    hold no data (16 bytes fill 22 characters with 4 bits to spare): a lenient
    decoder reads the same bytes from it."""
    parts = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(parts[part][-1]) ^ 1]
    parts[part] = parts[part][:-1] + last
    return ".".join(parts)


TOKEN = acklinks.sign(SECRET, 7, 1, EXPIRES)
OTHER_INCIDENT = acklinks.sign(SECRET, 8, 1, EXPIRES)
OTHER_EPISODE = acklinks.sign(SECRET, 7, 2, EXPIRES)


def test_a_respelled_token_decodes_to_the_same_bytes_leniently():
    """What the strict decoding refuses: the same bytes, so the signature matches."""
    for part in (0, 1):
        same, changed = TOKEN.split(".")[part], respelled(TOKEN, part).split(".")[part]
        assert same != changed
        assert base64.urlsafe_b64decode(same + "==") == base64.urlsafe_b64decode(changed + "==")


@pytest.mark.parametrize(
    ("token", "now", "reason"),
    [
        (flip(TOKEN, 3), NOW, "bad signature"),
        (flip(TOKEN, -3), NOW, "bad signature"),
        (TOKEN.split(".")[0] + "." + OTHER_INCIDENT.split(".")[1], NOW, "bad signature"),
        (TOKEN.split(".")[0] + "." + OTHER_EPISODE.split(".")[1], NOW, "bad signature"),
        (acklinks.sign(b"another secret", 7, 1, EXPIRES), NOW, "bad signature"),
        (TOKEN, EXPIRES, "expired"),
        (TOKEN, EXPIRES + timedelta(days=1), "expired"),
        ("", NOW, "malformed"),
        ("not-a-token", NOW, "malformed"),
        (TOKEN + ".extra", NOW, "malformed"),
        (TOKEN[:-2], NOW, "malformed"),
        (TOKEN[:-1], NOW, "malformed"),
        (TOKEN.replace(".", "!"), NOW, "malformed"),
        (TOKEN + "%00", NOW, "malformed"),
        (respelled(TOKEN, 0), NOW, "malformed"),
        (respelled(TOKEN, 1), NOW, "malformed"),
    ],
    ids=[
        "tampered payload",
        "tampered signature",
        "signature of another incident",
        "signature of another episode",
        "forged with another secret",
        "expired exactly at expiry",
        "expired a day ago",
        "empty",
        "no signature",
        "three parts",
        "truncated signature",
        "signature of impossible length",
        "bad separator",
        "bad characters",
        "payload spelled otherwise",
        "signature spelled otherwise",
    ],
)
def test_a_refused_link_says_why(token, now, reason):
    with pytest.raises(Forbidden, match=reason) as raised:
        acklinks.verify(SECRET, token, now)
    assert raised.value.status == 403


NAMED = acklinks.sign(SECRET, 7, 1, EXPIRES, "alice")


@pytest.mark.parametrize(
    ("token", "person"),
    [
        (NAMED, "bob"),
        (NAMED, "Alice"),
        (NAMED, "alice "),
        (NAMED, ""),
        (NAMED, None),
        (TOKEN, "alice"),
        (acklinks.sign(b"another secret", 7, 1, EXPIRES, "alice"), "alice"),
    ],
    ids=[
        "another person",
        "another case",
        "trailing space",
        "emptied",
        "removed",
        "added to a shared channel's link",
        "forged with another secret",
    ],
)
def test_a_link_whose_person_was_changed_added_or_removed_is_refused(token, person):
    with pytest.raises(Forbidden, match="bad signature") as raised:
        acklinks.verify(SECRET, token, NOW, person)
    assert raised.value.status == 403


def test_a_named_links_episode_cannot_be_moved_into_its_person():
    """The signed bytes are the payload then the name: cutting the episode off the
    payload and putting it before the name must not make another valid link."""
    payload, signature = NAMED.split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    short = base64.urlsafe_b64encode(raw[:12]).rstrip(b"=").decode()
    moved = raw[12:].decode() + "alice"
    with pytest.raises(Forbidden, match="malformed"):
        acklinks.verify(SECRET, f"{short}.{signature}", NOW, moved)


def test_a_forged_token_is_refused_for_its_signature_before_its_expiry():
    forged = acklinks.sign(b"another secret", 7, 1, NOW - timedelta(days=1))
    with pytest.raises(Forbidden, match="bad signature"):
        acklinks.verify(SECRET, forged, NOW)


@pytest.mark.parametrize(
    ("server_table", "secret", "ttl"),
    [("", "", 86400), ('ack_secret = "abc"\nack_link_ttl = "2h"\n', "abc", 7200)],
)
def test_server_config_holds_the_ack_secret_and_link_lifetime(server_table, secret, ttl):
    text = (
        f"[server]\n{server_table}"
        '[[receivers]]\nname = "ops"\nurls = ["json://localhost"]\n'
        '[route]\nreceiver = "ops"\n'
    )
    server = config.parse(text, {}).server
    assert (server.ack_secret, server.ack_link_ttl) == (secret, ttl)
