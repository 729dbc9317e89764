"""Incremental planning rules: which days a refresh or backfill fetches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from rune_io.api.models import StreamMeta, StreamType
from rune_io.pipeline.plan import (
    Window,
    advance_watermark,
    chunk_windows,
    plan_backfill,
    plan_refresh,
)

D0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)


def stream(min_t: datetime, max_t: datetime, sid: str = "s1") -> StreamMeta:
    return StreamMeta(
        id=sid,
        patient_id="p",
        device_id="d",
        algorithm="a",
        stream_type=StreamType(id="t", name="t"),
        parameters=(("category", "c"), ("measurement", "m")),
        min_time=min_t.timestamp(),
        max_time=max_t.timestamp(),
    )


def days(ws: list[Window]) -> list[date]:
    return [w.day for w in ws]


def test_first_refresh_covers_all_data_day_by_day_last_day_partial():
    s = stream(D0 + timedelta(hours=7), D0 + 2 * DAY + timedelta(hours=10))
    ws = plan_refresh(s, None)
    assert days(ws) == [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
    assert ws[0].start == D0 and ws[0].complete
    assert ws[-1].end == D0 + 2 * DAY + timedelta(hours=10) + US
    assert not ws[-1].complete


def test_second_refresh_with_no_new_data_fetches_nothing():
    s = stream(D0, D0 + 2 * DAY + timedelta(hours=10))
    first = plan_refresh(s, None)
    wm = advance_watermark(None, s, first)
    assert wm == first[-1].end
    assert plan_refresh(s, wm) == []


def test_refresh_after_clock_advance_refetches_only_the_partial_day_and_new_days():
    s = stream(D0, D0 + 2 * DAY + timedelta(hours=10))
    wm = advance_watermark(None, s, plan_refresh(s, None))
    later = stream(D0, D0 + 4 * DAY + timedelta(hours=1))
    ws = plan_refresh(later, wm)
    assert days(ws) == [date(2026, 11, 3), date(2026, 11, 4), date(2026, 11, 5)]
    assert ws[0].complete  # the formerly partial day is fetched whole now


def test_lookback_refetches_complete_days_before_the_watermark():
    s = stream(D0, D0 + 5 * DAY - timedelta(seconds=1))
    wm = advance_watermark(None, s, plan_refresh(s, None))
    assert plan_refresh(s, wm) == []
    # the last (partial) day plus the two complete days before it
    assert days(plan_refresh(s, wm, lookback_days=2)) == [
        date(2026, 11, 3),
        date(2026, 11, 4),
        date(2026, 11, 5),
    ]


def test_since_bounds_the_first_load_and_until_caps_the_end():
    s = stream(D0, D0 + 10 * DAY)
    ws = plan_refresh(s, None, since=D0 + 7 * DAY + timedelta(hours=3), until=D0 + 9 * DAY)
    assert days(ws) == [date(2026, 11, 8), date(2026, 11, 9)]


def test_stream_without_data_plans_nothing():
    s = StreamMeta("x", "p", "d", "a", StreamType("t", "t"))
    assert plan_refresh(s, None) == []
    assert plan_backfill(s, D0, D0 + DAY) == []


def test_backfill_is_day_aligned_and_skips_existing_days_unless_overwrite():
    s = stream(D0, D0 + 10 * DAY)
    ws = plan_backfill(s, D0 + 2 * DAY + timedelta(hours=5), D0 + 4 * DAY + timedelta(hours=1))
    assert days(ws) == [date(2026, 11, 3), date(2026, 11, 4), date(2026, 11, 5)]
    assert all(w.complete for w in ws)
    skipped = plan_backfill(s, D0 + 2 * DAY, D0 + 5 * DAY, existing=[D0 + 3 * DAY])
    assert days(skipped) == [date(2026, 11, 3), date(2026, 11, 5)]
    again = plan_backfill(s, D0 + 2 * DAY, D0 + 5 * DAY, existing=[D0 + 3 * DAY], overwrite=True)
    assert len(again) == 3


def test_watermark_stops_at_a_gap():
    s = stream(D0, D0 + 5 * DAY)
    ws = plan_refresh(s, None)
    landed = [w for w in ws if w.day != date(2026, 11, 3)]
    assert advance_watermark(None, s, landed) == D0 + 2 * DAY
    # the next refresh resumes at the gap
    assert days(plan_refresh(s, D0 + 2 * DAY))[0] == date(2026, 11, 3)


def test_watermark_never_moves_back_and_ignores_detached_ranges():
    s = stream(D0, D0 + 10 * DAY)
    wm = D0 + 6 * DAY
    early = plan_backfill(s, D0, D0 + 2 * DAY)
    assert advance_watermark(wm, s, early) == wm
    detached = plan_backfill(s, D0 + 8 * DAY, D0 + 9 * DAY)
    assert advance_watermark(D0 + 3 * DAY, s, detached) == D0 + 3 * DAY


def test_chunks_group_consecutive_windows_per_stream():
    a = stream(D0, D0 + 10 * DAY, "a")
    b = stream(D0, D0 + 3 * DAY, "b")
    chunks = chunk_windows(a, plan_refresh(a, None), 4) + chunk_windows(b, plan_refresh(b, None), 4)
    assert [(c.key, len(c.windows)) for c in chunks] == [
        ("a", 4),
        ("a", 4),
        ("a", 3),
        ("b", 4),
    ]
    assert chunks[1].start == D0 + 4 * DAY
    with pytest.raises(ValueError, match="at least 1 day"):
        chunk_windows(a, [], 0)


def monthly(stream, t):
    start = datetime(t.year, t.month, 1, tzinfo=UTC)
    end = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def test_monthly_partitions_refetch_the_open_month_whole():
    s = stream(datetime(2026, 9, 20, tzinfo=UTC), datetime(2026, 11, 3, 12, tzinfo=UTC))
    ws = plan_refresh(s, None, partitioning=monthly)
    assert [(w.start.month, w.complete) for w in ws] == [(9, True), (10, True), (11, False)]
    assert ws[0].start == datetime(2026, 9, 1, tzinfo=UTC)
    wm = advance_watermark(None, s, ws)
    later = stream(datetime(2026, 9, 20, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))
    again = plan_refresh(later, wm, partitioning=monthly)
    assert [(w.start, w.complete) for w in again] == [(datetime(2026, 11, 1, tzinfo=UTC), False)]
    back = plan_backfill(
        later,
        datetime(2026, 10, 10, tzinfo=UTC),
        datetime(2026, 10, 11, tzinfo=UTC),
        partitioning=monthly,
    )
    assert [(w.start, w.end) for w in back] == [
        (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    ]


def test_pack_chunks_packs_light_chunks_per_group_and_keeps_heavy_ones_alone():
    from rune_io.pipeline import StreamSource
    from rune_io.pipeline.plan import Chunk
    from rune_io.pipeline.units import pack_chunks

    def ch(sid, n=1):
        src = StreamSource(stream(D0, D0 + n * DAY, sid))
        return Chunk(src, tuple(Window(sid, D0 + i * DAY, D0 + (i + 1) * DAY) for i in range(n)))

    cost = {"heavy": 10.0, "a": 1.0, "b": 1.0, "c": 1.0, "d": 3.0}
    group = {"heavy": "p1", "a": "p1", "b": "p1", "c": "p2", "d": "p1"}
    chunks = [ch("a"), ch("heavy"), ch("b"), ch("d"), ch("c")]
    units = pack_chunks(chunks, lambda c: cost[c.key], 4.0, lambda c: group[c.key])
    assert [[c.key for c in u.chunks] for u in units] == [["heavy"], ["a", "b"], ["d"], ["c"]]
    assert units[1].label.startswith("2 chunks")
    with pytest.raises(ValueError, match="positive"):
        pack_chunks(chunks, lambda c: 1.0, 0)


def _accel(id: str, patient: str = "p", days: int = 14) -> StreamMeta:
    """A 50 Hz watch acceleration axis from D0 over ``days`` days."""
    return StreamMeta(
        id,
        patient,
        "d",
        "a",
        StreamType("acceleration", "Acceleration"),
        (("category", "motion"), ("measurement", "user")),
        D0.timestamp(),
        (D0 + days * DAY).timestamp(),
    )


def _heart_rate(id: str, patient: str = "p", days: int = 14) -> StreamMeta:
    """A heart-rate stream from D0 over ``days`` days."""
    return StreamMeta(
        id,
        patient,
        "d",
        "a",
        StreamType("rate-per-min", "Rate per minute"),
        (("category", "vitals"), ("measurement", "heart_rate")),
        D0.timestamp(),
        (D0 + days * DAY).timestamp(),
    )


def test_plan_units_learns_rates_from_the_catalog():
    from rune_io.pipeline import plan_units, rows_per_day

    fast, hr = _accel("fast"), _heart_rate("hr")
    chunks = chunk_windows(fast, plan_refresh(fast, None), 7)
    chunks += chunk_windows(hr, plan_refresh(hr, None), 7)
    # priors: a week of 50 Hz is heavy (alone); heart rate weeks, and the 1 us window at
    # the end of the 50 Hz stream, are light and share a task
    units = plan_units(chunks, {})
    assert sorted(len(u.chunks) for u in units) == [1, 1, 4]
    # measured: this 50 Hz stream turned out slow, so everything shares one task
    files = [
        {
            "stream_id": "fast",
            "patient_id": "p",
            "partition": "date=2026-11-01",
            "partition_start": D0,
            "max_time": D0 + DAY,
            "rows": 100,
            "deleted": None,
        },
    ]
    rates = rows_per_day(files)
    assert rates == {"fast": 100.0}
    assert len(plan_units(chunks, rates)) == 1


def test_plan_units_put_the_heaviest_first():
    """Longest processing time first, across patients: a patient's light unit planned
    first does not make the other patient's 50 Hz weeks start last."""

    from rune_io.pipeline import plan_units

    hr, fast = _heart_rate("hr", "p1"), _accel("fast", "p2")
    chunks = chunk_windows(hr, plan_refresh(hr, None), 7)
    chunks += chunk_windows(fast, plan_refresh(fast, None), 7)
    units = plan_units(chunks, {})
    assert [[c.key for c in u.chunks] for u in units] == [["fast"], ["fast"], ["hr"] * 3, ["fast"]]


def test_plan_units_pack_to_the_run_parallelism():
    """With the run's workers, units aim at about one per worker (never above
    TASK_ROWS_MAX rows): ten 50 Hz days of one patient (a prior of 4.32 M rows each) are
    10 units alone, 1 for one worker, 2 for two, 5 for four; another patient's chunks
    never join them."""
    from dataclasses import replace

    from rune_io.pipeline import plan_units
    from rune_io.pipeline.units import TASK_ROWS_MAX

    base = _accel("s0", days=1)

    def days(n: int) -> list:
        out = []
        for i in range(n):
            s = replace(base, id=f"s{i}")
            out += chunk_windows(s, plan_refresh(s, None), 7)
        return out

    chunks = days(10)
    assert len(plan_units(chunks, {})) == 10
    # 1 worker: the whole 43.2 M rows in one unit
    assert [len(u.chunks) for u in plan_units(chunks, {}, parallelism=1)] == [10]
    # 2 workers: ~21.6 M rows a unit, five days each
    assert [len(u.chunks) for u in plan_units(chunks, {}, parallelism=2)] == [5, 5]
    # 4 workers: ~10.8 M rows a unit, two days each
    assert [len(u.chunks) for u in plan_units(chunks, {}, parallelism=4)] == [2] * 5
    # a unit never aims above TASK_ROWS_MAX: 15 days (64.8 M rows) on 1 worker are 2
    big = plan_units(days(15), {}, parallelism=1)
    assert [len(u.chunks) for u in big] == [11, 4]  # the heavier first
    assert 11 * 4_320_000 <= TASK_ROWS_MAX < 12 * 4_320_000
    other = replace(base, id="q", patient_id="q")
    mixed = plan_units(
        chunks + chunk_windows(other, plan_refresh(other, None), 7), {}, parallelism=1
    )
    assert all(len({c.source.patient_id for c in u.chunks}) == 1 for u in mixed)
    assert sum(len(u.chunks) for u in mixed) == 11
