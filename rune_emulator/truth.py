"""Ground truth, typed by the evidence's data types (CONTRACT section 2).

One Arrow column per served CSV column, in CSV order, rows in served order:
``timestamp`` -> int64 (ns since the epoch, UTC), ``sfloat``/``ufloat`` -> float64,
``uint`` -> int64, ``bool`` -> bool, ``dict`` -> string (the JSON text exactly as the
CSV cell carries it after CSV unquoting), ``measurement_duration_ns`` -> int64, any
other data type -> string (the served text).
"""

from __future__ import annotations

import pyarrow as pa

from .cohort import StreamSpec
from .models import StreamType
from .signals import Chunk

#: Arrow type of a truth column, by dimension data type.
TRUTH_TYPES: dict[str, pa.DataType] = {
    "timestamp": pa.int64(),
    "sfloat": pa.float64(),
    "ufloat": pa.float64(),
    "uint": pa.int64(),
    "bool": pa.bool_(),
    "dict": pa.string(),
}


def truth_type(data_type: str) -> pa.DataType:
    """Arrow type of a truth column for a dimension ``dataType`` (unknown -> string)."""
    return TRUTH_TYPES.get(data_type, pa.string())


def truth_schema(stream_type: StreamType, with_duration: bool) -> pa.Schema:
    """Schema of :func:`chunk_to_table` for a stream type (``measurement_duration_ns`` last)."""
    fields = [pa.field(d.identifier, truth_type(d.data_type)) for d in stream_type.dimensions]
    if with_duration:
        fields.append(pa.field("measurement_duration_ns", pa.int64()))
    return pa.schema(fields)


def stream_schema(spec: StreamSpec) -> pa.Schema:
    return truth_schema(spec.meta.stream_type, spec.with_duration)


def chunk_to_table(spec: StreamSpec, cols: Chunk) -> pa.Table:
    """Rows of a chunk as a truth table (see the module docstring)."""
    schema = stream_schema(spec)
    arrays = [pa.array(cols[f.name], type=f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
