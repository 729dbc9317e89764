"""The committed catalog as segments: commits append what the run added, compaction
folds deltas into a base, a crash anywhere leaves a correct catalog, and commits leave
no empty pending folders."""

from __future__ import annotations

import os

import pytest

from rune_io.lake import Catalog, compaction, write_stream_partition
from rune_io.lake.segments import TABLES_DIR, SegmentStore
from rune_io.lake.storage import list_files
from tests.lake.conftest import day_start, entries_between, make_batches
from tests.lake.test_catalog import DAYS, assert_catalog_matches_files, populate


def _segments(lake) -> list[str]:
    return sorted(p.split("/", 2)[2] for p in list_files(lake, TABLES_DIR))


def _load_day(lake, stream, day, run_id, rows=500):
    cat = Catalog(lake)
    cat.begin_run(run_id)
    entry = write_stream_partition(
        lake, stream, day, make_batches(stream, day_start(day), rows), run_id=run_id
    )
    cat.finish_run(run_id, "completed")
    return cat.commit(run_id), entry


def test_a_commit_appends_only_what_its_run_added(local_lake):
    cat, streams, entries = populate(local_lake)
    first = cat.commit("run-1")
    assert first.files == 4 and first.removed == 0
    assert _segments(local_lake) == [
        f"{t}/delta-0000000001.parquet" for t in ("files", "runs", "streams", "watermarks")
    ]
    second, entry = _load_day(local_lake, streams[0], DAYS[0], "run-2", rows=100)  # replaces one
    assert second.files == 1
    delta = SegmentStore(local_lake).read_parts("files")[1][-1]
    assert delta.column("path").to_pylist() == [entry.path]  # one row, not the whole catalog
    assert sorted(s for s in _segments(local_lake) if s.startswith("files/")) == [
        "files/delta-0000000001.parquet", "files/delta-0000000002.parquet",
    ]  # fmt: skip
    files = {r["path"]: r for r in cat.files().to_pylist()}
    assert len(files) == 4 and files[entry.path]["rows"] == 100
    assert_catalog_matches_files(local_lake)
    assert not os.listdir(local_lake.path("_catalog/pending"))  # no empty run folders


def test_compaction_folds_deltas_and_keeps_every_answer(local_lake, monkeypatch):
    monkeypatch.setattr(compaction, "MAX_DELTAS", 2)
    cat, streams, entries = populate(local_lake)
    cat.commit("run-1")
    _load_day(local_lake, streams[0], DAYS[0], "run-2", rows=100)
    before = cat.files()
    marks = cat.watermarks()
    # a removal: tombstone, then the file goes; then a commit that passes the threshold
    cat.record_removal(entries[-1].path, entries[-1].table, "run-3")
    local_lake.fs.rm_file(local_lake.path(entries[-1].path))
    rep = cat.commit("run-3")
    assert "files" in rep.compacted
    segs = [s for s in _segments(local_lake) if s.startswith("files/")]
    assert segs == ["files/base-0000000003.parquet"]
    after = cat.files()
    assert after.num_rows == before.num_rows - 1
    assert after.column("path").to_pylist() == [
        p for p in before.column("path").to_pylist() if p != entries[-1].path
    ]
    assert cat.watermarks() == marks
    assert_catalog_matches_files(local_lake)
    snap = cat.snapshot()
    assert snap.num_files == 3 and snap.watermarks == marks


def test_crash_during_compaction_leaves_a_correct_catalog(local_lake, monkeypatch):
    monkeypatch.setattr(compaction, "MAX_DELTAS", 1)
    cat, streams, entries = populate(local_lake)
    cat.commit("run-1")
    want = cat.files()

    def killed(self, name):
        raise KeyboardInterrupt("killed after writing the base, before dropping old segments")

    monkeypatch.setattr(SegmentStore, "drop_superseded", killed)
    with pytest.raises(KeyboardInterrupt):
        _load_day(local_lake, streams[1], DAYS[1], "run-2", rows=50)
    monkeypatch.undo()
    assert any("base-" in s for s in _segments(local_lake)) and any(
        "delta-" in s for s in _segments(local_lake)
    )
    got = {r["path"]: r["rows"] for r in cat.files().to_pylist()}
    assert got == {
        **dict(zip(want.column("path").to_pylist(), want.column("rows").to_pylist(), strict=True)),
        entries[-1].path: 50,
    }
    cat.commit()
    assert_catalog_matches_files(local_lake)


def test_commit_finishes_a_removal_a_crash_cut_short(local_lake):
    cat, streams, entries = populate(local_lake)
    cat.commit("run-1")
    victim = entries[0]
    cat.record_removal(victim.path, victim.table, "run-2")  # killed before deleting it
    assert local_lake.exists(victim.path)
    cat.commit()
    assert not local_lake.exists(victim.path)
    assert victim.path not in cat.files().column("path").to_pylist()
    assert_catalog_matches_files(local_lake)


def test_snapshot_rates_and_range(local_lake):
    cat, streams, entries = populate(local_lake)
    cat.commit("run-1")
    snap = cat.snapshot()
    assert snap.rows_per_day() == {s.id: 3000.0 for s in streams}
    inside = entries_between(
        snap, day_start(DAYS[1]), day_start(DAYS[1]) + (day_start(DAYS[1]) - day_start(DAYS[0]))
    )
    assert {k: len(v) for k, v in inside.items()} == {s.id: 1 for s in streams}
    row = inside[streams[0].id][0]
    assert row["stream_min_time"] is not None and row["stream_max_time"] is not None
