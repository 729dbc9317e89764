"""DuckDB and Spark read the lake with zero configuration and agree with the catalog."""

from datetime import date, timedelta

import duckdb
import pytest

from rune_io.lake import Catalog, open_lake, write_events, write_stream_partition
from rune_io.models import Dimension, Event, StreamType
from tests.lake.conftest import (
    ACCEL_TYPE,
    DIGIT_PATIENT,
    PATIENT,
    day_start,
    make_batches,
    make_stream,
)

TABLE = "kinematics__acceleration"
DAYS = [date(2024, 5, 1), date(2024, 5, 2)]
WIDER = StreamType(
    id="st-accel",
    name="acceleration",
    dimensions=(*ACCEL_TYPE.dimensions, Dimension("quality", "int")),
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
