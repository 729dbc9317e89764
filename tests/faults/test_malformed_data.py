"""Malformed API data: a non-numeric value, a missing column, a type change are rejected
(not retried: the content is wrong, not the network) with an error naming stream, window
and page; the file the lake had stays as it was. An extra column becomes a new nullable
column of the table, recorded in the catalog. An unknown data type is no error: the
stream lands, that column as the served text, recorded in the catalog."""

from __future__ import annotations

import json
import shutil

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rune_io.lake import Catalog, open_lake
from rune_lake.flows.run import IncompleteRun
from tests.faults.conftest import (
    assert_lake_consistent,
    assert_lakes_equal,
    clean_lake,
    emulator,
    refresh_in_process,
    remember,
)

EMU = dict(patients=1, days=1)
PARAMS = dict(categories=["vitals", "symptom", "device_info"])
HR = "vitals__heart_rate__rate_per_min"


def _measurement(s) -> str:
    return dict(s.parameters).get("measurement", "")


@pytest.fixture(scope="module")
def want(tmp_path_factory, fast_config):
    return clean_lake(tmp_path_factory, fast_config, ("malformed",), EMU, PARAMS)


def _checksums(lake, stream_id: str) -> dict[str, str]:
    files = Catalog(open_lake(str(lake))).files().to_pylist()
    return {f["path"]: f["checksum"] for f in files if f["stream_id"] == stream_id}


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault,measurement,message",
    [
        ("non_numeric", "heart_rate", "CSV conversion error to double: invalid value 'abc'"),
        # the emulator drops the last column: a declared one here (utc_offset: time, offset)
        ("missing_column", "utc_offset", "lacks column(s) ['offset']"),
        (
            "type_change", "heart_rate",
            "('rate', declared double): Row #2: CSV conversion error to double",
        ),
    ],
)  # fmt: skip
def test_malformed_stream_is_rejected_and_its_files_stay(
    tmp_path, fast_config, want, fault, measurement, message
):
    lake = remember(tmp_path / "lake")
    shutil.copytree(want, lake)
    with emulator(fast_config, **EMU) as emu:
        bad = next(s.id for s in emu.cohort.streams if _measurement(s) == measurement)
        before = _checksums(lake, bad)
        emu.set_fault(bad, fault)
        emu.stats.reset()
        # lookback: every window is fetched again and its file rewritten
        state = refresh_in_process(lake, lookback_days=1, **PARAMS)
        bad_requests = sum(1 for r in emu.stats.log if r[1].startswith(f"/v2/streams/{bad}"))
    exc = state.result(raise_on_failure=False)
    assert isinstance(exc, IncompleteRun), exc
    failed = {f["stream"]: f for f in exc.report.failures}
    assert failed.keys() == {bad}
    error = failed[bad]["error"]
    assert message in error, error
    assert f"stream {bad}" in error and "window" in error and "page 0" in error
    assert bad_requests <= 2 * len(before), "malformed content must not be retried"
    # nothing half-converted: the failing stream's files are the ones the lake had
    assert before and _checksums(lake, bad) == before
    assert_lakes_equal(lake, want)
    assert_lake_consistent(lake)


@pytest.mark.slow
def test_extra_column_becomes_a_nullable_column_of_the_table(tmp_path, fast_config, want):
    lake = remember(tmp_path / "lake")
    with emulator(fast_config, **EMU) as emu:
        extra = next(s.id for s in emu.cohort.streams if _measurement(s) == "heart_rate")
        emu.set_fault(extra, "extra_column")
        state = refresh_in_process(lake, **PARAMS)
    assert state.is_completed(), state.message
    schema = Catalog(open_lake(str(lake))).table_schema(HR)
    assert schema.field("extra_value").type == pa.float64() and schema.field("extra_value").nullable
    files = [
        f for f in Catalog(open_lake(str(lake))).files().to_pylist() if f["stream_id"] == extra
    ]
    assert files
    for f in files:
        assert "extra_value" in pq.read_schema(lake / f["path"]).names
    # declared columns: exactly the clean lake; the new column has values and nulls
    rel = duckdb.sql(
        f"SELECT count(*), count(extra_value) FROM read_parquet('{lake}/{HR}/**/*.parquet', "
        "union_by_name=true)"
    ).fetchall()[0]
    assert 0 < rel[1] < rel[0]
    assert_lake_consistent(lake)
    trimmed = remember(tmp_path / "trimmed")
    shutil.copytree(lake, trimmed)
    for f in files:
        path = trimmed / f["path"]
        pq.write_table(pq.read_table(path).drop_columns(["extra_value"]), path)
    assert_lakes_equal(trimmed, want)


@pytest.mark.slow
def test_unknown_data_type_lands_as_text_and_is_recorded(tmp_path, fast_config):
    lake = remember(tmp_path / "lake")
    with emulator(fast_config, **EMU) as emu:
        odd = next(s for s in emu.cohort.streams if _measurement(s) == "heart_rate")
        emu.set_fault(odd.id, "unknown_type")  # GraphQL says dataType "quaternion"
        state = refresh_in_process(lake, categories=["vitals"], include_events=False)
        want = emu.expected_table(odd.id, 0, emu.now_ns())
    assert state.is_completed(), state.message
    streams = {r["stream_id"]: r for r in Catalog(open_lake(str(lake))).streams().to_pylist()}
    assert json.loads(streams[odd.id]["unknown_data_types"]) == {"rate": "quaternion"}
    got = duckdb.sql(
        f"SELECT rate FROM read_parquet('{lake}/{HR}/**/*.parquet', filename=true, "
        f"file_row_number=true) WHERE stream_id = '{odd.id}' ORDER BY filename, file_row_number"
    ).fetchall()
    assert want.num_rows > 0 and len(got) == want.num_rows
    # the served text, which parses back to the very same doubles
    assert [float(r[0]) for r in got] == want.column("rate").to_pylist()
    assert_lake_consistent(lake)
