"""The outbox: notifications are retried with growing delays, then dead-lettered,
with every attempt and Apprise's own error text kept."""

from __future__ import annotations

from conftest import AUTH, free_port, mail_url, wait_for

from hub.outbox import backoff_delay


def test_a_channel_that_fails_is_retried_then_dead_lettered_with_its_error(hub_factory):
    closed_port = free_port()
    hub = hub_factory(mail_url=mail_url(closed_port), max_attempts=3)
    event = {"status": "firing", "summary": "payment gateway timeouts"}
    with hub.client(headers=AUTH) as http:
        incident_id = http.post("/webhooks/shop", json=event).json()["alerts"][0]["incident_id"]

        def dead_notification():
            notes = http.get("/api/v1/notifications", params={"incident": incident_id}).json()
            return notes if notes and notes[0]["state"] == "dead" else None

        note = wait_for(dead_notification)[0]
        ops = 'integration="mailto",outcome="{}",receiver="ops"'
        dead = "hub_notifications_total{" + ops.format("dead") + "} 1.0"

        def counted_dead() -> str | None:  # counted just after the commit the API shows
            text = http.get("/metrics").text
            return text if dead in text else None

        metrics = wait_for(counted_dead)
    assert note["attempts"] == 3
    log = note["attempts_log"]
    assert [a["outcome"] for a in log] == ["failed", "failed", "failed"]
    assert all(a["error"] and "failed" not in a["error"].lower()[:6] for a in log)
    assert any("connect" in a["error"].lower() or "refused" in a["error"].lower() for a in log)
    assert note["last_error"] == log[-1]["error"]
    assert "hub_notifications_total{" + ops.format("failed") + "} 2.0" in metrics
    assert 'hub_notification_attempt_duration_seconds_count{integration="mailto"} 3.0' in metrics
    assert 'hub_outbox_notifications{state="dead"} 1.0' in metrics


def test_backoff_grows_exponentially_within_its_cap_and_jitter():
    delays = [backoff_delay(n, 2.0, 60.0, lambda: 1.0) for n in range(1, 8)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert backoff_delay(3, 2.0, 60.0, lambda: 0.0) == 4.0
