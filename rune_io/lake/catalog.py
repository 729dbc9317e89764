"""The lake's metadata catalog, under ``<lake>/_catalog/``.

Committed tables (``files``, ``streams``, ``watermarks``, ``runs``) are append-only
segments (:mod:`rune_io.lake.segments`), compacted when due
(:mod:`rune_io.lake.compaction`): a commit writes what its run added, never the whole
catalog. ``_catalog/_lake.json`` is the lake's marker
(layout and format version, :mod:`rune_io.lake.version`).

Writers never rewrite a shared object. Each event goes to a small *pending* object of its
own (a work unit's file entries to one: :mod:`rune_io.lake.records`), written after the
data it describes::

    _catalog/pending/<run>/files/<hash of path>.json     # one data file (or tombstone)
    _catalog/pending/<run>/files/<uuid>.json             # a work unit's data files (a list)
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
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rune_io.api.models import StreamMeta
from rune_io.errors import UsageError
from rune_io.faults import crash_point
from rune_io.lake import table_schemas
from rune_io.lake.compaction import compact_if_due
from rune_io.lake.entries import (
    FILES_SCHEMA,
    FILES_SEGMENT_SCHEMA,
    FOOTER_KEY,
    REPLACEMENTS_SCHEMA,
    RUNS_SCHEMA,
    STREAMS_SCHEMA,
    TABLES,
    WATERMARKS_SCHEMA,
    CommitReport,
    FileEntry,
    entry_from_footer,
    jsonable,
    now,
    replacement_row,
    stream_row,
    to_table,
    upstream_bounds,
)
from rune_io.lake.entries import conform as _conform
from rune_io.lake.entries import pending_files as _pending_files
from rune_io.lake.layout import CATALOG_DIR, slug
from rune_io.lake.lock import commit_lock
from rune_io.lake.pending import PENDING, Pending, read_pending, remove_empty_dirs
from rune_io.lake.repair import finish_removals, resolve_intents
from rune_io.lake.resolve import (
    apply_runs,
    apply_watermarks,
    last_per_path,
    loaded_up_to,
    resolve_files,
)
from rune_io.lake.segments import SegmentStore
from rune_io.lake.storage import Lake, list_files, put_bytes, remove
from rune_io.lake.table_schemas import PENDING_SCHEMAS
from rune_io.lake.version import check_format

__all__ = ["Catalog", "CommitReport", "FileEntry", "FILES_SCHEMA", "STREAMS_SCHEMA"]
__all__ += ["FILES_SEGMENT_SCHEMA", "WATERMARKS_SCHEMA", "RUNS_SCHEMA", "REPLACEMENTS_SCHEMA"]
__all__ += ["FOOTER_KEY", "PENDING", "PENDING_SCHEMAS", "entry_from_footer", "upstream_bounds"]

_TABLES = TABLES
#: The small tables every read of streams, watermarks or runs resolves.
_SMALL = ("streams", "watermarks", "runs")


class Catalog:
    """Read and write the catalog of ``lake``. Cheap to construct (no I/O)."""

    def __init__(self, lake: Lake):
        self.lake = lake
        self.store = SegmentStore(lake)

    # -- pending writes -----------------------------------------------------------
    def _pending(self, run_id: str, kind: str, name: str) -> str:
        return f"{PENDING}/{slug(run_id)}/{kind}/{name}.json"

    def _put_json(self, rel: str, obj: Any, *, sync: bool = True) -> None:
        put_bytes(self.lake, rel, json.dumps(obj, default=jsonable).encode(), sync=sync)

    def record_file(self, entry: FileEntry) -> None:
        """Record a data file (call after the file is published)."""
        key = hashlib.sha1(entry.path.encode()).hexdigest()[:24]
        self._put_json(self._pending(entry.run_id, "files", key), entry.to_json())

    def record_files(self, entries: list[FileEntry], run_id: str) -> None:
        """Record data files of ``run_id`` that were each published after their intent
        (:meth:`record_intent`), in one object: a work unit's files
        (:class:`FileRecords`). Not synced to disk: if a power loss takes it (or cuts it
        short: the commit then skips it), the commit rebuilds each entry from its
        intent and the file's footer."""
        if entries:
            rel = self._pending(run_id, "files", uuid.uuid4().hex)
            self._put_json(rel, [e.to_json() for e in entries], sync=False)

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
            "written_at": now(),
            "deleted": True,
        }
        self._put_json(self._pending(run_id, "files", key), tomb)

    def record_streams(self, streams: list[StreamMeta], run_id: str) -> None:
        """Record the metadata of streams seen by a run (one new object per call)."""
        seen = now()
        rows = [stream_row(s, run_id, seen) for s in streams]
        self._put_json(self._pending(run_id, "streams", uuid.uuid4().hex), rows)

    def set_watermarks(
        self, marks: dict[str, datetime], run_id: str, *, force: bool = False
    ) -> None:
        """Record per-stream "loaded up to" times. Watermarks only move forward on
        commit unless ``force`` (e.g. to make the next run re-load a window)."""
        for sid, t in marks.items():
            if t.tzinfo is None:
                raise UsageError(f"watermark of stream {sid!r} is naive; pass tz-aware UTC times")
        at = now()
        rows = [
            {"stream_id": s, "loaded_up_to": t, "run_id": run_id, "updated_at": at}
            for s, t in marks.items()
        ]
        obj = {"force": force, "rows": rows}
        self._put_json(self._pending(run_id, "watermarks", uuid.uuid4().hex), obj)

    def begin_run(self, run_id: str, params: dict[str, Any] | None = None) -> None:
        """Record the start of a run (refusing a lake of another format version)."""
        check_format(self.lake)
        row = {"run_id": run_id, "status": "running", "started_at": now(), "params": params or {}}
        self._put_json(self._pending(run_id, "run", "begin"), row)

    def finish_run(self, run_id: str, status: str, stats: dict[str, Any] | None = None) -> None:
        """Record the end of a run (``status`` e.g. ``"completed"``/``"failed"``)."""
        row = {"run_id": run_id, "status": status, "finished_at": now(), "stats": stats or {}}
        self._put_json(self._pending(run_id, "run", "finish"), row)

    # -- schemas (rune_io.lake.table_schemas) --------------------------------------
    def table_schema(self, table: str) -> pa.Schema | None:
        """Committed union schema of ``table`` (its ``_common_metadata``), if any."""
        return table_schemas.table_schema(self.lake, table)

    def register_schema(self, table: str, schema: pa.Schema) -> None:
        """Check ``schema`` against everything known for ``table`` and record it
        (:func:`rune_io.lake.table_schemas.register_schema`)."""
        table_schemas.register_schema(self.lake, table, schema)

    # -- reading ------------------------------------------------------------------
    def _parts(
        self, name: str, columns: list[str] | None = None, dictionary: tuple[str, ...] = ()
    ) -> tuple[pa.Table | None, list[pa.Table]]:
        """Committed base (projected) and deltas of table ``name``; a version-1 lake's
        consolidated ``_catalog/<name>.parquet`` reads as its base."""
        base, deltas = self.store.read_parts(name, columns, dictionary)
        if base is not None and columns is None:  # columns added since it was written
            base = _conform(name, base)
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
        return to_table("streams", list(rows.values()))

    def runs(self) -> pa.Table:
        """Every run recorded, :data:`RUNS_SCHEMA`."""
        rows = self._small_state(read_pending(self.lake))["runs"]
        return to_table("runs", list(rows.values()))

    def replacements(self) -> pa.Table:
        """Every data file replaced by one of other content (committed and pending), in
        the order they were written, :data:`REPLACEMENTS_SCHEMA`: path, old and new
        checksums (file and content) and the runs that wrote each."""
        rows = self._committed("replacements")
        for row in _replacement_rows(read_pending(self.lake).files):
            rows[row["checksum"]] = row
        table = to_table("replacements", list(rows.values()))
        return table.sort_by([("replaced_at", "ascending"), ("path", "ascending")])

    def watermarks(self) -> dict[str, datetime]:
        """``{stream_id: loaded up to}``."""
        rows = self._small_state(read_pending(self.lake))["watermarks"].values()
        return {r["stream_id"]: loaded_up_to(r) for r in rows}

    def snapshot(self, *, coverage: tuple[datetime, datetime] | None = None):
        """One columnar read of what planning needs: :class:`~rune_io.lake.snapshot.Snapshot`.
        Without ``coverage`` (a refresh) only the columns rates need are read; with
        ``coverage=(start, end)`` (a backfill) every planning column of the entries whose
        partition starts in ``[start, end)``, and only those (rates then come from them)."""
        from rune_io.lake.snapshot import read_snapshot

        return read_snapshot(self, read_pending(self.lake), coverage)

    def pending_count(self) -> int:
        """Number of pending (not yet committed) catalog objects."""
        return len(list_files(self.lake, PENDING))

    # -- commit -------------------------------------------------------------------
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
        report.rebuilt = len(resolve_intents(self.lake, pend))
        finish_removals(self.lake, pend)
        report.tables_with_new_schema = table_schemas.commit_schemas(self.lake)
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
                self.store.append(name, seq, to_table(name, rows))
                crash_point("commit")
        replaced = _replacement_rows(pend.files)
        if replaced:
            self.store.append("replacements", seq, to_table("replacements", replaced))
            crash_point("commit")
        report.replaced = len(replaced)
        report.compacted = compact_if_due(self.store, state, self._committed)
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


def _replacement_rows(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``replacements`` rows of the pending file docs that replaced a file."""
    return [replacement_row(d) for d in docs if d.get("replaced_checksum") and not d.get("deleted")]
