"""Concurrent deliveries for one fingerprint: the single writer serialises them, so
exactly one alert exists and every other delivery counts as a duplicate."""

from __future__ import annotations

import asyncio

import httpx
from conftest import AUTH, TLS_CONTEXT, mail_url, wait_for

REQUESTS = 200
EVENT = {
    "status": "firing",
    "summary": "checkout API error rate above 5%",
    "labels": {"service": "checkout"},
    "dedup_key": "checkout-errors",
}


async def post_all(url: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=REQUESTS)
    async with httpx.AsyncClient(
        base_url=url, headers=AUTH, limits=limits, timeout=30, verify=TLS_CONTEXT
    ) as http:
        return await asyncio.gather(
            *(http.post("/webhooks/shop", json=EVENT) for _ in range(REQUESTS))
        )


def test_200_concurrent_requests_for_one_fingerprint_leave_one_alert_with_199_duplicates(
    hub_factory, smtp
):
    mailbox, smtp_port = smtp
    hub = hub_factory(mail_url=mail_url(smtp_port))
    answers = asyncio.run(post_all(hub.url))
    assert [a.status_code for a in answers] == [202] * REQUESTS
    assert sum(a.json()["duplicates"] for a in answers) == REQUESTS - 1
    with hub.client() as http:
        alerts = http.get("/api/v1/alerts").json()
        assert len(alerts) == 1
        assert alerts[0]["duplicates"] == REQUESTS - 1
        alert = http.get(f"/api/v1/alerts/{alerts[0]['id']}").json()
        assert len(alert["history"]) == 1
        assert len(http.get("/api/v1/incidents").json()) == 1
        wait_for(lambda: len(mailbox.messages) == 1)
        notes = http.get("/api/v1/notifications").json()
    assert [n["kind"] for n in notes] == ["firing"]
