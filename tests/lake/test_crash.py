"""A writer killed with SIGKILL mid-file leaves no visible partial file."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta

import pyarrow.parquet as pq

from rune_io.lake import Catalog, write_stream_partition
from rune_io.lake.storage import list_files
from tests.lake.conftest import day_start, make_batches, make_stream

DAY = date(2024, 6, 1)

CHILD = textwrap.dedent(
    """
    import sys, time, pathlib
    sys.path.insert(0, {repo!r})
    from rune_io.lake import open_lake, write_stream_partition
    from rune_io.lake import writer
    from tests.lake.conftest import make_stream, make_batches, day_start
    from datetime import date
    writer.ROW_GROUP_ROWS = 5000
    lake = open_lake({url!r})
    stream = make_stream()
    day = date(2024, 6, 1)

    def batches():
        yield from make_batches(stream, day_start(day), 20_000, batch_rows=2500, seed=1)
        pathlib.Path({ready!r}).write_text("row groups written")
        time.sleep(600)

    write_stream_partition(lake, stream, day, batches(), run_id="killed")
    """
)


def kill_mid_write(lake, tmp_path):
    ready = tmp_path / "ready"
    code = CHILD.format(repo=os.getcwd(), url=lake.url, ready=str(ready))
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    try:
        deadline = time.time() + 60
        while not ready.exists():
            assert proc.poll() is None, "writer exited early"
            assert time.time() < deadline, "writer never got going"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigkill_mid_write_leaves_previous_file(lake, tmp_path):
    stream = make_stream()
    good = write_stream_partition(
        lake, stream, DAY, make_batches(stream, day_start(DAY), 1234), run_id="good"
    )
    Catalog(lake).commit("good")
    kill_mid_write(lake, tmp_path)
    data = {p for p in list_files(lake, "") if not p.startswith("_") and "/_" not in p}
    assert data == {good.path}  # nothing else under any table
    raw = lake.fs.cat_file(lake.path(good.path))
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == good.checksum
    with lake.fs.open(lake.path(good.path), "rb") as f:
        assert pq.read_metadata(f).num_rows == 1234
    if lake.is_local:  # the partial file is a staging file outside every table
        assert len(list_files(lake, "_staging")) == 1
    report = Catalog(lake).repair(stale_after=timedelta(0))
    assert report.added == [] and report.dropped == []
    assert list_files(lake, "_staging") == {}
    assert Catalog(lake).files().column("path").to_pylist() == [good.path]
