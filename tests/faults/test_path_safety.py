"""Hostile ids from the API (``../``, ``/``, ``#``, ``*``, ``%``, unicode, ``..``, very
long): every file stays under the lake root, and the exact id survives in the data
columns and the catalog. Drives ``rune_io.pipeline.run_chunk`` (what the Prefect task runs)
with a fake reader, so any id can be served."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest

from rune_io import pipeline
from rune_io.api.models import Event
from rune_io.lake import Catalog, open_lake
from rune_io.pipeline.plan import Chunk, Window
from tests.faults.conftest import assert_lake_consistent, remember
from tests.lake.conftest import day_start, make_batches, make_stream

DAY = date(2024, 6, 1)
HOSTILE = [
    "../../../../tmp/escaped",
    "..",
    ".",
    "a/b/c",
    "/etc/passwd",
    "id#frag",
    "R5*S1EGY",
    "%2e%2e%2f%2e%2e",
    "ünïcødé-患者-🧠",
    "back\\slash",
    "new\nline",
    " spaced ",
    "-looks-like-a-slug-escape",
    "x" * 300,
]


class FakeStreams:
    def read(self, stream, start, end):
        yield from make_batches(stream, start, 500, hz=0.01, batch_rows=200)


class FakeGraph:
    def events(self, patient_id, start, end):
        return [
            Event(
                id=f"ev/{patient_id}",
                patient_id=patient_id,
                display_name="hostile",
                namespace="patient",
                category="symptom",
                enum="note",
                start_time=start + timedelta(hours=1),
            )
        ]


class FakeClient:
    streams = FakeStreams()
    graph = FakeGraph()


@pytest.mark.parametrize("where", ["stream", "patient", "device"])
def test_hostile_ids_stay_inside_the_lake_and_survive_in_the_data(tmp_path, where):
    root = remember(tmp_path / "lake")
    lake = open_lake(str(root))
    streams = []
    for i, bad in enumerate(HOSTILE):
        ids = {"sid": f"s{i}", "patient": f"p{i}", "device": f"d{i}"}
        ids[{"stream": "sid", "patient": "patient", "device": "device"}[where]] = bad
        streams.append(make_stream(ids["sid"], ids["patient"], ids["device"], axis=bad))
    start = day_start(DAY)
    for s in streams:
        w = Window(s.id, start, start + timedelta(days=1))
        chunk = Chunk(pipeline.StreamSource(s), (w,))
        res = pipeline.run_chunk(FakeClient(), lake, chunk, run_id="hostile")
        assert res.ok and res.rows == 500, res.error
        if where == "patient":
            ev = pipeline.events_source(s.patient_id, [s])
            assert ev is not None
            month = datetime(DAY.year, DAY.month, 1, tzinfo=UTC)
            ew = Window(ev.key, month, month + timedelta(days=30))
            res = pipeline.run_chunk(FakeClient(), lake, Chunk(ev, (ew,)), run_id="hostile")
            assert res.ok and res.rows == 1, res.error
    Catalog(lake).commit()

    # every file is under the root; no path component is '..' or '.'; nothing escaped
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            assert name not in ("..", ".") and "/" not in name
            full = os.path.realpath(os.path.join(dirpath, name))
            assert full.startswith(real_root + os.sep), full
    assert not (tmp_path / "escaped").exists() and not os.path.exists("/tmp/escaped")
    for part in ("patient=", "date="):
        for p in root.rglob(f"{part}*"):
            value = p.name.split("=", 1)[1]
            assert all(c.isalnum() or c in "-_" for c in value), p.name

    # the exact ids survive in the data columns and the catalog
    col = {"stream": "stream_id", "patient": "patient_id", "device": "device_id"}[where]
    got = {
        r[0]
        for r in duckdb.sql(
            f"SELECT DISTINCT {col} FROM read_parquet('{root}/kinematics__acceleration__acceleration/**/*.parquet')"
        ).fetchall()
    }
    assert set(HOSTILE) <= got
    axes = {
        r[0]
        for r in duckdb.sql(
            f"SELECT DISTINCT axis FROM read_parquet('{root}/kinematics__acceleration__acceleration/**/*.parquet')"
        ).fetchall()
    }
    assert axes == set(HOSTILE)
    files = Catalog(lake).files().to_pylist()
    assert set(HOSTILE) <= {f[col] for f in files}
    if where == "patient":
        events = duckdb.sql(
            f"SELECT patient_id, event_id FROM read_parquet('{root}/events/**/*.parquet')"
        ).fetchall()
        assert {p for p, _ in events} == set(HOSTILE)
        assert all(e == f"ev/{p}" for p, e in events)
    assert_lake_consistent(root)
