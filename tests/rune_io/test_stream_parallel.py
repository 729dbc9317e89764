"""Parallel V2 reads: sub-windows in worker threads, batches in time order, exact rows."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
import requests

from rune_emulator import ChaosConfig
from rune_io.arrow_schema import stream_schema
from rune_io.client import RuneClient
from rune_io.errors import DataError, ServerError
from rune_io.http import HttpClient, Response
from rune_io.retry import RetryPolicy
from rune_io.streams import plan_sub_windows, split_window
from rune_io.windows import to_unix_ns

from .conftest import EMU_PAGE_SIZE, emu_settings

DAY = datetime(2026, 10, 31, tzinfo=UTC)
LO, HI = DAY + timedelta(hours=10), DAY + timedelta(hours=12)  # 360,000 rows, 18 pages
S = 10**9


def accel(emu, patient: int = 0):
    pid = emu.cohort.patients[patient].id
    return next(
        s for s in emu.cohort.streams
        if s.patient_id == pid and s.stream_type.id == "acceleration"
    )  # fmt: skip


def planned(emu, stream, lo, hi, workers: int) -> list[tuple[int, int]]:
    """The sub-windows a parallel read of ``[lo, hi)`` uses after its first page."""
    t = emu.expected_table(stream.id, lo, hi).column("time").cast(pa.int64()).to_numpy()
    return plan_sub_windows(t[:EMU_PAGE_SIZE], to_unix_ns(hi), workers * 4)


def rows_in(emu, stream, lo, hi, pieces) -> list[int]:
    """Rows of each ``[a, b)`` (unix ns) of ``pieces`` in the ground truth of ``[lo, hi)``."""
    t = emu.expected_table(stream.id, lo, hi).column("time").cast(pa.int64()).to_numpy() * 1000
    return [int(((t >= a) & (t < b)).sum()) for a, b in pieces]


def read_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rune_io-read")]


# ------------------------------------------------------------------------ split_window


@pytest.mark.parametrize(
    ("lo", "hi", "parts"),
    [(0, 100 * S, 8), (7, 100 * S + 3, 8), (5 * S, 5 * S + 3, 8), (0, 10 * S, 1), (3, 9, 64)],
)
def test_split_window_covers_exactly(lo, hi, parts):
    pieces = split_window(lo, hi, parts)
    assert 1 <= len(pieces) <= parts
    assert pieces[0][0] == lo and pieces[-1][1] == hi
    assert all(a < b for a, b in pieces)
    assert all(p[1] == q[0] for p, q in zip(pieces, pieces[1:], strict=False))
    if hi - lo >= parts * S:
        assert all(b % S == 0 for _, b in pieces[:-1])  # inner bounds on whole seconds


def test_split_window_empty():
    assert split_window(5, 5, 4) == [] and split_window(6, 5, 4) == []


# ----------------------------------------------------------------- against the emulator


@pytest.mark.parametrize("parallel", [2, 3, 4])
def test_parallel_equals_expected_and_sequential(emu, rc, parallel):
    stream = accel(emu)
    emu.stats.reset()
    batches = list(rc.streams.read(stream, LO, HI, parallel=parallel))
    got = pa.Table.from_batches(batches, schema=stream_schema(stream.stream_type))
    expected = emu.expected_table(stream.id, LO, HI)
    assert got.equals(expected) and got.num_rows == 360_000
    assert got.equals(rc.streams.read_table(stream, LO, HI, parallel=1))
    times = got.column("time").cast(pa.int64()).to_numpy()
    assert (times[1:] > times[:-1]).all()  # strictly in time order, no duplicate
    assert max(b.num_rows for b in batches) <= EMU_PAGE_SIZE
    # page 0, then one chain per sub-window (parallel * 4 of them; 17 pages remain)
    assert len(planned(emu, stream, LO, HI, parallel)) == parallel * 4
    assert read_threads() == []


def test_plan_sub_windows_follows_first_page_density():
    page = [i * 10**6 for i in range(101)]  # 101 rows, one a second: a page is 100 s
    pieces = plan_sub_windows(page, 1100 * S + 1, 64)  # 1,000 s remain -> 10 pieces
    assert len(pieces) == 10 and pieces[0][0] == 100 * S + 1 and pieces[-1][1] == 1100 * S + 1
    assert len(plan_sub_windows(page, 1100 * S, 4)) == 4  # capped
    assert len(plan_sub_windows(page, 150 * S, 8)) == 1  # half a page left
    assert plan_sub_windows(page, 100 * S + 1, 8) == []
    gap = [0] + [(3600 + i) * 10**6 for i in range(1, 101)]  # a gap before most rows
    assert len(plan_sub_windows(gap, (3700 + 1000) * S, 64)) == 10


def test_one_page_window_is_one_request(emu, rc):
    stream = accel(emu)
    hi = LO + timedelta(minutes=5)  # 15,000 rows < one page
    emu.stats.reset()
    got = rc.streams.read_table(stream, LO, hi, parallel=4)
    assert got.equals(emu.expected_table(stream.id, LO, hi))
    assert emu.stats.count(path_prefix="/v2/streams") <= 1  # (logged once sent)


def test_two_page_window_follows_the_token(emu, rc):
    stream = accel(emu)
    hi = LO + timedelta(seconds=500)  # 25,000 rows: page 0, then ~1/4 page
    assert len(planned(emu, stream, LO, hi, 4)) == 1
    got = rc.streams.read_table(stream, LO, hi, parallel=4)
    assert got.equals(emu.expected_table(stream.id, LO, hi))
    assert read_threads() == []


def test_rows_on_sub_window_boundaries_counted_once(emu, rc):
    """50 Hz samples sit on whole seconds, where the sub-windows meet; odd window ends."""
    stream = accel(emu)
    lo = LO + timedelta(microseconds=13)
    hi = LO + timedelta(hours=1, microseconds=20_001)  # just after a sample
    pieces = planned(emu, stream, lo, hi, 2)
    assert len(pieces) == 8
    expected = emu.expected_table(stream.id, lo, hi)
    on_bound = {a for a, _ in pieces[1:]}
    times_ns = set((expected.column("time").cast(pa.int64()).to_numpy() * 1000).tolist())
    assert on_bound <= times_ns  # every inner boundary carries a sample
    got = rc.streams.read_table(stream, lo, hi, parallel=2)
    assert got.equals(expected)
    assert got.num_rows == expected.num_rows == 3600 * 50 + 1


def test_parallel_with_empty_sub_windows(emu, rc):
    stream = accel(emu)
    day0 = emu.expected_table(stream.id, DAY - timedelta(days=1), DAY).column("time")
    lo = day0[-1].as_py() - timedelta(minutes=30)  # the watch's last half hour of a day
    hi = DAY + timedelta(hours=9)  # the night, then the morning
    expected = emu.expected_table(stream.id, lo, hi)
    batches = list(rc.streams.read(stream, lo, hi, parallel=4))
    got = pa.Table.from_batches(batches, schema=stream_schema(stream.stream_type))
    assert got.equals(expected) and 0 < got.num_rows
    assert all(b.num_rows for b in batches)  # empty pages dropped
    pieces = planned(emu, stream, lo, hi, 4)
    counts = rows_in(emu, stream, lo, hi, pieces)
    assert len(pieces) == 16 and counts.count(0) >= 4  # the night


def test_parallel_all_empty_is_one_empty_batch(emu, rc):
    stream = accel(emu)
    night = DAY + timedelta(hours=1)
    batches = list(rc.streams.read(stream, night, night + timedelta(hours=2), parallel=3))
    assert [b.num_rows for b in batches] == [0]
    assert batches[0].schema == stream_schema(stream.stream_type)


def test_limit_reads_sequentially(emu, rc):
    stream = accel(emu)
    got = rc.streams.read_table(stream, LO, HI, limit=EMU_PAGE_SIZE + 5, parallel=4)
    assert got.equals(emu.expected_table(stream.id, LO, HI).slice(0, EMU_PAGE_SIZE + 5))


def test_parallel_under_chaos_equals_expected(emu, fake_sleep):
    stream = accel(emu)
    expected = emu.expected_table(stream.id, LO, HI)
    emu.stats.reset()
    emu.set_chaos(ChaosConfig.uniform(0.2, seed=5, delay_s=0.01))
    try:
        with RuneClient(emu_settings(emu, max_attempts=12), sleep=fake_sleep) as c:
            got = c.streams.read_table(stream, LO, HI, parallel=4)
        faults = sum(emu.stats.chaos.values())
    finally:
        emu.set_chaos(None)
    assert faults > 5, emu.stats.chaos
    assert got.equals(expected)
    assert len(fake_sleep.waits) >= faults - emu.stats.chaos.get("delay", 0)  # no real sleep


def test_settings_read_parallelism_is_the_default(emu):
    stream = accel(emu)
    seen: set[str] = set()
    orig = HttpClient._send

    def spy(self, method, url, params, json):
        seen.add(threading.current_thread().name)
        return orig(self, method, url, params, json)

    with RuneClient(emu_settings(emu, read_parallelism=3)) as c:
        assert c.streams.parallel == 3
        HttpClient._send = spy
        try:
            got = c.streams.read_table(stream, LO, HI)
        finally:
            HttpClient._send = orig
    assert got.equals(emu.expected_table(stream.id, LO, HI))
    workers = {n for n in seen if n.startswith("rune_io-read")}
    assert len(workers) == 3 and seen - workers == {threading.current_thread().name}


def test_one_session_per_worker_thread(emu, rc, monkeypatch):
    stream = accel(emu)
    used: dict[str, set[int]] = {}
    lock = threading.Lock()
    orig = HttpClient._send

    def spy(self, method, url, params, json):
        with lock:
            used.setdefault(threading.current_thread().name, set()).add(id(self.session))
        return orig(self, method, url, params, json)

    monkeypatch.setattr(HttpClient, "_send", spy)
    closed: list[requests.Session] = []
    orig_close = HttpClient.close
    monkeypatch.setattr(HttpClient, "close", lambda self: (closed.append(self), orig_close(self)))
    rc.streams.read_table(stream, LO, HI, parallel=4)
    main = used.pop(threading.current_thread().name)
    assert main == {id(rc.http.session)}  # page 0
    sessions = [s for ss in used.values() for s in ss]
    assert len(used) == 4 and all(len(s) == 1 for s in used.values())
    assert len(set(sessions)) == 4 and id(rc.http.session) not in sessions
    assert len(closed) == 4  # every worker's session closed at the end


# ----------------------------------------------------------------------------- errors


def _fail_sub_window(monkeypatch, k: int, pieces, reply: Response):
    """Every request of sub-window ``k`` gets ``reply``; the others go through."""
    orig = HttpClient._send
    start = pieces[k][0]

    def send(self, method, url, params, json):
        if params.get("start_time_ns") == start:
            return Response(reply.status, reply.headers, reply.content, url)
        return orig(self, method, url, params, json)

    monkeypatch.setattr(HttpClient, "_send", send)


def test_server_error_in_one_sub_window_surfaces_with_context(emu, monkeypatch, fake_sleep):
    stream = accel(emu)
    pieces = planned(emu, stream, LO, HI, 2)
    err = b'{"success": false, "error": {"message": "boom", "type": "Internal"}}'
    _fail_sub_window(
        monkeypatch, 5, pieces, Response(500, requests.structures.CaseInsensitiveDict(), err, "")
    )
    expected = emu.expected_table(stream.id, LO, HI)
    rows_before = EMU_PAGE_SIZE + sum(rows_in(emu, stream, LO, HI, pieces[:5]))
    got_rows = 0
    with RuneClient(emu_settings(emu), policy=RetryPolicy(max_attempts=3), sleep=fake_sleep) as c:
        with pytest.raises(ServerError) as ei:
            for batch in c.streams.read(stream, LO, HI, parallel=2):
                got_rows += batch.num_rows
    assert got_rows == rows_before < expected.num_rows  # everything before it, in order
    assert ei.value.status == 500 and "boom" in str(ei.value)
    note = "\n".join(ei.value.__notes__)
    assert stream.id in note and "sub-window 6/8" in note and "page 0" in note
    assert len(fake_sleep.waits) == 2  # retried (fake sleep), then raised
    assert read_threads() == []


def test_bad_page_in_one_sub_window_is_data_error_with_context(emu, monkeypatch, fake_sleep):
    stream = accel(emu)
    pieces = planned(emu, stream, LO, HI, 2)
    _fail_sub_window(
        monkeypatch, 2, pieces,
        Response(200, requests.structures.CaseInsensitiveDict(), b"time,acceleration\n1,abc\n", ""),
    )  # fmt: skip
    with RuneClient(emu_settings(emu, max_attempts=2), sleep=fake_sleep) as c:
        with pytest.raises(DataError) as ei:
            list(c.streams.read(stream, LO, HI, parallel=2))
    msg = str(ei.value)
    assert stream.id in msg and "sub-window 3/8" in msg and "page 0" in msg
    a = datetime.fromtimestamp(pieces[2][0] / S, UTC)
    assert a.isoformat() in msg
    assert read_threads() == []


def test_stopping_early_stops_the_workers(emu, rc):
    stream = accel(emu)
    gen = rc.streams.read(stream, LO, HI, parallel=4)
    assert next(gen).num_rows > 0  # page 0
    assert next(gen).num_rows > 0 and read_threads()
    gen.close()
    assert read_threads() == []
