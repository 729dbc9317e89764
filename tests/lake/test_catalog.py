import json
import os
import time
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from rune_io.lake import Catalog, LakeError, LakeVersionError, open_lake, write_stream_partition
from rune_io.lake.__main__ import main as cli_main
from rune_io.lake.catalog import PENDING
from rune_io.lake.storage import list_files, put_bytes
from rune_io.lake.summary import render_catalog_summary
from tests.lake.conftest import day_start, make_batches, make_stream

DAYS = [date(2024, 3, 1), date(2024, 3, 2)]


def data_files(lake):
    return {
        p: s
        for p, s in list_files(lake, "").items()
        if p.endswith(".parquet") and not p.startswith("_")
    }


def populate(lake, run_id="run-1"):
    cat = Catalog(lake)
    streams = [
        make_stream("s-x", device="eb#8c31", axis="x"),
        make_stream("s-y", device="R5*S1EGY", axis="y"),
    ]
    cat.begin_run(run_id, {"mode": "refresh"})
    cat.record_streams(streams, run_id)
    entries = []
    for s in streams:
        for d in DAYS:
            entries.append(
                write_stream_partition(
                    lake, s, d, make_batches(s, day_start(d), 3000), run_id=run_id
                )
            )
    end = day_start(DAYS[-1]) + timedelta(minutes=1)
    cat.set_watermarks({s.id: end for s in streams}, run_id)
    cat.finish_run(run_id, "completed", {"files": len(entries)})
    return cat, streams, entries


def assert_catalog_matches_files(lake):
    files = Catalog(lake).files()
    on_disk = data_files(lake)
    assert sorted(files.column("path").to_pylist()) == sorted(on_disk)
    for row in files.to_pylist():
        assert row["bytes"] == on_disk[row["path"]]
        with lake.fs.open(lake.path(row["path"]), "rb") as f:
            md = pq.read_metadata(f)
        assert md.num_rows == row["rows"]


def test_pending_then_commit(lake):
    cat, streams, entries = populate(lake)
    assert cat.pending_count() > 0
    assert cat.files().num_rows == 4  # pending entries are visible before commit
    report = cat.commit("run-1")
    assert report.files == 4 and cat.pending_count() == 0
    assert "kinematics__acceleration__acceleration" in report.tables_with_new_schema
    assert_catalog_matches_files(lake)
    files = cat.files()
    assert set(files.column("device_id").to_pylist()) == {"eb#8c31", "R5*S1EGY"}
    assert sum(files.column("rows").to_pylist()) == 12_000
    assert cat.streams().column("stream_id").to_pylist() == ["s-x", "s-y"]
    runs = cat.runs().to_pylist()
    assert runs[0]["status"] == "completed" and json.loads(runs[0]["stats"]) == {"files": 4}
    assert json.loads(runs[0]["params"]) == {"mode": "refresh"}
    wm = cat.watermarks()
    assert wm == {s.id: day_start(DAYS[-1]) + timedelta(minutes=1) for s in streams}
    # commit is idempotent
    cat.commit("run-1")
    assert cat.files().equals(files)


def test_watermarks_move_forward_unless_forced(local_lake):
    cat = Catalog(local_lake)
    t = datetime(2024, 1, 2, tzinfo=UTC)
    cat.set_watermarks({"s": t}, "r1")
    cat.commit("r1")
    cat.set_watermarks({"s": t - timedelta(days=1)}, "r2")
    assert cat.watermarks() == {"s": t}
    cat.set_watermarks({"s": t - timedelta(days=1)}, "r3", force=True)
    cat.commit("r3")
    assert cat.watermarks() == {"s": t - timedelta(days=1)}
    with pytest.raises(ValueError, match="naive"):
        cat.set_watermarks({"s": datetime(2024, 1, 1)}, "r4")


def test_repair_after_crash_between_data_and_catalog(lake):
    cat, streams, entries = populate(lake)
    cat.commit("run-1")
    # crash 1: a file replaced, its pending entry never written
    s = streams[0]
    newer = write_stream_partition(
        lake, s, DAYS[0], make_batches(s, day_start(DAYS[0]), 100), run_id="run-2"
    )
    for p in list_files(lake, PENDING):
        lake.fs.rm_file(lake.path(p))
    # crash 2: a file deleted behind the catalog's back
    lake.fs.rm_file(lake.path(entries[-1].path))
    report = cat.repair()
    assert report.added == [newer.path]
    assert report.dropped == [entries[-1].path]
    assert_catalog_matches_files(lake)
    row = [r for r in cat.files().to_pylist() if r["path"] == newer.path][0]
    assert row["rows"] == 100 and row["checksum"] == newer.checksum and row["run_id"] == "run-2"
    assert cat.repair().added == []  # nothing left to do


def test_replacement_of_the_same_size_published_without_entry(lake, monkeypatch):
    """Crash after a same-size replacement is published, before its entry: the intent
    written before publishing makes the next commit rebuild the entry from the file."""
    from rune_io.lake import writer

    cat, streams, entries = populate(lake)
    cat.commit("run-1")
    s, old = streams[0], entries[0]

    def crash(lake, entry, records):
        raise KeyboardInterrupt("killed between publish and catalog entry")

    monkeypatch.setattr(writer, "_record", crash)
    with pytest.raises(KeyboardInterrupt):
        write_stream_partition(
            lake, s, DAYS[0], make_batches(s, day_start(DAYS[0]), 3000), run_id="run-2"
        )
    monkeypatch.undo()
    assert data_files(lake)[old.path] == old.bytes  # same size: a size check cannot tell
    cat.repair()
    row = [r for r in cat.files().to_pylist() if r["path"] == old.path][0]
    with lake.fs.open(lake.path(old.path), "rb") as f:
        footer = json.loads(pq.read_metadata(f).metadata[b"rune_lake"])
    assert row["run_id"] == footer["run_id"] == "run-2"
    assert row["checksum"] != old.checksum and cat.pending_count() == 0
    assert_catalog_matches_files(lake)


def test_repair_removes_stale_staging_and_reports_foreign(local_lake):
    lake = local_lake
    os.makedirs(lake.path("_staging"), exist_ok=True)
    stale = lake.path("_staging/dead.tmp")
    open(stale, "wb").write(b"PAR1partial")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    put_bytes(lake, "other/x.parquet", b"not parquet")
    report = Catalog(lake).repair()
    assert report.temps_removed == ["_staging/dead.tmp"]
    assert report.foreign == ["other/x.parquet"]
    assert not os.path.exists(stale)


def test_summary_and_cli(lake, capsys):
    cat, streams, entries = populate(lake)
    cat.commit("run-1")
    summary = cat.summary()
    (t,) = summary["tables"]
    assert (t["table"], t["files"], t["rows"], t["streams"], t["patients"]) == (
        "kinematics__acceleration__acceleration", 4, 12_000, 2, 1,
    )  # fmt: skip
    assert t["min_time"] == day_start(DAYS[0])
    assert summary["last_run"]["run_id"] == "run-1"
    text = render_catalog_summary(lake)
    assert (
        "kinematics__acceleration__acceleration" in text and "12,000" in text and "R5*S1EGY" in text
    )
    assert "last run run-1: completed" in text
    assert cli_main(["catalog", "--lake", lake.url]) == 0
    assert "kinematics__acceleration__acceleration" in capsys.readouterr().out


def test_lake_marker(tmp_path):
    with pytest.raises(LakeError, match="no lake"):
        open_lake(str(tmp_path / "nope"), create=False)
    lake = open_lake(str(tmp_path / "lake"))
    marker = json.loads(lake.read_bytes("_catalog/_lake.json"))
    assert marker["layout_version"] == 1 and marker["format"] == "rune-lake"
    assert open_lake(str(tmp_path / "lake"), create=False).root == lake.root
    put_bytes(lake, "_catalog/_lake.json", json.dumps({"layout_version": 99}).encode())
    with pytest.raises(LakeVersionError, match="layout version 99"):
        open_lake(str(tmp_path / "lake"))
