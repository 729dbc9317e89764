"""The partition sink: batches of one (stream, partition) in, row groups of one file out.

See :mod:`rune_io.lake.writer` for the rules (sortedness and window checks per batch,
about one row group buffered, the fallback to sorting, undeclared columns widening the
schema). The sink also hashes the rows it writes (:class:`~rune_io.lake.content.ContentHash`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rune_io.api.arrow_schema import NS_SUFFIX, TIME_TYPE
from rune_io.faults import crash_point
from rune_io.lake.content import ContentHash
from rune_io.lake.entries import FOOTER_KEY
from rune_io.lake.errors import LakeError, PartitionWindowError
from rune_io.lake.layout import PARTITION_KEYS, Partition

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Values Arrow's Parquet writer encodes per batch (its default: 1,024). A 50 Hz day
#: (4.32 M rows, 9 constant columns) writes in 0.29 s of CPU instead of 0.345 s, to the
#: same bytes (bench/bench_parquet_options.py, 2 x 3 rounds, 2026-12-03; 65,536: 0.28 s).
#: A page is cut between batches, so a page of long strings may overshoot the 1 MiB page
#: size by up to a batch: 8,192 bounds that at 0.8 MiB for 100-byte strings.
WRITE_BATCH_ROWS = 8192


def parquet_options(
    schema: pa.Schema, key: str | None = "time", constants: Collection[str] = ()
) -> dict:
    """Statistics and page index on every column; delta-encoded times (``d`` and
    ``d_ns``), byte-stream-split floats, dictionary for the rest; microsecond timestamps
    only (never INT96 or ns). zstd(3) for the value columns; the delta-encoded times and
    the ``constants`` (columns holding one value per file) are left uncompressed: zstd
    saved 0.5% of a 50 Hz day's time bytes (0.1% of the file) and took, with nullable
    constants, a third of the write's CPU (BENCHMARKS.md, "Parquet options").

    Arrow encodes a column chunk ``WRITE_BATCH_ROWS`` values at a time; each batch costs
    per column (levels, statistics: for a dictionary column a ``unique`` kernel over its
    indices, page-size checks) whatever its length."""
    floats = [f.name for f in schema if pa.types.is_floating(f.type)]
    stamps = [f.name for f in schema if f.type == TIME_TYPE]
    times = stamps + [n + NS_SUFFIX for n in stamps if n + NS_SUFFIX in schema.names]
    dict_cols = [f.name for f in schema if f.name not in times and f.name not in floats]
    encodings = {c: "DELTA_BINARY_PACKED" for c in times}
    encodings |= {c: "BYTE_STREAM_SPLIT" for c in floats}
    plain = set(times) | set(constants)
    compression = {f.name: "NONE" if f.name in plain else "ZSTD" for f in schema}
    sorting = [pq.SortingColumn(schema.get_field_index(key))] if key in schema.names else []
    return dict(
        compression=compression,
        compression_level={c: 3 for c, codec in compression.items() if codec == "ZSTD"},
        write_statistics=True,
        use_dictionary=dict_cols,
        column_encoding=encodings,
        use_deprecated_int96_timestamps=False,
        coerce_timestamps="us",
        allow_truncated_timestamps=False,
        store_schema=False,  # metadata columns are dictionary in memory, strings on disk
        sorting_columns=sorting,
        write_page_index=True,
        write_batch_size=WRITE_BATCH_ROWS,
    )


def _nanos(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(microseconds=1) * 1000


def from_nanos(ns: int) -> datetime:
    """Unix ns -> UTC datetime, floored to the microsecond (catalog times)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


class PartitionSink:
    """Accumulates batches of one partition and writes row groups to a local file."""

    def __init__(
        self,
        path: str,
        base: pa.Schema,
        schema: pa.Schema,
        constants: list[tuple[str, str]],
        part: Partition,
        where: str,
        on_widen: Callable[[pa.Schema], None] = lambda schema: None,
        key: str | None = "time",
        group_rows: int = 1 << 20,
    ):
        self.path, self.base, self.part, self.where = path, base, part, where
        self.key = key  # the time_key column (None: no timestamp at all)
        self.windowed = key == "time"  # rows checked against the partition, sorted
        self.constants = constants
        self.declared = frozenset(base.names)
        self.on_widen = on_widen
        self.group_rows = group_rows
        self.content = ContentHash(base, constants)  # of the rows as written
        self._set_schema(schema)
        self.lo, self.hi = _nanos(part.start), _nanos(part.end)
        self.buffer: list[pa.RecordBatch] = []
        self.buffered = 0
        self.rows = 0
        self.min_ns: int | None = None
        self.max_ns: int | None = None
        self.last_ns: int | None = None
        self.sorted = True
        self.writer: pq.ParquetWriter | None = None

    def _set_schema(self, schema: pa.Schema) -> None:
        self.schema = schema
        dict_type = pa.dictionary(pa.int32(), pa.string())
        # a constant is a required column in the file (it has a value on every row):
        # validity bits are then neither computed nor written (measured: a quarter of
        # the cost of writing these columns); readers see plain strings either way
        required = {c: value is not None for c, value in self.constants}
        self.write_schema = pa.schema(
            [
                pa.field(f.name, dict_type, nullable=not required[f.name])
                if f.name in required
                else f
                for f in schema
            ]
        )
        key = self.key if self.windowed else None
        self.options = parquet_options(schema, key, constants=required)

    def _widen(self, fields: list[pa.Field]) -> None:
        """Add undeclared columns (after the dimensions); reload what was written."""
        taken = set(self.schema.names) | set(PARTITION_KEYS)
        clash = sorted(f.name for f in fields if f.name in taken)
        if clash:
            raise LakeError(f"{self.where}: undeclared column(s) {clash} clash with lake columns")
        n = len(self.base)
        base = pa.schema(list(self.base) + fields)
        schema = pa.schema(list(self.schema)[:n] + fields + list(self.schema)[n:])
        self.on_widen(schema)  # SchemaConflictError before anything is published
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            written = pq.read_table(self.path, columns=self.base.names).cast(self.base)
            self.buffer = written.to_batches() + self.buffer
        self.buffer = [with_nulls(b, base).cast(base) for b in self.buffer]
        self.buffered = sum(b.num_rows for b in self.buffer)
        self.base = base
        self.content.reset(base)  # everything is written again, wider
        self._set_schema(schema)

    # -- input ---------------------------------------------------------------------
    def _conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if batch.schema.names != self.base.names:
            names = set(batch.schema.names)
            if not self.declared <= names:
                raise LakeError(
                    f"{self.where}: batch columns {batch.schema.names} lack the stream "
                    f"type's {sorted(self.declared - names)}"
                )
            new = [f.with_nullable(True) for f in batch.schema if f.name not in self.base.names]
            if new:
                self._widen(new)
            batch = with_nulls(batch, self.base)
        if not batch.schema.equals(self.base):
            try:
                batch = batch.cast(self.base, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise LakeError(
                    f"{self.where}: batch schema {batch.schema} does not match {self.base}: {exc}"
                ) from exc
        return batch

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        if isinstance(batch, pa.Table):
            for b in batch.to_batches():
                self.add(b)
            return
        if batch.num_rows == 0:
            return
        batch = self._conform(batch)
        if self.windowed:
            self._check_times(batch)
        elif self.key is not None:
            self._span_times(batch)
        self.buffer.append(batch)
        self.buffered += batch.num_rows
        self.rows += batch.num_rows
        while self.sorted and self.buffered >= self.group_rows:
            self._flush_group()

    def _check_times(self, batch: pa.RecordBatch) -> None:
        """Key times inside the partition; switch to sorting if they are out of order."""
        assert self.key is not None
        time = batch.column(self.key + NS_SUFFIX)
        if time.null_count:
            raise LakeError(f"{self.where}: {time.null_count} rows have a null {self.key}")
        ns = time.to_numpy(zero_copy_only=False)
        ordered = bool(np.all(ns[1:] >= ns[:-1]))
        bmin, bmax = (int(ns[0]), int(ns[-1])) if ordered else (int(ns.min()), int(ns.max()))
        if bmin < self.lo or bmax >= self.hi:
            bad = bmin if bmin < self.lo else bmax
            raise PartitionWindowError(
                f"{self.where}: row at {self.key}_ns={bad} ({from_nanos(bad).isoformat()}) "
                f"is outside partition {self.part.dirname} "
                f"[{self.part.start.isoformat()}, {self.part.end.isoformat()})"
            )
        if self.sorted and (not ordered or (self.last_ns is not None and bmin < self.last_ns)):
            self._go_unsorted()
        self.last_ns = int(ns[-1])
        self.min_ns = bmin if self.min_ns is None else min(self.min_ns, bmin)
        self.max_ns = bmax if self.max_ns is None else max(self.max_ns, bmax)

    def _span_times(self, batch: pa.RecordBatch) -> None:
        """Catalog time span of a stream without ``time``: its key's min and max."""
        assert self.key is not None  # called only for a keyed table
        col = batch.column(self.key + NS_SUFFIX)
        lo, hi = pc.min(col).as_py(), pc.max(col).as_py()
        if lo is not None:
            self.min_ns = lo if self.min_ns is None else min(self.min_ns, lo)
            self.max_ns = hi if self.max_ns is None else max(self.max_ns, hi)

    # -- output --------------------------------------------------------------------
    def _with_constants(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        zeros = pa.array(np.zeros(n, dtype=np.int32))
        arrays = list(table.columns)
        names = list(table.column_names)
        for col, value in self.constants:  # index 0 of a 1-entry dictionary: no bounds check
            dictionary = pa.array([value], pa.string())
            arrays.append(pa.DictionaryArray.from_arrays(zeros, dictionary, safe=False))
            names.append(col)
        return pa.Table.from_arrays(arrays, names=names).cast(self.write_schema)

    def _write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.write_schema, **self.options)
        self.content.update(table)
        self.writer.write_table(self._with_constants(table), row_group_size=self.group_rows)
        crash_point("write")

    def _flush_group(self) -> None:
        table = pa.Table.from_batches(self.buffer, schema=self.base)
        head, rest = table.slice(0, self.group_rows), table.slice(self.group_rows)
        self._write(head)
        self.buffer = rest.combine_chunks().to_batches() if rest.num_rows else []
        self.buffered = rest.num_rows

    def _go_unsorted(self) -> None:
        """Switch to buffering the whole partition: reload what was written already."""
        self.sorted = False
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            written = pq.read_table(self.path, columns=self.base.names).cast(self.base)
            self.buffer = written.to_batches() + self.buffer
            self.content.reset(self.base)  # written again, sorted

    def finish(self) -> str:
        """Write what is buffered (sorted by time if needed); returns the content hash of
        every row written (:mod:`rune_io.lake.content`)."""
        if self.buffer:
            table = pa.Table.from_batches(self.buffer, schema=self.base)
            self.buffer = []
            if not self.sorted:  # stable: rows sharing a time keep their page order
                table = table.sort_by([(f"{self.key}{NS_SUFFIX}", "ascending")])
            for start in range(0, table.num_rows, self.group_rows):
                self._write(table.slice(start, self.group_rows))
        return self.content.hexdigest()

    def seal(self, footer: dict) -> int:
        """Write the footer and close the file (after :meth:`finish`); returns rows."""
        if self.writer is not None:
            self.writer.add_key_value_metadata({FOOTER_KEY: json.dumps(footer)})
            self.writer.close()
            self.writer = None
        return self.rows

    def abort(self) -> None:
        """Close the file without a footer (it is discarded)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def with_nulls(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with ``schema``'s columns in order, nulls for the ones it lacks."""
    arrays = [
        batch.column(f.name)
        if f.name in batch.schema.names
        else pa.nulls(batch.num_rows, type=f.type)
        for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, names=schema.names)
