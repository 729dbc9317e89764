"""Upstream data is revised (issue 16, item 4): the emulator's opt-in revision fault
changes a stream's values for a window the lake already holds.

``rune-lake backfill --overwrite`` over a week replaces exactly the revised day's file
(every other file keeps its bytes, mtime / ETag); the catalog records the old and new
checksums and the run; the lake equals the revised truth. A refresh with
``--lookback-days`` picks up a revision inside its lookback, not one before it. On a
local lake and on S3 (a real moto server on loopback); the CLI as a subprocess.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rune_io.lake import Catalog, open_lake, partition_for
from rune_io.lake.layout import stream_file_path
from tests.faults.conftest import api_vars, assert_lake_consistent, cli, emulator, remember
from tests.faults.test_storage_faults import BUCKET, _free_port, reset_moto
from tests.flows.conftest import NOW
from tests.truth import assert_equals_truth, assert_lake_equals_truth, category, client_meta

DAY = timedelta(days=1)
START = (NOW - 7 * DAY).date()  # the emulator's data starts here (days=7)
END = NOW.date()  # exclusive: a week of complete days
ARGS = ["--category", "vitals", "--no-events"]


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root, self.url, self.env = root, str(root), {}

    def state(self) -> dict[str, tuple[str, object]]:
        """``{data file: (sha256, mtime_ns)}``."""
        out = {}
        for p in self.root.rglob("*.parquet"):
            rel = p.relative_to(self.root)
            if not rel.parts[0].startswith("_"):
                out[str(rel)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        return out

    def local(self) -> Path:
        return self.root


class S3Store:
    def __init__(self, endpoint: str, tmp: Path) -> None:
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        self.fs = s3fs.S3FileSystem(
            key="testing", secret="testing", endpoint_url=endpoint, skip_instance_cache=True
        )
        self.fs.mkdir(BUCKET)
        self.url, self.tmp = f"s3://{BUCKET}/lake", tmp
        self.env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": endpoint,
        }

    def state(self) -> dict[str, tuple[str, object]]:
        """``{data file: (sha256, (ETag, LastModified))}``."""
        self.fs.invalidate_cache()
        out = {}
        for key in self.fs.find(f"{BUCKET}/lake"):
            rel = key.removeprefix(f"{BUCKET}/lake/")
            if rel.endswith(".parquet") and not rel.startswith("_"):
                info = self.fs.info(key)
                sha = hashlib.sha256(self.fs.cat_file(key)).hexdigest()
                out[rel] = (sha, (info["ETag"], info["LastModified"]))
        return out

    def local(self) -> Path:
        copy = self.tmp / f"copy-{len(list(self.tmp.glob('copy-*')))}"
        self.fs.invalidate_cache()
        self.fs.get(f"{BUCKET}/lake", str(copy), recursive=True)
        return remember(copy)


@contextmanager
def store(kind: str, tmp_path: Path):
    if kind == "local":
        yield LocalStore(remember(tmp_path / "lake"))
        return
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        reset_moto(f"http://127.0.0.1:{port}")
        yield S3Store(f"http://127.0.0.1:{port}", tmp_path)
    finally:
        server.stop()


def _run(lake, emu, config: Path, *args: str) -> str:
    res = cli(*args, "--lake", lake.url, *ARGS, "--config", str(config),
              env_vars=api_vars(emu) | lake.env)  # fmt: skip
    assert res.code == 0, res.text[-3000:]
    return _last_run(lake)


def _catalog(lake) -> Catalog:
    return Catalog(open_lake(str(lake.local()), create=False))


def _last_run(lake) -> str:
    runs = _catalog(lake).runs().to_pylist()
    return max(runs, key=lambda r: r["started_at"])["run_id"]


def _file_of(stream, day: date) -> str:
    meta = client_meta(stream)
    return stream_file_path(meta, partition_for(meta, day))


def _assert_day_is_truth(root: Path, emu, stream, day: date) -> None:
    got = pq.read_table(root / _file_of(stream, day))
    want = emu.expected_table(stream.id, _midnight(day), _midnight(day) + DAY)
    assert_equals_truth(got, want, f"{stream.id} {day}")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["local", "s3"])
def test_revised_day_is_replaced_alone_by_overwrite_and_by_lookback(tmp_path, fast_config, kind):
    with store(kind, tmp_path) as lake, emulator(fast_config, days=7) as emu:
        hr = next(s for s in emu.cohort.streams if category(s) == "vitals")
        load = _run(lake, emu, fast_config, "refresh")
        before = lake.state()
        assert len(before) >= 7

        # -- revise one day; backfill --overwrite over the week replaces that file alone
        revised = START + 3 * DAY
        assert emu.revise(hr.id, _midnight(revised), _midnight(revised) + DAY) == 1
        week = ["--start", START.isoformat(), "--end", END.isoformat(), "--overwrite"]
        backfill = _run(lake, emu, fast_config, "backfill", *week)
        after = lake.state()
        path = _file_of(hr, revised)
        assert after.keys() == before.keys()
        changed = {p for p in after if after[p] != before[p]}
        assert changed == {path}, changed
        assert after[path][0] != before[path][0]

        cat = _catalog(lake)
        entry = next(e for e in cat.files().to_pylist() if e["path"] == path)
        assert entry["run_id"] == backfill and entry["checksum"] == "sha256:" + after[path][0]
        assert entry["replaced_checksum"] == "sha256:" + before[path][0]
        assert entry["replaced_run_id"] == load
        others = [e for e in cat.files().to_pylist() if e["path"] != path]
        assert others and all(e["run_id"] == load for e in others)
        assert all(e["content_checksum"].startswith("sha256:") for e in others)
        (rep,) = cat.replacements().to_pylist()
        assert rep["path"] == path and rep["run_id"] == backfill and rep["old_run_id"] == load
        assert rep["old_checksum"] == "sha256:" + before[path][0]
        assert rep["checksum"] == "sha256:" + after[path][0]
        assert rep["old_content_checksum"] != rep["content_checksum"] == entry["content_checksum"]
        local = lake.local()
        assert_lake_equals_truth(str(local), emu, hr)  # the revised truth, every row
        assert_lake_consistent(local)

        # -- a refresh with lookback picks up a revision inside it, not one before it
        days = sorted(date.fromisoformat(e["partition"].split("=")[1])
                      for e in cat.files().to_pylist() if e["stream_id"] == hr.id)  # fmt: skip
        inside = END - DAY
        outside = next(d for d in days if d < END - 2 * DAY and d != revised)
        assert inside in days
        for day in (inside, outside):
            emu.revise(hr.id, _midnight(day), _midnight(day) + DAY)
        refresh = _run(lake, emu, fast_config, "refresh", "--lookback-days", "2")
        final = lake.state()
        assert final[_file_of(hr, outside)] == after[_file_of(hr, outside)]  # untouched
        assert final[_file_of(hr, inside)][0] != after[_file_of(hr, inside)][0]
        reps = _catalog(lake).replacements().to_pylist()
        assert [(r["path"], r["run_id"]) for r in reps] == [
            (path, backfill),
            (_file_of(hr, inside), refresh),
        ], reps  # the lookback's unchanged days were rewritten, not recorded as revised
        local = lake.local()
        for day in {inside, END - 2 * DAY, revised} & set(days):
            _assert_day_is_truth(local, emu, hr, day)
        with pytest.raises(AssertionError):
            _assert_day_is_truth(local, emu, hr, outside)  # before the lookback: stale
        assert_lake_consistent(local)
