"""The lake's metadata catalog: Parquet tables under ``<lake>/_catalog/``.

Consolidated tables (each one object, replaced atomically by :meth:`Catalog.commit`)::

    _catalog/files.parquet  streams.parquet  watermarks.parquet  runs.parquet
    _catalog/_lake.json                       # format marker and layout version

Writers never rewrite a shared object. Each event goes to its own small *pending* object,
written after the data it describes::

    _catalog/pending/<run>/files/<hash of path>.json     # one per data file (or tombstone)
    _catalog/pending/<run>/intents/<hash of path>.json   # "about to publish this path"
    _catalog/pending/<run>/streams/<uuid>.json           # one per record_streams call
    _catalog/pending/<run>/watermarks/<uuid>.json        # one per set_watermarks call
    _catalog/pending/<run>/run/begin.json | finish.json
    _catalog/pending_schemas/<table>/<fingerprint>.arrows  # schemas seen, per table

Reads (:meth:`Catalog.files`, ...) merge consolidated and pending state, so they are
current while a run is in flight. :meth:`Catalog.commit` folds *all* pending objects
(including those a crashed run left) into the consolidated tables, unions each table's
schema into ``<table>/_common_metadata`` (what plain ``spark.read.parquet`` reads its
schema from), then deletes the pending objects it folded. A crash at any point leaves
either pending objects (folded by the next commit) or data files without entries
(:meth:`Catalog.repair` rebuilds them from the ``rune_lake`` footer every file carries);
a file is removed only after its tombstone is written, so the catalog never points at a
missing file. A file that *replaces* one under the same path is announced by an intent
object before it is published: a crash between publish and entry leaves an intent
without its entry, and the next commit rebuilds that entry from the new file (a size
check alone would miss a replacement of the same size). Two runs should not ``commit`` at the same instant (the later replace
wins); ``repair`` restores any entry lost that way.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rune_io.arrow_schema import TIME_TYPE, unknown_dimensions
from rune_io.faults import crash_point
from rune_io.lake.errors import SchemaConflictError
from rune_io.lake.layout import (
    CATALOG_DIR,
    LAYOUT_VERSION,
    STAGING_DIR,
    schema_fingerprint,
    slug,
    table_name,
)
from rune_io.lake.lock import commit_lock
from rune_io.lake.storage import Lake, atomic_file, list_files, put_bytes
from rune_io.models import StreamMeta

#: Footer key holding a file's own catalog entry (lets :meth:`Catalog.repair` rebuild it).
FOOTER_KEY = "rune_lake"

PENDING = f"{CATALOG_DIR}/pending"
PENDING_SCHEMAS = f"{CATALOG_DIR}/pending_schemas"

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
    ]
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
_TABLES = {
    "files": (FILES_SCHEMA, "path"),
    "streams": (STREAMS_SCHEMA, "stream_id"),
    "watermarks": (WATERMARKS_SCHEMA, "stream_id"),
    "runs": (RUNS_SCHEMA, "run_id"),
}
_TIME_COLUMNS = {
    name: {f.name for f in schema if f.type == TIME_TYPE} for name, (schema, _) in _TABLES.items()
}

#: (lake root, table, fingerprint) already checked and registered by this process.
_SCHEMAS_OK: set[tuple[str, str, str]] = set()


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

    def to_json(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FileEntry:
        kw = {k: d.get(k) for k in cls.__dataclass_fields__}
        for k in ("partition_start", "min_time", "max_time", "written_at"):
            kw[k] = _parse_time(kw[k])
        return cls(**kw)


def entry_from_footer(footer: dict[str, Any], rel: str, size: int, checksum: str) -> FileEntry:
    """Build a :class:`FileEntry` from a file's ``rune_lake`` footer metadata."""
    return FileEntry.from_json(footer | {"path": rel, "bytes": size, "checksum": checksum})


@dataclass
class CommitReport:
    """What :meth:`Catalog.commit` folded."""

    pending_objects: int = 0
    files: int = 0  # file entries after the commit
    tables_with_new_schema: list[str] = field(default_factory=list)


@dataclass
class RepairReport:
    """What :meth:`Catalog.repair` found and fixed."""

    added: list[str] = field(default_factory=list)  # files that lacked an entry
    dropped: list[str] = field(default_factory=list)  # entries whose file is gone
    foreign: list[str] = field(default_factory=list)  # .parquet files without a rune_lake footer
    temps_removed: list[str] = field(default_factory=list)


def _jsonable(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def _parse_time(v: Any) -> datetime | None:
    if v is None or v == "":
        return None
    if isinstance(v, datetime):
        return v
    if isinstance(v, int | float):
        return datetime.fromtimestamp(v, tz=UTC)
    return datetime.fromisoformat(v)


def _now() -> datetime:
    return datetime.now(UTC)


def _to_table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    schema, key = _TABLES[name]
    rows = sorted(rows, key=lambda r: r[key])
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    for c in _TIME_COLUMNS[name]:
        cols[c] = [_parse_time(v) for v in cols[c]]
    return pa.Table.from_pydict(cols, schema=schema)


def _stream_row(s: StreamMeta, run_id: str, seen_at: datetime) -> dict[str, Any]:
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
        "min_time": _parse_time(s.min_time),
        "max_time": _parse_time(s.max_time),
        "created_at": _parse_time(s.created_at),
        "run_id": run_id,
        "seen_at": seen_at,
    }


#: columns every data file has, never null: ``_common_metadata`` declares them so
NON_NULL = frozenset({"time", "time_ns"})


def _merge_schema(table: str, known: pa.Schema | None, new: pa.Schema, where: str) -> pa.Schema:
    """Union of two schemas; raises :class:`SchemaConflictError` on a type change."""
    if known is None:  # the columns every file has non-null stay non-null
        return pa.schema([f if f.name in NON_NULL else f.with_nullable(True) for f in new])
    fields = list(known)
    for f in new:
        i = known.get_field_index(f.name)
        if i < 0:
            fields.append(f.with_nullable(True))
        elif known.field(i).type != f.type:
            raise SchemaConflictError(
                table, f.name, str(known.field(i).type), str(f.type), where=where
            )
    return pa.schema(fields)


class Catalog:
    """Read and write the catalog of ``lake``. Cheap to construct (no I/O)."""

    def __init__(self, lake: Lake):
        self.lake = lake

    # -- pending writes -----------------------------------------------------------
    def _pending(self, run_id: str, kind: str, name: str) -> str:
        return f"{PENDING}/{slug(run_id)}/{kind}/{name}.json"

    def _put_json(self, rel: str, obj: Any) -> None:
        put_bytes(self.lake, rel, json.dumps(obj, default=_jsonable).encode())

    def record_file(self, entry: FileEntry) -> None:
        """Record a data file (call after the file is published)."""
        key = hashlib.sha1(entry.path.encode()).hexdigest()[:24]
        self._put_json(self._pending(entry.run_id, "files", key), entry.to_json())

    def record_intent(self, path: str, run_id: str) -> None:
        """Announce that ``path`` is about to be published (call just before publishing)."""
        key = hashlib.sha1(path.encode()).hexdigest()[:24]
        self._put_json(self._pending(run_id, "intents", key), {"path": path})

    def _resolve_intents(self) -> list[str]:
        """Entries for published files whose run died before recording them."""
        pending = set(list_files(self.lake, PENDING))
        rebuilt = []
        for rel in sorted(pending):
            run_dir, kind, name = rel.rsplit("/", 2)
            if kind != "intents" or f"{run_dir}/files/{name}" in pending:
                continue
            path = json.loads(self.lake.read_bytes(rel))["path"]
            if self.lake.exists(path):
                entry = self._entry_from_file(path)
                if entry is not None:
                    self.record_file(entry)
                    rebuilt.append(path)
        return rebuilt

    def record_removal(self, path: str, table: str, run_id: str) -> None:
        """Tombstone a data file (call *before* deleting it)."""
        key = hashlib.sha1(path.encode()).hexdigest()[:24]
        tomb = {
            "path": path,
            "table": table,
            "run_id": run_id,
            "written_at": _now(),
            "deleted": True,
        }
        self._put_json(self._pending(run_id, "files", key), tomb)

    def record_streams(self, streams: list[StreamMeta], run_id: str) -> None:
        """Record the metadata of streams seen by a run (one new object per call)."""
        seen = _now()
        rows = [_stream_row(s, run_id, seen) for s in streams]
        self._put_json(self._pending(run_id, "streams", uuid.uuid4().hex), rows)

    def set_watermarks(
        self, marks: dict[str, datetime], run_id: str, *, force: bool = False
    ) -> None:
        """Record per-stream "loaded up to" times. Watermarks only move forward on
        commit unless ``force`` (e.g. to make the next run re-load a window)."""
        for sid, t in marks.items():
            if t.tzinfo is None:
                raise ValueError(f"watermark of stream {sid!r} is naive; pass tz-aware UTC times")
        now = _now()
        rows = [
            {"stream_id": s, "loaded_up_to": t, "run_id": run_id, "updated_at": now}
            for s, t in marks.items()
        ]
        obj = {"force": force, "rows": rows}
        self._put_json(self._pending(run_id, "watermarks", uuid.uuid4().hex), obj)

    def begin_run(self, run_id: str, params: dict[str, Any] | None = None) -> None:
        """Record the start of a run."""
        row = {"run_id": run_id, "status": "running", "started_at": _now(), "params": params or {}}
        self._put_json(self._pending(run_id, "run", "begin"), row)

    def finish_run(self, run_id: str, status: str, stats: dict[str, Any] | None = None) -> None:
        """Record the end of a run (``status`` e.g. ``"completed"``/``"failed"``)."""
        row = {"run_id": run_id, "status": status, "finished_at": _now(), "stats": stats or {}}
        self._put_json(self._pending(run_id, "run", "finish"), row)

    # -- schemas ------------------------------------------------------------------
    def table_schema(self, table: str) -> pa.Schema | None:
        """Committed union schema of ``table`` (its ``_common_metadata``), if any."""
        try:
            with self.lake.fs.open(self.lake.path(f"{table}/_common_metadata"), "rb") as f:
                return pq.read_schema(f)
        except FileNotFoundError:
            return None

    def _pending_schemas(self, table: str) -> dict[str, pa.Schema]:
        found = list_files(self.lake, f"{PENDING_SCHEMAS}/{table}")
        return {
            rel: pa.ipc.read_schema(pa.py_buffer(self.lake.read_bytes(rel)))
            for rel in sorted(found)
        }

    def register_schema(self, table: str, schema: pa.Schema) -> None:
        """Check ``schema`` against everything known for ``table`` and record it.

        Raises :class:`SchemaConflictError` when a column changes type. New columns are
        fine: older files lack them, readers see nulls.
        """
        fp = schema_fingerprint(schema)
        key = (self.lake.path(), table, fp)
        if key in _SCHEMAS_OK:
            return
        known = self.table_schema(table)
        for rel, other in self._pending_schemas(table).items():
            known = _merge_schema(table, known, other, where=rel)
        _merge_schema(table, known, schema, where=f"new fingerprint {fp}")
        rel = f"{PENDING_SCHEMAS}/{table}/{fp}.arrows"
        if not self.lake.exists(rel):
            put_bytes(self.lake, rel, schema.serialize().to_pybytes())
        _SCHEMAS_OK.add(key)

    # -- reading ------------------------------------------------------------------
    def _read_table(self, name: str) -> pa.Table:
        schema, _ = _TABLES[name]
        try:
            with self.lake.fs.open(self.lake.path(f"{CATALOG_DIR}/{name}.parquet"), "rb") as f:
                return pq.read_table(f).cast(schema)
        except FileNotFoundError:
            return schema.empty_table()

    def _state(self) -> tuple[dict[str, dict[str, dict[str, Any]]], list[str]]:
        """Consolidated + pending rows by table and key, and the pending objects read."""
        state = {name: {} for name in _TABLES}
        for name, (_, key) in _TABLES.items():
            for row in self._read_table(name).to_pylist():
                state[name][row[key]] = row
        pending = sorted(list_files(self.lake, PENDING))
        blobs = self.lake.fs.cat([self.lake.path(p) for p in pending]) if pending else {}
        docs = []
        for rel in pending:
            parts = rel.split("/")
            kind = parts[-2]
            body = json.loads(blobs[self.lake.path(rel)])
            docs.append((kind, rel, body))
        # files: latest written_at wins; tombstones remove
        file_docs = [b for k, _, b in docs if k == "files"]
        for body in sorted(file_docs, key=lambda b: b["written_at"]):
            old = state["files"].get(body["path"])
            if old is not None and _parse_time(old["written_at"]) > _parse_time(body["written_at"]):
                continue
            if body.get("deleted"):
                state["files"].pop(body["path"], None)
            else:
                state["files"][body["path"]] = FileEntry.from_json(body).__dict__
        for kind, _, body in docs:
            if kind == "streams":
                for row in body:
                    state["streams"][row["stream_id"]] = row
        for _kind, _, body in sorted(
            ((k, r, b) for k, r, b in docs if k == "watermarks"),
            key=lambda d: d[2]["rows"][0]["updated_at"] if d[2]["rows"] else "",
        ):
            for row in body["rows"]:
                old = state["watermarks"].get(row["stream_id"])
                new_t = _parse_time(row["loaded_up_to"])
                if body["force"] or old is None or new_t >= _parse_time(old["loaded_up_to"]):
                    state["watermarks"][row["stream_id"]] = row
        for kind, _, body in docs:
            if kind == "run":
                row = state["runs"].setdefault(body["run_id"], {"run_id": body["run_id"]})
                for k, v in body.items():
                    row[k] = json.dumps(v, sort_keys=True) if k in ("params", "stats") else v
        return state, pending

    def files(self) -> pa.Table:
        """Every data file (consolidated and pending entries), :data:`FILES_SCHEMA`."""
        return _to_table("files", list(self._state()[0]["files"].values()))

    def streams(self) -> pa.Table:
        """Every stream seen, :data:`STREAMS_SCHEMA`."""
        return _to_table("streams", list(self._state()[0]["streams"].values()))

    def runs(self) -> pa.Table:
        """Every run recorded, :data:`RUNS_SCHEMA`."""
        return _to_table("runs", list(self._state()[0]["runs"].values()))

    def watermarks(self) -> dict[str, datetime]:
        """``{stream_id: loaded up to}``."""
        rows = self._state()[0]["watermarks"].values()
        return {r["stream_id"]: _parse_time(r["loaded_up_to"]) for r in rows}

    def pending_count(self) -> int:
        """Number of pending (not yet committed) catalog objects."""
        return len(list_files(self.lake, PENDING))

    # -- commit and repair --------------------------------------------------------
    def _commit_schemas(self) -> list[str]:
        changed = []
        pending = list_files(self.lake, PENDING_SCHEMAS)
        by_table: dict[str, list[str]] = {}
        for rel in sorted(pending):
            by_table.setdefault(rel.split("/")[-2], []).append(rel)
        merged: dict[str, pa.Schema] = {}
        for table, rels in by_table.items():
            old = known = self.table_schema(table)
            for rel in rels:
                other = pa.ipc.read_schema(pa.py_buffer(self.lake.read_bytes(rel)))
                known = _merge_schema(table, known, other, where=rel)
            if known is not None and (old is None or not known.equals(old)):
                merged[table] = known
        for table, schema in merged.items():  # all checked before anything is written
            with atomic_file(self.lake, f"{table}/_common_metadata") as (tmp, _):
                pq.write_metadata(schema, tmp, store_schema=False)
            changed.append(table)
        for rels in by_table.values():
            for rel in rels:
                self.lake.fs.rm_file(self.lake.path(rel))
        return changed

    def commit(self, run_id: str | None = None) -> CommitReport:
        """Fold every pending object (this run's and any a crashed run left) into the
        consolidated tables, replacing each atomically, then delete them. Idempotent.
        ``run_id`` is accepted for symmetry; all pending runs are folded. Commits take
        turns under the lake's commit lock (:mod:`rune_io.lake.lock`)."""
        with commit_lock(self.lake):
            return self._commit()

    def _commit(self) -> CommitReport:
        report = CommitReport()
        self._resolve_intents()
        report.tables_with_new_schema = self._commit_schemas()
        state, pending = self._state()
        for name in _TABLES:
            table = _to_table(name, list(state[name].values()))
            with atomic_file(self.lake, f"{CATALOG_DIR}/{name}.parquet") as (tmp, _):
                pq.write_table(table, tmp, compression="zstd", store_schema=True)
            crash_point("commit")
        for rel in pending:
            self.lake.fs.rm_file(self.lake.path(rel))
        report.pending_objects = len(pending)
        report.files = len(state["files"])
        return report

    def repair(
        self, run_id: str | None = None, *, stale_after: timedelta = timedelta(hours=1)
    ) -> RepairReport:
        """Reconcile the catalog with the files, then :meth:`commit`.

        Files without an entry (or whose size differs from it) get one, rebuilt from the
        ``rune_lake`` footer and a checksum of their bytes; entries whose file is gone are
        dropped; local staging files older than ``stale_after`` are removed. (On S3 an
        interrupted multipart upload is invisible; a bucket lifecycle rule reaps it.)
        """
        run_id = run_id or f"repair-{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        report = RepairReport()
        report.temps_removed = self._remove_stale_temps(stale_after)
        entries = self._state()[0]["files"]
        found = self._data_files()
        for rel, size in sorted(found.items()):
            entry = entries.get(rel)
            if entry is not None and int(entry["bytes"]) == size:
                continue
            rebuilt = self._entry_from_file(rel)
            if rebuilt is None:
                report.foreign.append(rel)
                continue
            self.record_file(rebuilt)  # keeps the writing run's id and time (footer)
            report.added.append(rel)
        for rel, entry in sorted(entries.items()):
            if rel not in found:
                self.record_removal(rel, entry["table"], run_id)
                report.dropped.append(rel)
        self.commit(run_id)
        return report

    def _data_files(self) -> dict[str, int]:
        out = {}
        for rel, size in list_files(self.lake, "").items():
            parts = rel.split("/")
            if len(parts) < 2 or any(p.startswith((".", "_")) for p in parts):
                continue
            if rel.endswith(".parquet"):
                out[rel] = size
        return out

    def _entry_from_file(self, rel: str) -> FileEntry | None:
        h = hashlib.sha256()
        with self.lake.fs.open(self.lake.path(rel), "rb") as f:
            try:
                meta = pq.read_metadata(f).metadata or {}
            except (pa.ArrowInvalid, OSError):
                return None
            footer = meta.get(FOOTER_KEY.encode())
            if footer is None:
                return None
            f.seek(0)
            size = 0
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
        return entry_from_footer(json.loads(footer), rel, size, "sha256:" + h.hexdigest())

    def _remove_stale_temps(self, stale_after: timedelta) -> list[str]:
        if not self.lake.is_local:
            return []
        staging = self.lake.path(STAGING_DIR)
        if not os.path.isdir(staging):
            return []
        cutoff = time.time() - stale_after.total_seconds()
        removed = []
        for name in sorted(os.listdir(staging)):
            p = os.path.join(staging, name)
            try:
                if os.path.getmtime(p) <= cutoff:
                    os.remove(p)
                    removed.append(f"{STAGING_DIR}/{name}")
            except FileNotFoundError:
                pass
        return removed

    # -- summary ------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Tables (files, rows, streams, patients, time span, bytes), last run, per-stream
        watermarks: what ``rune-lake catalog`` prints."""
        state, pending = self._state()
        tables: dict[str, dict[str, Any]] = {}
        for e in state["files"].values():
            t = tables.setdefault(
                e["table"],
                {
                    "table": e["table"],
                    "files": 0,
                    "rows": 0,
                    "bytes": 0,
                    "min_time": None,
                    "max_time": None,
                    "streams": set(),
                    "patients": set(),
                },
            )
            t["files"] += 1
            t["rows"] += int(e["rows"])
            t["bytes"] += int(e["bytes"])
            lo, hi = _parse_time(e["min_time"]), _parse_time(e["max_time"])
            if lo is not None and hi is not None:  # None: a file without times (bytes)
                t["min_time"] = lo if t["min_time"] is None else min(t["min_time"], lo)
                t["max_time"] = hi if t["max_time"] is None else max(t["max_time"], hi)
            if e["stream_id"]:
                t["streams"].add(e["stream_id"])
            t["patients"].add(e["patient_id"])
        table_rows = []
        for name in sorted(tables):
            t = tables[name]
            t["streams"], t["patients"] = len(t["streams"]), len(t["patients"])
            table_rows.append(t)
        runs = sorted(
            state["runs"].values(), key=lambda r: str(_jsonable(r.get("started_at")) or "")
        )
        streams = state["streams"]
        marks = []
        for sid, w in sorted(state["watermarks"].items()):
            s = streams.get(sid, {})
            marks.append(
                {
                    "stream_id": sid,
                    "table": s.get("table", ""),
                    "patient_id": s.get("patient_id", ""),
                    "device_id": s.get("device_id", ""),
                    "loaded_up_to": _parse_time(w["loaded_up_to"]),
                }
            )
        return {
            "lake": self.lake.url,
            "layout_version": LAYOUT_VERSION,
            "tables": table_rows,
            "totals": {
                "files": sum(t["files"] for t in table_rows),
                "rows": sum(t["rows"] for t in table_rows),
                "bytes": sum(t["bytes"] for t in table_rows),
            },
            "last_run": runs[-1] if runs else None,
            "watermarks": marks,
            "pending_objects": len(pending),
        }
