"""Lake write benchmark: one UTC day of a synthetic 50 Hz stream through
``write_stream_partition`` on local disk, plus the daily file size of low-rate streams.

    .venv/bin/python bench/bench_lake.py [--lake DIR] [--batch-rows N]

Reports rows/s, bytes/row, file size per partition and peak RSS. Batches are generated
lazily, page by page like the API serves them, so peak RSS shows the writer's footprint.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rune_io.api.arrow_schema import floor_us, stream_schema  # noqa: E402
from rune_io.api.models import Dimension, StreamMeta, StreamType  # noqa: E402
from rune_io.lake import Catalog, open_lake, write_stream_partition  # noqa: E402

DAY = date(2024, 1, 15)
PATIENT = "0123456789abcdef0123456789abcdef"


def stream(
    sid: str, category: str, measurement: str, type_id: str, dims: list[Dimension], **params
) -> StreamMeta:
    st = StreamType(id=type_id, name=type_id, dimensions=(Dimension("time", "timestamp"), *dims))
    pairs = {"category": category, "measurement": measurement, **params}
    return StreamMeta(sid, PATIENT, "eb#8c31", "bench.0", st, tuple(sorted(pairs.items())))


def batches(s: StreamMeta, hz: float, batch_rows: int, seed: int = 0):
    """One day at ``hz``, shaped like the watch's data (real-api-evidence.md): times at
    100-ns resolution with jitter, full-precision doubles (``0.020525138825178146``)."""
    schema = stream_schema(s.stream_type)
    rng = np.random.default_rng(seed)
    t0 = int(datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC).timestamp()) * 10**9
    step = int(1e9 / hz)
    total = int(86_400 * hz)
    for lo in range(0, total, batch_rows):
        idx = np.arange(lo, min(lo + batch_rows, total), dtype=np.int64)
        jitter = rng.integers(0, min(step // 200, 2000), idx.size) * 100  # < 1% of a step
        ns = pa.array(t0 + idx * step + jitter)
        cols = [floor_us(ns), ns]
        for f in list(schema)[2:]:
            if pa.types.is_floating(f.type):
                v = 0.3 * np.sin(idx / hz * 2 * np.pi * 1.3) + rng.normal(0, 0.02, idx.size)
                cols.append(pa.array(v))
            else:
                cols.append(pa.array(np.full(idx.size, int(1e9 / hz), dtype=np.int64)))
        yield pa.RecordBatch.from_arrays(cols, schema=schema)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", default=None, help="lake directory (default: a temp dir)")
    ap.add_argument("--batch-rows", type=int, default=100_000, help="rows per API page")
    args = ap.parse_args()
    root = args.lake or tempfile.mkdtemp(prefix="bench-lake-")
    lake = open_lake(root)

    accel = stream(
        "bench-accel-x", "motion", "user", "acceleration",
        [Dimension("acceleration", "sfloat"), Dimension("measurement_duration_ns", "uint")],
        axis="x",
    )  # fmt: skip
    t = time.perf_counter()
    gen_rows = sum(b.num_rows for b in batches(accel, 50, args.batch_rows))
    gen_s = time.perf_counter() - t
    rss_before = rss_mib()

    t = time.perf_counter()
    entry = write_stream_partition(
        lake, accel, DAY, batches(accel, 50, args.batch_rows), run_id="bench"
    )
    total_s = time.perf_counter() - t
    write_s = total_s - gen_s
    assert entry is not None and entry.rows == gen_rows
    print(f"lake: {root}")
    print(
        f"50 Hz day: {entry.rows:,} rows in {total_s:.2f} s end-to-end "
        f"({gen_s:.2f} s of it generating batches of {args.batch_rows:,})"
    )
    print(
        f"  write throughput: {entry.rows / write_s / 1e6:.2f} M rows/s "
        f"(end-to-end {entry.rows / total_s / 1e6:.2f} M rows/s)"
    )
    print(
        f"  file: {entry.bytes / 2**20:.1f} MiB, {entry.bytes / entry.rows:.2f} bytes/row, "
        f"{entry.path}"
    )
    print(f"  peak RSS: {rss_mib():.0f} MiB (before the write: {rss_before:.0f} MiB)")

    low = [
        (
            stream(
                "bench-hr", "vitals", "heart_rate", "rate-per-min", [Dimension("rate", "ufloat")]
            ),
            1 / 5,
        ),
        (
            stream(
                "bench-tremor", "symptom", "tremor", "duration", [Dimension("duration", "sfloat")]
            ),
            1 / 60,
        ),
        (
            stream(
                "bench-lfp",
                "neural",
                "lfp_trend_log_power",
                "unitless-power",
                [Dimension("power", "sfloat")],
            ),
            1 / 600,
        ),
    ]
    print("low-rate streams, one daily partition each:")
    for s, hz in low:
        e = write_stream_partition(lake, s, DAY, batches(s, hz, args.batch_rows), run_id="bench")
        print(
            f"  {e.table:<44} {e.rows:>6,} rows  {e.bytes / 1024:6.1f} KiB  "
            f"{e.bytes / e.rows:5.1f} bytes/row"
        )
    t = time.perf_counter()
    Catalog(lake).commit("bench")
    print(f"catalog commit: {time.perf_counter() - t:.3f} s")


if __name__ == "__main__":
    main()
