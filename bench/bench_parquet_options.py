"""Parquet options, side by side: the lake's writer options against the previous ones.

    .venv/bin/python bench/bench_parquet_options.py [--rounds 5]

Builds the tables the partition sink writes (``rune_io.lake.sink``: the stream's columns
plus the constant metadata and parameter columns as one-entry dictionary arrays) for one
UTC day of the synthetic 50 Hz acceleration stream of ``bench_lake.py`` and one daily
file of three low-rate streams, then writes each to memory with

- **now**: ``parquet_options`` as the writer uses them (zstd for value columns only;
  delta-packed times and constants uncompressed; constants required; 8,192-value write
  batches), and
- **before** (main until 2026-12-02): zstd(3) on every column, constants nullable,
  Arrow's 1,024-value write batches,

alternating, ``--rounds`` times. Reports the median write time (CPU-bound: one thread,
no disk) and the bytes, per file and per column group.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_lake import DAY, batches, stream  # noqa: E402

from rune_io.api.models import Dimension  # noqa: E402
from rune_io.lake.layout import META_COLUMNS, lake_schema, param_columns  # noqa: E402
from rune_io.lake.sink import parquet_options  # noqa: E402

DICT = pa.dictionary(pa.int32(), pa.string())


def sink_table(s, hz: float) -> tuple[pa.Table, list[str]]:
    """The day's rows as the sink hands them to Parquet, and the constant columns."""
    base = pa.Table.from_batches(list(batches(s, hz, 100_000)))
    values = (s.id, s.patient_id, s.device_id, s.algorithm, s.stream_type.id)
    constants = list(zip(META_COLUMNS, values, strict=True)) + param_columns(s)
    arrays, names = list(base.columns), list(base.column_names)
    zeros = pa.array([0] * base.num_rows, pa.int32())
    for name, value in constants:
        arrays.append(pa.DictionaryArray.from_arrays(zeros, pa.array([value], pa.string())))
        names.append(name)
    assert names == lake_schema(s).names
    return pa.Table.from_arrays(arrays, names=names), [c for c, _ in constants]


def variant(table: pa.Table, constants: list[str], now: bool) -> tuple[pa.Schema, dict]:
    schema = lake_schema_of(table)
    write_schema = pa.schema(
        [
            pa.field(f.name, DICT, nullable=not now) if f.name in constants else f
            for f in table.schema
        ]
    )
    if now:
        return write_schema, parquet_options(schema, constants=constants)
    opts = parquet_options(schema)
    opts["compression"], opts["compression_level"] = "zstd", 3
    opts["write_batch_size"] = 1024  # Arrow's default, the lake's until 2026-12-03
    return write_schema, opts


def lake_schema_of(table: pa.Table) -> pa.Schema:
    return pa.schema(
        [
            pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f
            for f in table.schema
        ]
    )


def write(table: pa.Table, schema: pa.Schema, opts: dict) -> tuple[float, pq.FileMetaData, int]:
    table = table.cast(schema)
    out = pa.BufferOutputStream()
    t = time.process_time()
    with pq.ParquetWriter(out, schema, **opts) as w:
        w.write_table(table, row_group_size=1 << 20)
    cpu = time.process_time() - t
    buf = out.getvalue()
    return cpu, pq.ParquetFile(pa.BufferReader(buf)).metadata, buf.size


def column_bytes(md: pq.FileMetaData, names: list[str], constants: list[str]) -> dict[str, int]:
    groups = {"times": 0, "values": 0, "constants": 0}
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        for i in range(rg.num_columns):
            name = names[i]
            kind = (
                "constants"
                if name in constants
                else "times"
                if name.startswith("time")
                else "values"
            )
            groups[kind] += rg.column(i).total_compressed_size
    return groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    accel = stream(
        "bench-accel-x", "motion", "user", "acceleration",
        [Dimension("acceleration", "sfloat"), Dimension("measurement_duration_ns", "uint")],
        axis="x",
    )  # fmt: skip
    low = [
        (stream("bench-hr", "vitals", "heart_rate", "rate-per-min", [Dimension("rate", "ufloat")]), 1 / 5),
        (stream("bench-tremor", "symptom", "tremor", "duration", [Dimension("duration", "sfloat")]), 1 / 60),
    ]  # fmt: skip
    cases = [("50 Hz acceleration, one day", *sink_table(accel, 50))]
    cases += [(f"{s.stream_type.id}, one day", *sink_table(s, hz)) for s, hz in low]
    print(f"{DAY}: {args.rounds} alternating rounds, median CPU seconds of one write\n")
    print("| file | rows | before: CPU s | now: CPU s | now/before | before: bytes | now: bytes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    details = []
    for label, table, constants in cases:
        runs: dict[bool, list[float]] = {False: [], True: []}
        meta: dict[bool, tuple[pq.FileMetaData, int]] = {}
        for _ in range(args.rounds):
            for now in (False, True):
                schema, opts = variant(table, constants, now)
                cpu, md, size = write(table, schema, opts)
                runs[now].append(cpu)
                meta[now] = (md, size)
        b, n = statistics.median(runs[False]), statistics.median(runs[True])
        print(
            f"| {label} | {table.num_rows:,} | {b:.3f} | {n:.3f} | {n / b:.2f} | "
            f"{meta[False][1]:,} | {meta[True][1]:,} |"
        )
        details.append(
            (
                label,
                {k: column_bytes(m, table.column_names, constants) for k, (m, _) in meta.items()},
            )
        )
    print("\nbytes by column group (before -> now):")
    for label, groups in details:
        parts = ", ".join(f"{g} {groups[False][g]:,} -> {groups[True][g]:,}" for g in groups[False])
        print(f"- {label}: {parts}")


if __name__ == "__main__":
    main()
