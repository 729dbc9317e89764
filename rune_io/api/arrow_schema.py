"""Arrow types for Rune stream types: the one mapping the reader and the lake share.

A stream type's dimensions carry a ``dataType``. The live API's vocabulary
(``../shared/reference/real-api-evidence.md``) and what each becomes, losslessly:

============  ==============================================================
``timestamp`` two columns: ``d`` = ``timestamp[us, UTC]`` (the ns value floored to the
              microsecond, for engines) and ``d_ns`` = ``int64`` (exact ns since the epoch)
``sfloat``    ``float64`` (the served text parses to the same double, bit for bit)
``ufloat``    ``float64``
``uint``      ``int64``
``bool``      ``bool``
``dict``      ``string``: the JSON object exactly as the CSV cell carries it
``enum``,     ``string`` (requested with ``translate_enums=True``: the label)
``string``
anything else ``string`` (the served text), warned about once per process and recorded in
              the catalog's stream entry (:func:`unknown_dimensions`); never dropped
============  ==============================================================

``measurement_duration_ns`` is served on many streams without being a declared dimension
(:data:`SERVED_EXTRA_TYPES`): it is an ``int64``.

The *key* of a stream type (:func:`time_key`) is the timestamp dimension that orders its
rows: ``time``; for types without one (``span``) the first timestamp dimension
(``start_time_min``); ``None`` when it has none (``bytes``).
"""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.compute as pc

from rune_io.api.models import Dimension, StreamType
from rune_io.errors import UnsupportedStreamType

log = logging.getLogger("rune_io.api.arrow_schema")

#: ``timestamp[us, tz=UTC]``: the engines' timestamp type (Spark reads it; no INT96, no ns).
TIME_TYPE = pa.timestamp("us", tz="UTC")
#: Suffix of the exact nanosecond column of a timestamp dimension (``time`` -> ``time_ns``).
NS_SUFFIX = "_ns"
TIMESTAMP = "timestamp"

#: Value types of the known data types (timestamps are handled apart).
VALUE_TYPES: dict[str, pa.DataType] = {
    "sfloat": pa.float64(),
    "ufloat": pa.float64(),
    "uint": pa.int64(),
    "bool": pa.bool_(),
    "dict": pa.string(),
    "enum": pa.string(),
    "string": pa.string(),
    # names of this project's earlier emulator (not on the live API)
    "float": pa.float64(),
    "int": pa.int64(),
    "duration_ns": pa.int64(),
}
#: Undeclared CSV columns whose type the evidence fixes.
SERVED_EXTRA_TYPES: dict[str, pa.DataType] = {"measurement_duration_ns": pa.int64()}

_warned: set[tuple[str, str, str]] = set()


def is_timestamp(dim: Dimension) -> bool:
    """A ``timestamp`` dimension (``time`` always is one: the API's time index)."""
    return dim.data_type == TIMESTAMP or dim.identifier == "time"


def unknown_dimensions(stream_type: StreamType) -> list[Dimension]:
    """Dimensions whose data type this version does not know (stored as strings)."""
    return [
        d for d in stream_type.dimensions if not is_timestamp(d) and d.data_type not in VALUE_TYPES
    ]


def warn_unknown(stream_type: StreamType, stream_id: str = "") -> None:
    """Log a warning once per process per (stream type, dimension, data type) unknown."""
    for d in unknown_dimensions(stream_type):
        key = (stream_type.id, d.identifier, d.data_type)
        if key not in _warned:
            _warned.add(key)
            log.warning(
                "stream type %r dimension %r has unknown dataType %r: stored as text "
                "(first seen on stream %s; recorded in the catalog)",
                stream_type.id, d.identifier, d.data_type, stream_id or "?",
            )  # fmt: skip


def value_type(dim: Dimension) -> pa.DataType:
    """Arrow type of a non-timestamp dimension (unknown data types: ``string``)."""
    return VALUE_TYPES.get(dim.data_type, pa.string())


def wire_types(stream_type: StreamType) -> dict[str, pa.DataType]:
    """Type of each served CSV column as parsed (timestamps: ``int64`` unix ns)."""
    return {
        d.identifier: pa.int64() if is_timestamp(d) else value_type(d)
        for d in stream_type.dimensions
    }


def time_key(stream_type: StreamType) -> str | None:
    """The timestamp dimension that orders rows (see module doc)."""
    stamps = [d.identifier for d in stream_type.dimensions if is_timestamp(d)]
    if "time" in stamps:
        return "time"
    return stamps[0] if stamps else None


def stream_schema(stream_type: StreamType) -> pa.Schema:
    """Schema of a stream's data: each dimension in order, a timestamp as ``d`` + ``d_ns``.

    ``time``/``time_ns`` are non-null; every other column is nullable.
    """
    fields: list[pa.Field] = []
    for d in stream_type.dimensions:
        if is_timestamp(d):
            required = d.identifier == "time"
            fields.append(pa.field(d.identifier, TIME_TYPE, nullable=not required))
            fields.append(pa.field(d.identifier + NS_SUFFIX, pa.int64(), nullable=not required))
        else:
            fields.append(pa.field(d.identifier, value_type(d)))
    names = [f.name for f in fields]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UnsupportedStreamType(
            f"stream type {stream_type.id!r}: columns {dup} would appear twice"
        )
    return pa.schema(fields)


def floor_us(ns: pa.Array) -> pa.Array:
    """Unix ns (``int64``) -> ``timestamp[us, UTC]``, floored (also before 1970)."""
    q = pc.divide(ns, 1000)  # integer division truncates toward zero
    if len(ns) and (pc.min(ns).as_py() or 0) < 0:
        q = pc.if_else(pc.greater(pc.multiply(q, 1000), ns), pc.subtract(q, 1), q)
    return q.cast(TIME_TYPE)
