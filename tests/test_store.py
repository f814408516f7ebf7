"""The store's writer: group commit, savepoint isolation, durable answers."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlite_utils
from conftest import free_port, mail_url, render_config, wait_for
from test_config import ROOT, run_hub

from hub import config, heartbeats, logs
from hub import store as store_module
from hub.alerts import new_row
from hub.errors import ConfigError, NotFound, Unavailable
from hub.events import Event
from hub.rules import Rules
from hub.store import Store, Target


@pytest.fixture
def store(tmp_path):
    batches: list[int] = []
    opened = Store(str(tmp_path / "s.db"), on_commit=lambda n, _: batches.append(n))
    opened.open()
    opened.batches = batches  # type: ignore[attr-defined]
    yield opened
    opened.close()


def insert_delivery(key: str):
    def write(tx):
        delivery_id = tx.next_delivery_id()
        tx.insert_delivery(delivery_id, "src", key, 1.0, {}, b"{}", answer=(202, {}))
        return delivery_id

    return write


def test_opening_logs_the_migrations_it_applied_and_a_second_opening_none(tmp_path, caplog):
    path = str(tmp_path / "m.db")
    with caplog.at_level(logging.INFO, logger="hub.store"):
        with store_module.opened(path):
            pass
        first = [r.getMessage() for r in caplog.records if "store_migrated" in r.getMessage()]
        caplog.clear()
        with store_module.opened(path):
            pass
        again = [r.getMessage() for r in caplog.records if "store_migrated" in r.getMessage()]
    [line] = first
    assert line.startswith("event=store_migrated applied=m001_")
    assert "m019_incident_order" in line
    assert again == []


def test_an_upgrade_that_fails_midway_leaves_the_store_as_the_older_hub_left_it(tmp_path):
    """An upgrade applies every pending migration or none: one that failed after others
    had been committed left a store that neither hub's schema describes, and ``hub
    serve`` died with SQLite's traceback. Here the older store lacks m033 and m034, and
    m034 fails, as its columns were added by hand."""
    path = (tmp_path / "hub.db").as_posix()
    with store_module.opened(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE incidents DROP COLUMN acknowledged_via")
        conn.execute("ALTER TABLE incidents DROP COLUMN resolved_via")
        conn.execute(
            "DELETE FROM _sqlite_migrations WHERE name IN"
            " ('m033_incident_vouchers', 'm034_heartbeat_pauses')"
        )
    upgrade = Store(path)
    with pytest.raises(ConfigError) as raised:
        upgrade.open()
    assert not upgrade.is_open
    problem = (
        f"storage.path: {path} could not be upgraded: m034_heartbeat_pauses failed"
        " (duplicate column name: paused_at); none of the 2 pending migrations was"
        " applied, so the store is as the older hub left it and that hub still runs on it"
    )
    assert raised.value.problems == [problem]
    (tmp_path / "alerts.toml").write_text(store_config("hub.db"))
    served = run_hub("serve", "--port", str(free_port()), cwd=tmp_path)
    assert served.returncode == 2, served.stderr
    assert f"  - {problem}" in served.stderr.splitlines()
    assert "Traceback" not in served.stderr
    with sqlite3.connect(path) as conn:
        applied = {name for (name,) in conn.execute("SELECT name FROM _sqlite_migrations")}
        columns = {row[1] for row in conn.execute("PRAGMA table_info(incidents)")}
    assert "m032_silence_vouchers" in applied
    assert "m033_incident_vouchers" not in applied
    assert "acknowledged_via" not in columns


def test_a_store_a_newer_hub_migrated_is_refused_naming_both_newest_migrations(tmp_path):
    """An older hub used to run on such a store, writing rows without what the newer
    version keeps (README: upgrades only go forward)."""
    path = str(tmp_path / "newer.db")
    with store_module.opened(path):
        pass
    mark_migrated_by_a_newer_hub(path)
    refused = Store(path)
    with pytest.raises(ConfigError) as raised:
        refused.open()
    expected = NEWER_STORE_PROBLEM.format(path=path, newest=newest_migration())
    assert raised.value.problems == [expected]
    assert not refused.is_open


NEWER_STORE_PROBLEM = (
    "storage.path: {path} was upgraded by a newer hub (its newest migration is"
    " m999_from_the_future, this hub's is {newest}): run that hub or a newer"
    " one, or restore the backup taken before the upgrade"
)


def newest_migration() -> str:
    """The last migration this hub knows: all of them are pending on an empty database."""
    return store_module.migrations.pending(sqlite_utils.Database(memory=True))[-1].name


def mark_migrated_by_a_newer_hub(path: str) -> None:
    """Record a migration this hub does not know, as the store records one it applies."""
    sqlite_utils.Database(path)["_sqlite_migrations"].insert(
        {
            "migration_set": "hub",
            "name": "m999_from_the_future",
            "applied_at": str(datetime.now(UTC)),
        }
    )


def test_serve_refuses_to_start_on_a_store_a_newer_hub_migrated(tmp_path):
    db = tmp_path / "hub.db"
    (tmp_path / "alerts.toml").write_text(
        f'[storage]\npath = "{db.as_posix()}"\n'
        '[[receivers]]\nname = "ops"\nurls = ["json://127.0.0.1:9/"]\n'
        '[route]\nreceiver = "ops"\n'
    )
    with store_module.opened(str(db)):
        pass
    mark_migrated_by_a_newer_hub(str(db))
    result = run_hub("serve", "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 2
    expected = NEWER_STORE_PROBLEM.format(path=db.as_posix(), newest=newest_migration())
    assert f"  - {expected}" in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


SHOP_TOKEN = "shop-token"
SHOP_SOURCE = (
    '[[sources]]\nname = "shop"\nformat = "native"\n'
    f'auth = {{ type = "bearer", tokens = ["{SHOP_TOKEN}"] }}\n'
)


def store_config(path: str) -> str:
    return (
        f'[storage]\npath = "{path}"\n'
        '[[receivers]]\nname = "ops"\nurls = ["json://127.0.0.1:9/"]\n'
        '[route]\nreceiver = "ops"\n'
    )


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        (
            "data/hub.db",
            "storage.path: {folder}/data/hub.db: the folder {folder}/data does not exist",
        ),
        (".", "storage.path: {folder} is a folder, not a file (name the file, as {folder}/hub.db)"),
        (
            "alerts.toml/hub.db",
            "storage.path: {folder}/alerts.toml/hub.db: the folder {folder}/alerts.toml"
            " is not a folder",
        ),
    ],
    ids=["missing-folder", "a-folder", "under-a-file"],
)
def test_a_store_path_no_store_can_be_at_is_named_by_check_config_and_serve(
    tmp_path, written, problem
):
    """Both used to pass it on: check-config said ok, serve died with a traceback
    about ``hub.db.lock`` or SQLite's "unable to open database file". check-config
    warns (the file may be checked on another machine than the one it runs on)."""
    (tmp_path / "alerts.toml").write_text(store_config(written))
    named = problem.format(folder=tmp_path.as_posix())
    before = sorted(tmp_path.iterdir())
    checked = run_hub("check-config", cwd=tmp_path)
    served = run_hub("serve", "--port", str(free_port()), cwd=tmp_path)
    assert (checked.returncode, served.returncode) == (0, 2)
    warning = f"warning: {named} (hub serve refuses it on this machine)"
    assert warning in checked.stdout.splitlines(), checked.stdout
    assert f"  - {named}" in served.stderr.splitlines(), served.stderr
    assert "Traceback" not in checked.stderr + served.stderr
    assert sorted(tmp_path.iterdir()) == before, "nothing is created"


def bound_by_permissions() -> list[str]:
    """A command prefix under which permission bits bind hub as they bind a service
    user: none but for root, who passes them by two capabilities (CI runs as root);
    ``setpriv`` takes those out of what the command may hold. A root that may not drop
    them skips the test."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, check=False, timeout=10)
        dropped = probe.returncode
    except FileNotFoundError:
        dropped = None
    if dropped != 0:
        pytest.skip("root, and setpriv cannot drop its override of permission bits here")
    return prefix


def test_a_store_in_a_folder_this_user_cannot_write_is_a_check_config_warning(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    (tmp_path / "alerts.toml").write_text(store_config("locked/hub.db"))
    checked = run_hub("check-config", cwd=tmp_path, prefix=bound_by_permissions())
    assert checked.returncode == 0
    assert f"storage.path: the folder {locked.as_posix()} is not writable" in checked.stdout


def test_a_lock_file_another_user_left_is_named_by_check_config_and_serve(tmp_path):
    """A hub once run as root leaves ``hub.db.lock`` as root's: a start as the service
    user died with a traceback opening it."""
    prefix = bound_by_permissions()
    (tmp_path / "alerts.toml").write_text(store_config("hub.db"))
    lock = tmp_path / "hub.db.lock"
    lock.write_text("4242")
    lock.chmod(0o444)
    checked = run_hub("check-config", cwd=tmp_path, prefix=prefix)
    served = run_hub("serve", "--port", str(free_port()), cwd=tmp_path, prefix=prefix)
    named = (
        f"storage.path: its lock file {lock.as_posix()} is not readable and writable by this"
        " user (a hub run as another user left it; while no hub serves the store, remove it"
        " or give it to this user)"
    )
    assert (checked.returncode, served.returncode) == (0, 2), served.stderr
    assert f"warning: {named} (hub serve refuses it on this machine)" in checked.stdout
    assert f"  - {named}" in served.stderr.splitlines()
    assert "Traceback" not in served.stderr
    assert lock.read_text() == "4242"


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _serve(cwd: Path, port: int) -> subprocess.Popen:
    """``hub serve`` of the config in ``cwd``, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--port", str(port)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _post_event(port: int, key: str) -> int:
    """The status a webhook carrying one firing event is answered with."""
    body = json.dumps({"status": "firing", "summary": key, "dedup_key": key}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/shop",
        data=body,
        headers={"Authorization": f"Bearer {SHOP_TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def test_a_second_hub_on_a_served_store_is_refused_until_the_first_is_gone(tmp_path):
    """Two hubs on one store would both escalate, dispatch and expire: page twice. The
    refused start leaves the lock file as it was, so it names the hub serving."""
    db = tmp_path / "hub.db"
    lock = tmp_path / "hub.db.lock"
    (tmp_path / "alerts.toml").write_text(store_config(db.as_posix()) + SHOP_SOURCE)
    port = free_port()
    first = _serve(tmp_path, port)
    try:
        wait_for(lambda: _ready(port))
        held = lock.read_bytes()
        second = run_hub("serve", "--port", str(free_port()), cwd=tmp_path)
        assert second.returncode == 2
        assert (
            f"  - storage.path: {db.as_posix()} is served by another hub (pid {first.pid},"
            f" holding {lock.as_posix()}); one store takes one hub: stop that one, or give"
            " this one its own storage.path"
        ) in second.stderr.splitlines()
        assert "Traceback" not in second.stderr
        assert lock.read_bytes() == held == str(first.pid).encode()
        assert _post_event(port, "after-refusal") == 202, "the first hub serves on"
        with contextlib.closing(sqlite3.connect(db)) as conn:
            rows = conn.execute("SELECT fingerprint FROM alerts").fetchall()
        assert rows == [("shop/after-refusal",)]
    finally:
        first.send_signal(signal.SIGKILL)  # the kernel drops the lock with the process
        first.wait(timeout=30)
    port = free_port()
    after = _serve(tmp_path, port)
    try:
        wait_for(lambda: _ready(port))
        assert lock.read_text() == str(after.pid)
    finally:
        after.terminate()
        after.wait(timeout=30)


@contextlib.contextmanager
def _leased(path: Path) -> Iterator[int]:
    """A read lease on ``path``: another process's open of it for writing waits until
    the lease is given up (the kernel signals SIGIO here and says the lease is breaking),
    so a test can act between that open and what the process does next."""
    noted = signal.signal(signal.SIGIO, lambda *_: None)  # its default action ends the process
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        yield fd
    finally:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        os.close(fd)
        signal.signal(signal.SIGIO, noted)


@pytest.mark.skipif(not hasattr(fcntl, "F_SETLEASE"), reason="file leases are Linux's")
def test_a_start_whose_lock_file_was_removed_before_it_locked_it_takes_a_new_one(tmp_path):
    """A start refused after claiming removes the lock file it created. A start that
    opened the file just before would then lock a file no later start finds, and a third
    hub would serve beside it: it must open the new one. A lease holds its open until
    the file is removed, so the order is the same every run."""
    db = tmp_path / "hub.db"
    lock = tmp_path / "hub.db.lock"
    (tmp_path / "alerts.toml").write_text(store_config(db.as_posix()))
    lock.write_text("4242")  # the pid of the start that gives up
    port = free_port()
    with _leased(lock) as lease:
        started = _serve(tmp_path, port)
        wait_for(lambda: fcntl.fcntl(lease, fcntl.F_GETLEASE) == fcntl.F_UNLCK)
        lock.unlink()
    try:
        wait_for(lambda: _ready(port))
        assert lock.read_text() == str(started.pid)
        third = run_hub("serve", "--port", str(free_port()), cwd=tmp_path)
        assert third.returncode == 2
        assert f"is served by another hub (pid {started.pid}," in third.stderr
    finally:
        started.terminate()
        started.wait(timeout=30)


def test_concurrent_writes_are_committed_together(store):
    async def many():
        return await asyncio.gather(*(store.write(insert_delivery(f"k{i}")) for i in range(200)))

    ids = asyncio.run(many())
    assert sorted(ids) == list(range(1, 201))
    assert sum(store.batches) == 200
    assert max(store.batches) > 1, "writes queued together share a transaction"


@pytest.mark.parametrize("long", [False, True], ids=["on the loop", "long"])
def test_a_failing_write_rolls_back_alone(store, long):
    """Applied on the loop or, a long write's batch, in the commit thread: the writer
    goes on taking writes after it."""

    def broken(tx):
        insert_delivery("bad")(tx)
        raise ValueError("boom")

    async def mixed():
        return await asyncio.gather(
            store.write(insert_delivery("a")),
            store.write(broken, long=long),
            store.write(insert_delivery("b")),
            return_exceptions=True,
        )

    results = asyncio.run(mixed())
    assert isinstance(results[1], ValueError)
    keys = [r["delivery_key"] for r in store.query("SELECT delivery_key FROM deliveries")]
    assert sorted(keys) == ["a", "b"]
    assert asyncio.run(store.write(insert_delivery("after"), long=long)) == results[2] + 1


def test_a_write_refused_by_a_constraint_fails_alone_not_its_whole_batch(store):
    """SQLite refusing one statement (a unique key taken) leaves the transaction
    usable: only that write fails; the others in its batch commit and are answered."""

    async def mixed():
        return await asyncio.gather(
            store.write(insert_delivery("a")),
            store.write(insert_delivery("a")),
            store.write(insert_delivery("b")),
            return_exceptions=True,
        )

    first, clash, last = asyncio.run(mixed())
    keys = [r["delivery_key"] for r in store.query("SELECT delivery_key FROM deliveries")]
    assert (first, last) == (1, 2)
    assert isinstance(clash, sqlite3.IntegrityError)
    assert sorted(keys) == ["a", "b"]


def fail_ping(name: str, rules: Rules, then: str = "SELECT 1"):
    """A write reporting heartbeat ``name`` failed, which logs ``heartbeat_down``, and
    then runs the SQL ``then``."""

    def write(tx):
        heartbeats.ping(tx, name, "fail", time.time(), rules)
        tx.conn.execute(then)

    return write


def downs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "heartbeat_down" in r.getMessage()]


@pytest.fixture
def pinged(store, tmp_path):
    """The store with heartbeats a, b and c, and the rules to ping them with."""
    text = render_config(port=8080, db=tmp_path / "s.db", mail_url=mail_url(1))
    rules = Rules.from_config(config.parse(text, {}))
    for name in "abc":
        made = config.Heartbeat(name=name, period=config.Duration(3600))
        asyncio.run(store.write(lambda tx, made=made: heartbeats.create(tx, made, time.time())))
    return store, rules


def test_a_line_a_write_logs_appears_once_and_not_for_a_write_rolled_back(pinged, caplog):
    """One failing write runs its batch again with a savepoint per write: the others'
    lines appear once, not once per run, and the failing one's not at all."""
    store, rules = pinged

    def b_then_unknown(tx) -> None:
        fail_ping("b", rules)(tx)
        fail_ping("unknown", rules)(tx)

    async def batch():
        return await asyncio.gather(
            store.write(fail_ping("a", rules)),
            store.write(b_then_unknown),
            store.write(fail_ping("c", rules)),
            return_exceptions=True,
        )

    caplog.set_level(logging.INFO, logger="hub.heartbeats")
    results = asyncio.run(batch())
    assert isinstance(results[1], NotFound)
    assert store.batches[-1] == 3, "the three writes shared a batch"
    assert downs(caplog) == [
        'event=heartbeat_down name=a reason="failure reported"',
        'event=heartbeat_down name=c reason="failure reported"',
    ]
    assert [h["name"] for h in store.heartbeats() if h["overdue"]] == ["a", "c"]


def test_a_batch_whose_commit_fails_logs_none_of_its_lines(pinged, caplog):
    """A COMMIT refused (here for a foreign key checked only then) undoes every write
    of the batch: none of their lines appear; the next write's does."""
    store, rules = pinged

    async def batch():
        return await asyncio.gather(
            store.write(fail_ping("a", rules, then="PRAGMA defer_foreign_keys = ON")),
            store.write(fail_ping("b", rules, then="UPDATE alerts SET incident_id = 999999")),
            return_exceptions=True,
        )

    caplog.set_level(logging.INFO, logger="hub.heartbeats")
    results = asyncio.run(batch())
    asyncio.run(store.write(fail_ping("c", rules)))
    assert [type(result) for result in results] == [Unavailable, Unavailable]
    assert downs(caplog) == ['event=heartbeat_down name=c reason="failure reported"']
    assert [h["name"] for h in store.heartbeats() if h["overdue"]] == ["c"]


def test_an_answered_write_is_on_disk_for_another_connection(store, tmp_path):
    asyncio.run(store.write(insert_delivery("durable")))
    with sqlite3.connect(tmp_path / "s.db") as other:
        assert other.execute("SELECT delivery_key FROM deliveries").fetchall() == [("durable",)]
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def hold_write_lock(path) -> sqlite3.Connection:
    """Another connection (a backup, an operator's shell) holding the write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_file_locked_elsewhere_delays_writes_without_blocking_the_loop(store, tmp_path):
    other = hold_write_lock(tmp_path / "s.db")

    async def scenario():
        """The lock is let go by the loop itself: a write that blocked the loop while
        waiting for it would never be let through."""
        write = asyncio.create_task(store.write(insert_delivery("waited")))
        await asyncio.sleep(0.3)
        assert not write.done(), "the write waits for the lock"
        other.execute("ROLLBACK")
        return await asyncio.wait_for(write, 5)

    delivery_id = asyncio.run(scenario())
    rows = store.query("SELECT id, delivery_key FROM deliveries")
    assert rows == [{"id": delivery_id, "delivery_key": "waited"}]
    other.close()


def test_a_long_write_runs_off_the_loop_and_commits_with_its_batch(store):
    """A write marked long (a delivery of thousands of alerts) is applied in the commit
    thread: here only the loop can let it finish, so on the loop it would wait out its
    10 s and say so. Readiness is answered meanwhile, and a write queued behind it is
    committed too."""
    started, let_go = threading.Event(), threading.Event()

    def long_write(tx):
        started.set()
        went_on = let_go.wait(10)
        return insert_delivery("long")(tx), went_on, threading.current_thread().name

    async def scenario():
        write = asyncio.create_task(store.write(long_write, long=True))
        behind = asyncio.create_task(store.write(insert_delivery("behind")))
        while not started.is_set():
            await asyncio.sleep(0.005)
        ready = await store.writable()
        let_go.set()
        return await write, await behind, ready

    (long_id, went_on, thread), behind_id, ready = asyncio.run(scenario())
    assert went_on and thread == "hub-store-commit"
    assert ready
    rows = store.query("SELECT id, delivery_key FROM deliveries ORDER BY id")
    assert rows == [
        {"id": long_id, "delivery_key": "long"},
        {"id": behind_id, "delivery_key": "behind"},
    ]


def test_readiness_waits_for_a_lock_held_elsewhere_off_the_loop(store, tmp_path):
    """Another connection holding the write lock makes the store not ready, after the
    probe's second of waiting for it, in which the loop goes on; let go, it is ready."""
    other = hold_write_lock(tmp_path / "s.db")

    async def probe_and_tick():
        probe = asyncio.create_task(store.writable())
        ticks = 0
        while not probe.done():
            await asyncio.sleep(0.01)
            ticks += 1
        return await probe, ticks

    held, ticks = asyncio.run(probe_and_tick())
    other.execute("ROLLBACK")
    other.close()
    assert held is False
    assert ticks >= 10  # a probe on the loop would allow one; a loaded machine slows each
    assert asyncio.run(store.writable()) is True


def test_a_write_waiting_on_a_lock_held_elsewhere_is_logged_once_and_when_it_goes_on(
    store, tmp_path, caplog
):
    """A webhook answering slowly must not leave the log silent about why."""
    other = hold_write_lock(tmp_path / "s.db")

    async def scenario():
        writes = [asyncio.create_task(store.write(insert_delivery(f"w{n}"))) for n in range(2)]
        await asyncio.sleep(1.3)
        other.execute("ROLLBACK")
        return await asyncio.wait_for(asyncio.gather(*writes), 5)

    with caplog.at_level(logging.INFO, logger="hub.store"):
        asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records if "store_" in r.getMessage()]
    assert len(lines) == 2, lines
    assert lines[0].startswith("event=store_locked waited=1.")
    assert "lock_wait=30 pending=" in lines[0]
    assert lines[1].startswith("event=store_unlocked waited=1.")
    other.close()


def test_writes_are_refused_when_the_lock_is_held_too_long(tmp_path):
    path = tmp_path / "s.db"
    with store_module.opened(str(path), lock_wait=0.2) as store:
        other = hold_write_lock(path)
        with pytest.raises(Unavailable, match="database is locked"):
            asyncio.run(store.write(insert_delivery("refused")))
        other.execute("ROLLBACK")
        other.close()
        asyncio.run(store.write(insert_delivery("later")))
        keys = [r["delivery_key"] for r in store.query("SELECT delivery_key FROM deliveries")]
    assert keys == ["later"]


def read_then_fail(tx) -> None:
    """A write that reads with a cursor, its statement still open in this frame, and
    then fails."""
    cursor = tx.conn.execute("SELECT delivery_key FROM deliveries")
    cursor.fetchone()
    raise ValueError("a row no check foresaw")


def raised_while_handling(tx) -> None:
    try:
        read_then_fail(tx)
    except ValueError:
        raise RuntimeError("handling it failed too") from None


def raised_from(tx) -> None:
    try:
        read_then_fail(tx)
    except ValueError as e:
        failed = e
    raise RuntimeError("it failed") from failed


@pytest.mark.parametrize("write", [raised_while_handling, raised_from])
def test_an_error_chained_to_a_failed_read_leaves_no_statement_open(
    tmp_path, write, no_cyclic_collection
):
    """The error a write raised is kept (answered, logged), and the one it chains to
    with it: a cursor in the latter's frames kept its statement, and the snapshot it
    read, open on hub's write connection. After another connection wrote (an
    operator's repair), every write hub began was refused (SQLITE_BUSY_SNAPSHOT).
    ``raised_from`` keeps its first error in a local, a cycle: the error of the batch's
    first run, without a savepoint per write, was dropped with its frames uncleared."""
    path = tmp_path / "s.db"
    with store_module.opened(str(path), lock_wait=0.5) as store:
        for key in ("a", "b"):
            asyncio.run(store.write(insert_delivery(key)))
        with pytest.raises(RuntimeError) as raised:
            asyncio.run(store.write(write))
        repair = "UPDATE deliveries SET delivery_key = 'repaired' WHERE delivery_key = 'b'"
        with contextlib.closing(sqlite3.connect(path)) as other, other:
            other.execute(repair)
        asyncio.run(store.write(insert_delivery("after")))
        keys = [r["delivery_key"] for r in store.query("SELECT delivery_key FROM deliveries")]
    assert isinstance(raised.value.__cause__ or raised.value.__context__, ValueError)
    assert sorted(keys) == ["a", "after", "repaired"]


def open_cursor(tx) -> sqlite3.Cursor:
    """A statement left open on hub's write connection, as a bug would leave it."""
    cursor = tx.conn.execute("SELECT delivery_key FROM deliveries")
    cursor.fetchone()
    return cursor


def leave_in_a_cycle(tx) -> None:
    cycle: list = [open_cursor(tx)]
    cycle.append(cycle)


def stale_after_a_repair(store, tmp_path, leave_open: Callable) -> None:
    """Two deliveries, a write that leaves a statement open, then another connection's
    write: hub's next BEGIN IMMEDIATE is refused as SQLITE_BUSY_SNAPSHOT."""
    for key in ("a", "b"):
        asyncio.run(store.write(insert_delivery(key)))
    asyncio.run(store.write(leave_open))
    repair = "UPDATE deliveries SET delivery_key = 'repaired' WHERE delivery_key = 'b'"
    with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as other, other:
        other.execute(repair)


def test_writes_on_a_stale_snapshot_fail_at_once_naming_the_cause(store, tmp_path, caplog):
    """No lock is held elsewhere, so waiting out lock_wait (30 s) cured nothing: the
    write fails now, and the log says why, not that another connection holds a lock."""
    kept: list = []
    stale_after_a_repair(store, tmp_path, lambda tx: kept.append(open_cursor(tx)))
    with caplog.at_level(logging.INFO, logger="hub.store"):
        with pytest.raises(Unavailable, match="database is locked"):
            asyncio.run(store.write(insert_delivery("refused")))
    lines = [r.getMessage() for r in caplog.records if "event=store_" in r.getMessage()]
    assert [line.split()[0] for line in lines] == [
        "event=store_snapshot_stale",
        "event=store_commit_failed",
    ]
    assert f"detail={logs.value(store_module.STALE_SNAPSHOT)}" in lines[0]
    kept.pop().close()
    asyncio.run(store.write(insert_delivery("after")))
    keys = [r["delivery_key"] for r in store.query("SELECT delivery_key FROM deliveries")]
    assert sorted(keys) == ["a", "after", "repaired"]


def test_a_stale_snapshot_only_a_cycle_kept_is_collected_and_the_write_goes_on(
    store, tmp_path, caplog, no_cyclic_collection
):
    """A statement kept by garbage alone (a cycle, as an error's traceback is) ends at
    the next collection: hub collects and begins again at once."""
    stale_after_a_repair(store, tmp_path, leave_in_a_cycle)
    with caplog.at_level(logging.INFO, logger="hub.store"):
        asyncio.run(store.write(insert_delivery("after")))
    keys = [r["delivery_key"] for r in store.query("SELECT delivery_key FROM deliveries")]
    assert sorted(keys) == ["a", "after", "repaired"]
    assert not [r for r in caplog.records if "event=store_" in r.getMessage()]


def test_the_alerts_that_end_are_found_through_their_index_not_a_scan(store):
    """200k firing alerts must not cost a scan each time the expirer looks."""
    statements: list[str] = []
    store._reader.set_trace_callback(statements.append)
    try:
        store.next_alert_end()
        store.reading().ended_alerts(1.0, 100)
        with pytest.raises(sqlite3.OperationalError):  # the read connection takes no write,
            store.reading().move_end_checks(1.0, 100)  # but its statement is traced
    finally:
        store._reader.set_trace_callback(None)
    statements = [sql for sql in statements if sql.startswith(("SELECT", "UPDATE"))]
    assert len(statements) == 3
    for sql in statements:
        details = [row["detail"] for row in store.query(f"EXPLAIN QUERY PLAN {sql}")]
        assert any("alerts_end_check" in detail for detail in details), (sql, details)
        assert not [detail for detail in details if detail.startswith("SCAN")], (sql, details)


@pytest.mark.parametrize("where", ["status = :status", "1"])
@pytest.mark.parametrize("after", [None, (1.5, 7)])
def test_incident_pages_are_read_in_index_order_not_sorted(store, where, after):
    """A page of the newest incidents, by status or not, first or after a cursor, must
    not sort every incident the store holds (the resolved tab grows without end)."""
    statements: list[str] = []
    store._reader.set_trace_callback(statements.append)
    try:
        list(store.incidents(where, {"status": "resolved"}, 101, after))
    finally:
        store._reader.set_trace_callback(None)
    [sql] = [sql for sql in statements if sql.startswith("SELECT")]
    details = [row["detail"] for row in store.query(f"EXPLAIN QUERY PLAN {sql}")]
    assert any("incidents_" in detail and "changed" in detail for detail in details), details
    assert not [detail for detail in details if "TEMP B-TREE" in detail], details


def alert_with_end(tx, ends_at: float) -> dict:
    event = Event(
        fingerprint="fp",
        status="firing",
        summary="db1 is down",
        ends_at=datetime.fromtimestamp(ends_at, UTC),
    )
    tx.insert("alerts", new_row("prom", event, 100.0, 100.0))
    return tx.alert_state("fp")


def end_columns(store) -> tuple[float | None, float | None]:
    row = store.query_one("SELECT ends_at, end_check_at FROM alerts WHERE fingerprint = 'fp'")
    return row["ends_at"], row["end_check_at"]


@pytest.mark.parametrize(
    ("resent_end", "expected"),
    [
        (500.0, (500.0, 340.0)),  # later, as every Prometheus re-send: the check stays
        (200.0, (200.0, 200.0)),  # nearer: the check comes with it
        (None, (None, None)),  # no end any more: nothing to check
    ],
)
def test_a_re_send_moves_the_end_check_only_when_the_end_comes_nearer_or_goes(
    store, resent_end, expected
):
    async def touch():
        def write(tx):
            state = alert_with_end(tx, 340.0)
            tx.touch_alert(state, 160.0, 100.0, resent_end)

        await store.write(write)

    asyncio.run(touch())
    assert end_columns(store) == expected


def migrated_again(path: str, write, migration: str, undo: str = "") -> Store:
    """A store whose rows ``write`` stored, opened again after ``migration`` is marked
    not applied (``undo`` takes back its schema change): the upgrade of an old file."""
    opened = Store(path)
    opened.open()
    asyncio.run(opened.write(write))
    opened.close()
    with sqlite3.connect(path) as conn:
        if undo:
            conn.executescript(undo)
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = ?", (migration,))
    reopened = Store(path)
    reopened.open()
    return reopened


def test_an_alert_changed_in_the_future_before_the_upgrade_comes_back_to_now(tmp_path):
    """Alerts a sender's fast clock poisoned before decode clamped event times would
    otherwise take every event as stale until that date."""
    path = str(tmp_path / "s.db")
    now = datetime.now(UTC).timestamp()
    event = Event(fingerprint="fp", status="firing", summary="disk full", labels={"a": "b"})
    future = new_row("src", event, now + 3e7, now)  # changed a year ahead
    migrated_again(path, lambda tx: tx.insert("alerts", future), "m013_no_future_changes").close()
    with sqlite3.connect(path) as conn:
        (last_change,) = conn.execute("SELECT last_change FROM alerts").fetchone()
    assert now <= last_change <= datetime.now(UTC).timestamp()


def test_incidents_open_at_the_upgrade_owe_a_resolved_message_to_everyone_paged(tmp_path):
    """Before hub told the paged targets of a resolution, none was ever told: an open
    incident's escalation owes it to everyone its timeline says a step paged."""
    path = str(tmp_path / "s.db")
    undo = "ALTER TABLE escalations DROP COLUMN paged"
    reopened = migrated_again(path, paged_incidents, "m014_paged_targets", undo)
    try:
        paged = {i: sorted(reopened.escalation(i)["paged"]) for i in (1, 2, 3)}  # type: ignore[index]
    finally:
        reopened.close()
    assert paged == {1: ["first", "schedule:primary/alice"], 2: [], 3: []}


INCIDENT = {
    "route_id": "root",
    "severity": "critical",
    "title": "checkout down",
    "labels": {},
    "receivers": ["ops"],
    "timing": {},
    "opened_at": 1.0,
    "updated_at": 1.0,
}
"""An incident row as an older hub stored it, less its group key and status."""


def paged_incidents(tx) -> None:
    """Incident 1 open with two steps run, 2 resolved after the same, 3 open unpaged."""
    for status, steps in (("open", 2), ("resolved", 2), ("open", 0)):
        row = {**INCIDENT, "group_key": f"g{status}{steps}", "status": status}
        incident_id = tx.insert("incidents", row)
        escalation = {"id": incident_id, "policy": "page", "plan": {}, "started_at": 1.0}
        tx.insert("escalations", {**escalation, "next_step": steps, "due_at": None})
        notified = [["first"], ["first", "schedule:primary/alice"]][:steps]
        for step, targets in enumerate(notified, start=1):
            tx.add_timeline(
                incident_id, 1.0, "escalated", None, {"step": step, "notified": targets}
            )


def test_escalations_at_the_upgrade_take_their_last_unack_from_the_timeline(tmp_path):
    """A page counts the time unacknowledged from the last unack: an incident a person
    unacknowledged before the upgrade has it from its timeline; the others have none,
    and count from their chain's start."""
    path = str(tmp_path / "s.db")

    def write(tx) -> None:
        paged_incidents(tx)
        for at in (5.0, 8.0):
            tx.add_timeline(1, at - 1, "acknowledged", "will", {"comment": ""})
            tx.add_timeline(1, at, "unacknowledged", "will", {"comment": ""})
        tx.add_timeline(3, 6.0, "acknowledged", "will", {"comment": ""})

    undo = "ALTER TABLE escalations DROP COLUMN unacked_at"
    reopened = migrated_again(path, write, "m030_unack_times", undo)
    try:
        unacked = [reopened.escalation(i)["unacked_at"] for i in (1, 2, 3)]  # type: ignore[index]
    finally:
        reopened.close()
    assert unacked == [8.0, None, None]


def test_incidents_at_the_upgrade_name_no_token_beside_who_acknowledged_or_resolved(tmp_path):
    """An older hub kept no token beside the person: its incidents keep who acted, and
    name no token that spoke for them, as if they had acted themselves."""
    path = str(tmp_path / "s.db")

    def write(tx) -> None:
        paged_incidents(tx)
        tx.update("incidents", 1, {"acknowledged_at": 2.0, "acknowledged_by": "alice"})
        tx.update("incidents", 2, {"resolved_at": 3.0, "resolved_by": "bob"})

    undo = """
        ALTER TABLE incidents DROP COLUMN acknowledged_via;
        ALTER TABLE incidents DROP COLUMN resolved_via;
    """
    reopened = migrated_again(path, write, "m033_incident_vouchers", undo)
    try:
        names = ("acknowledged_by", "acknowledged_via", "resolved_by", "resolved_via")
        rows = [tuple(reopened.incident(i)[n] for n in names) for i in (1, 2, 3)]  # type: ignore[index]
    finally:
        reopened.close()
    assert rows == [("alice", None, None, None), (None, None, "bob", None), (None,) * 4]


def test_heartbeats_at_the_upgrade_are_not_paused_and_keep_their_deadline(tmp_path):
    """An older hub paused nothing: its heartbeats come through watched as they were."""
    path = str(tmp_path / "s.db")
    beat = config.Heartbeat(name="backup", period=config.Duration(3600))

    def write(tx) -> dict:
        return heartbeats.create(tx, beat, 100.0)

    undo = "".join(
        f"ALTER TABLE heartbeats DROP COLUMN {column};"
        for column in ("paused_at", "paused_by", "paused_via", "pause_reason", "resumed_at")
    )
    reopened = migrated_again(path, write, "m034_heartbeat_pauses", undo)
    try:
        row = reopened.heartbeat("backup")
    finally:
        reopened.close()
    assert row is not None
    assert row["deadline"] == 100.0 + 3600 + 60
    assert [row[c] for c in ("paused_at", "paused_by", "pause_reason", "resumed_at")] == [None] * 4


def test_incidents_at_the_upgrade_count_their_recorded_reopens_as_episodes(tmp_path):
    """An ack link carries its incident's episode: an incident that reopened before the
    upgrade is past its first one, so a link sent about that first one stays refused."""
    path = str(tmp_path / "s.db")

    def write(tx) -> None:
        paged_incidents(tx)
        for _ in range(2):
            tx.add_timeline(1, 2.0, "reopened", "hub", {})

    undo = "ALTER TABLE incidents DROP COLUMN episode"
    reopened = migrated_again(path, write, "m016_incident_episodes", undo)
    try:
        episodes = [reopened.incident(i)["episode"] for i in (1, 2, 3)]  # type: ignore[index]
    finally:
        reopened.close()
    assert episodes == [3, 1, 1]


def test_bare_keys_move_under_their_source_at_the_upgrade_and_hub_forms_stay(tmp_path):
    """pd's bare key ``srv01/mysql`` is srv01's scoped ``mysql`` until pd's moves: the
    upgrade must not trip over it. Hashes (16 hex) and heartbeats keep their form."""
    path = str(tmp_path / "s.db")
    stored = [
        ("srv01", "mysql"),
        ("pd", "srv01/mysql"),
        ("am", "6b157f79b26a43ad"),
        ("heartbeat", "heartbeat:backup"),
    ]

    def write(tx):
        return [insert_alert(tx, *row) for row in stored]

    migrated_again(path, write, "m015_source_scoped_keys").close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT fingerprint, typeof(fingerprint) FROM alerts ORDER BY id")
        assert rows.fetchall() == [
            ("srv01/mysql", "text"),
            ("pd/srv01/mysql", "text"),
            ("6b157f79b26a43ad", "text"),
            ("heartbeat:backup", "text"),
        ]


def insert_alert(tx, source: str, fingerprint: str) -> None:
    event = Event(fingerprint=fingerprint, status="firing", summary="s", labels={"a": "b"})
    tx.insert("alerts", new_row(source, event, 1.0, 1.0))


def test_incidents_at_the_upgrade_take_their_title_from_a_firing_alert(tmp_path):
    """An open incident keeps a title some firing alert has; one whose first alert
    resolved before the upgrade takes the most severe firing alert's, the first stored;
    a resolved one keeps its title and names no alert until it reopens."""
    path = str(tmp_path / "s.db")
    incidents = {
        "open": ("open", [("checkout errors", "firing", "warning"), ("slow", "firing", "error")]),
        "moved": (
            "open",
            [
                ("db down", "resolved", "critical"),
                ("db slow", "firing", "warning"),
                ("db replication broken", "firing", "critical"),
                ("db disk full", "firing", "critical"),
            ],
        ),
        "over": ("resolved", [("cache down", "resolved", "warning")]),
    }

    def write(tx) -> None:
        for key, (status, alerts) in incidents.items():
            row = {**INCIDENT, "group_key": key, "status": status, "title": alerts[0][0]}
            incident_id = tx.insert("incidents", row)
            for summary, state, severity in alerts:
                event = Event(fingerprint=summary, status=state, summary=summary, severity=severity)
                tx.insert("alerts", {**new_row("src", event, 1.0, 1.0), "incident_id": incident_id})

    undo = "ALTER TABLE incidents DROP COLUMN title_alert_id"
    reopened = migrated_again(path, write, "m018_incident_title_alerts", undo)
    try:
        titles = [reopened.incident(i) for i in (1, 2, 3)]
    finally:
        reopened.close()
    assert [(t["title"], t["title_alert_id"]) for t in titles] == [  # type: ignore[index]
        ("checkout errors", 1),
        ("db replication broken", 5),
        ("cache down", None),
    ]


def test_the_alerts_of_due_incidents_are_counted_only_when_due_and_only_as_far_as_asked(
    store,
):
    """A worker asks whether its due incidents hold many alerts, to know where to run its
    round: each receiver due counts its incident's alerts, and an escalation its own."""

    def write(tx) -> None:
        for key, alerts, due_at in (("small", 3, 10.0), ("large", 5, 100.0)):
            row = {**INCIDENT, "group_key": key, "status": "open"}
            incident_id = tx.insert("incidents", row)
            for n in range(alerts):
                event = Event(fingerprint=f"{key}-{n}", status="firing", summary=key)
                tx.insert("alerts", {**new_row("src", event, 1.0, 1.0), "incident_id": incident_id})
            tx.add_receiver(incident_id, "ops", True, 1.0, (0.0, 0.0))
            tx.set_receiver_state(incident_id, "ops", {"due_at": due_at})
        plan = {"policy": "p", "plan": "[]", "started_at": 1.0, "due_at": 20.0}
        tx.insert("escalations", {"id": 2, **plan})

    asyncio.run(store.write(write))
    reach = store.due_alerts_reach
    assert [reach("incident_receivers", 9.0, n) for n in (1, 3)] == [False, False]
    assert [reach("incident_receivers", 50.0, n) for n in (3, 4)] == [True, False]
    assert [reach("incident_receivers", 100.0, n) for n in (8, 9)] == [True, False]
    assert [reach("escalations", 19.0, 1), reach("escalations", 20.0, 5)] == [False, True]
    assert reach("escalations", 20.0, 6) is False


def test_alerts_at_the_upgrade_take_their_firing_start_from_their_history(tmp_path):
    """A firing alert fired last after its last resolve; without history (retention
    pruned it), and for a resolved alert, its first sighting stands, as shown before."""
    path = str(tmp_path / "s.db")
    spells = {
        "again": [
            (10.0, "firing", 1),
            (20.0, "resolved", 1),
            (30.0, "firing", 1),
            (40.0, "firing", 1),
        ],
        "late": [(10.0, "firing", 1), (5.0, "resolved", 0)],  # a stale resolve, never applied
        "pruned": [],
    }

    def write(tx) -> None:
        for name, history in spells.items():
            event = Event(fingerprint=name, status="firing", summary=name, labels={"a": "b"})
            alert_id = tx.insert("alerts", new_row("src", event, 1.0, 2.0))
            for at, status, applied in history:
                row = {"at": at, "recorded_at": at, "status": status, "severity": "warning"}
                tx.add_history(alert_id, None, {**row, "summary": name, "applied": applied})
        gone = Event(fingerprint="gone", status="resolved", summary="gone", labels={"a": "b"})
        tx.insert("alerts", new_row("src", gone, 1.0, 2.0))

    undo = "ALTER TABLE alerts DROP COLUMN fired_at"
    migrated_again(path, write, "m021_firing_starts", undo).close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT fingerprint, fired_at FROM alerts ORDER BY id").fetchall()
    assert rows == [("again", 30.0), ("late", 10.0), ("pruned", 2.0), ("gone", 2.0)]


@pytest.mark.parametrize(
    "earlier",
    [None, b"4242", b"\xff42\xfe"],
    ids=["first start", "after a hub", "after a lock file not UTF-8"],
)
def test_serve_on_a_port_in_use_exits_2_naming_it_before_opening_the_store(tmp_path, earlier):
    """A start that fails leaves the folder as it was: the lock file it created goes,
    and one a hub before left keeps what it held byte for byte (the pid it named, or
    bytes a disk fault left), not the failed start's pid."""
    db = tmp_path / "hub.db"
    left = [] if earlier is None else ["hub.db.lock"]
    for name in left:
        (tmp_path / name).write_bytes(earlier)
    (tmp_path / "alerts.toml").write_text(
        f'[storage]\npath = "{db.as_posix()}"\n'
        '[[receivers]]\nname = "ops"\nurls = ["json://127.0.0.1:9/"]\n'
        '[route]\nreceiver = "ops"\n'
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_hub("serve", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    problem = f"  - server: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert problem in result.stderr.splitlines()
    assert "event=hub_started" not in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["alerts.toml", *left])
    assert [(tmp_path / name).read_bytes() for name in left] == [earlier] * len(left)


def test_a_start_refused_names_the_holder_of_a_lock_file_not_utf8_and_leaves_it(tmp_path):
    """Another process holds the store's lock file, and a fault left bytes in it that
    are not UTF-8: the refusal still names the store and shows them as text, no
    traceback, and the file keeps them."""
    db = tmp_path / "hub.db"
    lock = tmp_path / "hub.db.lock"
    lock.write_bytes(b"\xff42")
    (tmp_path / "alerts.toml").write_text(
        f'[storage]\npath = "{db.as_posix()}"\n'
        '[[receivers]]\nname = "ops"\nurls = ["json://127.0.0.1:9/"]\n'
        '[route]\nreceiver = "ops"\n'
    )
    with lock.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_hub("serve", "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"storage.path: {db.as_posix()} is served by another hub (pid \ufffd42" in result.stderr
    assert "Traceback" not in result.stderr
    assert lock.read_bytes() == b"\xff42"


def test_alerts_resolved_before_their_incident_last_reopened_are_of_a_past_episode(tmp_path):
    """The upgrade reads the reopens off the timeline: an alert that resolved before the
    last one is left out of the incident's messages; one resolved since, one still
    firing, and those of an incident that never reopened stay in them."""
    path = str(tmp_path / "s.db")
    alerts = [
        (1, "before", "resolved", 15.0),
        (1, "since", "resolved", 25.0),
        (1, "firing", "firing", None),
        (2, "never reopened", "resolved", 15.0),
    ]

    def write(tx) -> None:
        for key, episode in (("reopened", 3), ("once", 1)):
            tx.insert(
                "incidents", {**INCIDENT, "group_key": key, "status": "open", "episode": episode}
            )
        for at in (10.0, 20.0):
            tx.add_timeline(1, at, "reopened", "hub", {})
        for incident_id, name, status, resolved_at in alerts:
            event = Event(fingerprint=name, status=status, summary=name, labels={"a": "b"})
            row = new_row("src", event, 1.0, 1.0)
            tx.insert("alerts", {**row, "incident_id": incident_id, "resolved_at": resolved_at})

    undo = "ALTER TABLE alerts DROP COLUMN past_episode"
    reopened = migrated_again(path, write, "m023_past_episodes", undo)
    try:
        listed = asyncio.run(
            reopened.write(
                lambda tx: [[a["fingerprint"] for a in tx.episode_alerts(i)] for i in (1, 2)]
            )
        )
    finally:
        reopened.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT fingerprint, past_episode FROM alerts ORDER BY id").fetchall()
    assert rows == [("before", 2), ("since", None), ("firing", None), ("never reopened", None)]
    assert listed == [["since", "firing"], ["never reopened"]]


def test_notifications_retried_before_the_upgrade_count_every_attempt_their_log_holds(
    tmp_path,
):
    """A retry used to reset ``attempts`` while the log kept every attempt: such a row
    gets its count back, and its retry budget starts from the count it had before."""
    path = str(tmp_path / "s.db")

    def write(tx) -> None:
        paged_incidents(tx)
        for attempts, logged in ((1, 3), (2, 2)):  # a retried row, and one never retried
            row = tx.enqueue_notification(1, Target("ops", 0, "mailto"), "firing", b"{}", 1.0)
            for _ in range(logged):
                tx.record_attempt(row, 1.0, 5.0, "failed", "connection refused")
            tx.conn.execute("UPDATE notifications SET attempts = ? WHERE id = ?", (attempts, row))

    undo = "ALTER TABLE notifications DROP COLUMN retried_attempts"
    reopened = migrated_again(path, write, "m025_retry_budgets", undo)
    try:
        rows = [reopened.notification(i) for i in (1, 2)]
    finally:
        reopened.close()
    assert [(r["attempts"], r["retried_attempts"]) for r in rows] == [(3, 2), (2, 0)]  # type: ignore[index]


def test_dead_letter_entries_of_an_older_hub_take_the_one_shape_at_the_upgrade(tmp_path):
    """The dispatcher's ``notification_dead`` said ``reason`` and neither integration nor
    attempts, the sender's ``error`` with both: after the upgrade the timeline holds the
    sender's shape only. Other kinds keep their ``reason``."""
    path = str(tmp_path / "s.db")
    unsent = {"receiver": "pager", "status": "firing", "alerts": 1, "notification": 7}
    failed = {**unsent, "receiver": "ops", "integration": "mailto", "notification": 8}
    failed |= {"attempts": 3, "error": "connection refused"}
    resolved = {"reason": "all alerts resolved"}

    def write(tx) -> None:
        paged_incidents(tx)
        tx.add_timeline(1, 2.0, "notification_dead", None, {**unsent, "reason": "gone"})
        tx.add_timeline(1, 3.0, "notification_dead", None, failed)
        tx.add_timeline(1, 4.0, "resolved", "hub", resolved)

    reopened = migrated_again(path, write, "m028_dead_letter_entries")
    try:
        entries = [t["detail"] for t in reopened.timeline(1) if t["at"] > 1.0]
    finally:
        reopened.close()
    assert entries == [
        {**unsent, "integration": "none", "attempts": 0, "error": "gone"},
        failed,
        resolved,
    ]


def test_reads_aside_run_off_the_loop_at_most_aside_max_at_once_and_one_more_is_refused(
    tmp_path,
):
    """A read aside runs in a thread of its own, through its own connection, while the
    loop goes on committing writes; past ``aside_max`` one is refused (503, counted),
    not queued, and its slot comes back when the read ends."""
    refused: list[int] = []
    store = Store(str(tmp_path / "r.db"), aside_max=1, on_aside_refused=lambda: refused.append(1))
    store.open()
    release = threading.Event()

    def held_read() -> tuple[str, int]:
        release.wait(10)
        count = store.query_one("SELECT count(*) AS n FROM deliveries")["n"]
        return threading.current_thread().name, count

    async def flood() -> tuple[tuple[str, int], str, int]:
        first = asyncio.ensure_future(store.read_aside(held_read))
        await asyncio.sleep(0.05)
        with pytest.raises(Unavailable) as second:
            await store.read_aside(held_read)
        written = await store.write(insert_delivery("during"))  # the loop is not held
        release.set()
        return await first, second.value.detail, written

    try:
        (thread, count), detail, written = asyncio.run(flood())
        again = asyncio.run(store.read_aside(lambda: store.query("SELECT 1 AS one")))
    finally:
        store.close()
    assert thread.startswith("hub-store-read") and count == written == 1
    assert "[server] read_concurrency" in detail and refused == [1]
    assert again == [{"one": 1}]


def test_a_scrape_reads_in_its_own_thread_and_transaction_with_every_read_slot_taken(
    tmp_path,
):
    """``read_scrape`` takes no slot of ``read_aside``: with the only one held, so that
    one more read aside is refused, it runs, in the scrape thread, through that thread's
    own connection (the loop's is not touched) and in a read transaction. Once the store
    is closed, it is refused."""
    store = Store(str(tmp_path / "r.db"), aside_max=1)
    store.open()
    release = threading.Event()

    def scrape() -> tuple[str, sqlite3.Connection, bool, int]:
        reader = store._reader
        count = store.query_one("SELECT count(*) AS n FROM deliveries")["n"]
        return threading.current_thread().name, reader, reader.in_transaction, count

    async def beside_a_held_read() -> tuple[str, sqlite3.Connection, bool, int]:
        held = asyncio.ensure_future(store.read_aside(lambda: release.wait(10)))
        await asyncio.sleep(0.05)
        with pytest.raises(Unavailable):
            await store.read_aside(lambda: None)
        await store.write(insert_delivery("before"))
        scraped = await store.read_scrape(scrape)
        release.set()
        await held
        return scraped

    try:
        thread, reader, in_transaction, count = asyncio.run(beside_a_held_read())
        loop_reader = store._reader
    finally:
        store.close()
    assert thread.startswith("hub-store-scrape") and reader is not loop_reader
    assert in_transaction and count == 1
    with pytest.raises(Unavailable):
        asyncio.run(store.read_scrape(lambda: None))


@contextlib.contextmanager
def no_file_descriptor_left() -> Iterator[None]:
    """This process may open no more files while inside, as at its open-files limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(0)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_read_thread_that_cannot_open_its_connection_fails_that_read_alone(tmp_path):
    """A read thread opens its connection at its first read: with no file descriptor
    left, that read fails, its slot comes back, and once one is free the next read is
    answered. Opened at the thread's start, the failure broke every read aside until a
    restart."""
    store = Store(str(tmp_path / "r.db"), aside_max=1)
    store.open()

    async def first() -> list[dict]:
        with no_file_descriptor_left():
            return await store.read_aside(lambda: store.query("SELECT 1 AS one"))

    try:
        with pytest.raises(sqlite3.OperationalError):
            asyncio.run(first())
        again = asyncio.run(store.read_aside(lambda: store.query("SELECT 1 AS one")))
    finally:
        store.close()
    assert again == [{"one": 1}]


def test_a_read_aside_sees_the_store_as_its_first_read_did(tmp_path):
    """A read aside is one read transaction: a write the loop commits between two of its
    reads is not half seen (a list and its counts, alerts and their mutes, agree)."""
    store = Store(str(tmp_path / "r.db"))
    store.open()
    first_read, written = threading.Event(), threading.Event()

    def read_twice() -> tuple[int, int]:
        before = store.query_one("SELECT count(*) AS n FROM deliveries")["n"]
        first_read.set()
        written.wait(10)
        return before, store.query_one("SELECT count(*) AS n FROM deliveries")["n"]

    async def write_between() -> tuple[tuple[int, int], int]:
        reading = asyncio.ensure_future(store.read_aside(read_twice))
        await asyncio.to_thread(first_read.wait, 10)
        await store.write(insert_delivery("meanwhile"))
        written.set()
        seen = await reading
        return seen, await store.read_aside(
            lambda: store.query_one("SELECT count(*) AS n FROM deliveries")["n"]
        )

    try:
        seen, after = asyncio.run(write_between())
    finally:
        store.close()
    assert seen == (0, 0) and after == 1
