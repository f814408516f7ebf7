"""When things happen, as the console says it: relative times rounded the way a person
reads them, and the absolute UTC time in the text (phones have no hover)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from conftest import MovedClock, free_port, mail_url
from console_support import CONSOLE_CONFIG, csrf_in, fire, sign_in

from hub.spans import span

BERLIN = """
[[schedules]]
name = "primary"
time_zone = "Europe/Berlin"
people = [{{ name = "alice", urls = ["{mail_url}"] }}, {{ name = "bob", urls = ["{mail_url}"] }}]
rotations = [
  {{ participants = ["alice", "bob"], length = "1d", handoff = "09:00", start = 2026-01-05 }},
]
"""


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (45, "45s"),
        (90, "1m 30s"),
        (3599.6, "1h"),
        (4 * 3600 - 1, "4h"),
        (5400, "1h 30m"),
        (86400 + 7200, "1d 2h"),
    ],
)
def test_a_span_is_rounded_at_its_smaller_unit(seconds, shown):
    assert span(seconds) == shown


def test_a_fresh_snooze_and_silence_read_their_full_length_and_their_utc_time(hub_factory):
    """A 4h snooze read "(in 3h)" a second after it was taken, a 2h silence "in 1h"."""
    hub = hub_factory(CONSOLE_CONFIG, mail_url=mail_url(free_port()), max_attempts=1)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        sign_in(http, "write-token")
        page = f"/incidents/{incident_id}"
        csrf = csrf_in(http.get(page).text)
        http.post(f"{page}/snooze", data={"_csrf": csrf, "duration": "4h"})
        silence = {"matchers": 'service="other"', "duration": "2h", "comment": "deploy"}
        http.post("/silences", data={"_csrf": csrf, **silence})
        shown, silences = http.get(page).text, http.get("/silences").text
    day = r"(\d{4}-\d\d-\d\d )?"  # a time on another day than today is dated
    assert re.search(rf"snoozed until <time[^>]*>{day}\d\d:\d\d UTC</time> \(in 4h\)", shown), shown
    row = re.search(r'<tr id="silence-.*?</tr>', silences, re.S).group(0)
    assert re.search(rf"<time[^>]*>{day}\d\d:\d\d UTC</time> \(in 2h\)", row), row


def test_the_oncall_handoff_shows_in_utc_and_the_schedules_zone(hub_factory):
    """Berlin is UTC+1 in January: its 09:00 handoff is 08:00 UTC."""
    clock = MovedClock()
    clock.advance(datetime(2026, 1, 7, 6, 0, tzinfo=UTC).timestamp() - clock())
    hub = hub_factory(
        CONSOLE_CONFIG + BERLIN, mail_url=mail_url(free_port()), max_attempts=1, clock=clock
    )
    with hub.client() as http:
        sign_in(http, "read-token")
        page = http.get("/oncall").text
    until = re.search(r"<dt>Until</dt><dd>(.*?)</dd>", page, re.S).group(1)
    handoff = r'<time title="[^"]+">08:00 UTC, 09:00 Europe/Berlin</time> \(in 2h\)'
    assert re.fullmatch(handoff, until), until
