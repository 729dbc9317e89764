"""Content checksums: a hash of a file's rows, independent of how they were paged.

The writer feeds every row group it writes (the rows in file order: by time, ties in
served order) to a :class:`ContentHash`; the digest goes into the file's footer and
catalog entry as ``content_checksum``. Two fetches of the same upstream data give the
same digest although their files differ byte for byte (the footer records the run and
the time of writing), so ``backfill --overwrite`` can leave a partition whose content
did not change untouched, and the catalog can tell a revision from a rewrite.

What is hashed, per column in schema order: its name and type, then its values as the
raw little-endian bytes of the Arrow data (validity as one byte a row when there are
nulls, strings as their lengths then their bytes), so slicing and chunking do not
change the digest. Constant columns (stream, patient, device...) are hashed once as
``name=value``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PREFIX = "sha256:"


class ContentHash:
    """Incremental content hash of row groups written in order (see module docs)."""

    def __init__(self, schema: pa.Schema, constants: Sequence[tuple[str, str]] = ()) -> None:
        self._h = hashlib.sha256()
        self.schema = schema
        self.constants = list(constants)
        self.rows = 0
        self._h.update(b"rune-lake content v1\0")
        for name, value in self.constants:
            self._h.update(f"{name}={value}\0".encode())

    def reset(self, schema: pa.Schema) -> None:
        """Start over (the writer rewrites what it wrote, e.g. with a wider schema)."""
        self.__init__(schema, self.constants)  # type: ignore[misc]

    def update(self, table: pa.Table) -> None:
        """Hash the next rows (a table of ``schema``'s columns, in file order)."""
        self.rows += table.num_rows
        h = self._h
        h.update(b"group\0" + table.num_rows.to_bytes(8, "little"))
        for name in self.schema.names:
            col = table.column(name)
            h.update(f"{name}:{col.type}\0".encode())
            for chunk in col.chunks:
                _hash_array(h, chunk)

    def hexdigest(self) -> str:
        """``"sha256:<hex>"`` of everything hashed so far (rows counted in)."""
        h = self._h.copy()
        h.update(b"rows\0" + self.rows.to_bytes(8, "little"))
        return PREFIX + h.hexdigest()


def _hash_array(h, arr: pa.Array) -> None:
    if len(arr) == 0:
        return
    if arr.null_count:
        h.update(arr.is_valid().to_numpy(zero_copy_only=False).astype(np.uint8).tobytes())
        arr = pc.fill_null(arr, _zero(arr.type)) if _zero(arr.type) is not None else arr
    t = arr.type
    if pa.types.is_null(t):
        return
    if pa.types.is_dictionary(t):
        _hash_array(h, arr.dictionary_decode())
    elif pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_string(t):
        wide = pa.types.is_large_string(t)
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64 if wide else np.int32)
        offsets = offsets[arr.offset : arr.offset + len(arr) + 1]
        h.update(np.diff(offsets).astype(np.int64).tobytes())
        data = arr.buffers()[2]
        if data is not None:
            h.update(memoryview(data)[int(offsets[0]) : int(offsets[-1])])
    elif pa.types.is_boolean(t):
        h.update(arr.to_numpy(zero_copy_only=False).astype(np.uint8).tobytes())
    elif pa.types.is_primitive(t):  # ints, floats, timestamps: the values' own bytes
        width = t.bit_width // 8
        buf = arr.buffers()[1]
        h.update(memoryview(buf)[arr.offset * width : (arr.offset + len(arr)) * width])
    else:  # nested or rare types: the IPC form of a compacted copy
        h.update(_ipc_bytes(arr))


def _zero(t: pa.DataType):
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return ""
    if pa.types.is_binary(t):
        return b""
    if pa.types.is_boolean(t):
        return False
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return pa.scalar(0, t)
    if pa.types.is_timestamp(t):
        return pa.scalar(0, pa.int64()).cast(t)
    return None


def _ipc_bytes(arr: pa.Array) -> bytes:
    batch = pa.RecordBatch.from_arrays([pa.concat_arrays([arr])], names=["v"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    return sink.getvalue().to_pybytes()
