"""Every stream type of the emulator's catalog lands in the lake equal to its ground truth.

Real HTTP to ``rune_emulator`` on 127.0.0.1, the real reader and writer, read back with
DuckDB: per stream, lake rows (by ``stream_id``) against ``expected_table``: a truth
timestamp ``d`` (int64 ns) equals lake ``d_ns``, every other column equals the lake column
of the same name, same type, no cast, rows in served order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from rune_io.api.arrow_schema import NS_SUFFIX
from rune_io.api.client import RuneClient
from rune_io.config import load_settings
from rune_io.lake import Catalog, open_lake, write_stream_partition
from rune_io.lake.layout import partitions_between, table_name
from tests.truth import assert_equals_truth, lake_rows

emulator = pytest.importorskip("rune_emulator")


@pytest.fixture(scope="module")
def emu():
    with emulator.running_emulator(emulator.EmulatorConfig(seed=0, patients=1, days=3)) as e:
        yield e


@pytest.fixture(scope="module")
def landed(emu, tmp_path_factory):
    """Every stream type of the catalog (one stream each) loaded over 3 days."""
    lake_dir = tmp_path_factory.mktemp("truth")
    return lake_dir, load(emu, lake_dir)


def load(emu, lake_dir):
    settings = load_settings(
        stream_url=emu.url, graph_url=emu.url, environ={},
        access_token_id=emulator.DEMO_ACCESS_TOKEN_ID,
        access_token_secret=emulator.DEMO_ACCESS_TOKEN_SECRET,
    )  # fmt: skip
    lake = open_lake(str(lake_dir / "lake"))
    hi = datetime.fromtimestamp(emu.now_ns() // 10**9, UTC)
    hi = hi.replace(hour=0, minute=0, second=0, microsecond=0)
    lo = hi - timedelta(days=3)
    out = {}
    with RuneClient(settings) as client:
        for s in client.graph.streams_by_ids([s.id for s in emu.cohort.streams]):
            if s.stream_type.id in out:
                continue
            parts = partitions_between(table_name(s), lo, hi)
            for p in parts:
                batches = client.streams.read(s, p.start, p.end)
                write_stream_partition(lake, s, p.start, batches, run_id="truth")
            want = pa.concat_tables([emu.expected_table(s.id, p.start, p.end) for p in parts])
            out[s.stream_type.id] = (s, want)
    Catalog(lake).commit("truth")
    return out


def _key_times(s, want) -> tuple[str, list[int]]:
    stamp = next(d.identifier for d in s.stream_type.dimensions if d.data_type == "timestamp")
    return stamp, sorted(want.column(stamp).to_pylist())


def test_pandas_reads_every_table_to_the_nanosecond(landed):
    import pandas as pd

    lake_dir, streams = landed
    assert {"acceleration", "span", "voltage-spectrum", "event", "boolean"} <= streams.keys()
    for tid, (s, want) in streams.items():
        if not want.num_rows:
            continue
        stamp, truth_ns = _key_times(s, want)
        df = pd.read_parquet(lake_dir / "lake" / table_name(s))
        assert str(df[stamp].dtype) == "datetime64[us, UTC]", tid
        assert sorted(df.loc[df["stream_id"] == s.id, stamp + NS_SUFFIX]) == truth_ns, tid


@pytest.mark.spark
def test_spark_reads_every_table_to_the_nanosecond(landed, spark):
    lake_dir, streams = landed
    for tid, (s, want) in streams.items():
        if not want.num_rows:
            continue
        stamp, truth_ns = _key_times(s, want)
        sdf = spark.read.parquet(str(lake_dir / "lake" / table_name(s)))
        assert dict(sdf.dtypes)[stamp] == "timestamp", tid
        rows = sdf.where(sdf.stream_id == s.id).select(stamp + NS_SUFFIX).collect()
        assert sorted(r[0] for r in rows) == truth_ns, tid


def test_every_stream_type_equals_ground_truth(landed):
    lake_dir, streams = landed
    root = str(lake_dir / "lake")
    with_rows = {tid for tid, (_, want) in streams.items() if want.num_rows}
    for s, want in streams.values():
        assert_equals_truth(lake_rows(root, s), want, s.stream_type.id)
    assert {"acceleration", "duration", "percentage", "event", "span", "boolean"} <= with_rows
