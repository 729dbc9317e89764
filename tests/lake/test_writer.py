from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rune_io.api.arrow_schema import TIME_TYPE
from rune_io.api.models import Dimension, Event, StreamType
from rune_io.lake import (
    Catalog,
    LakeError,
    PartitionWindowError,
    SchemaConflictError,
    write_events,
    write_stream_partition,
)
from rune_io.lake import writer as writer_mod
from rune_io.lake.storage import list_files
from tests.lake.conftest import ACCEL_TYPE, day_start, make_batches, make_stream

DAY = date(2024, 1, 5)


def data_files(lake, table=""):
    return {
        p: s
        for p, s in list_files(lake, table).items()
        if p.endswith(".parquet") and not p.startswith("_")
    }


def read(lake, rel) -> pa.Table:
    with lake.fs.open(lake.path(rel), "rb") as f:
        return pq.read_table(f)


def test_write_day_columns_and_parquet_options(lake):
    stream = make_stream(axis="x")
    entry = write_stream_partition(
        lake, stream, DAY, make_batches(stream, day_start(DAY), 25_000), run_id="r1"
    )
    assert entry.path == (
        "kinematics__acceleration__acceleration/patient=p-0123456789abcdef0123456789abcdef/"
        "date=2024-01-05/stream-accel-x_2024-01-05.parquet"
    )
    assert entry.rows == 25_000 and entry.min_time == day_start(DAY)
    assert entry.max_time == day_start(DAY) + timedelta(seconds=24_999 / 50)
    assert entry.bytes == lake.fs.size(lake.path(entry.path))
    assert entry.checksum.startswith("sha256:")
    t = read(lake, entry.path)
    assert t.schema.names == [
        "time", "time_ns", "acceleration", "measurement_duration_ns",
        "stream_id", "patient_id", "device_id", "algorithm", "stream_type",
        "category", "measurement", "axis",
    ]  # fmt: skip
    assert t.schema.field("time").type == TIME_TYPE and t.schema.field("time_ns").type == pa.int64()
    assert t.column("time_ns")[1].as_py() == int(day_start(DAY).timestamp()) * 10**9 + 20_000_300
    assert t.schema.field("device_id").type == pa.string()
    assert set(t.column("device_id").to_pylist()) == {"eb#8c31"}
    assert set(t.column("axis").to_pylist()) == {"x"}
    with lake.fs.open(lake.path(entry.path), "rb") as f:
        md = pq.ParquetFile(f).metadata
    col = md.row_group(0).column(0)
    assert col.compression == "UNCOMPRESSED"  # delta-packed times: zstd would save ~2%
    assert "DELTA_BINARY_PACKED" in col.encodings
    names = t.schema.names
    codecs = {names[i]: md.row_group(0).column(i).compression for i in range(len(names))}
    assert codecs["acceleration"] == "ZSTD" and codecs["time_ns"] == "UNCOMPRESSED"
    assert {codecs[c] for c in names[4:]} == {"UNCOMPRESSED"}  # one value per file
    file_schema = md.schema.to_arrow_schema()
    assert not any(file_schema.field(c).nullable for c in names[4:])  # never null
    assert file_schema.field("acceleration").nullable
    assert all(md.row_group(0).column(i).statistics.has_min_max for i in range(len(names)))
    assert col.statistics.has_min_max
    assert md.schema.column(0).physical_type == "INT64"
    assert "isAdjustedToUTC=true, timeUnit=microseconds" in str(md.schema.column(0).logical_type)
    assert "DELTA_BINARY_PACKED" in md.row_group(0).column(1).encodings  # time_ns
    assert b"rune_lake" in md.metadata


def test_writing_twice_leaves_one_copy_and_refetch_replaces(lake):
    stream = make_stream()
    first = write_stream_partition(
        lake, stream, DAY, make_batches(stream, day_start(DAY), 1000), run_id="a"
    )
    again = write_stream_partition(
        lake, stream, DAY, make_batches(stream, day_start(DAY), 1000), run_id="b"
    )
    assert first.path == again.path
    assert list(data_files(lake)) == [first.path]
    refetch = write_stream_partition(
        lake, stream, DAY, make_batches(stream, day_start(DAY), 400), run_id="c"
    )
    assert read(lake, refetch.path).num_rows == 400
    Catalog(lake).commit("c")
    files = Catalog(lake).files()
    assert files.num_rows == 1 and files.column("rows")[0].as_py() == 400


def test_row_groups_and_unsorted_input(local_lake, monkeypatch):
    monkeypatch.setattr(writer_mod, "ROW_GROUP_ROWS", 1000)
    stream = make_stream()
    batches = list(make_batches(stream, day_start(DAY), 3500, batch_rows=700))
    entry = write_stream_partition(local_lake, stream, DAY, batches, run_id="r")
    md = pq.ParquetFile(local_lake.path(entry.path)).metadata
    assert [md.row_group(i).num_rows for i in range(md.num_row_groups)] == [1000, 1000, 1000, 500]
    # pages out of order, discovered after two row groups were already written
    shuffled = batches[3:] + batches[:3]
    entry2 = write_stream_partition(local_lake, stream, DAY, shuffled, run_id="r")
    t = pq.read_table(local_lake.path(entry2.path))
    assert t.num_rows == 3500
    expected = pa.Table.from_batches(batches).column("time").combine_chunks()
    assert t.column("time").combine_chunks().equals(expected)
    assert t.column("stream_id").to_pylist() == [stream.id] * 3500
    assert (entry2.min_time, entry2.max_time) == (entry.min_time, entry.max_time)


def test_rows_outside_window_fail_and_write_nothing(lake):
    stream = make_stream()
    bad = make_batches(stream, day_start(DAY) + timedelta(hours=23, minutes=59), 10_000)
    with pytest.raises(PartitionWindowError, match="outside partition date=2024-01-05"):
        write_stream_partition(lake, stream, DAY, bad, run_id="r")
    assert data_files(lake) == {}


def test_exception_mid_write_keeps_previous_file(lake, monkeypatch):
    monkeypatch.setattr(writer_mod, "ROW_GROUP_ROWS", 1000)
    stream = make_stream()
    good = write_stream_partition(
        lake, stream, DAY, make_batches(stream, day_start(DAY), 500), run_id="r"
    )

    def failing():
        yield from make_batches(stream, day_start(DAY), 5000, batch_rows=1000)
        raise ConnectionError("API went away")

    with pytest.raises(ConnectionError):
        write_stream_partition(lake, stream, DAY, failing(), run_id="r2")
    assert list(data_files(lake)) == [good.path]
    assert read(lake, good.path).num_rows == 500
    assert list_files(lake, "_staging") == {}


def test_empty_partition(lake):
    stream = make_stream()
    assert write_stream_partition(lake, stream, DAY, [], run_id="r") is None
    assert data_files(lake) == {}
    write_stream_partition(lake, stream, DAY, make_batches(stream, day_start(DAY), 10), run_id="r")
    assert write_stream_partition(lake, stream, DAY, iter(()), run_id="r") is None
    assert len(data_files(lake)) == 1  # kept without replace_empty
    assert write_stream_partition(lake, stream, DAY, [], run_id="r", replace_empty=True) is None
    assert data_files(lake) == {}
    Catalog(lake).commit("r")
    assert Catalog(lake).files().num_rows == 0


def test_schema_evolution(local_lake):
    lake = local_lake
    stream = make_stream()
    write_stream_partition(lake, stream, DAY, make_batches(stream, day_start(DAY), 10), run_id="r")
    Catalog(lake).commit("r")
    wider = StreamType(
        id="acceleration",
        name="acceleration",
        dimensions=(*ACCEL_TYPE.dimensions, Dimension("quality", "uint")),
    )
    s2 = make_stream(stream_type=wider)
    day2 = DAY + timedelta(days=1)
    write_stream_partition(lake, s2, day2, make_batches(s2, day_start(day2), 10), run_id="r2")
    Catalog(lake).commit("r2")
    common = Catalog(lake).table_schema("kinematics__acceleration__acceleration")
    assert common.names[-1] == "quality" and "acceleration" in common.names
    # as in the files: time is never null; the other columns may be
    first = Catalog(lake).files().to_pylist()[0]["path"]
    file_schema = pq.read_schema(lake.path(first))
    assert not file_schema.field("time").nullable
    assert not common.field("time").nullable and common.field("quality").nullable
    changed = StreamType(
        id="acceleration",  # the same type, a column of another type
        name="acceleration",
        dimensions=(Dimension("time", "timestamp"), Dimension("acceleration", "string")),
    )
    s3 = make_stream(sid="other", stream_type=changed)
    with pytest.raises(SchemaConflictError) as err:
        write_stream_partition(lake, s3, DAY, make_batches(s3, day_start(DAY), 0), run_id="r3")
    msg = str(err.value)
    assert "kinematics__acceleration__acceleration" in msg and "'acceleration'" in msg
    assert "double" in msg and "string" in msg


def test_batch_schema_mismatch_is_clear(local_lake):
    stream = make_stream()
    batch = pa.record_batch({"time": pa.array([1], pa.int64())})
    with pytest.raises(LakeError, match="batch columns"):
        write_stream_partition(local_lake, stream, DAY, [batch], run_id="r")


def test_hostile_ids_stay_in_lake_and_in_data(lake):
    ids = ["../../escape", "a/b", "R5*S1EGY", "50%ünï", "eb#8c31"]
    for value in ids:
        stream = make_stream(sid=value, patient=value, device=value)
        entry = write_stream_partition(
            lake, stream, DAY, make_batches(stream, day_start(DAY), 5), run_id="r"
        )
        t = read(lake, entry.path)
        assert set(t.column("patient_id").to_pylist()) == {value}
        assert set(t.column("stream_id").to_pylist()) == {value}
        assert set(t.column("device_id").to_pylist()) == {value}
        assert entry.patient_id == value and entry.stream_id == value
    files = data_files(lake)
    assert len(files) == len(ids)
    assert all(
        lake.path(p).startswith(lake.root + "/kinematics__acceleration__acceleration/")
        for p in files
    )
    if lake.is_local:
        import os

        parent = os.path.dirname(lake.root)
        assert sorted(os.listdir(parent)) == [os.path.basename(lake.root)]


def test_events(lake):
    t0 = datetime(2024, 1, 31, 23, 0, tzinfo=UTC)

    def ev(i, start):
        return Event(
            id=f"e{i}", patient_id="p1", display_name="Levodopa", namespace="patient",
            category="medication", enum="levodopa", start_time=start,
            end_time=start + timedelta(minutes=5), payload='{"dose": 100}', tags=("am",),
        )  # fmt: skip

    events = [ev(2, t0), ev(1, t0 - timedelta(days=3)), ev(3, t0 + timedelta(hours=2))]
    entry = write_events(lake, "p1", date(2024, 1, 1), events, run_id="r")
    assert entry.path == "events/patient=p-p1/month=2024-01/events_2024-01.parquet"
    t = read(lake, entry.path)
    assert t.column("event_id").to_pylist() == ["e1", "e2"]  # sorted; Feb event skipped
    assert t.column("type").to_pylist() == ["patient.medication.levodopa"] * 2
    assert t.column("tags").to_pylist() == [["am"], ["am"]]
    assert entry.rows == 2 and entry.table == "events"
