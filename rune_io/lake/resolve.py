"""Resolving catalog state: later entries win, tombstones remove, watermarks go forward.

Plain functions over Arrow tables and JSON docs, shared by the catalog's reads, commits
and compaction (:mod:`rune_io.lake.catalog`, :mod:`rune_io.lake.segments`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rune_io.errors import UsageError
from rune_io.lake.segments import path_key


def parse_time(v: Any) -> datetime | None:
    """A tz-aware datetime from ISO text, unix seconds or a datetime (None stays None)."""
    if v is None or v == "":
        return None
    if isinstance(v, datetime):
        return v
    if isinstance(v, int | float):
        return datetime.fromtimestamp(v, tz=UTC)
    return datetime.fromisoformat(v)


def chain(*parts):
    for part in parts:
        yield from part


def conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    """``t`` with ``schema`` (missing columns null; a version-1 file table gains ``key``
    and ``deleted``)."""
    cols = []
    for f in schema:
        if f.name in t.column_names:
            cols.append(t.column(f.name).cast(f.type))
        elif f.name == "key":
            cols.append(pa.array([path_key(p) for p in t.column("path").to_pylist()], pa.int64()))
        elif f.name == "deleted":
            cols.append(pa.array([False] * t.num_rows))
        else:
            cols.append(pa.nulls(t.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def pending_files(docs: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Pending file docs (sorted by ``written_at``) as a segment table, in order."""
    rows = [{**d, "key": path_key(d["path"]), "deleted": bool(d.get("deleted"))} for d in docs]
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    for f in schema:
        if pa.types.is_timestamp(f.type):
            cols[f.name] = [parse_time(v) for v in cols[f.name]]
    return pa.Table.from_pydict(cols, schema=schema)


def last_per_path(t: pa.Table) -> pa.Table:
    """The last row of each path (rows are in order: later wins)."""
    if t.num_rows == 0:
        return t
    t = t.append_column("_order", pa.array(range(t.num_rows), pa.int64()))
    last = t.group_by("path").aggregate([("_order", "max")]).column("_order_max")
    return t.take(pc.take(last, pc.sort_indices(last))).drop_columns(["_order"])


def resolve_files(
    base: pa.Table | None, layers: list[pa.Table], empty: pa.Schema, by: str = "path"
) -> pa.Table:
    """Live entries: ``base`` minus rows whose ``by`` column a later layer names, plus
    each path's last row over the ``layers`` (in order) unless it is a tombstone."""
    layers = [t for t in layers if t.num_rows]
    if not layers:
        return base if base is not None else empty.empty_table()
    winners = last_per_path(pa.concat_tables(layers))
    live = winners.filter(pc.invert(winners.column("deleted")))
    if base is None:
        return live
    base = base.filter(pc.invert(pc.is_in(base.column(by), value_set=winners.column(by))))
    return pa.concat_tables([base, live.select(base.column_names).cast(base.schema)])


def loaded_up_to(row: dict[str, Any]) -> datetime:
    """A watermark row's ``loaded_up_to`` (always written; ValueError if a row lacks it)."""
    t = parse_time(row.get("loaded_up_to"))
    if t is None:
        raise UsageError(f"watermark of stream {row.get('stream_id')!r} has no loaded_up_to")
    return t


def apply_watermarks(marks: dict[str, dict[str, Any]], docs: list[dict[str, Any]]) -> None:
    """Watermarks only move forward, unless a doc is ``force`` d (docs in order)."""
    for body in docs:
        for row in body["rows"]:
            old = marks.get(row["stream_id"])
            new_t = parse_time(row["loaded_up_to"])
            old_t = parse_time(old["loaded_up_to"]) if old is not None else None
            if body["force"] or old_t is None or (new_t is not None and new_t >= old_t):
                marks[row["stream_id"]] = row


def apply_runs(runs: dict[str, dict[str, Any]], docs: list[dict[str, Any]]) -> None:
    """Run records: begin and finish docs merged into one row per run."""
    for body in docs:
        row = runs.setdefault(body["run_id"], {"run_id": body["run_id"]})
        for k, v in body.items():
            row[k] = json.dumps(v, sort_keys=True) if k in ("params", "stats") else v
