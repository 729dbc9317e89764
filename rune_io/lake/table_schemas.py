"""Each table's union schema: checked and registered by writers, folded by commits.

A writer registers the schema of every file it is about to write as a pending object
(``_catalog/pending_schemas/<table>/<fingerprint>.arrows``) after checking it against
what is known (a column changing type raises :class:`SchemaConflictError` before
anything is published). A commit unions them into ``<table>/_common_metadata``, what
plain ``spark.read.parquet`` reads its schema from.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from rune_io.lake.errors import SchemaConflictError
from rune_io.lake.layout import CATALOG_DIR, schema_fingerprint
from rune_io.lake.storage import Lake, atomic_file, list_files, put_bytes

PENDING_SCHEMAS = f"{CATALOG_DIR}/pending_schemas"

#: columns every data file has, never null: ``_common_metadata`` declares them so
NON_NULL = frozenset({"time", "time_ns"})


def merge_schema(table: str, known: pa.Schema | None, new: pa.Schema, where: str) -> pa.Schema:
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


def table_schema(lake: Lake, table: str) -> pa.Schema | None:
    """Committed union schema of ``table`` (its ``_common_metadata``), if any."""
    try:
        with lake.fs.open(lake.path(f"{table}/_common_metadata"), "rb") as f:
            return pq.read_schema(f)
    except FileNotFoundError:
        return None


def _pending_schemas(lake: Lake, table: str) -> dict[str, pa.Schema]:
    found = list_files(lake, f"{PENDING_SCHEMAS}/{table}")
    return {rel: pa.ipc.read_schema(pa.py_buffer(lake.read_bytes(rel))) for rel in sorted(found)}


def register_schema(lake: Lake, table: str, schema: pa.Schema) -> None:
    """Check ``schema`` against everything known for ``table`` and record it.

    Raises :class:`SchemaConflictError` when a column changes type. New columns are
    fine: older files lack them, readers see nulls.
    """
    fp = schema_fingerprint(schema)
    key = (table, fp)
    if key in lake.schemas_ok:
        return
    known = None
    for attempt in range(3):  # a concurrent commit may fold a pending schema meanwhile
        try:
            known = table_schema(lake, table)
            for rel, other in _pending_schemas(lake, table).items():
                known = merge_schema(table, known, other, where=rel)
            break
        except FileNotFoundError:
            if attempt == 2:
                raise
    merge_schema(table, known, schema, where=f"new fingerprint {fp}")
    rel = f"{PENDING_SCHEMAS}/{table}/{fp}.arrows"
    if not lake.exists(rel):
        put_bytes(lake, rel, schema.serialize().to_pybytes())
    lake.schemas_ok.add(key)


def commit_schemas(lake: Lake) -> list[str]:
    """Fold the pending schemas into each table's ``_common_metadata`` (all checked
    before anything is written); returns the tables whose schema changed."""
    changed = []
    pending = list_files(lake, PENDING_SCHEMAS)
    by_table: dict[str, list[str]] = {}
    for rel in sorted(pending):
        by_table.setdefault(rel.split("/")[-2], []).append(rel)
    merged: dict[str, pa.Schema] = {}
    for table, rels in by_table.items():
        old = known = table_schema(lake, table)
        for rel in rels:
            other = pa.ipc.read_schema(pa.py_buffer(lake.read_bytes(rel)))
            known = merge_schema(table, known, other, where=rel)
        if known is not None and (old is None or not known.equals(old)):
            merged[table] = known
    for table, schema in merged.items():
        with atomic_file(lake, f"{table}/_common_metadata") as (tmp, _):
            pq.write_metadata(schema, tmp, store_schema=False)
        changed.append(table)
    for rels in by_table.values():
        for rel in rels:
            lake.fs.rm_file(lake.path(rel))
    return changed
