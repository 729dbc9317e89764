"""The catalog's committed tables as append-only segments, so a commit costs what it adds.

Each committed table lives under ``_catalog/tables/<name>/``::

    base-<seq>.parquet    everything committed up to commit <seq>, one row per key
    delta-<seq>.parquet   what commit <seq> added (files: entries and tombstones)

A commit writes one ``delta`` per table (numbered one past the highest sequence number
of any segment) and never rewrites old ones, so its cost follows the run, not the lake.
A table's state is its newest ``base`` plus the deltas numbered after it, in order, the
later winning per key. When the deltas of ``files`` outgrow a tenth of the base (in bytes, at
least 8 MiB), or number more than 64, the commit also *compacts*: it streams the base through a
filter, appends the deltas' surviving rows, and writes ``base-<seq>`` with the number of
the newest delta it folded. Segments it supersedes are deleted afterwards; until then
they are simply ignored (a base numbered ``n`` hides every segment numbered up to ``n``),
so a crash anywhere in a commit or a compaction leaves a readable, correct catalog.
All of it runs under the lake's commit lock.

File entries carry ``key``, a 64-bit hash of the path: the planning snapshot
(:mod:`rune_io.lake.snapshot`) drops base rows superseded by deltas by that integer key,
without reading the path column (15 M paths are ~2 GB of strings). A collision could
only hide an unrelated entry from planning, which then fetches that partition again:
never a skip. Full reads (:meth:`SegmentStore.read`) resolve by the table's real key.
"""

from __future__ import annotations

import hashlib
import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rune_io.lake.layout import CATALOG_DIR
from rune_io.lake.storage import Lake, atomic_file, list_files, remove

TABLES_DIR = f"{CATALOG_DIR}/tables"
_NAME = re.compile(r"^(base|delta)-(\d{10})\.parquet$")


def path_key(path: str) -> int:
    """The signed 64-bit key of a file path (``key`` column of file entries)."""
    return int.from_bytes(
        hashlib.blake2b(path.encode(), digest_size=8).digest(), "big", signed=True
    )


class SegmentStore:
    """Segments of the committed catalog tables of ``lake``."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def _dir(self, name: str) -> str:
        return f"{TABLES_DIR}/{name}"

    def _all(self, name: str) -> list[tuple[int, str, str]]:
        """``(seq, kind, rel)`` of every segment of table ``name``, oldest first."""
        out = []
        for rel in list_files(self.lake, self._dir(name)):
            m = _NAME.match(rel.rsplit("/", 1)[-1])
            if m:
                out.append((int(m.group(2)), m.group(1), rel))
        return sorted(out, key=lambda x: (x[0], x[1] == "delta"))

    def live(self, name: str) -> tuple[str | None, list[str]]:
        """The newest base (or None) and the deltas after it, oldest first."""
        segs = self._all(name)
        bases = [(seq, rel) for seq, kind, rel in segs if kind == "base"]
        base_seq, base = bases[-1] if bases else (-1, None)
        return base, [rel for seq, kind, rel in segs if kind == "delta" and seq > base_seq]

    def next_seq(self, names: list[str]) -> int:
        seqs = [seq for n in names for seq, _, _ in self._all(n)]
        return max(seqs, default=0) + 1

    def read(self, rel: str) -> pa.Table:
        """One segment, whole."""
        return self._read(rel)

    def _read(
        self, rel: str, columns: list[str] | None = None, dictionary: tuple[str, ...] = ()
    ) -> pa.Table:
        with self.lake.fs.open(self.lake.path(rel), "rb") as f:
            return pq.read_table(f, columns=columns, read_dictionary=list(dictionary) or None)

    def read_parts(
        self, name: str, columns: list[str] | None = None, dictionary: tuple[str, ...] = ()
    ) -> tuple[pa.Table | None, list[pa.Table]]:
        """The live base (projected to ``columns``, ``dictionary`` columns dictionary
        encoded) and the live deltas (all columns)."""
        base, deltas = self.live(name)
        return (
            None if base is None else self._read(base, columns, dictionary),
            [self._read(d) for d in deltas],
        )

    def sizes(self, name: str) -> tuple[int, int, int, int]:
        """``(base bytes, live delta bytes, live deltas, newest live delta's seq)``,
        from one listing."""
        found = list_files(self.lake, self._dir(name))
        base, deltas = self.live(name)
        top = max((int(_NAME.match(d.rsplit("/", 1)[-1]).group(2)) for d in deltas), default=0)  # type: ignore[union-attr]
        return (
            found.get(base, 0) if base else 0,
            sum(found.get(d, 0) for d in deltas),
            len(deltas),
            top,
        )

    def append(self, name: str, seq: int, table: pa.Table) -> None:
        """Write commit ``seq``'s delta of table ``name`` (atomically)."""
        with atomic_file(self.lake, f"{self._dir(name)}/delta-{seq:010d}.parquet") as (tmp, _):
            pq.write_table(table, tmp, compression="zstd")

    def write_base(self, name: str, seq: int, batches, schema: pa.Schema) -> None:
        """Write ``base-<seq>`` from ``batches`` (streamed: memory stays one batch)."""
        with atomic_file(self.lake, f"{self._dir(name)}/base-{seq:010d}.parquet") as (tmp, _):
            with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
                for b in batches:
                    if b.num_rows:
                        w.write_batch(b) if isinstance(b, pa.RecordBatch) else w.write_table(b)

    def drop_superseded(self, name: str) -> int:
        """Delete segments hidden by the newest base; returns how many."""
        base, _ = self.live(name)
        if base is None:
            return 0
        base_seq = int(_NAME.match(base.rsplit("/", 1)[-1]).group(2))  # type: ignore[union-attr]
        gone = 0
        for seq, _kind, rel in self._all(name):
            if seq < base_seq or (seq == base_seq and rel != base):
                gone += remove(self.lake, rel)
        return gone

    def base_batches(
        self,
        name: str,
        drop_keys: pa.Array,
        key: str = "key",
        columns: list[str] | None = None,
        dictionary: tuple[str, ...] = (),
        drop_key: bool = False,
        where=None,
    ):
        """Batches of the live base (projected to ``columns``) without the rows whose
        ``key`` is in ``drop_keys``: streamed, so filtering never copies the whole base."""
        base, _ = self.live(name)
        if base is None:
            return
        with self.lake.fs.open(self.lake.path(base), "rb") as f:
            # sequential, unbuffered reads: peak memory stays near the result's size
            pf = pq.ParquetFile(f, read_dictionary=list(dictionary) or None, pre_buffer=False)
            for batch in pf.iter_batches(batch_size=1 << 18, columns=columns, use_threads=False):
                if len(drop_keys):
                    keep = pc.invert(pc.is_in(batch.column(key), value_set=drop_keys))
                    batch = batch.filter(keep)
                if where is not None:  # e.g. only a backfill's range
                    batch = batch.filter(where(batch))
                yield batch.drop_columns([key]) if drop_key else batch
