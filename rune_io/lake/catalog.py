"""The lake's metadata catalog, under ``<lake>/_catalog/``.

Committed tables (``files``, ``streams``, ``watermarks``, ``runs``) are append-only
segments with periodic compaction (:mod:`rune_io.lake.segments`): a commit writes what
its run added, never the whole catalog. ``_catalog/_lake.json`` is the lake's marker
(layout and format version, :mod:`rune_io.lake.version`).

Writers never rewrite a shared object. Each event goes to its own small *pending* object,
written after the data it describes::

    _catalog/pending/<run>/files/<hash of path>.json     # one per data file (or tombstone)
    _catalog/pending/<run>/intents/<hash of path>.json   # "about to publish this path"
    _catalog/pending/<run>/streams/<uuid>.json           # one per record_streams call
    _catalog/pending/<run>/watermarks/<uuid>.json        # one per set_watermarks call
    _catalog/pending/<run>/run/begin.json | finish.json
    _catalog/pending_schemas/<table>/<fingerprint>.arrows  # schemas seen, per table

Reads (:meth:`Catalog.files`, ...) merge committed and pending state, so they are
current while a run is in flight; a run reads one columnar :meth:`Catalog.snapshot` for
its planning. :meth:`Catalog.commit` folds *all* pending objects (including those a
crashed run left) into a new segment per table, unions each table's schema into
``<table>/_common_metadata`` (what plain ``spark.read.parquet`` reads its schema from),
then deletes the pending objects it folded, and the folders of finished runs.

Crash safety without listing the lake: every data file is announced by an *intent*
object before it is published, and a file is removed only after its tombstone is
written. So a crash leaves only pending objects (folded by the next commit), an intent
without its entry (the commit rebuilds the entry from the published file's
``rune_lake`` footer, even for a replacement of the same size), a tombstone whose file
is still there (the commit finishes the removal), or a staging file (removed by
:meth:`Catalog.recover`). :meth:`Catalog.repair` (``rune-lake repair``) is the explicit
full check: it lists every data file and reconciles. Commits take turns under the
lake's commit lock (:mod:`rune_io.lake.lock`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rune_io.api.arrow_schema import TIME_TYPE, unknown_dimensions
from rune_io.api.models import StreamMeta
from rune_io.faults import crash_point
from rune_io.lake.errors import SchemaConflictError
from rune_io.lake.layout import CATALOG_DIR, schema_fingerprint, slug, table_name
from rune_io.lake.lock import commit_lock
from rune_io.lake.pending import PENDING, Pending, read_pending, remove_empty_dirs
from rune_io.lake.resolve import (
    apply_runs,
    apply_watermarks,
    chain,
    conform,
    last_per_path,
    loaded_up_to,
    pending_files,
    resolve_files,
)
from rune_io.lake.resolve import parse_time as _parse_time
from rune_io.lake.segments import SegmentStore
from rune_io.lake.storage import Lake, atomic_file, list_files, put_bytes, remove
from rune_io.lake.version import check_format

#: Footer key holding a file's own catalog entry (lets :meth:`Catalog.repair` rebuild it).
FOOTER_KEY = "rune_lake"

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
        ("stream_min_time", TIME_TYPE),  # the stream's first data upstream, at fetch time
        ("stream_max_time", TIME_TYPE),  # the stream's last data upstream, at fetch time
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
    stream_min_time: datetime | None = None
    stream_max_time: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FileEntry:
        kw: dict[str, Any] = {k: d.get(k) for k in cls.__dataclass_fields__}
        for k in (
            "partition_start", "min_time", "max_time", "written_at",
            "stream_min_time", "stream_max_time",
        ):  # fmt: skip
            kw[k] = _parse_time(kw[k])
        return cls(**kw)


def upstream_bounds(min_time: Any, max_time: Any) -> dict[str, str | None]:
    """Footer keys recording the stream's upstream data span when a file was fetched
    (what backfill planning checks coverage against)."""
    lo, hi = _parse_time(min_time), _parse_time(max_time)
    return {
        "stream_min_time": lo.isoformat() if lo else None,
        "stream_max_time": hi.isoformat() if hi else None,
    }


def entry_from_footer(footer: dict[str, Any], rel: str, size: int, checksum: str) -> FileEntry:
    """Build a :class:`FileEntry` from a file's ``rune_lake`` footer metadata."""
    return FileEntry.from_json(footer | {"path": rel, "bytes": size, "checksum": checksum})


@dataclass
class CommitReport:
    """What :meth:`Catalog.commit` folded."""

    pending_objects: int = 0
    files: int = 0  # file entries the commit added or replaced
    removed: int = 0  # file entries it removed (tombstones)
    compacted: list[str] = field(default_factory=list)  # tables whose base it rewrote
    tables_with_new_schema: list[str] = field(default_factory=list)


def _jsonable(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


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
        self.store = SegmentStore(lake)

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
        """Record the start of a run (refusing a lake of another format version)."""
        check_format(self.lake)
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
        for attempt in range(3):  # a concurrent commit may fold a pending schema meanwhile
            try:
                known = self.table_schema(table)
                for rel, other in self._pending_schemas(table).items():
                    known = _merge_schema(table, known, other, where=rel)
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
        _merge_schema(table, known, schema, where=f"new fingerprint {fp}")
        rel = f"{PENDING_SCHEMAS}/{table}/{fp}.arrows"
        if not self.lake.exists(rel):
            put_bytes(self.lake, rel, schema.serialize().to_pybytes())
        _SCHEMAS_OK.add(key)

    # -- reading ------------------------------------------------------------------
    def _parts(
        self, name: str, columns: list[str] | None = None, dictionary: tuple[str, ...] = ()
    ) -> tuple[pa.Table | None, list[pa.Table]]:
        """Committed base (projected) and deltas of table ``name``; a version-1 lake's
        consolidated ``_catalog/<name>.parquet`` reads as its base."""
        base, deltas = self.store.read_parts(name, columns, dictionary)
        if base is None and not deltas:
            try:
                with self.lake.fs.open(self.lake.path(f"{CATALOG_DIR}/{name}.parquet")) as f:
                    base = _conform(name, pq.read_table(f))
            except FileNotFoundError:
                return None, []
            if columns:
                base = base.select(columns)
        return base, deltas

    def _committed(self, name: str) -> dict[str, dict[str, Any]]:
        """A small committed table (streams, watermarks, runs) by key, later rows winning."""
        key = _TABLES[name][1]
        base, deltas = self._parts(name)
        out: dict[str, dict[str, Any]] = {}
        for t in ([base] if base is not None else []) + deltas:
            for row in t.to_pylist():
                out[row[key]] = row
        return out

    def _small_state(self, pend: Pending) -> dict[str, dict[str, dict[str, Any]]]:
        """Streams, watermarks and runs: committed, then pending applied."""
        streams = self._committed("streams")
        for row in pend.streams:
            streams[row["stream_id"]] = row
        marks = self._committed("watermarks")
        apply_watermarks(marks, pend.watermarks)
        runs = self._committed("runs")
        apply_runs(runs, pend.runs)
        return {"streams": streams, "watermarks": marks, "runs": runs}

    def _resolved_files(
        self,
        pend: Pending,
        columns: list[str] | None = None,
        dictionary: tuple[str, ...] = (),
        where=None,
    ) -> pa.Table:
        """Live file entries (committed + pending); with ``columns``, a projection whose
        base rows are matched by ``key`` (see :mod:`rune_io.lake.segments`)."""
        base_rel, delta_rels = self.store.live("files")
        if columns and base_rel is not None:  # stream the base, dropping superseded rows
            deltas = [_conform("files", self.store.read(r)) for r in delta_rels]
            top = [t for t in [*deltas, _pending_files(pend.files)] if t.num_rows]
            winners = last_per_path(pa.concat_tables(top)) if top else None
            drop = winners.column("key") if winners else pa.array([], pa.int64())
            batches = list(
                self.store.base_batches("files", drop, "key", columns, dictionary, True, where)
            )
            if not batches:  # an empty base
                empty = self.store.read_parts("files", columns, dictionary)[0]
                batches = [empty.drop_columns(["key"])]  # type: ignore[union-attr]
            base = pa.concat_tables(
                pa.Table.from_batches([b]) if isinstance(b, pa.RecordBatch) else b for b in batches
            )
            if winners is None:
                return base
            live = winners.filter(pc.invert(winners.column("deleted")))
            return pa.concat_tables([base, live.select(base.column_names).cast(base.schema)])
        base, deltas = self._parts("files", columns, dictionary)
        layers = [_conform("files", d) for d in deltas] + [_pending_files(pend.files)]
        return resolve_files(base, layers, FILES_SEGMENT_SCHEMA, by="key" if columns else "path")

    def files(self) -> pa.Table:
        """Every data file (committed and pending entries), :data:`FILES_SCHEMA`."""
        t = self._resolved_files(read_pending(self.lake))
        return t.select(FILES_SCHEMA.names).sort_by("path")

    def streams(self) -> pa.Table:
        """Every stream seen, :data:`STREAMS_SCHEMA`."""
        rows = self._small_state(read_pending(self.lake))["streams"]
        return _to_table("streams", list(rows.values()))

    def runs(self) -> pa.Table:
        """Every run recorded, :data:`RUNS_SCHEMA`."""
        rows = self._small_state(read_pending(self.lake))["runs"]
        return _to_table("runs", list(rows.values()))

    def watermarks(self) -> dict[str, datetime]:
        """``{stream_id: loaded up to}``."""
        rows = self._small_state(read_pending(self.lake))["watermarks"].values()
        return {r["stream_id"]: loaded_up_to(r) for r in rows}

    def snapshot(self, *, coverage: tuple[datetime, datetime] | None = None):
        """One columnar read of what planning needs: :class:`~rune_io.lake.snapshot.Snapshot`.
        Without ``coverage`` (a refresh) only the columns rates need are read; with
        ``coverage=(start, end)`` (a backfill) every planning column of the entries whose
        partition starts in ``[start, end)``, and only those (rates then come from them)."""
        from rune_io.lake.snapshot import (
            RATE_COLUMNS,
            SNAPSHOT_COLUMNS,
            SNAPSHOT_DICTIONARY,
            Snapshot,
            partition_between,
        )

        pend = read_pending(self.lake)
        columns = SNAPSHOT_COLUMNS if coverage else RATE_COLUMNS
        dictionary = tuple(c for c in SNAPSHOT_DICTIONARY if c in columns)
        where = None if coverage is None else partition_between(*coverage)
        files = self._resolved_files(pend, columns, dictionary, where)
        if where is not None and files.num_rows:
            files = files.filter(where(files))  # the deltas' and pending rows too
        if "key" in files.column_names:  # (dropped already when a base was streamed)
            files = files.drop_columns(["key"])
        files = files.unify_dictionaries()  # one dictionary a column
        marks = self._small_state(pend)["watermarks"].values()
        return Snapshot(files, {r["stream_id"]: loaded_up_to(r) for r in marks})

    def pending_count(self) -> int:
        """Number of pending (not yet committed) catalog objects."""
        return len(list_files(self.lake, PENDING))

    # -- commit -------------------------------------------------------------------
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
        """Fold every pending object (this run's and any a crashed run left) into one new
        segment per table, then delete them. Idempotent. ``run_id`` is accepted for
        symmetry; all pending runs are folded. Commits take turns under the lake's commit
        lock (:mod:`rune_io.lake.lock`). Refuses a lake of another format version."""
        check_format(self.lake)
        with commit_lock(self.lake):
            return self._commit()

    def _commit(self) -> CommitReport:
        report = CommitReport()
        pend = read_pending(self.lake)
        self._resolve_intents(pend)
        self._finish_removals(pend)
        report.tables_with_new_schema = self._commit_schemas()
        state = self._small_state(pend)
        seq = self.store.next_seq(list(_TABLES))
        files = last_per_path(_pending_files(pend.files))
        if files.num_rows:
            self.store.append("files", seq, files)
            crash_point("commit")
        changed = {
            "streams": {r["stream_id"] for r in pend.streams},
            "watermarks": {r["stream_id"] for d in pend.watermarks for r in d["rows"]},
            "runs": {r["run_id"] for r in pend.runs},
        }
        for name, keys in changed.items():
            if keys:
                rows = [state[name][k] for k in sorted(keys) if k in state[name]]
                self.store.append(name, seq, _to_table(name, rows))
                crash_point("commit")
        report.compacted = self._compact_if_due(state)
        for rel in pend.rels:
            remove(self.lake, rel)
        finished = {
            slug(r["run_id"]) for r in state["runs"].values() if r.get("status") != "running"
        }
        remove_empty_dirs(self.lake, finished & {rel.split("/")[2] for rel in pend.rels})
        deleted = files.column("deleted").to_pylist()
        report.pending_objects = len(pend.rels)
        report.files, report.removed = deleted.count(False), deleted.count(True)
        return report

    def _resolve_intents(self, pend: Pending) -> list[str]:
        """Entries for published files whose run died before recording them (added to
        ``pend.files``, so this commit folds them)."""
        recorded = pend.file_rels()
        rebuilt = []
        for rel, path in sorted(pend.intents.items()):
            run_dir, _kind, name = rel.rsplit("/", 2)
            if f"{run_dir}/files/{name}" in recorded or not self.lake.exists(path):
                continue
            entry = self._entry_from_file(path)
            if entry is not None:
                pend.files.append(entry.to_json())
                rebuilt.append(path)
        pend.files.sort(key=lambda b: str(b["written_at"]))
        return rebuilt

    def _finish_removals(self, pend: Pending) -> list[str]:
        """Delete files whose tombstone is their last word (a crash between tombstone
        and delete), unless an intent says a run is publishing that path again."""
        last = {b["path"]: b for b in pend.files}
        publishing = set(pend.intents.values())
        done = []
        for path, body in sorted(last.items()):
            if body.get("deleted") and path not in publishing and self.lake.exists(path):
                remove(self.lake, path)
                done.append(path)
        return done

    def _compact_if_due(self, state: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
        done = []
        for name in _TABLES:
            base_bytes, delta_bytes, n, top = self.store.sizes(name)
            if not n or (
                delta_bytes < max(COMPACT_MIN_BYTES, base_bytes // 10) and n <= MAX_DELTAS
            ):
                continue
            if name == "files":
                deltas = [self.store.read(rel) for rel in self.store.live(name)[1]]
                winners = last_per_path(pa.concat_tables([_conform("files", d) for d in deltas]))
                live = winners.filter(pc.invert(winners.column("deleted")))
                batches = (
                    _conform("files", pa.Table.from_batches([b]))
                    for b in self.store.base_batches(name, winners.column("path"), key="path")
                )
                self.store.write_base(name, top, chain(batches, [live]), FILES_SEGMENT_SCHEMA)
            else:
                table = _to_table(name, list(state[name].values()))
                self.store.write_base(name, top, [table], table.schema)
            crash_point("compact")
            self.store.drop_superseded(name)
            done.append(name)
        return done

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

    # -- repair and summary ---------------------------------------------------------
    def recover(self, *, stale_after: timedelta = timedelta(hours=1)):
        """Fix what a crash can have left (see :func:`rune_io.lake.repair.recover`)."""
        from rune_io.lake.repair import recover

        return recover(self, stale_after=stale_after)

    def repair(self, run_id: str | None = None, *, stale_after: timedelta = timedelta(hours=1)):
        """The full check: list every data file and reconcile (:func:`rune_io.lake.repair.repair`)."""
        from rune_io.lake.repair import repair

        return repair(self, run_id, stale_after=stale_after)

    def summary(self) -> dict[str, Any]:
        """What ``rune-lake catalog`` prints (:func:`rune_io.lake.summary.catalog_summary`)."""
        from rune_io.lake.summary import catalog_summary

        return catalog_summary(self)


#: Compact a table when its deltas number more than this, or outweigh a tenth of its
#: base and at least COMPACT_MIN_BYTES.
MAX_DELTAS = 64
COMPACT_MIN_BYTES = 8 << 20


def _conform(name: str, t: pa.Table) -> pa.Table:
    return conform(t, FILES_SEGMENT_SCHEMA if name == "files" else _TABLES[name][0])


def _pending_files(docs: list[dict[str, Any]]) -> pa.Table:
    return pending_files(docs, FILES_SEGMENT_SCHEMA)
