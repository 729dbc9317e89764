"""DuckDB, Spark, pandas and polars read the lake with no options and agree with the catalog;
every data type and every nanosecond comes back as written."""

from datetime import UTC, date, datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rune_io.api.arrow_schema import floor_us, stream_schema
from rune_io.api.models import Dimension, Event, StreamType
from rune_io.lake import Catalog, open_lake, write_events, write_stream_partition
from tests.lake.conftest import (
    ACCEL_TYPE,
    DIGIT_PATIENT,
    PATIENT,
    day_start,
    make_batches,
    make_stream,
)

TABLE = "kinematics__acceleration__acceleration"
DAYS = [date(2024, 5, 1), date(2024, 5, 2)]
WIDER = StreamType(
    id="acceleration",
    name="acceleration",
    dimensions=(*ACCEL_TYPE.dimensions, Dimension("quality", "uint")),
)


def build(lake):
    """Two patients (one all-digit id), devices with '#' and '*', a column added later."""
    streams = [
        make_stream("s-1", PATIENT, "eb#8c31", axis="x"),
        make_stream("s-2", DIGIT_PATIENT, "R5*S1EGY", axis="y"),
    ]
    for i, s in enumerate(streams):
        for j, d in enumerate(DAYS):
            stream = (
                make_stream(
                    s.id, s.patient_id, s.device_id, axis=s.params["axis"], stream_type=WIDER
                )
                if j
                else s
            )
            write_stream_partition(
                lake, stream, d, make_batches(stream, day_start(d), 2000 + 500 * i + j), run_id="r"
            )
    ev = Event(
        id="e1", patient_id=DIGIT_PATIENT, display_name="Tremor", namespace="patient",
        category="symptom", enum="tremor", start_time=day_start(DAYS[0]) + timedelta(hours=9),
    )  # fmt: skip
    write_events(lake, DIGIT_PATIENT, DAYS[0], [ev], run_id="r")
    Catalog(lake).commit("r")
    return Catalog(lake)


def expected(cat):
    out = {}
    for row in cat.files().to_pylist():
        if row["table"] != TABLE:
            continue
        e = out.setdefault(
            row["stream_id"], {"rows": 0, "min": row["min_time"], "max": row["max_time"]}
        )
        e["rows"] += row["rows"]
        e["min"], e["max"] = min(e["min"], row["min_time"]), max(e["max"], row["max_time"])
    return out


QUERY = """
select stream_id, any_value(patient_id) as patient_id, any_value(device_id) as device_id,
       count(*) as n, min(time) as lo, max(time) as hi, count(quality) as with_quality,
       count(distinct date) as ndays
from read_parquet('{glob}', hive_partitioning=true, union_by_name=true)
group by stream_id order by stream_id
"""


def check_duckdb(con, glob, cat):
    want = expected(cat)
    rows = con.sql(QUERY.format(glob=glob)).fetchall()
    assert [r[0] for r in rows] == sorted(want)
    got = {r[0]: r for r in rows}
    assert got["s-1"][1:3] == (PATIENT, "eb#8c31")
    assert got["s-2"][1:3] == (DIGIT_PATIENT, "R5*S1EGY")
    for sid, w in want.items():
        _, _, _, n, lo, hi, with_quality, days = got[sid]
        assert (n, lo, hi, days) == (w["rows"], w["min"], w["max"], 2)
        assert 0 < with_quality < n  # older files lack the new column: nulls
    described = con.sql(f"describe select * from read_parquet('{glob}', hive_partitioning=true)")
    types = {r[0]: r[1] for r in described.fetchall()}
    assert types["patient_id"] == "VARCHAR" and types["time"] == "TIMESTAMP WITH TIME ZONE"
    assert types["patient"] == "VARCHAR" and types["date"] == "DATE"
    events = f"{glob.split(TABLE)[0]}events/**/*.parquet"
    assert con.sql(
        f"select patient_id, type from read_parquet('{events}', hive_partitioning=true)"
    ).fetchall() == [(DIGIT_PATIENT, "patient.symptom.tremor")]


def test_duckdb_local(tmp_path):
    lake = open_lake(str(tmp_path / "lake"))
    cat = build(lake)
    check_duckdb(duckdb.connect(), f"{lake.root}/{TABLE}/**/*.parquet", cat)


def test_duckdb_s3(s3_lake):
    cat = build(s3_lake)
    con = duckdb.connect()
    con.register_filesystem(s3_lake.fs)
    check_duckdb(con, f"s3://{s3_lake.root}/{TABLE}/**/*.parquet", cat)


@pytest.mark.spark
def test_spark_plain_read(tmp_path, spark):
    from pyspark.sql import functions as F

    lake = open_lake(str(tmp_path / "lake"))
    cat = build(lake)
    df = spark.read.parquet(f"{lake.root}/{TABLE}")
    types = dict(df.dtypes)
    assert (
        types["patient_id"] == "string" and types["time"] == "timestamp" and types["date"] == "date"
    )
    assert types["quality"] == "bigint"  # the column added later: from _common_metadata
    rows = (
        df.groupBy("stream_id")
        .agg(
            F.first("patient_id").alias("patient_id"),
            F.first("device_id").alias("device_id"),
            F.count("*").alias("n"),
            F.unix_micros(F.min("time")).alias("lo"),
            F.unix_micros(F.max("time")).alias("hi"),
        )
        .orderBy("stream_id")
        .collect()
    )
    want = expected(cat)
    got = {r["stream_id"]: r for r in rows}
    assert sorted(got) == sorted(want)
    assert (got["s-1"]["patient_id"], got["s-1"]["device_id"]) == (PATIENT, "eb#8c31")
    assert (got["s-2"]["patient_id"], got["s-2"]["device_id"]) == (DIGIT_PATIENT, "R5*S1EGY")
    for sid, w in want.items():
        assert got[sid]["n"] == w["rows"]
        assert got[sid]["lo"] == int(w["min"].timestamp() * 1_000_000)
        assert got[sid]["hi"] == int(w["max"].timestamp() * 1_000_000)
    pruned = df.where(F.col("patient") == f"p-{DIGIT_PATIENT}").count()
    assert pruned == want["s-2"]["rows"]
    # a table whose only patient id is all digits: no partition value looks numeric
    ev = spark.read.parquet(f"{lake.root}/events")
    assert dict(ev.dtypes)["patient_id"] == "string" and dict(ev.dtypes)["patient"] == "string"
    got = [tuple(r) for r in ev.select("patient_id", "patient", "month").collect()]
    assert got == [(DIGIT_PATIENT, f"p-{DIGIT_PATIENT}", "2024-05")]


# ------------------------------------------- every data type, nanoseconds, every engine

MIXED = StreamType(
    id="mixed-type",
    name="mixed",
    dimensions=(
        Dimension("time", "timestamp"),
        Dimension("end_time", "timestamp"),
        Dimension("frequency", "ufloat"),
        Dimension("count", "uint"),
        Dimension("flag", "bool"),
        Dimension("payload", "dict"),
    ),
)
MIXED_TABLE = "device_info__mixed__mixed_type"
NS0 = 1_714_521_600 * 10**9 + 123_456_700  # 2024-05-01T00:00:00.1234567Z
MIXED_NS = [NS0, NS0 + 100, NS0 + 200, NS0 + 10**9]
MIXED_END = [NS0 + 5, None, NS0 + 900, NS0 + 2 * 10**9]


def build_mixed(lake):
    """One stream of every data type, times 100 ns apart (distinct rows)."""
    s = make_stream("m-1", PATIENT, "IPl2_ivn", category="device_info", measurement="mixed",
                    stream_type=MIXED)  # fmt: skip
    ns, end = pa.array(MIXED_NS), pa.array(MIXED_END, pa.int64())
    batch = pa.RecordBatch.from_arrays(
        [
            floor_us(ns), ns, floor_us(end), end,
            pa.array([0.1, 5e-324, None, 1.0]), pa.array([0, 2**63 - 1, 7, None]),
            pa.array([True, False, None, True]),
            pa.array(['{"a": 1}', "{}", '{"q": "x, \\"y\\""}', None]),
        ],
        schema=stream_schema(MIXED),
    )  # fmt: skip
    write_stream_partition(lake, s, DAYS[0], [batch], run_id="m")
    Catalog(lake).commit("m")


def check_mixed(rows: list[dict]) -> None:
    assert [r["time_ns"] for r in rows] == MIXED_NS
    assert [r["end_time_ns"] for r in rows] == MIXED_END
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    us = [epoch + timedelta(microseconds=n // 1000) for n in MIXED_NS]
    assert [r["time"].astimezone(UTC) for r in rows] == us
    assert [r["count"] for r in rows][:3] == [0, 2**63 - 1, 7]
    assert [r["flag"] for r in rows][:2] == [True, False]
    assert rows[2]["payload"] == '{"q": "x, \\"y\\""}' and rows[1]["frequency"] == 5e-324


def test_duckdb_pandas_polars_read_ns_and_types(tmp_path):
    import pandas as pd
    import polars as pl

    lake = open_lake(str(tmp_path / "lake"))
    build(lake)
    build_mixed(lake)
    table = f"{lake.root}/{MIXED_TABLE}"
    con = duckdb.connect()
    rel = con.sql(f"select * from read_parquet('{table}/**/*.parquet', hive_partitioning=true)")
    types = dict(zip(rel.columns, map(str, rel.types), strict=True))
    assert (types["time"], types["time_ns"]) == ("TIMESTAMP WITH TIME ZONE", "BIGINT")
    assert (types["count"], types["flag"], types["payload"]) == ("BIGINT", "BOOLEAN", "VARCHAR")
    check_mixed([dict(zip(rel.columns, r, strict=True)) for r in rel.order("time_ns").fetchall()])

    df = pd.read_parquet(table).sort_values("time_ns")
    assert str(df["time"].dtype) == "datetime64[us, UTC]" and str(df["time_ns"].dtype) == "int64"
    assert df["time_ns"].tolist() == MIXED_NS
    # pandas' default turns an int64 column *with nulls* into float64 (end_time_ns, count
    # here); its nullable dtypes keep every value (documented in the lake README)
    df = pd.read_parquet(table, dtype_backend="numpy_nullable").sort_values("time_ns")
    rows = df.astype(object).where(df.notna(), None).to_dict("records")
    for r in rows:
        r["time"] = r["time"].to_pydatetime()
    check_mixed(rows)

    pf = pl.read_parquet(f"{table}/**/*.parquet").sort("time_ns")
    assert pf.schema["time"] == pl.Datetime("us", "UTC") and pf.schema["time_ns"] == pl.Int64
    check_mixed(pf.to_dicts())
    # this table's second day added a column: polars, like DuckDB without union_by_name,
    # wants one schema per read; the table's _common_metadata is that schema
    union = pq.read_schema(f"{lake.root}/{TABLE}/_common_metadata")
    accel = pl.scan_parquet(
        f"{lake.root}/{TABLE}/**/*.parquet",
        schema=pl.from_arrow(union.empty_table()).schema,
        missing_columns="insert",
    ).collect()
    assert accel.height == sum(w["rows"] for w in expected(Catalog(lake)).values())
    assert 0 < accel["quality"].count() < accel.height
    assert (accel["time_ns"] // 1000 == accel["time"].dt.epoch("us")).all()


@pytest.mark.spark
def test_spark_reads_ns_and_types(tmp_path, spark):
    lake = open_lake(str(tmp_path / "lake"))
    build_mixed(lake)
    df = spark.read.parquet(f"{lake.root}/{MIXED_TABLE}")
    types = dict(df.dtypes)
    assert (types["time"], types["time_ns"], types["end_time"]) == (
        "timestamp",
        "bigint",
        "timestamp",
    )
    assert (types["count"], types["flag"], types["payload"]) == ("bigint", "boolean", "string")
    rows = [r.asDict() for r in df.orderBy("time_ns").collect()]
    for r in rows:  # Spark hands out naive local datetimes; compare as UTC instants
        r["time"] = r["time"].astimezone(UTC)
    check_mixed(rows)


# ------------------------------------------- files of two writer versions in one table


def build_two_vintages(lake, monkeypatch):
    """Day 1 as the writer writes now; day 2 as main wrote until 2026-12-02: zstd on
    every column and nullable constant columns (an existing lake that keeps growing)."""
    from rune_io.lake import sink

    stream = make_stream("s-1", PATIENT, "eb#8c31", axis="x")
    write_stream_partition(
        lake, stream, DAYS[0], make_batches(stream, day_start(DAYS[0]), 900), run_id="r"
    )
    current = sink.PartitionSink._set_schema

    def old_set_schema(self, schema):
        current(self, schema)
        self.write_schema = pa.schema([f.with_nullable(True) for f in self.write_schema])
        self.options |= {"compression": "zstd", "compression_level": 3}

    with monkeypatch.context() as m:
        m.setattr(sink.PartitionSink, "_set_schema", old_set_schema)
        write_stream_partition(
            lake, stream, DAYS[1], make_batches(stream, day_start(DAYS[1]), 700), run_id="r"
        )
    Catalog(lake).commit("r")
    paths = sorted(r["path"] for r in Catalog(lake).files().to_pylist())
    schemas = [pq.read_schema(lake.path(p)) for p in paths]
    assert [s.field("stream_id").nullable for s in schemas] == [False, True]  # two vintages
    return paths


def test_files_of_both_writer_versions_read_as_one_table(tmp_path, monkeypatch):
    import pandas as pd

    lake = open_lake(str(tmp_path / "lake"))
    build_two_vintages(lake, monkeypatch)
    table = f"{lake.root}/{TABLE}"
    got = duckdb.sql(
        f"select stream_id, count(*), count(distinct date) from read_parquet("
        f"'{table}/**/*.parquet', hive_partitioning=true) group by stream_id"
    ).fetchall()
    assert got == [("s-1", 1600, 2)]
    # pyarrow takes the schema of the first file (required constants), reads both
    t = pq.read_table(table)
    assert t.num_rows == 1600 and set(t.column("device_id").to_pylist()) == {"eb#8c31"}
    assert pd.read_parquet(table)["axis"].tolist() == ["x"] * 1600


@pytest.mark.spark
def test_spark_reads_files_of_both_writer_versions(tmp_path, spark, monkeypatch):
    lake = open_lake(str(tmp_path / "lake"))
    build_two_vintages(lake, monkeypatch)
    df = spark.read.parquet(f"{lake.root}/{TABLE}")
    rows = df.groupBy("stream_id", "device_id", "axis").count().collect()
    assert [tuple(r) for r in rows] == [("s-1", "eb#8c31", "x", 1600)]
