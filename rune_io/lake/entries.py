"""The catalog's tables (Arrow schemas) and row builders: file entries, streams, runs.

Shared by :mod:`rune_io.lake.catalog` (reads and commits), the writer (a file's footer is
its own entry) and repair. Columns are only ever added: a segment or footer written
before a column existed reads with nulls there (:func:`conform`), so older lakes of the
same format version open unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rune_io.api.arrow_schema import TIME_TYPE, unknown_dimensions
from rune_io.api.models import StreamMeta
from rune_io.lake.layout import table_name
from rune_io.lake.resolve import conform as _conform_to
from rune_io.lake.resolve import parse_time
from rune_io.lake.resolve import pending_files as _pending_files_as
from rune_io.lake.storage import Lake

#: Footer key holding a file's own catalog entry (lets :meth:`Catalog.repair` rebuild it).
FOOTER_KEY = "rune_lake"

FILES_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("table", pa.string()),
        ("stream_id", pa.string()),
        ("patient_id", pa.string()),
        ("device_id", pa.string()),
        ("partition", pa.string()),
        ("partition_start", TIME_TYPE),
        ("rows", pa.int64()),
        ("min_time", TIME_TYPE),
        ("max_time", TIME_TYPE),
        ("bytes", pa.int64()),
        ("checksum", pa.string()),
        ("run_id", pa.string()),
        ("written_at", TIME_TYPE),
        ("schema_fingerprint", pa.string()),
        ("stream_min_time", TIME_TYPE),  # the stream's first data upstream, at fetch time
        ("stream_max_time", TIME_TYPE),  # the stream's last data upstream, at fetch time
        # added in format 2 (null in entries written before): the rows' content hash
        # (:mod:`rune_io.lake.content`) and, for a file that replaced one with other
        # content, the replaced file's checksum, content hash and run
        ("content_checksum", pa.string()),
        ("replaced_checksum", pa.string()),
        ("replaced_content_checksum", pa.string()),
        ("replaced_run_id", pa.string()),
    ]
)
#: Committed file entries (segments): plus the path's 64-bit key and tombstones.
FILES_SEGMENT_SCHEMA = FILES_SCHEMA.append(pa.field("key", pa.int64())).append(
    pa.field("deleted", pa.bool_())
)
STREAMS_SCHEMA = pa.schema(
    [
        ("stream_id", pa.string()),
        ("table", pa.string()),
        ("patient_id", pa.string()),
        ("device_id", pa.string()),
        ("algorithm", pa.string()),
        ("stream_type_id", pa.string()),
        ("stream_type_name", pa.string()),
        ("parameters", pa.string()),  # JSON object
        ("dimensions", pa.string()),  # JSON list of {identifier, data_type, unit...}
        ("unknown_data_types", pa.string()),  # JSON {dimension: dataType} stored as text
        ("min_time", TIME_TYPE),
        ("max_time", TIME_TYPE),
        ("created_at", TIME_TYPE),
        ("run_id", pa.string()),
        ("seen_at", TIME_TYPE),
    ]
)
WATERMARKS_SCHEMA = pa.schema(
    [
        ("stream_id", pa.string()),
        ("loaded_up_to", TIME_TYPE),
        ("run_id", pa.string()),
        ("updated_at", TIME_TYPE),
    ]
)
RUNS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("status", pa.string()),
        ("started_at", TIME_TYPE),
        ("finished_at", TIME_TYPE),
        ("params", pa.string()),  # JSON
        ("stats", pa.string()),  # JSON
    ]
)
#: One row per data file replaced by a file of other content (a revision upstream, or a
#: partition that grew): the history that ``files`` (last entry per path) forgets.
#: Added in format 2; a lake without it has no replacements recorded.
REPLACEMENTS_SCHEMA = pa.schema(
    [
        ("checksum", pa.string()),  # the new file's sha256: one row per file version
        ("path", pa.string()),
        ("table", pa.string()),
        ("stream_id", pa.string()),
        ("partition", pa.string()),
        ("old_checksum", pa.string()),
        ("old_content_checksum", pa.string()),
        ("old_run_id", pa.string()),
        ("content_checksum", pa.string()),
        ("run_id", pa.string()),
        ("replaced_at", TIME_TYPE),
    ]
)
#: Committed tables: (schema, key column; later rows win per key).
TABLES = {
    "files": (FILES_SCHEMA, "path"),
    "streams": (STREAMS_SCHEMA, "stream_id"),
    "watermarks": (WATERMARKS_SCHEMA, "stream_id"),
    "runs": (RUNS_SCHEMA, "run_id"),
    "replacements": (REPLACEMENTS_SCHEMA, "checksum"),
}
TIME_COLUMNS = {
    name: {f.name for f in schema if f.type == TIME_TYPE} for name, (schema, _) in TABLES.items()
}


@dataclass(frozen=True)
class FileEntry:
    """Catalog entry of one lake file (paths are relative to the lake root)."""

    path: str
    table: str
    stream_id: str  # "" for events files
    patient_id: str
    device_id: str  # "" for events files
    partition: str  # "date=2024-01-05" | "month=2024-01"
    partition_start: datetime
    rows: int
    min_time: datetime | None
    max_time: datetime | None
    bytes: int
    checksum: str  # "sha256:<hex>" of the file's bytes
    run_id: str
    written_at: datetime
    schema_fingerprint: str
    stream_min_time: datetime | None = None
    stream_max_time: datetime | None = None
    content_checksum: str | None = None  # "sha256:<hex>" of the rows (content.py)
    replaced_checksum: str | None = None  # the file this one replaced (other content)
    replaced_content_checksum: str | None = None
    replaced_run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: jsonable(v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FileEntry:
        kw: dict[str, Any] = {k: d.get(k) for k in cls.__dataclass_fields__}
        for k in (
            "partition_start", "min_time", "max_time", "written_at",
            "stream_min_time", "stream_max_time",
        ):  # fmt: skip
            kw[k] = parse_time(kw[k])
        return cls(**kw)


def upstream_bounds(min_time: Any, max_time: Any) -> dict[str, str | None]:
    """Footer keys recording the stream's upstream data span when a file was fetched
    (what backfill planning checks coverage against)."""
    lo, hi = parse_time(min_time), parse_time(max_time)
    return {
        "stream_min_time": lo.isoformat() if lo else None,
        "stream_max_time": hi.isoformat() if hi else None,
    }


def entry_from_footer(footer: dict[str, Any], rel: str, size: int, checksum: str) -> FileEntry:
    """Build a :class:`FileEntry` from a file's ``rune_lake`` footer metadata."""
    return FileEntry.from_json(footer | {"path": rel, "bytes": size, "checksum": checksum})


def read_footer(lake: Lake, rel: str) -> dict[str, Any] | None:
    """The ``rune_lake`` footer of the data file at ``rel`` (None: no file, not Parquet,
    or no footer). Reads the Parquet footer only."""
    try:
        with lake.fs.open(lake.path(rel), "rb") as f:
            meta = pq.read_metadata(f).metadata or {}
    except FileNotFoundError:
        return None
    except (pa.ArrowInvalid, OSError):
        return None
    raw = meta.get(FOOTER_KEY.encode())
    return None if raw is None else json.loads(raw)


def entry_from_file(lake: Lake, rel: str) -> FileEntry | None:
    """The entry of the data file at ``rel`` rebuilt from its footer, its size and its
    sha256 (reads the whole file); None if it has no ``rune_lake`` footer."""
    footer = read_footer(lake, rel)
    if footer is None:
        return None
    h = hashlib.sha256()
    size = 0
    with lake.fs.open(lake.path(rel), "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return entry_from_footer(footer, rel, size, "sha256:" + h.hexdigest())


def replacement_row(entry: dict[str, Any]) -> dict[str, Any]:
    """The ``replacements`` row of a file entry (JSON doc) that replaced another file."""
    return {
        "checksum": entry["checksum"],
        "path": entry["path"],
        "table": entry["table"],
        "stream_id": entry.get("stream_id"),
        "partition": entry.get("partition"),
        "old_checksum": entry["replaced_checksum"],
        "old_content_checksum": entry.get("replaced_content_checksum"),
        "old_run_id": entry.get("replaced_run_id"),
        "content_checksum": entry.get("content_checksum"),
        "run_id": entry["run_id"],
        "replaced_at": entry["written_at"],
    }


@dataclass
class CommitReport:
    """What :meth:`Catalog.commit` folded."""

    pending_objects: int = 0
    files: int = 0  # file entries the commit added or replaced
    removed: int = 0  # file entries it removed (tombstones)
    rebuilt: int = 0  # of the added, entries rebuilt from a file (an intent left unrecorded)
    replaced: int = 0  # of those, files that replaced one with other content
    compacted: list[str] = field(default_factory=list)  # tables whose base it rewrote
    tables_with_new_schema: list[str] = field(default_factory=list)


def jsonable(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def now() -> datetime:
    return datetime.now(UTC)


def to_table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (dicts) of committed table ``name`` as Arrow, sorted by its key."""
    schema, key = TABLES[name]
    rows = sorted(rows, key=lambda r: r[key])
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    for c in TIME_COLUMNS[name]:
        cols[c] = [parse_time(v) for v in cols[c]]
    return pa.Table.from_pydict(cols, schema=schema)


def stream_row(s: StreamMeta, run_id: str, seen_at: datetime) -> dict[str, Any]:
    dims = [{k: v for k, v in asdict(d).items() if v is not None} for d in s.stream_type.dimensions]
    return {
        "stream_id": s.id,
        "table": table_name(s),
        "patient_id": s.patient_id,
        "device_id": s.device_id,
        "algorithm": s.algorithm,
        "stream_type_id": s.stream_type.id,
        "stream_type_name": s.stream_type.name,
        "parameters": json.dumps(s.params, sort_keys=True),
        "dimensions": json.dumps(dims),
        "unknown_data_types": json.dumps(
            {d.identifier: d.data_type for d in unknown_dimensions(s.stream_type)}
        ),
        "min_time": parse_time(s.min_time),
        "max_time": parse_time(s.max_time),
        "created_at": parse_time(s.created_at),
        "run_id": run_id,
        "seen_at": seen_at,
    }


def conform(name: str, t: pa.Table) -> pa.Table:
    """A committed segment of table ``name`` with the current schema (new columns null)."""
    return _conform_to(t, FILES_SEGMENT_SCHEMA if name == "files" else TABLES[name][0])


def pending_files(docs: list[dict[str, Any]]) -> pa.Table:
    return _pending_files_as(docs, FILES_SEGMENT_SCHEMA)
