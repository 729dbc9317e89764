"""A work unit's catalog entries go to one pending object (``rune_io.lake.records``);
each file's intent, written before it is published, still makes a lost or cut-short
one harmless: the commit rebuilds those entries from the files' footers."""

from dataclasses import dataclass
from datetime import timedelta

import pytest

from rune_io import pipeline
from rune_io.lake import Catalog, write_stream_partition
from rune_io.lake.catalog import PENDING
from rune_io.lake.records import FileRecords
from rune_io.lake.storage import list_files, put_bytes
from rune_io.pipeline.plan import Chunk, Window
from rune_io.pipeline.units import WorkUnit
from tests.lake.conftest import day_start, make_batches, make_stream
from tests.lake.test_catalog import DAYS, assert_catalog_matches_files

RUN = "run-units"


def pending_kinds(lake) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rel in sorted(list_files(lake, PENDING)):
        out.setdefault(rel.split("/")[-2], []).append(rel)
    return out


def write_four(lake, records):
    streams = [make_stream("s-x", axis="x"), make_stream("s-y", axis="y")]
    Catalog(lake).record_streams(streams, RUN)
    return [
        write_stream_partition(
            lake, s, d, make_batches(s, day_start(d), 2000), run_id=RUN, records=records
        )
        for s in streams
        for d in DAYS
    ]


def committed(lake) -> dict[str, tuple[str, int, str]]:
    return {
        r["path"]: (r["checksum"], r["rows"], r["run_id"])
        for r in Catalog(lake).files().to_pylist()
    }


def test_a_units_entries_are_one_pending_object(lake):
    records = FileRecords(lake, RUN)
    entries = write_four(lake, records)
    before = pending_kinds(lake)
    assert len(before["intents"]) == 4 and "files" not in before  # held, not written
    records.flush()
    after = pending_kinds(lake)
    assert len(after["files"]) == 1 and len(after["intents"]) == 4
    report = Catalog(lake).commit(RUN)
    assert report.files == 4 and report.rebuilt == 0  # the records matched the intents
    assert Catalog(lake).pending_count() == 0
    assert committed(lake) == {e.path: (e.checksum, e.rows, RUN) for e in entries}
    assert_catalog_matches_files(lake)


@pytest.mark.parametrize("fate", ["never written", "cut short", "empty"])
def test_lost_unit_records_are_rebuilt_from_the_intents(lake, fate):
    """A killed unit never writes its records; a power loss may cut the (unsynced)
    object short or leave it empty. The commit skips such an object and rebuilds each
    entry from the published file (same checksum as the writer's own entry)."""
    records = FileRecords(lake, RUN)
    entries = write_four(lake, records)
    if fate != "never written":
        records.flush()
        (rel,) = pending_kinds(lake)["files"]
        with lake.fs.open(lake.path(rel), "rb") as f:
            body = f.read()
        put_bytes(lake, rel, body[: len(body) // 2] if fate == "cut short" else b"")
    assert Catalog(lake).commit(RUN).rebuilt == 4
    assert committed(lake) == {e.path: (e.checksum, e.rows, RUN) for e in entries}
    assert Catalog(lake).pending_count() == 0  # the unreadable object is folded away too
    assert_catalog_matches_files(lake)


def test_records_refuse_another_runs_entry(local_lake):
    entries = write_four(local_lake, None)
    with pytest.raises(ValueError, match="run-units"):
        FileRecords(local_lake, "another-run").add(entries[0])


@dataclass(frozen=True)
class Broken:
    """A source whose every window after the first fails with a bug (not transient)."""

    stream: object
    key: str = "s-x"
    table: str = "t"

    def fetch(self, client, lake, window, run_id, records=None):
        if window.start > day_start(DAYS[0]):
            raise RuntimeError("a bug in the middle of a unit")
        s = self.stream
        batches = make_batches(s, window.start, 2000)
        return write_stream_partition(
            lake, s, window.start, batches, run_id=run_id, records=records
        )


def test_run_unit_records_what_it_published_when_a_chunk_raises(local_lake):
    """The unit's records are written when it ends, also when it ends by an exception:
    the first window's file is in the catalog with its writer's entry."""
    lake = local_lake
    s = make_stream("s-x", axis="x")
    windows = tuple(Window(s.id, day_start(d), day_start(d) + timedelta(days=1)) for d in DAYS)
    unit = WorkUnit((Chunk(Broken(s), windows),))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="a bug"):
        pipeline.run_unit(None, lake, unit, RUN)  # type: ignore[arg-type]
    kinds = pending_kinds(lake)
    assert len(kinds["files"]) == 1 and len(kinds["intents"]) == 1
    assert Catalog(lake).commit(RUN).rebuilt == 0
    assert len(committed(lake)) == 1
    assert_catalog_matches_files(lake)
