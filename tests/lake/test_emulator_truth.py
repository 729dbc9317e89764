"""Every stream type of the emulator's catalog lands in the lake equal to its ground truth.

Real HTTP to ``rune_emulator`` on 127.0.0.1, the real reader and writer, read back with
DuckDB: per stream, lake rows (by ``stream_id``) against ``expected_table``: a truth
timestamp ``d`` (int64 ns) equals lake ``d_ns``, every other column equals the lake column
of the same name, same type, no cast, rows in served order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from rune_io.arrow_schema import NS_SUFFIX, is_timestamp
from rune_io.client import RuneClient
from rune_io.config import load_settings
from rune_io.lake import Catalog, open_lake, write_stream_partition
from rune_io.lake.layout import partitions_between, table_name

emulator = pytest.importorskip("rune_emulator")


@pytest.fixture(scope="module")
def emu():
    with emulator.running_emulator(emulator.EmulatorConfig(seed=0, patients=1, days=3)) as e:
        yield e


def test_every_stream_type_equals_ground_truth(emu, tmp_path):
    settings = load_settings(
        stream_url=emu.url, graph_url=emu.url, environ={},
        access_token_id=emulator.DEMO_ACCESS_TOKEN_ID,
        access_token_secret=emulator.DEMO_ACCESS_TOKEN_SECRET,
    )  # fmt: skip
    lake = open_lake(str(tmp_path / "lake"))
    now = datetime.fromtimestamp(emu.now_ns() // 10**9, UTC)
    hi = now.replace(hour=0, minute=0, second=0, microsecond=0)
    lo = hi - timedelta(days=3)
    landed: set[str] = set()
    with RuneClient(settings) as client:
        streams = client.graph.streams_by_ids([s.id for s in emu.cohort.streams])
        one_per_type = {}
        for s in streams:
            one_per_type.setdefault(s.stream_type.id, s)
        con = duckdb.connect()
        for tid, s in sorted(one_per_type.items()):
            parts = partitions_between(table_name(s), lo, hi)
            for p in parts:
                write_stream_partition(
                    lake, s, p.start, client.streams.read(s, p.start, p.end), run_id="truth"
                )
            Catalog(lake).commit("truth")
            want = pa.concat_tables([emu.expected_table(s.id, p.start, p.end) for p in parts])
            if want.num_rows == 0:
                continue
            landed.add(tid)
            got = con.sql(
                f"select * from read_parquet('{lake.root}/{table_name(s)}/**/*.parquet',"
                f" hive_partitioning=true, union_by_name=true) where stream_id = '{s.id}'"
            ).arrow()
            got = got.read_all() if hasattr(got, "read_all") else got
            assert got.num_rows == want.num_rows, tid
            dims = {d.identifier: d for d in s.stream_type.dimensions}
            for col in want.column_names:
                stamp = col in dims and is_timestamp(dims[col])
                g = got.column(col + NS_SUFFIX if stamp else col).combine_chunks()
                w = want.column(col).combine_chunks()
                assert g.type == w.type, (tid, col)
                assert g.equals(w), (tid, col)
    assert {"acceleration", "duration", "percentage", "event", "span", "boolean"} <= landed
