"""When and how a commit compacts a committed table (:mod:`rune_io.lake.segments`).

A table is due when its deltas number more than :data:`MAX_DELTAS`, or outweigh a tenth
of its base and at least :data:`COMPACT_MIN_BYTES`. ``files`` is streamed: its base is
filtered batch by batch against the deltas' winners, then the surviving delta rows are
appended. The small tables are rewritten whole from their resolved rows. The superseded
segments are dropped only after the new base is written, so a crash in between leaves a
correct catalog (the new base hides them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rune_io.faults import crash_point
from rune_io.lake.entries import FILES_SEGMENT_SCHEMA, TABLES, conform, to_table
from rune_io.lake.resolve import chain, last_per_path
from rune_io.lake.segments import SegmentStore

#: Compact a table when its deltas number more than this, or outweigh a tenth of its
#: base and at least COMPACT_MIN_BYTES.
MAX_DELTAS = 64
COMPACT_MIN_BYTES = 8 << 20

Rows = dict[str, dict[str, Any]]


def compact_if_due(
    store: SegmentStore, state: dict[str, Rows], committed: Callable[[str], Rows]
) -> list[str]:
    """Compact every table that is due; their names. ``state`` holds the resolved rows
    of the small tables this commit resolved, ``committed`` reads any other's."""
    done = []
    for name in TABLES:
        base_bytes, delta_bytes, n, top = store.sizes(name)
        if not n or (delta_bytes < max(COMPACT_MIN_BYTES, base_bytes // 10) and n <= MAX_DELTAS):
            continue
        if name == "files":
            deltas = [store.read(rel) for rel in store.live(name)[1]]
            winners = last_per_path(pa.concat_tables([conform("files", d) for d in deltas]))
            live = winners.filter(pc.invert(winners.column("deleted")))
            batches = (
                conform("files", pa.Table.from_batches([b]))
                for b in store.base_batches(name, winners.column("path"), key="path")
            )
            store.write_base(name, top, chain(batches, [live]), FILES_SEGMENT_SCHEMA)
        else:
            rows = state[name] if name in state else committed(name)
            table = to_table(name, list(rows.values()))
            store.write_base(name, top, [table], table.schema)
        crash_point("compact")
        store.drop_superseded(name)
        done.append(name)
    return done
