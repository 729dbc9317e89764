"""Arrow types for Rune stream types: the one mapping the reader and the lake share.

A stream type's dimensions carry a ``dataType`` string. The emulator uses exactly the
names below; unknown names raise, so a new type on the wire is a clear error rather
than a silently mistyped column.
"""

from __future__ import annotations

import pyarrow as pa

from rune_io.models import Dimension, StreamType

#: ``timestamp[us, tz=UTC]``: the lake's only timestamp type (Spark reads it; no INT96, no ns).
TIME_TYPE = pa.timestamp("us", tz="UTC")

_TYPES: dict[str, pa.DataType] = {
    "timestamp": TIME_TYPE,
    "float": pa.float64(),
    "double": pa.float64(),
    "int": pa.int64(),
    "long": pa.int64(),
    "duration_ns": pa.int64(),
    "bool": pa.bool_(),
    "boolean": pa.bool_(),
    "string": pa.string(),
    "enum": pa.string(),  # requested with translate_enums=True: the label, not the code
}


def arrow_type(dim: Dimension) -> pa.DataType:
    """Arrow type of one dimension; ``time`` is always :data:`TIME_TYPE`."""
    if dim.identifier == "time":
        return TIME_TYPE
    try:
        return _TYPES[dim.data_type]
    except KeyError:
        raise ValueError(
            f"unknown dataType {dim.data_type!r} for dimension {dim.identifier!r}; "
            f"known: {sorted(_TYPES)}"
        ) from None


def stream_schema(stream_type: StreamType) -> pa.Schema:
    """Schema of a stream's data: ``time`` first, then the value dimensions in order."""
    fields = [pa.field("time", TIME_TYPE, nullable=False)]
    fields += [pa.field(d.identifier, arrow_type(d)) for d in stream_type.value_dimensions]
    return pa.schema(fields)
