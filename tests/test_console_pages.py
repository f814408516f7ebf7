"""What the console's pages say at a glance, found missing by an on-call audit: an
escalation that reached nobody, muted incidents, dead letters waiting, heartbeats
that are down and why."""

from __future__ import annotations

import re

from conftest import free_port, mail_url, wait_for
from console_support import CONSOLE_CONFIG, fire, sign_in

NOBODY_AT_THE_END = """escalation = "page"

[[schedules]]
name = "secondary"
people = [{{ name = "zoe", urls = ["{mail_url}"] }}]
rotations = [{{ participants = ["zoe"], length = "1w", start = 2099-01-05 }}]

[[escalations]]
name = "page"
steps = [{{ after = "0s", notify = ["ops"] }}, {{ after = "1s", notify = ["schedule:secondary"] }}]
"""


def start(hub_factory, more: str = ""):
    return hub_factory(CONSOLE_CONFIG + more, mail_url=mail_url(free_port()), max_attempts=1)


def test_a_finished_escalation_whose_last_step_paged_nobody_says_so_in_its_header(hub_factory):
    hub = start(hub_factory, NOBODY_AT_THE_END)
    incident_id = fire(hub.url, "checkout down")["incident_id"]
    with hub.client() as http:
        sign_in(http, "read-token")
        page = wait_for(
            lambda: "finished" in (text := http.get(f"/incidents/{incident_id}").text) and text
        )
    header = re.search(r"<dt>Escalation</dt><dd>(.*?)</dd>", page, re.S).group(1)
    assert " ".join(header.split()) == (
        "page: finished — step 2 paged nobody: schedule secondary has nobody on call"
    )
