"""refresh end to end: emulator over HTTP -> Prefect flow -> Parquet lake -> DuckDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import duckdb
import pytest

from rune_io.lake import Catalog, open_lake
from rune_io.pipeline.plan import floor_day
from rune_lake.flows.backfill import BackfillRange, backfill
from rune_lake.flows.refresh import refresh
from rune_lake.flows.run import IncompleteRun
from tests.flows.conftest import LIGHT, NOW, emulator
from tests.truth import assert_lake_equals_truth, category, expected, lake_rows

US = timedelta(microseconds=1)


def data_requests(emu) -> list[dict[str, list[str]]]:
    return [parse_qs(q) for (_m, path, q, _s) in emu.stats.log if path.startswith("/v2/streams")]


def test_refresh_then_nothing_then_only_new_data(tmp_path):
    lake = str(tmp_path / "lake")
    with emulator() as emu:
        rep = refresh(lake=lake, categories=LIGHT)
        assert rep.ok and rep.rows > 0
        light = [s for s in emu.cohort.streams if category(s) in LIGHT]
        assert rep.streams == len(light) + len(emu.cohort.patients)  # + events
        types = {s.stream_type.id for s in light}
        for s in light:  # every stream, every column, every nanosecond
            assert_lake_equals_truth(lake, emu, s)
        assert {"duration", "percentage", "rate-per-min", "span", "boolean"} <= types

        # right after: no stream data is fetched again
        emu.stats.reset()
        again = refresh(lake=lake, categories=LIGHT)
        assert again.windows_planned == 0 and data_requests(emu) == []
        assert f"up to date: {rep.streams} streams checked" in again.text(), again.text()

        # the clock moves: only the open day and the new data are fetched
        emu.stats.reset()
        emu.set_now(NOW + timedelta(hours=20))
        later = refresh(lake=lake, categories=LIGHT)
        assert later.ok and later.rows > 0
        starts = [int(q["start_time_ns"][0]) for q in data_requests(emu) if "start_time_ns" in q]
        assert starts, "the advanced clock must produce new windows"
        first_day = floor_day(NOW)
        assert min(starts) >= int(first_day.timestamp()) * 10**9 - 1  # nothing before the open day
        for s in light:
            assert_lake_equals_truth(lake, emu, s)

        # the catalog agrees with the files and holds per-stream watermarks
        cat = Catalog(open_lake(lake))
        files = cat.files().to_pylist()
        on_disk = {
            str(p.relative_to(tmp_path / "lake"))
            for p in (tmp_path / "lake").rglob("*.parquet")
            if "_catalog" not in p.parts
        }
        assert {f["path"] for f in files} == on_disk
        marks = cat.watermarks()
        assert all(marks[s.id] > NOW for s in light)


def test_events_land_in_their_table(tmp_path):
    lake = str(tmp_path / "lake")
    with emulator(patients=1) as emu:
        refresh(lake=lake, categories=["symptom"])
        pid = emu.cohort.patients[0].id
        want = [e for e in emu.cohort.events(pid)]
        got = duckdb.sql(
            f"SELECT event_id, type, time FROM read_parquet('{lake}/events/**/*.parquet') ORDER BY time, event_id"
        ).fetchall()
        assert len(got) == len(want) > 0
        assert {g[0] for g in got} == {e.id for e in want}
        assert {g[1] for g in got} == {e.type for e in want}


def test_fast_stream_day_matches_the_api_exactly(tmp_path):
    lake = str(tmp_path / "lake")
    with emulator(patients=1, days=1) as emu:
        rep = refresh(lake=lake, categories=["motion"], include_events=False)
        assert rep.ok
        motion = [s for s in emu.cohort.streams if category(s) == "motion"]
        accel = [s for s in motion if s.stream_type.id == "acceleration"]
        assert accel and max(assert_lake_equals_truth(lake, emu, s) for s in accel) > 100_000
        for s in motion:
            assert_lake_equals_truth(lake, emu, s)


def test_backfill_overwrite_rewrites_only_revised_partitions_and_keeps_watermarks(tmp_path):
    lake = str(tmp_path / "lake")
    with emulator(patients=1) as emu:
        refresh(lake=lake, categories=["vitals", "neural"], include_events=False)
        cat = Catalog(open_lake(lake))
        marks = cat.watermarks()
        before = {f["path"]: f["run_id"] for f in cat.files().to_pylist()}

        # without overwrite: everything is already complete, nothing is fetched
        emu.stats.reset()
        day = NOW.date() - timedelta(days=1)
        rng = BackfillRange(
            start=day, end=NOW.date(), categories=["vitals", "neural"], include_events=False
        )
        rep = backfill(range=rng, lake=lake)
        assert rep.windows_planned == 0 and data_requests(emu) == []

        # with overwrite: every window is fetched again, only changed partitions rewritten
        revised = next(s for s in emu.cohort.streams if category(s) == "vitals")
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        emu.revise(revised.id, start, start + timedelta(days=1))
        rep = backfill(range=rng.model_copy(update={"overwrite": True}), lake=lake)
        assert rep.ok and rep.windows_landed > 0
        files = Catalog(open_lake(lake)).files().to_pylist()
        after = {f["path"]: f["run_id"] for f in files}
        assert after.keys() == before.keys()  # same deterministic keys: no copies
        rewritten = {f["stream_id"] for f in files if after[f["path"]] != before[f["path"]]}
        assert rewritten == {revised.id}
        assert all(after[p] == rep.run_id for p in after if after[p] != before[p])
        assert Catalog(open_lake(lake)).watermarks() == marks
        for s in [s for s in emu.cohort.streams if category(s) in ("vitals", "neural")]:
            assert lake_rows(lake, s).num_rows == expected(emu, s).num_rows


def test_backfill_rejects_a_bad_range_before_any_request(tmp_path):
    with emulator(patients=1) as emu:
        emu.stats.reset()
        with pytest.raises(Exception, match="must be after start"):
            backfill(range={"start": "2026-10-05", "end": "2026-10-01"}, lake=str(tmp_path))
        with pytest.raises(Exception, match="start"):
            backfill(range={"start": "2026-13-45", "end": "2026-10-01"}, lake=str(tmp_path))
        with pytest.raises(Exception, match="future"):
            backfill(range={"start": "2999-01-01", "end": "2999-01-02"}, lake=str(tmp_path))
        assert emu.stats.log == []


def test_a_failing_stream_is_reported_by_name_and_the_rest_lands(tmp_path):
    lake = str(tmp_path / "lake")
    with emulator(patients=1) as emu:
        bad = next(s for s in emu.cohort.streams if category(s) == "neural")
        emu.set_fault(bad.id, "always_500")
        state = refresh(
            lake=lake, categories=["neural", "vitals"], include_events=False, return_state=True
        )
        assert state.is_failed()
        exc = state.result(raise_on_failure=False)
        assert isinstance(exc, IncompleteRun)
        assert bad.id in str(exc)
        assert {f["stream"] for f in exc.report.failures} == {bad.id}
        for s in emu.cohort.streams:
            if category(s) in ("neural", "vitals") and s.id != bad.id:
                assert lake_rows(lake, s).num_rows == expected(emu, s).num_rows
        assert bad.id not in Catalog(open_lake(lake)).watermarks()


def test_run_artifacts_are_created(tmp_path):
    from prefect.client.orchestration import get_client

    with emulator(patients=1):
        state = refresh(lake=str(tmp_path / "lake"), categories=["symptom"], return_state=True)
        flow_run_id = state.state_details.flow_run_id

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts()

    import asyncio

    arts = [a for a in asyncio.run(artifacts()) if a.flow_run_id == flow_run_id]
    kinds = {a.type for a in arts}
    assert {"table", "progress"} <= kinds
    table = next(a for a in arts if a.type == "table")
    assert table.key == "rune-lake-refresh-summary"
    assert "symptom__tremor" in str(table.data)


def test_prefect_never_walks_the_streams_or_the_plan(tmp_path, monkeypatch):
    """Large task arguments are quote-d: Prefect's parameter walks (finding upstream task
    runs, resolving futures) would visit every stream, chunk and result of the run."""
    import prefect.utilities.engine as engine

    from rune_io.api.models import StreamMeta
    from rune_io.pipeline import ChunkResult, RunPlan

    seen: list[str] = []
    real = engine.visit_collection

    def watching(expr, visit_fn, *args, **kwargs):
        if kwargs.get("max_depth", -1) >= 0:  # a bounded walk: a task's return value
            return real(expr, visit_fn, *args, **kwargs)

        def visit(obj, *rest):
            if isinstance(obj, StreamMeta | RunPlan | ChunkResult):
                seen.append(type(obj).__name__)
            return visit_fn(obj, *rest)

        return real(expr, visit, *args, **kwargs)

    monkeypatch.setattr(engine, "visit_collection", watching)
    with emulator():
        rep = refresh(lake=str(tmp_path / "lake"), categories=LIGHT)
    assert rep.ok and rep.rows > 0
    assert seen == []
