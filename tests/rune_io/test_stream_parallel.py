"""Parallel V2 reads: sub-windows in worker threads, batches in time order, exact rows."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
import requests

from rune_emulator import ChaosConfig
from rune_io.api.arrow_schema import stream_schema
from rune_io.api.client import RuneClient
from rune_io.api.http import HttpClient, Response
from rune_io.api.retry import RetryPolicy
from rune_io.api.streams import plan_sub_windows, split_window
from rune_io.errors import DataError, ServerError
from rune_io.times import to_unix_ns
from tests.truth import assert_equals_truth

from .conftest import EMU_PAGE_SIZE, emu_settings

DAY = datetime(2026, 10, 31, tzinfo=UTC)
S = 10**9


def accel(emu, patient: int = 0):
    pid = emu.cohort.patients[patient].id
    return next(
        s for s in emu.cohort.streams
        if s.patient_id == pid and s.stream_type.id == "acceleration"
    )  # fmt: skip


def busy(emu, patient: int = 0) -> tuple[datetime, datetime]:
    """90 minutes from the day's first watch recording (50 Hz, ~13 pages of 20,000)."""
    t = emu.expected_table(accel(emu, patient).id, DAY, DAY + timedelta(days=1)).column("time")
    lo = datetime.fromtimestamp(t[0].as_py() // S, UTC)
    return lo, lo + timedelta(minutes=90)


def truth(emu, stream, lo, hi) -> pa.Table:
    return emu.expected_table(stream.id, lo, hi)


def same(got: pa.Table, want: pa.Table) -> bool:
    assert_equals_truth(got, want)
    return True


def planned(emu, stream, lo, hi, workers: int) -> list[tuple[int, int]]:
    """The sub-windows a parallel read of ``[lo, hi)`` uses after its first page."""
    t = emu.expected_table(stream.id, lo, hi).column("time").to_numpy()
    return plan_sub_windows(t[:EMU_PAGE_SIZE], to_unix_ns(hi), workers * 4)


def rows_in(emu, stream, lo, hi, pieces) -> list[int]:
    """Rows of each ``[a, b)`` (unix ns) of ``pieces`` in the ground truth of ``[lo, hi)``."""
    t = emu.expected_table(stream.id, lo, hi).column("time").to_numpy()
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
    lo, hi = busy(emu)
    batches = list(rc.streams.read(stream, lo, hi, parallel=parallel))
    got = pa.Table.from_batches(batches)
    expected = truth(emu, stream, lo, hi)
    assert same(got, expected) and got.num_rows > 5 * EMU_PAGE_SIZE
    assert got.equals(rc.streams.read_table(stream, lo, hi, parallel=1))
    times = got.column("time_ns").to_numpy()
    assert (times[1:] > times[:-1]).all()  # strictly in time order, no duplicate
    assert max(b.num_rows for b in batches) <= EMU_PAGE_SIZE
    assert len(planned(emu, stream, lo, hi, parallel)) > 1  # page 0, then sub-windows
    assert read_threads() == []


def test_plan_sub_windows_follows_first_page_density():
    page = [i * S for i in range(101)]  # 101 rows, one a second: a page is 100 s
    pieces = plan_sub_windows(page, 1100 * S, 64)  # 1,000 s remain -> 10 pieces
    # the rest starts *at* the page's last time: rows sharing it may follow on page 1
    assert len(pieces) == 10 and pieces[0][0] == 100 * S and pieces[-1][1] == 1100 * S
    assert len(plan_sub_windows(page, 1100 * S, 4)) == 4  # capped
    assert len(plan_sub_windows(page, 150 * S, 8)) == 1  # half a page left
    assert plan_sub_windows(page, 100 * S, 8) == []
    assert plan_sub_windows([5 * S] * 10, 100 * S, 8) == []  # one time only: follow the token
    gap = [0] + [(3600 + i) * S for i in range(1, 101)]  # a gap before most rows
    assert len(plan_sub_windows(gap, (3700 + 1000) * S, 64)) == 10


def test_one_page_window_is_one_request(emu, rc):
    stream = accel(emu)
    lo, _ = busy(emu)
    hi = lo + timedelta(minutes=5)  # ~15,000 rows < one page
    emu.stats.reset()
    got = rc.streams.read_table(stream, lo, hi, parallel=4)
    assert same(got, truth(emu, stream, lo, hi))
    assert emu.stats.count(path_prefix="/v2/streams") <= 1  # (logged once sent)


def test_two_page_window_follows_the_token(emu, rc):
    stream = accel(emu)
    lo, _ = busy(emu)
    hi = lo + timedelta(seconds=500)  # ~25,000 rows: page 0, then ~1/4 page
    assert len(planned(emu, stream, lo, hi, 4)) == 1
    got = rc.streams.read_table(stream, lo, hi, parallel=4)
    assert same(got, truth(emu, stream, lo, hi))
    assert read_threads() == []


def test_odd_window_ends_counted_once(emu, rc):
    """Window ends between samples and sub-windows cut anywhere: every row once."""
    stream = accel(emu)
    lo, hi = busy(emu)
    lo, hi = lo + timedelta(microseconds=13), hi - timedelta(microseconds=7)
    pieces = planned(emu, stream, lo, hi, 2)
    assert len(pieces) > 2
    expected = truth(emu, stream, lo, hi)
    assert sum(rows_in(emu, stream, lo, hi, pieces)) + EMU_PAGE_SIZE >= expected.num_rows
    assert same(rc.streams.read_table(stream, lo, hi, parallel=2), expected)


def test_parallel_with_empty_sub_windows(emu, rc):
    stream = accel(emu)
    day0 = emu.expected_table(stream.id, DAY - timedelta(days=1), DAY).column("time")
    lo = datetime.fromtimestamp(day0[-1].as_py() // S, UTC) - timedelta(minutes=30)
    hi = DAY + timedelta(hours=9)  # the night, then the morning
    expected = truth(emu, stream, lo, hi)
    batches = list(rc.streams.read(stream, lo, hi, parallel=4))
    got = pa.Table.from_batches(batches)
    assert same(got, expected) and 0 < got.num_rows
    assert all(b.num_rows for b in batches)  # empty pages dropped


def test_parallel_all_empty_is_one_empty_batch(emu, rc):
    stream = accel(emu)
    night = DAY + timedelta(hours=1)
    batches = list(rc.streams.read(stream, night, night + timedelta(hours=2), parallel=3))
    assert [b.num_rows for b in batches] == [0]
    assert batches[0].schema == stream_schema(stream.stream_type)


def test_limit_reads_sequentially(emu, rc):
    stream = accel(emu)
    lo, hi = busy(emu)
    got = rc.streams.read_table(stream, lo, hi, limit=EMU_PAGE_SIZE + 5, parallel=4)
    assert same(got, truth(emu, stream, lo, hi).slice(0, EMU_PAGE_SIZE + 5))


def test_parallel_under_chaos_equals_expected(emu, fake_sleep):
    stream = accel(emu)
    lo, hi = busy(emu)
    expected = truth(emu, stream, lo, hi)
    emu.stats.reset()
    emu.set_chaos(ChaosConfig.uniform(0.2, seed=5, delay_s=0.01))
    try:
        with RuneClient(emu_settings(emu, max_attempts=12), sleep=fake_sleep) as c:
            got = c.streams.read_table(stream, lo, hi, parallel=4)
        faults = sum(emu.stats.chaos.values())
    finally:
        emu.set_chaos(None)
    assert faults > 3, emu.stats.chaos
    assert same(got, expected)
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
            got = c.streams.read_table(stream, *busy(emu))
        finally:
            HttpClient._send = orig
    assert same(got, truth(emu, stream, *busy(emu)))
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
    rc.streams.read_table(stream, *busy(emu), parallel=4)
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
    LO, HI = busy(emu)
    pieces = planned(emu, stream, LO, HI, 2)
    n = len(pieces)
    err = b'{"success": false, "error": {"message": "boom", "type": "Internal"}}'
    _fail_sub_window(
        monkeypatch, 5, pieces, Response(500, requests.structures.CaseInsensitiveDict(), err, "")
    )
    expected = emu.expected_table(stream.id, LO, HI)
    page0 = expected.column("time").to_numpy()[:EMU_PAGE_SIZE]
    kept = int((page0 < pieces[0][0]).sum())  # page 0 leaves its last time to piece 1
    rows_before = kept + sum(rows_in(emu, stream, LO, HI, pieces[:5]))
    got_rows = 0
    with RuneClient(emu_settings(emu), policy=RetryPolicy(max_attempts=3), sleep=fake_sleep) as c:
        with pytest.raises(ServerError) as ei:
            for batch in c.streams.read(stream, LO, HI, parallel=2):
                got_rows += batch.num_rows
    assert got_rows == rows_before < expected.num_rows  # everything before it, in order
    assert ei.value.status == 500 and "boom" in str(ei.value)
    note = "\n".join(ei.value.__notes__)
    assert stream.id in note and f"sub-window 6/{n}" in note and "page 0" in note
    assert len(fake_sleep.waits) == 2  # retried (fake sleep), then raised
    assert read_threads() == []


def test_bad_page_in_one_sub_window_is_data_error_with_context(emu, monkeypatch, fake_sleep):
    stream = accel(emu)
    LO, HI = busy(emu)
    pieces = planned(emu, stream, LO, HI, 2)
    n = len(pieces)
    _fail_sub_window(
        monkeypatch, 2, pieces,
        Response(200, requests.structures.CaseInsensitiveDict(), b"time,acceleration\n1,abc\n", ""),
    )  # fmt: skip
    with RuneClient(emu_settings(emu, max_attempts=2), sleep=fake_sleep) as c:
        with pytest.raises(DataError) as ei:
            list(c.streams.read(stream, LO, HI, parallel=2))
    msg = str(ei.value)
    assert stream.id in msg and f"sub-window 3/{n}" in msg and "page 0" in msg
    a = datetime.fromtimestamp(pieces[2][0] / S, UTC)
    assert a.isoformat() in msg
    assert read_threads() == []


def test_stopping_early_stops_the_workers(emu, rc):
    stream = accel(emu)
    gen = rc.streams.read(stream, *busy(emu), parallel=4)
    assert next(gen).num_rows > 0  # page 0
    assert next(gen).num_rows > 0 and read_threads()
    gen.close()
    assert read_threads() == []
