"""The store's writer: group commit, savepoint isolation, durable answers."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from hub.store import Store


@pytest.fixture
def store(tmp_path):
    batches: list[int] = []
    opened = Store(str(tmp_path / "s.db"), on_commit=lambda n, _: batches.append(n))
    opened.open()
    opened.batches = batches  # type: ignore[attr-defined]
    yield opened
    opened.close()


def insert_delivery(key: str):
    return lambda tx: tx.insert_delivery("src", key, 1.0, {}, b"{}")


def test_concurrent_writes_are_committed_together(store):
    async def many():
        return await asyncio.gather(*(store.write(insert_delivery(f"k{i}")) for i in range(200)))

    ids = asyncio.run(many())
    assert sorted(ids) == list(range(1, 201))
    assert sum(store.batches) == 200
    assert max(store.batches) > 1, "writes queued together share a transaction"


def test_a_failing_write_rolls_back_alone(store):
    def broken(tx):
        tx.insert_delivery("src", "bad", 1.0, {}, b"{}")
        raise ValueError("boom")

    async def mixed():
        return await asyncio.gather(
            store.write(insert_delivery("a")),
            store.write(broken),
            store.write(insert_delivery("b")),
            return_exceptions=True,
        )

    results = asyncio.run(mixed())
    assert isinstance(results[1], ValueError)
    keys = [r["delivery_key"] for r in store.query("SELECT delivery_key FROM deliveries")]
    assert sorted(keys) == ["a", "b"]


def test_an_answered_write_is_on_disk_for_another_connection(store, tmp_path):
    asyncio.run(store.write(insert_delivery("durable")))
    with sqlite3.connect(tmp_path / "s.db") as other:
        assert other.execute("SELECT delivery_key FROM deliveries").fetchall() == [("durable",)]
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
