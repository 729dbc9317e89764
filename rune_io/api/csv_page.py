"""One V2 CSV page (``timestamp=unixns``) -> one Arrow record batch.

Each page is a complete CSV with its own header row, parsed whole by ``pyarrow.csv``
with column types from the stream type's dimensions; ``time`` (unix ns) becomes
``timestamp[us, tz=UTC]`` (floored) beside the exact ``time_ns``.

Malformed pages: a complete body that does not parse (a non-numeric value, a missing
column, a null time) is the server's content, not a network accident: it is a
:class:`~rune_io.errors.DataError` with ``transient=False``, so the HTTP layer does not
re-fetch it again and again (the reader re-reads a bad page once). A column the stream
type does not declare is kept, typed from its values (numbers as ``float64``, else
``bool`` or ``string``) and nullable; the lake adds it to the table's schema.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.csv as pacsv

from rune_io.api.arrow_schema import (
    SERVED_EXTRA_TYPES,
    floor_us,
    is_timestamp,
    stream_schema,
    wire_types,
)
from rune_io.api.models import StreamType
from rune_io.errors import DataError

_COLUMN_NO = re.compile(r"In CSV column #(\d+)")


class CsvPageParser:
    """Parse one V2 CSV page (``timestamp=unixns``) into a batch of ``stream_schema`` columns.

    Columns are typed from the stream type's dimensions (see :mod:`rune_io.api.arrow_schema`):
    a timestamp dimension ``d`` (unix ns on the wire) becomes ``d`` (microseconds, floor)
    and ``d_ns`` (exact); floats are parsed from their text to the same double; only an
    empty cell is null (``nan`` is a float, ``NA`` a string).

    Args:
        stream_type: the stream's type.
    """

    def __init__(self, stream_type: StreamType) -> None:
        self.stream_type = stream_type
        self.schema = stream_schema(stream_type)
        wire = wire_types(stream_type)
        self.names = list(wire)
        self._stamps = {d.identifier for d in stream_type.dimensions if is_timestamp(d)}
        self._header = ",".join(self.names).encode()
        self._types = {**SERVED_EXTRA_TYPES, **wire}
        has_strings = any(pa.types.is_string(t) for t in wire.values())
        self._read = pacsv.ReadOptions(use_threads=False, block_size=1 << 18)
        self._parse = pacsv.ParseOptions(newlines_in_values=has_strings)
        self._convert = self._convert_options([])

    def _convert_options(self, extra: list[str]) -> pacsv.ConvertOptions:
        return pacsv.ConvertOptions(
            column_types=self._types,
            include_columns=self.names + extra,
            null_values=[""],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )

    def __call__(self, content: bytes) -> pa.RecordBatch:
        """The page as one record batch; :class:`DataError` (plain message) if malformed."""
        if not content:
            raise DataError("empty body (a V2 CSV page always has a header row)", transient=True)
        nl = content.find(b"\n")
        header = (content if nl < 0 else content[:nl]).rstrip(b"\r")
        extra: list[str] = []
        if header != self._header:
            got = [c.strip().strip('"') for c in header.decode("utf-8", "replace").split(",")]
            missing = [n for n in self.names if n not in got]
            if missing:
                raise DataError(
                    f"CSV header {got[:10]} lacks column(s) {missing}; expected {self.names}"
                )
            extra = [c for c in got if c not in self.names]
            if len(set(extra)) != len(extra) or not all(extra):
                raise DataError(f"CSV header {got[:10]} has empty or repeated column names")
        if nl < 0 or (len(content) - nl < 64 and not content[nl + 1 :].strip()):  # no rows
            return empty_batch(self.schema)
        try:
            table = pacsv.read_csv(
                pa.py_buffer(content),  # read natively: a Python file takes the GIL per block
                read_options=self._read,
                parse_options=self._parse,
                convert_options=self._convert_options(extra) if extra else self._convert,
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(f"CSV does not parse: {self._name_column(exc, header)}") from None
        try:
            return self._to_batch(table, extra)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(f"CSV column does not convert: {exc}") from None

    def _name_column(self, exc: Exception, header: bytes) -> str:
        """Arrow's message, with the column's name and declared type after its number."""
        names = [c.strip().strip('"') for c in header.decode("utf-8", "replace").split(",")]

        def named(m: re.Match[str]) -> str:
            i = int(m.group(1))
            name = names[i] if i < len(names) else "?"
            kind = self._types.get(name)
            declared = f", declared {kind}" if kind is not None else ""
            return f"{m.group(0)} ({name!r}{declared})"

        return _COLUMN_NO.sub(named, str(exc), count=1)

    def _to_batch(self, table: pa.Table, extra: Sequence[str] = ()) -> pa.RecordBatch:
        arrays: list[pa.Array] = []
        for name in self.names:
            col = table.column(name).combine_chunks()
            if name in self._stamps:
                if name == "time" and col.null_count:
                    raise DataError(f"{col.null_count} row(s) have no time")
                arrays += [floor_us(col), col]
            else:
                arrays.append(col)
        fields = list(self.schema)
        for name in extra:
            col = table.column(name).combine_chunks()
            if name in SERVED_EXTRA_TYPES:
                col = col.cast(SERVED_EXTRA_TYPES[name])
            else:
                col = _undeclared(col)
            if col is not None:  # all empty on this page: as if absent
                fields.append(pa.field(name, col.type, nullable=True))
                arrays.append(col)
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _undeclared(col: pa.Array) -> pa.Array | None:
    """A column the stream type does not declare, in a type stable across pages."""
    t = col.type
    if pa.types.is_null(t):
        return None
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return col.cast(pa.float64())
    if pa.types.is_boolean(t) or pa.types.is_string(t):
        return col
    return col.cast(pa.string())


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)
