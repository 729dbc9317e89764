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
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rune_io.api.arrow_schema import stream_schema, time_key
from rune_io.api.models import Event, StreamMeta
from rune_io.faults import crash_point
from rune_io.lake.catalog import Catalog
from rune_io.lake.content import ContentHash
from rune_io.lake.entries import (
    FOOTER_KEY,
    FileEntry,
    entry_from_file,
    entry_from_footer,
    read_footer,
    upstream_bounds,
)
from rune_io.lake.errors import LakeError
from rune_io.lake.layout import (
    EVENTS_SCHEMA,
    EVENTS_TABLE,
    LAYOUT_VERSION,
    META_COLUMNS,
    events_file_path,
    lake_schema,
    param_columns,
    partition_for,
    partition_of,
    schema_fingerprint,
    stream_file_path,
    table_name,
)
from rune_io.lake.records import FileRecords
from rune_io.lake.sink import PartitionSink, from_nanos, parquet_options
from rune_io.lake.storage import Lake, atomic_file, path_lock, remove

__all__ = ["FileEntry", "write_events", "write_stream_partition", "ROW_GROUP_ROWS"]

#: Rows per Parquet row group (the last group of a file holds the remainder).
ROW_GROUP_ROWS = 1 << 20


class _NothingWritten(Exception):
    pass


class _Unchanged(Exception):
    """The fetched rows equal the file's (``only_changed``): nothing is published."""


def _replacing(lake: Lake, rel: str, content: str, only_changed: bool) -> dict[str, Any]:
    """Footer keys of a file about to be published at ``rel`` with ``content``: what it
    replaces when the file there holds other content (its checksum, content hash and
    run, read from that file: its footer is the entry the catalog recorded). Raises
    :class:`_Unchanged` when ``only_changed`` and the content is the same."""
    old = read_footer(lake, rel)
    if old is None:
        return {}
    if old.get("content_checksum") == content:
        if only_changed:
            raise _Unchanged
        return {}
    entry = entry_from_file(lake, rel)
    if entry is None:  # gone meanwhile, or not ours
        return {}
    return {
        "replaced_checksum": entry.checksum,
        "replaced_content_checksum": entry.content_checksum,
        "replaced_run_id": entry.run_id,
    }


def _check_schema(lake: Lake, table: str, schema: pa.Schema) -> None:
    Catalog(lake).register_schema(table, schema)


def _record(lake: Lake, entry: FileEntry, records: FileRecords | None) -> None:
    if records is None:
        Catalog(lake).record_file(entry)
    else:
        records.add(entry)  # recorded with the unit's others (its intent is on disk)


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
    only_changed: bool = False,
    records: FileRecords | None = None,
) -> FileEntry | None:
    """Write ``stream``'s rows for the partition holding ``day`` as one Parquet file.

    ``batches`` carry :func:`rune_io.api.arrow_schema.stream_schema` columns and must hold the
    stream's rows for the *whole* partition window ``partition_for(stream, day)`` (a UTC
    day, or a calendar month for monthly tables): the file at the partition's
    deterministic path is replaced by exactly these rows. Rows outside the window raise
    :class:`PartitionWindowError`; a column type change against the table's known schema
    raises :class:`SchemaConflictError` before anything is written.

    The file is published atomically, then its catalog entry is written (pending until
    :meth:`Catalog.commit`), or held in ``records`` to be written with a work unit's
    others (:mod:`rune_io.lake.records`). With no rows nothing is written and ``None``
    returned; an existing file for this partition is then removed only if
    ``replace_empty`` (its tombstone is written at once, before the file goes).

    The entry carries the rows' ``content_checksum`` (:mod:`rune_io.lake.content`). A
    file replacing one of other content records that file's checksum, content checksum
    and run (``replaced_*``; the catalog's ``replacements``). With ``only_changed``
    (``backfill --overwrite``) a partition whose fetched rows equal the file's is left
    as it is (same bytes, same mtime/ETag) and ``None`` returned.
    """
    rel = stream_file_path(stream, partition_for(stream, day))
    with path_lock(lake, rel):  # publish and entry in one turn per path (see path_lock)
        return _write_stream_partition(
            lake, stream, day, batches, run_id=run_id, replace_empty=replace_empty,
            only_changed=only_changed, records=records,
        )  # fmt: skip


def _write_stream_partition(
    lake: Lake,
    stream: StreamMeta,
    day: date | datetime,
    batches: Iterable[pa.RecordBatch | pa.Table],
    *,
    run_id: str,
    replace_empty: bool,
    only_changed: bool,
    records: FileRecords | None,
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
            sink = PartitionSink(
                tmp, base, schema, constants, part, where,
                lambda s: _check_schema(lake, table, s), key=key, group_rows=ROW_GROUP_ROWS,
            )  # fmt: skip
            try:
                for batch in batches:
                    sink.add(batch)
                if sink.rows == 0:
                    raise _NothingWritten
                content = sink.finish()
                footer |= {
                    "schema_fingerprint": schema_fingerprint(sink.schema),
                    "rows": sink.rows,
                    "min_time": None
                    if sink.min_ns is None
                    else from_nanos(sink.min_ns).isoformat(),
                    "max_time": None
                    if sink.max_ns is None
                    else from_nanos(sink.max_ns).isoformat(),
                    "content_checksum": content,
                    **_replacing(lake, rel, content, only_changed),
                }
            except BaseException:
                sink.abort()
                raise
            sink.seal(footer)
            _intend(lake, rel, run_id)
    except _NothingWritten:
        if replace_empty:
            _remove_file(lake, rel, table, run_id)
        return None
    except _Unchanged:
        return None
    crash_point("published")
    entry = entry_from_footer(footer, rel, published.bytes, published.checksum)
    _record(lake, entry, records)
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
    only_changed: bool = False,
    records: FileRecords | None = None,
) -> FileEntry | None:
    """Write a patient's events of the (monthly) partition holding ``month_or_day``.

    ``events`` should be every event of the patient starting in that month; events whose
    ``start_time`` lies outside the partition are skipped (the API returns events that
    merely overlap a query window; they belong to their start's partition). Same
    atomicity, catalog, ``replace_empty`` and ``records`` rules as
    :func:`write_stream_partition`.
    """
    rel = events_file_path(patient_id, partition_of(EVENTS_TABLE, month_or_day))
    with path_lock(lake, rel):
        return _write_events(
            lake, patient_id, month_or_day, events, run_id=run_id,
            replace_empty=replace_empty, bounds=bounds, only_changed=only_changed,
            records=records,
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
    only_changed: bool,
    records: FileRecords | None,
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
    content = ContentHash(EVENTS_SCHEMA)
    content.update(table)
    footer["content_checksum"] = content.hexdigest()
    try:
        with atomic_file(lake, rel) as (tmp, published):
            footer |= _replacing(lake, rel, footer["content_checksum"], only_changed)
            with pq.ParquetWriter(tmp, EVENTS_SCHEMA, **parquet_options(EVENTS_SCHEMA)) as writer:
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                writer.add_key_value_metadata({FOOTER_KEY: json.dumps(footer)})
            _intend(lake, rel, run_id)
    except _Unchanged:
        return None
    crash_point("published")
    entry = entry_from_footer(footer, rel, published.bytes, published.checksum)
    _record(lake, entry, records)
    return entry
