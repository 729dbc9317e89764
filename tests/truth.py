"""Compare what rune_io read or the lake holds with the emulator's ground truth.

``rune_emulator``'s ``expected_table`` has one column per served CSV column, typed by the
evidence's data types (a timestamp as int64 ns). The reader and the lake keep a timestamp
``d`` as ``d`` (microseconds) + ``d_ns`` (exact): :func:`as_truth` takes ``d_ns`` for a
truth column ``d`` and every other column by name, with no cast, so equality means every
value, type and nanosecond is as served (CONTRACT.md section 3).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rune_io.api.arrow_schema import NS_SUFFIX
from rune_io.api.models import Dimension, StreamMeta, StreamType
from rune_io.lake import table_name


def category(stream) -> str:
    """The ``category`` parameter of an emulator (or rune_io) stream."""
    return dict(stream.parameters).get("category", "")


def client_meta(s) -> StreamMeta:
    """An emulator stream's metadata as rune_io's record (what GraphQL would give)."""
    st = s.stream_type
    dims = tuple(Dimension(d.identifier, d.data_type) for d in st.dimensions)
    return StreamMeta(
        id=s.id, patient_id=s.patient_id, device_id=s.device_id, algorithm=s.algorithm,
        stream_type=StreamType(st.id, st.name, st.description, dims),
        parameters=tuple(s.parameters),
    )  # fmt: skip


def expected(emu, stream) -> pa.Table:
    """Every row the emulator serves for ``stream`` up to its clock, in served order."""
    return emu.expected_table(stream.id, 0, emu.now_ns())


def as_truth(got: pa.Table, want: pa.Table) -> pa.Table:
    """``got``'s columns under ``want``'s names: ``d`` from ``d_ns`` for timestamps."""
    cols = []
    for name in want.column_names:
        src = name + NS_SUFFIX if name + NS_SUFFIX in got.column_names else name
        cols.append(got.column(src).combine_chunks())
    return pa.Table.from_arrays(cols, names=want.column_names)


def assert_equals_truth(got: pa.Table, want: pa.Table, what: str = "") -> None:
    """Row for row, type for type, value for value (no cast)."""
    mapped = as_truth(got, want)
    want = want.combine_chunks()
    assert mapped.num_rows == want.num_rows, (what, mapped.num_rows, want.num_rows)
    for name in want.column_names:
        g, w = mapped.column(name), want.column(name)
        assert g.type == w.type, (what, name, g.type, w.type)
        assert g.equals(w), (what, name)


def lake_rows(lake_root: str, stream) -> pa.Table:
    """A stream's rows as the lake holds them, file by file in partition order."""
    table = table_name(stream if isinstance(stream, StreamMeta) else client_meta(stream))
    rel = duckdb.sql(
        f"SELECT * FROM read_parquet('{lake_root}/{table}/**/*.parquet', hive_partitioning=false,"
        f" union_by_name=true, filename=true, file_row_number=true)"
        f" WHERE stream_id = '{stream.id}' ORDER BY filename, file_row_number"
    )
    got = rel.arrow()
    return got.read_all() if hasattr(got, "read_all") else got


def assert_lake_equals_truth(lake_root: str, emu, stream, want: pa.Table | None = None) -> int:
    """The lake's rows of ``stream`` equal the emulator's; returns the row count."""
    want = expected(emu, stream) if want is None else want
    assert_equals_truth(lake_rows(lake_root, stream), want, stream.id)
    return want.num_rows
