"""Backfill coverage: the vectorized check over a snapshot (:meth:`Snapshot.covered`)
agrees with its definition (:func:`rune_io.pipeline.plan.covers`) on daily and monthly files, for
upstream spans that grew later, shrank, or stayed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from rune_io.lake import Catalog, write_stream_partition
from rune_io.lake.snapshot import stream_bounds
from rune_io.pipeline import lake_partitioning, lake_table
from rune_io.pipeline.plan import covers, data_bounds
from tests.lake.conftest import TREMOR_TYPE, day_start, entries_between, make_batches, make_stream

T0 = datetime(2024, 3, 10, tzinfo=UTC)  # upstream's first data when the lake was loaded


def _loaded(lake):
    daily = make_stream("s-daily", axis="x")
    monthly = make_stream(
        "s-month", category="symptom", measurement="tremor", stream_type=TREMOR_TYPE
    )
    out = []
    for s in (daily, monthly):
        at_fetch = replace(
            s, min_time=T0.timestamp(), max_time=(T0 + timedelta(days=2, hours=12)).timestamp()
        )
        for d in (date(2024, 3, 10), date(2024, 3, 11), date(2024, 3, 12)):
            start = lake_partitioning(at_fetch, day_start(d))[0]
            if d == date(2024, 3, 10) or s is daily:
                write_stream_partition(
                    lake, at_fetch, d, make_batches(at_fetch, max(start, T0) + timedelta(hours=1), 500, hz=0.01),
                    run_id="r1",
                )  # fmt: skip
        out.append(s)
    Catalog(lake).commit()
    return out


@pytest.mark.parametrize(
    "lo_days,hi_days,n_covered",
    # same span; older history appeared; data grew past the fetch; both; shrank
    [(0, 2.5, 4), (-5, 2.5, 3), (0, 10, 2), (-40, 40, 2), (0, 1, 4)],
)
def test_vectorized_coverage_is_the_definition(local_lake, lo_days, hi_days, n_covered):
    streams = _loaded(local_lake)
    now = [
        replace(s, min_time=(T0 + timedelta(days=lo_days)).timestamp(), max_time=(T0 + timedelta(days=hi_days)).timestamp())
        for s in streams
    ]  # fmt: skip
    start, until = T0 - timedelta(days=40), T0 + timedelta(days=20)
    snap = Catalog(local_lake).snapshot(coverage=(start, until))
    got = snap.covered(
        stream_bounds([(s.id, lake_table(s), *data_bounds(s)) for s in now]), start, until
    )
    entries = entries_between(snap, start, until)
    want: dict[str, set[datetime]] = {}
    for s in now:
        for e in entries.get(s.id, []):
            ps = e["partition_start"]
            fetched = (e["stream_min_time"], e["stream_max_time"])
            if covers(s, lake_partitioning(s, ps), fetched, until):
                want.setdefault(s.id, set()).add(ps)
    assert got == want
    assert sum(len(v) for v in got.values()) == n_covered
    assert sum(len(v) for v in entries.values()) == 4  # 3 daily files, 1 monthly
