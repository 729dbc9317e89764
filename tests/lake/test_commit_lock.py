"""Concurrent runs committing the same lake's catalog never lose an entry."""

from __future__ import annotations

import json
import threading
from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta

import pytest

from rune_io.lake import Catalog, LakeError, write_stream_partition
from rune_io.lake import catalog as catalog_mod
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


def test_without_the_lock_entries_can_be_lost(local_lake, monkeypatch):
    """The race the lock closes is real: the same workload without it loses entries or
    fails (run a few times; one interleaving is enough)."""
    monkeypatch.setattr(catalog_mod, "commit_lock", lambda lake: nullcontext())
    for _ in range(5):
        errors = concurrent_commits(local_lake, runs=4, files=6)
        if errors or len(Catalog(local_lake).files()) < 24 or Catalog(local_lake).pending_count():
            return
    pytest.skip("no lost update observed in 5 tries (timing); the locked test still holds")


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
