"""Write one (stream, partition) file, or one patient's events partition, atomically.

A stream's rows arrive as Arrow record batches (API pages) already sorted by their key
time (:func:`rune_io.api.arrow_schema.time_key`, compared on its exact ``_ns`` column). The
writer checks sortedness and the partition window per batch with numpy (cheap), buffers
at most about one row group (``ROW_GROUP_ROWS``), adds the constant metadata columns as
one-entry dictionary arrays (4 bytes a row while in memory, plain strings in the file),
and streams row groups to a staging file that is published in one step
(:func:`rune_io.lake.storage.atomic_file`). Only if a batch turns out unsorted does it
fall back to buffering the whole partition and sorting it (stably: rows sharing a time
keep the order they were served in). A stream without a ``time`` dimension (``span``:
the API windows it by another timestamp; ``bytes``: no timestamp at all) is written in
served order, all of it into the partition of the window it was fetched for.

A column the stream type does not declare (the reader keeps such columns, nullable)
widens the file's schema: it goes after the dimensions, is registered with the catalog
(a type change against the table raises :class:`SchemaConflictError`) before anything is
published, and batches without it get nulls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rune_io.api.arrow_schema import NS_SUFFIX, TIME_TYPE, stream_schema, time_key
from rune_io.api.models import Event, StreamMeta
from rune_io.faults import crash_point
from rune_io.lake.catalog import (
    FOOTER_KEY,
    Catalog,
    FileEntry,
    entry_from_footer,
    upstream_bounds,
)
from rune_io.lake.errors import LakeError, PartitionWindowError
from rune_io.lake.layout import (
    EVENTS_SCHEMA,
    EVENTS_TABLE,
    LAYOUT_VERSION,
    META_COLUMNS,
    PARTITION_KEYS,
    Partition,
    events_file_path,
    lake_schema,
    param_columns,
    partition_for,
    partition_of,
    schema_fingerprint,
    stream_file_path,
    table_name,
)
from rune_io.lake.storage import Lake, atomic_file, path_lock, remove

__all__ = ["FileEntry", "write_events", "write_stream_partition", "ROW_GROUP_ROWS"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Rows per Parquet row group (the last group of a file holds the remainder).
ROW_GROUP_ROWS = 1 << 20


def _parquet_options(schema: pa.Schema, key: str | None = "time") -> dict:
    """zstd, statistics, delta-encoded times (``d`` and ``d_ns``), byte-stream-split
    floats, dictionary for the rest, microsecond timestamps only (never INT96 or ns)."""
    floats = [f.name for f in schema if pa.types.is_floating(f.type)]
    stamps = [f.name for f in schema if f.type == TIME_TYPE]
    times = stamps + [n + NS_SUFFIX for n in stamps if n + NS_SUFFIX in schema.names]
    dict_cols = [f.name for f in schema if f.name not in times and f.name not in floats]
    encodings = {c: "DELTA_BINARY_PACKED" for c in times}
    encodings |= {c: "BYTE_STREAM_SPLIT" for c in floats}
    sorting = [pq.SortingColumn(schema.get_field_index(key))] if key in schema.names else []
    return dict(
        compression="zstd",
        compression_level=3,
        write_statistics=True,
        use_dictionary=dict_cols,
        column_encoding=encodings,
        use_deprecated_int96_timestamps=False,
        coerce_timestamps="us",
        allow_truncated_timestamps=False,
        store_schema=False,  # metadata columns are dictionary in memory, strings on disk
        sorting_columns=sorting,
        write_page_index=True,
    )


def _nanos(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(microseconds=1) * 1000


def _from_nanos(ns: int) -> datetime:
    """Unix ns -> UTC datetime, floored to the microsecond (catalog times)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


class _PartitionSink:
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
    ):
        self.path, self.base, self.part, self.where = path, base, part, where
        self.key = key  # the time_key column (None: no timestamp at all)
        self.windowed = key == "time"  # rows checked against the partition, sorted
        self.constants = constants
        self.declared = frozenset(base.names)
        self.on_widen = on_widen
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
        const_names = {c for c, _ in self.constants}
        self.write_schema = pa.schema(
            [pa.field(f.name, dict_type) if f.name in const_names else f for f in schema]
        )
        self.options = _parquet_options(schema, self.key if self.windowed else None)

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
        self.buffer = [_with_nulls(b, base).cast(base) for b in self.buffer]
        self.buffered = sum(b.num_rows for b in self.buffer)
        self.base = base
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
            batch = _with_nulls(batch, self.base)
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
        while self.sorted and self.buffered >= ROW_GROUP_ROWS:
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
                f"{self.where}: row at {self.key}_ns={bad} ({_from_nanos(bad).isoformat()}) "
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
        for col, value in self.constants:
            arrays.append(pa.DictionaryArray.from_arrays(zeros, pa.array([value], pa.string())))
            names.append(col)
        return pa.Table.from_arrays(arrays, names=names).cast(self.write_schema)

    def _write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.write_schema, **self.options)
        self.writer.write_table(self._with_constants(table), row_group_size=ROW_GROUP_ROWS)
        crash_point("write")

    def _flush_group(self) -> None:
        table = pa.Table.from_batches(self.buffer, schema=self.base)
        head, rest = table.slice(0, ROW_GROUP_ROWS), table.slice(ROW_GROUP_ROWS)
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

    def close(self, footer: dict) -> int:
        """Write what is buffered (sorted by time if needed) and the footer; returns rows."""
        if self.buffer:
            table = pa.Table.from_batches(self.buffer, schema=self.base)
            self.buffer = []
            if not self.sorted:  # stable: rows sharing a time keep their page order
                table = table.sort_by([(f"{self.key}{NS_SUFFIX}", "ascending")])
            for start in range(0, table.num_rows, ROW_GROUP_ROWS):
                self._write(table.slice(start, ROW_GROUP_ROWS))
        if self.writer is not None:
            self.writer.add_key_value_metadata({FOOTER_KEY: json.dumps(footer)})
            self.writer.close()
        return self.rows


def _with_nulls(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with ``schema``'s columns in order, nulls for the ones it lacks."""
    arrays = [
        batch.column(f.name)
        if f.name in batch.schema.names
        else pa.nulls(batch.num_rows, type=f.type)
        for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, names=schema.names)


class _NothingWritten(Exception):
    pass


def _check_schema(lake: Lake, table: str, schema: pa.Schema) -> None:
    Catalog(lake).register_schema(table, schema)


def _record(lake: Lake, entry: FileEntry) -> None:
    Catalog(lake).record_file(entry)


def _intend(lake: Lake, rel: str, run_id: str) -> None:
    Catalog(lake).record_intent(rel, run_id)  # before publishing: see Catalog.commit


def _remove_file(lake: Lake, rel: str, table: str, run_id: str) -> None:
    if lake.exists(rel):
        Catalog(lake).record_removal(rel, table, run_id)  # tombstone first, then delete
        remove(lake, rel)


def write_stream_partition(
    lake: Lake,
    stream: StreamMeta,
    day: date | datetime,
    batches: Iterable[pa.RecordBatch | pa.Table],
    *,
    run_id: str,
    replace_empty: bool = False,
) -> FileEntry | None:
    """Write ``stream``'s rows for the partition holding ``day`` as one Parquet file.

    ``batches`` carry :func:`rune_io.api.arrow_schema.stream_schema` columns and must hold the
    stream's rows for the *whole* partition window ``partition_for(stream, day)`` (a UTC
    day, or a calendar month for monthly tables): the file at the partition's
    deterministic path is replaced by exactly these rows. Rows outside the window raise
    :class:`PartitionWindowError`; a column type change against the table's known schema
    raises :class:`SchemaConflictError` before anything is written.

    The file is published atomically, then its catalog entry is written (pending until
    :meth:`Catalog.commit`). With no rows nothing is written and ``None`` returned; an
    existing file for this partition is then removed only if ``replace_empty``.
    """
    rel = stream_file_path(stream, partition_for(stream, day))
    with path_lock(lake, rel):  # publish and entry in one turn per path (see path_lock)
        return _write_stream_partition(
            lake, stream, day, batches, run_id=run_id, replace_empty=replace_empty
        )


def _write_stream_partition(
    lake: Lake,
    stream: StreamMeta,
    day: date | datetime,
    batches: Iterable[pa.RecordBatch | pa.Table],
    *,
    run_id: str,
    replace_empty: bool,
) -> FileEntry | None:
    table = table_name(stream)
    part = partition_for(stream, day)
    rel = stream_file_path(stream, part)
    schema = lake_schema(stream)
    where = f"stream {stream.id} -> {rel}"
    _check_schema(lake, table, schema)
    constants = list(
        zip(
            META_COLUMNS,
            (
                stream.id,
                stream.patient_id,
                stream.device_id,
                stream.algorithm,
                stream.stream_type.id,
            ),
            strict=True,
        )
    ) + param_columns(stream)
    written_at = datetime.now(UTC)
    footer = {
        "layout_version": LAYOUT_VERSION,
        "table": table,
        "stream_id": stream.id,
        "patient_id": stream.patient_id,
        "device_id": stream.device_id,
        "partition": part.dirname,
        "partition_start": part.start.isoformat(),
        "run_id": run_id,
        "written_at": written_at.isoformat(),
        "schema_fingerprint": schema_fingerprint(schema),
        **upstream_bounds(stream.min_time, stream.max_time),
    }
    base = stream_schema(stream.stream_type)
    key = time_key(stream.stream_type)
    try:
        with atomic_file(lake, rel) as (tmp, published):
            sink = _PartitionSink(
                tmp, base, schema, constants, part, where,
                lambda s: _check_schema(lake, table, s), key=key,
            )  # fmt: skip
            for batch in batches:
                sink.add(batch)
            if sink.rows == 0:
                raise _NothingWritten
            footer |= {
                "schema_fingerprint": schema_fingerprint(sink.schema),
                "rows": sink.rows,
                "min_time": None if sink.min_ns is None else _from_nanos(sink.min_ns).isoformat(),
                "max_time": None if sink.max_ns is None else _from_nanos(sink.max_ns).isoformat(),
            }
            sink.close(footer)
            _intend(lake, rel, run_id)
    except _NothingWritten:
        if replace_empty:
            _remove_file(lake, rel, table, run_id)
        return None
    crash_point("published")
    entry = entry_from_footer(footer, rel, published.bytes, published.checksum)
    _record(lake, entry)
    return entry


def events_table(patient_id: str, events: Iterable[Event]) -> pa.Table:
    """Events as an Arrow table with :data:`EVENTS_SCHEMA`, sorted by time then id."""
    evs = list(events)
    for e in evs:
        if e.start_time.tzinfo is None:
            raise LakeError(f"event {e.id}: naive start_time; the lake speaks UTC")
    cols = {
        "time": [e.start_time for e in evs],
        "end_time": [e.end_time for e in evs],
        "event_id": [e.id for e in evs],
        "patient_id": [e.patient_id or patient_id for e in evs],
        "type": [e.type for e in evs],
        "namespace": [e.namespace for e in evs],
        "category": [e.category for e in evs],
        "enum": [e.enum for e in evs],
        "display_name": [e.display_name for e in evs],
        "method": [e.method for e in evs],
        "payload": [e.payload for e in evs],
        "tags": [list(e.tags) for e in evs],
    }
    table = pa.Table.from_pydict(cols, schema=EVENTS_SCHEMA)
    return table.sort_by([("time", "ascending"), ("event_id", "ascending")])


def write_events(
    lake: Lake,
    patient_id: str,
    month_or_day: date | datetime,
    events: Iterable[Event],
    *,
    run_id: str,
    replace_empty: bool = False,
    bounds: tuple[Any, Any] = (None, None),
) -> FileEntry | None:
    """Write a patient's events of the (monthly) partition holding ``month_or_day``.

    ``events`` should be every event of the patient starting in that month; events whose
    ``start_time`` lies outside the partition are skipped (the API returns events that
    merely overlap a query window; they belong to their start's partition). Same
    atomicity, catalog and ``replace_empty`` rules as :func:`write_stream_partition`.
    """
    rel = events_file_path(patient_id, partition_of(EVENTS_TABLE, month_or_day))
    with path_lock(lake, rel):
        return _write_events(
            lake, patient_id, month_or_day, events, run_id=run_id,
            replace_empty=replace_empty, bounds=bounds,
        )  # fmt: skip


def _write_events(
    lake: Lake,
    patient_id: str,
    month_or_day: date | datetime,
    events: Iterable[Event],
    *,
    run_id: str,
    replace_empty: bool,
    bounds: tuple[Any, Any],
) -> FileEntry | None:
    part = partition_of(EVENTS_TABLE, month_or_day)
    rel = events_file_path(patient_id, part)
    _check_schema(lake, EVENTS_TABLE, EVENTS_SCHEMA)
    inside = [e for e in events if part.contains(e.start_time)]
    if not inside:
        if replace_empty:
            _remove_file(lake, rel, EVENTS_TABLE, run_id)
        return None
    table = events_table(patient_id, inside)
    times = table.column("time")
    written_at = datetime.now(UTC)
    footer = {
        "layout_version": LAYOUT_VERSION,
        "table": EVENTS_TABLE,
        "stream_id": "",
        "patient_id": patient_id,
        "device_id": "",
        "partition": part.dirname,
        "partition_start": part.start.isoformat(),
        "run_id": run_id,
        "written_at": written_at.isoformat(),
        "schema_fingerprint": schema_fingerprint(EVENTS_SCHEMA),
        "rows": table.num_rows,
        "min_time": times[0].as_py().isoformat(),
        "max_time": times[-1].as_py().isoformat(),
        **upstream_bounds(*bounds),
    }
    with atomic_file(lake, rel) as (tmp, published):
        with pq.ParquetWriter(tmp, EVENTS_SCHEMA, **_parquet_options(EVENTS_SCHEMA)) as writer:
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            writer.add_key_value_metadata({FOOTER_KEY: json.dumps(footer)})
        _intend(lake, rel, run_id)
    crash_point("published")
    entry = entry_from_footer(footer, rel, published.bytes, published.checksum)
    _record(lake, entry)
    return entry
