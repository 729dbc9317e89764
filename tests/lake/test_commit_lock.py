"""Concurrent runs committing the same lake's catalog never lose an entry."""

from __future__ import annotations

import json
import threading
from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta

import pytest

from rune_io.lake import Catalog, LakeError, write_stream_partition
from rune_io.lake import catalog as catalog_mod
from rune_io.lake import lock as lock_mod
from rune_io.lake.lock import LOCK, commit_lock, create_exclusive
from tests.lake.conftest import day_start, make_batches, make_stream

DAY = date(2024, 3, 1)


def run_and_commit(lake, run_id: str, n: int, errors: list) -> None:
    try:
        cat = Catalog(lake)
        for i in range(n):
            s = make_stream(f"{run_id}-s{i}", device="eb#8c31", axis="x")
            write_stream_partition(lake, s, DAY, make_batches(s, day_start(DAY), 50), run_id=run_id)
            cat.commit(run_id)  # commit after every file: many interleavings
    except Exception as exc:  # noqa: BLE001 - collected for the assertion
        errors.append(exc)


def concurrent_commits(lake, runs=4, files=6) -> list:
    errors: list = []
    threads = [
        threading.Thread(target=run_and_commit, args=(lake, f"run{r}", files, errors))
        for r in range(runs)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_commits_keep_every_entry(lake):
    errors = concurrent_commits(lake)
    assert errors == []
    cat = Catalog(lake)
    assert cat.pending_count() == 0
    assert len(cat.files()) == 4 * 6
    assert not lake.fs.exists(lake.path(LOCK))


def write_one(lake, run_id: str) -> str:
    s = make_stream(f"{run_id}-s", device="eb#8c31", axis="x")
    write_stream_partition(lake, s, DAY, make_batches(s, day_start(DAY), 50), run_id=run_id)
    return s.id


def commit_a_paused_while(lake, monkeypatch, other_commit) -> tuple[str, str, list]:
    """Run A writes a file and commits; its commit is held at its first segment write
    (after it read the pending objects and chose the segment's sequence number) while run
    B writes a file and ``other_commit(catalog)`` commits it. The one interleaving that
    loses an update, made deterministic with events instead of timing."""
    a_id = write_one(lake, "runA")
    a = Catalog(lake)
    reached, release = threading.Event(), threading.Event()
    real_append = a.store.append
    first = [True]

    def held_append(name, seq, table):
        if first[0]:
            first[0] = False
            reached.set()
            assert release.wait(60)
        real_append(name, seq, table)

    monkeypatch.setattr(a.store, "append", held_append)
    errors: list = []

    def commit_a():
        try:
            a.commit("runA")
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    ta = threading.Thread(target=commit_a)
    ta.start()
    try:
        assert reached.wait(60), "run A's commit never reached its segment write"
        b_id = write_one(lake, "runB")
        other_commit(Catalog(lake), release)
    finally:
        release.set()
        ta.join(60)
    return a_id, b_id, errors


def test_without_the_lock_an_entry_is_lost(local_lake, monkeypatch):
    """The race the lock closes is real: without it, B commits while A is between
    reading the pending objects and writing its segment; both choose the same sequence
    number, A's segment (without B's entry) replaces B's, and B's pending object is
    already deleted: B's file is gone from the catalog."""
    monkeypatch.setattr(catalog_mod, "commit_lock", lambda lake: nullcontext())

    def commit_b_now(cat, release):
        cat.commit("runB")  # runs to the end: nothing stops it

    a_id, b_id, errors = commit_a_paused_while(local_lake, monkeypatch, commit_b_now)
    assert errors == []
    streams = set(Catalog(local_lake).files().column("stream_id").to_pylist())
    assert a_id in streams
    assert b_id not in streams  # lost


def test_with_the_lock_the_same_interleaving_keeps_both(local_lake, monkeypatch):
    """The same interleaving under the lock: B's commit waits for A's (it is seen
    failing to take the lock while A is held), then folds B's entry; nothing is lost."""
    b_blocked = threading.Event()
    real_create = lock_mod.create_exclusive

    def watched_create(lake, rel, data):
        ok = real_create(lake, rel, data)
        if not ok and rel == LOCK:
            b_blocked.set()
        return ok

    monkeypatch.setattr(lock_mod, "create_exclusive", watched_create)
    b_errors: list = []
    threads: list[threading.Thread] = []

    def commit_b_in_turn(cat, release):
        def commit_b():
            try:
                cat.commit("runB")
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                b_errors.append(exc)

        threads.append(threading.Thread(target=commit_b))
        threads[0].start()
        assert b_blocked.wait(60), "run B's commit did not wait for the lock"
        release.set()  # A finishes; B takes the lock after it

    a_id, b_id, errors = commit_a_paused_while(local_lake, monkeypatch, commit_b_in_turn)
    threads[0].join(60)
    assert errors == [] and b_errors == []
    cat = Catalog(local_lake)
    assert {a_id, b_id} <= set(cat.files().column("stream_id").to_pylist())
    assert cat.pending_count() == 0


def test_exclusive_create_and_stale_lease(lake):
    assert create_exclusive(lake, "_catalog/x.lock", b"1")
    assert not create_exclusive(lake, "_catalog/x.lock", b"2")
    assert lake.read_bytes("_catalog/x.lock") == b"1"
    # a holder that died leaves a lock; it blocks only until its lease ends
    stale = {"token": "dead", "expires_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}
    assert create_exclusive(lake, LOCK, json.dumps(stale).encode())
    with commit_lock(lake, timeout=5):
        assert json.loads(lake.read_bytes(LOCK))["token"] != "dead"
    assert not lake.fs.exists(lake.path(LOCK))


def test_a_live_lock_times_out_with_a_clear_message(local_lake):
    with commit_lock(local_lake, lease=timedelta(minutes=1)):
        with pytest.raises(LakeError, match="locked for commit"):
            with commit_lock(local_lake, timeout=0.3, poll=0.05):
                pass
