"""Replay: recorded API bodies over real HTTP -> the real reader and writer -> DuckDB.

The runeq fixtures (``fixtures/runeq/``, see its README) give the acceleration bodies and
stream types; the other data types are built from the evidence page's descriptions
(``real-api-evidence.md``: ``boolean``, ``voltage-spectrum``, ``event``, ``span``,
``bytes``) and marked so. Every value must come back equal (floats bit for bit), every
timestamp to the nanosecond.
"""

from __future__ import annotations

import csv
import json
import logging
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from rune_io.api.client import RuneClient
from rune_io.lake import Catalog, open_lake, write_stream_partition
from rune_io.lake.layout import partitions_between, table_name

from .conftest import make_settings
from .replay import ReplayServer, ReplayStream, parse_iso_ns, wire_stream, wire_stream_type

FIXTURES = Path(__file__).parent / "fixtures" / "runeq"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def iso_to_ns_numpy(text: str) -> int:
    """An independent ISO -> ns (numpy's parser, not the server's)."""
    return int(np.datetime64(text.rstrip("Z"), "ns").astype(np.int64))


def fixture_rows(name: str) -> tuple[list[str], list[list[str]]]:
    with open(FIXTURES / name, newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def load_fixture_types() -> dict:
    return json.loads((FIXTURES / "stream_types.json").read_text())


def lake_rows(lake_root: str, table: str, stream_id: str) -> tuple[list[str], list[tuple]]:
    con = duckdb.connect()
    rel = con.sql(
        f"select * from read_parquet('{lake_root}/{table}/**/*.parquet', hive_partitioning=true,"
        f" union_by_name=true) where stream_id = '{stream_id}'"
    )
    types = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))
    return types, rel.fetchall(), rel.columns


def write_all(client, lake, streams, lo, hi):
    Catalog(lake).record_streams(list(streams), "replay")  # as a refresh's discovery does
    for s in streams:
        batches = client.streams.read(s, lo, hi)
        write_stream_partition(lake, s, lo, batches, run_id="replay")
    Catalog(lake).commit("replay")


# ------------------------------------------------------------------------ runeq fixtures

ACCEL_BODIES = {"s1": "accel_s1.csv", "s2": "accel_s2.csv", "s7": "accel_7rows.csv"}
DURATION_HEADER = ["time", "duration", "measurement_duration_ns"]


def duration_rows() -> list[list]:
    """Shaped as the evidence page describes Tremor/Duration (not a fixture body)."""
    t0 = parse_iso_ns("2022-03-25T18:06:00Z")
    vals = ["10.434783", "0.0", "60.0", "1e-05", "33.333333333333336"]
    return [[t0 + i * 60 * 10**9, v, "60000000000"] for i, v in enumerate(vals)]


@pytest.fixture
def runeq_replay():
    fx = load_fixture_types()
    types = {k: wire_stream_type(v) for k, v in fx["stream_types"].items()}
    metas = {s["id"]: s for s in fx["streams"]}
    metas["s7"] = dict(metas["s1"], id="s7")
    with ReplayServer(page_size=3) as srv:
        for sid, body in ACCEL_BODIES.items():
            header, rows = fixture_rows(body)
            served = [[parse_iso_ns(r[0]), *r[1:]] for r in rows]
            meta = wire_stream(metas[sid], types["acceleration"])
            srv.add(ReplayStream(meta, header, served, {"time"}))
        meta = wire_stream(metas["s1-duration"], types["duration"])
        srv.add(ReplayStream(meta, DURATION_HEADER, duration_rows(), {"time"}))
        yield srv


def test_runeq_fixture_bodies_land_exactly(runeq_replay, tmp_path):
    srv = runeq_replay
    lake = open_lake(str(tmp_path / "lake"))
    with RuneClient(make_settings(srv.url)) as client:
        streams = client.graph.streams_by_ids(["s1", "s2", "s7", "s1-duration"])
        lo = datetime(2022, 7, 28, tzinfo=UTC)
        write_all(client, lake, streams[:3], lo, lo + timedelta(days=1))
        dur = streams[3]
        march = datetime(2022, 3, 1, tzinfo=UTC)
        for p in partitions_between(table_name(dur), march, march + timedelta(days=31)):
            batches = client.streams.read(dur, p.start, p.end)
            write_stream_partition(lake, dur, p.start, batches, run_id="replay")
        assert p.key == "month"  # a 1/min type: monthly files
        Catalog(lake).commit("replay")
    assert all(q["timestamp"] == ["unixns"] for q in srv.requests)
    assert {table_name(s) for s in streams} == {
        "motion__user__acceleration",
        "motion__gravity__acceleration",
        "uncategorized__duration",  # the fixture's stream has no parameters at all
    }
    for sid, body in ACCEL_BODIES.items():
        header, want = fixture_rows(body)
        s = next(s for s in streams if s.id == sid)
        types, got, cols = lake_rows(lake.root, table_name(s), sid)
        assert types["time"] == "TIMESTAMP WITH TIME ZONE" and types["time_ns"] == "BIGINT"
        assert types["acceleration"] == "DOUBLE" and types["measurement_duration_ns"] == "BIGINT"
        assert len(got) == len(want)
        c = {n: i for i, n in enumerate(cols)}
        for row, (t, acc, dur_ns) in zip(got, want, strict=True):
            ns = iso_to_ns_numpy(t)
            assert row[c["time_ns"]] == ns
            assert row[c["time"]] == EPOCH + timedelta(microseconds=ns // 1000)
            assert bits(row[c["acceleration"]]) == bits(float(acc))
            assert row[c["measurement_duration_ns"]] == int(dur_ns)
            assert (row[c["axis"]], row[c["category"]]) == (s.params["axis"], "motion")
            assert (row[c["stream_type"]], row[c["device_id"]]) == ("acceleration", "d1")
    # 100-ns apart times (.3618588 and .3620749 sit within one microsecond of others)
    ns = [r[c["time_ns"]] for r in lake_rows(lake.root, "motion__user__acceleration", "s7")[1]]
    assert ns == sorted(ns) and len(set(ns)) == 7
    _, got, cols = lake_rows(lake.root, "uncategorized__duration", "s1-duration")
    c = {n: i for i, n in enumerate(cols)}
    want = duration_rows()
    assert [(r[c["time_ns"]], bits(r[c["duration"]])) for r in got] == [
        (t, bits(float(v))) for t, v, _ in want
    ]


# ------------------------------------------------------------ evidence-shaped data types

T0 = parse_iso_ns("2022-07-28T14:26:45.3618588Z")
DAY = datetime(2022, 7, 28, tzinfo=UTC)


def dim(identifier: str, data_type: str) -> dict:
    return {"identifier": identifier, "dataType": data_type}


def stype(tid: str, *dims: dict) -> dict:
    return {"id": tid, "name": tid, "description": "", "shape": {"dimensions": list(dims)}}


def meta(sid: str, st: dict, **params: str) -> dict:
    return {
        "id": sid, "algorithm": "ingest-strive-applewatch-motion.0",
        "deviceId": "patient-p1,device-eb#8c31", "patientId": "p1",
        "minTime": T0 / 1e9, "maxTime": T0 / 1e9 + 60, "streamType": st,
        "parameters": [{"key": k, "value": v} for k, v in params.items()],
    }  # fmt: skip


PAYLOAD = '{"log_type": "start", "note": "a, b \\"quoted\\"", "n": 3}'
SHAPES = {
    # sid: (stream type, params, header, rows, timestamp columns, key)
    "bool": (
        stype("boolean", dim("time", "timestamp"), dim("bool", "bool")),
        {"category": "device_info", "measurement": "device_placement"},
        ["time", "bool"],
        [[T0, "true"], [T0 + 100, "false"], [T0 + 100, "true"], [T0 + 200, ""]],
        {"time"},
        "time",
    ),
    "spectrum": (
        stype(
            "voltage-spectrum",
            dim("time", "timestamp"),
            dim("frequency", "ufloat"),
            dim("potential", "sfloat"),
        ),
        {"category": "neural", "measurement": "lfp_spectrum", "hemisphere": "left"},
        ["time", "frequency", "potential"],
        [
            [T0, "0.0", "-0.0"],
            [T0, "1.953125", "5e-324"],
            [T0, "3.90625", "-1.7976931348623157e+308"],
            [T0 + 100, "0.0", "0.1"],
            [T0 + 100, "1.953125", "nan"],
        ],
        {"time"},
        "time",
    ),
    "event": (
        stype("event", dim("time", "timestamp"), dim("event", "dict")),
        {
            "category": "patient_report",
            "measurement": "watch_recording_manual",
            "log_type": "start",
        },
        ["time", "event"],
        [[T0, PAYLOAD], [T0 + 100, "{}"]],
        {"time"},
        "time",
    ),
    "span": (
        stype(
            "span",
            dim("start_time_min", "timestamp"),
            dim("start_time", "timestamp"),
            dim("end_time", "timestamp"),
            dim("end_time_max", "timestamp"),
            dim("event", "dict"),
        ),
        {"category": "sleep", "measurement": "sleep_state"},
        ["start_time_min", "start_time", "end_time", "end_time_max", "event"],
        [
            [T0 - 100, T0, T0 + 3600 * 10**9, None, PAYLOAD],
            [T0 + 100, T0 + 100, T0 + 200, T0 + 300, '{"state": "asleep"}'],
        ],
        {"start_time_min", "start_time", "end_time", "end_time_max"},
        "start_time",
    ),
    "bytes": (  # the evidence shows only that its first dimension is a uint offset
        stype("bytes", dim("offset", "uint"), dim("byte", "uint")),
        {"category": "device_info"},
        ["offset", "byte"],
        [[0, "255"], [1, "0"], [2, "9223372036854775807"]],
        set(),
        None,
    ),
    "mystery": (  # a data type this client has never seen
        stype("intvalue", dim("time", "timestamp"), dim("value", "int128")),
        {"category": "environment", "measurement": "barometric_pressure"},
        ["time", "value"],
        [[T0, "170141183460469231731687303715884105727"], [T0 + 100, "-1"]],
        {"time"},
        "time",
    ),
}


@pytest.fixture
def shapes_replay():
    with ReplayServer(page_size=2) as srv:
        for sid, (st, params, header, rows, stamps, key) in SHAPES.items():
            srv.add(ReplayStream(meta(sid, st, **params), header, rows, stamps, key))
        yield srv


def expect(value, column: str, stamps: set[str], data_type: str):
    if column in stamps:
        return value
    if value == "":
        return None if data_type not in ("dict", "int128") else ""
    if data_type in ("sfloat", "ufloat"):
        return bits(float(value))
    if data_type == "uint":
        return int(value)
    if data_type == "bool":
        return value == "true"
    return value


def test_every_evidence_data_type_lands_exactly(shapes_replay, tmp_path, caplog):
    srv = shapes_replay
    lake = open_lake(str(tmp_path / "lake"))
    with caplog.at_level(logging.WARNING, logger="rune_io.api.arrow_schema"):
        with RuneClient(make_settings(srv.url)) as client:
            streams = client.graph.streams_by_ids(list(SHAPES))
            write_all(client, lake, streams, DAY, DAY + timedelta(days=1))
            list(client.streams.read(streams[-1], DAY, DAY + timedelta(days=1)))  # again
    warned = [r for r in caplog.records if "int128" in r.getMessage()]
    assert len(warned) == 1  # once, not once per read
    cat = {r["stream_id"]: r for r in Catalog(lake).streams().to_pylist()}
    assert json.loads(cat["mystery"]["unknown_data_types"]) == {"value": "int128"}
    assert json.loads(cat["bool"]["unknown_data_types"]) == {}
    for s in streams:
        st, params, header, want, stamps, key = SHAPES[s.id]
        dtypes = {d["identifier"]: d["dataType"] for d in st["shape"]["dimensions"]}
        types, got, cols = lake_rows(lake.root, table_name(s), s.id)
        c = {n: i for i, n in enumerate(cols)}
        assert len(got) == len(want), s.id
        for row, w in zip(got, want, strict=True):
            for col, value in zip(header, w, strict=True):
                if col in stamps:
                    assert (
                        types[col] == "TIMESTAMP WITH TIME ZONE" and types[col + "_ns"] == "BIGINT"
                    )
                    assert row[c[col + "_ns"]] == value, (s.id, col)
                    floor = None if value is None else EPOCH + timedelta(microseconds=value // 1000)
                    assert row[c[col]] == floor, (s.id, col)
                    continue
                got_v = row[c[col]]
                if dtypes[col] in ("sfloat", "ufloat") and got_v is not None:
                    got_v = bits(got_v)
                assert got_v == expect(value, col, stamps, dtypes[col]), (s.id, col)
        for k, v in params.items():
            assert all(r[c[k]] == v for r in got)
    assert table_name(streams[0]) == "device_info__device_placement__boolean"
    assert table_name(next(s for s in streams if s.id == "bytes")) == "device_info__bytes"
    assert table_name(next(s for s in streams if s.id == "spectrum")) == (
        "neural__lfp_spectrum__voltage_spectrum"
    )


# ------------------------------------------------- equal timestamps on page boundaries

GROUPS, PER_GROUP = 70, 3  # 210 rows; each time shared by 3 rows, 100 ns apart


@pytest.fixture
def crowded():
    """Rows sharing times, pages of 4: every page boundary splits a group of equal times."""
    st = stype("acceleration", dim("time", "timestamp"), dim("acceleration", "sfloat"))
    t0 = parse_iso_ns("2022-07-28T14:00:00Z")
    rows = [[t0 + g * 100, repr(g + k / 10)] for g in range(GROUPS) for k in range(PER_GROUP)]
    with ReplayServer(page_size=4) as srv:
        srv.add(ReplayStream(meta("crowded", st, category="motion", measurement="user"),
                             ["time", "acceleration"], rows, {"time"}))  # fmt: skip
        yield srv, rows, t0


@pytest.mark.parametrize("parallel", [1, 2, 3])
def test_rows_sharing_a_time_survive_paging(crowded, tmp_path, parallel):
    srv, rows, t0 = crowded
    lo = EPOCH + timedelta(microseconds=t0 // 1000)
    hi = lo + timedelta(microseconds=GROUPS // 10)  # ends just after the last group
    with RuneClient(make_settings(srv.url)) as client:
        (stream,) = client.graph.streams_by_ids(["crowded"])
        table = client.streams.read_table(stream, lo, hi, parallel=parallel)
        lake = open_lake(str(tmp_path / "lake"))
        write_stream_partition(
            lake, stream, lo, client.streams.read(stream, lo, hi, parallel=parallel), run_id="r"
        )
    want = [(t, float(v)) for t, v in rows]
    got = list(
        zip(
            table.column("time_ns").to_pylist(),
            table.column("acceleration").to_pylist(),
            strict=True,
        )
    )
    assert got == want  # none lost, none twice, in served order
    starts = {int(q["start_time_ns"][0]) for q in srv.requests}
    if parallel > 1:  # sub-windows really were used, starting on shared times
        assert len(starts) > 2
        assert t0 + 100 in starts  # the rest starts at page 0's last time, shared by page 1
    _, lake_got, cols = lake_rows(lake.root, "motion__user__acceleration", "crowded")
    c = {n: i for i, n in enumerate(cols)}
    assert [(r[c["time_ns"]], r[c["acceleration"]]) for r in lake_got] == want
