"""Pages at the documented maxima (issue 16, item 5): peak memory is a guarantee.

- V1: one CSV page of 3,600,000 points (the documented default and maximum CSV page,
  ``stream-api-v1.txt``) of ``/v1/accel.csv`` (``time,x,y,z``), read by
  :class:`rune_io.api.v1.V1Client` and written to lake partitions (one per UTC day the
  page spans).
- V2: one full page (the emulator's 100,000 rows, the page size the live API serves) of
  the widest real stream type, ``span`` (four timestamps, each ``d`` + ``d_ns`` in the
  lake, and a JSON ``event``: the most columns and the most bytes a row), read by
  :class:`rune_io.api.streams.StreamReader` and written to its lake partition.

Each runs in a child process (the emulator stays in this one); the child reports its
own peak RSS (``VmHWM``, imports included; its ``ru_maxrss`` is printed too, but on Linux
that also holds the forking parent's peak, here pytest's). The bounds are the figures in BENCHMARKS.md
("Pages at the documented maxima").
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from datetime import timedelta

import pytest

from tests.faults.conftest import REPO, api_vars, emulator
from tests.flows.conftest import NOW
from tests.truth import category, client_meta

#: peak RSS bounds (MiB) of the child, imports included: BENCHMARKS.md
V1_PAGE_BOUND_MIB = 700
V2_PAGE_BOUND_MIB = 300
V1_POINTS = 3_600_000

CHILD = r"""
import json, resource, sys
from datetime import datetime, timedelta, UTC

import pyarrow as pa
import pyarrow.compute as pc

from rune_io.api.client import RuneClient
from rune_io.api.models import Dimension, StreamMeta, StreamType
from rune_io.lake import Catalog, open_lake, write_stream_partition

def rss():
    # VmHWM: this process's own peak. ru_maxrss also counts the peak of the process
    # that forked it (Linux keeps the larger across exec): here, pytest and the emulator
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return max(hwm, 0) / 1024

def maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

job = json.loads(sys.argv[1])
lake = open_lake(job["lake"])
client = RuneClient()
start, end = (datetime.fromisoformat(job[k]) for k in ("start", "end"))
before = rss()
rows = files = 0
if job["mode"] == "v1":
    pages = client.v1.accel(job["patient_id"], job["device_id"], start, end,
                            page_size=job["page_size"])
    page = next(pages)  # one page, held while its days are written
    pages.close()
    read_mib = rss()
    st = StreamType("v1-accel", "V1 accel", "", (Dimension("time", "timestamp"),
        *(Dimension(a, "sfloat") for a in "xyz")))
    meta = StreamMeta("v1-accel-" + job["device_id"], job["patient_id"], job["device_id"],
        "v1", st, (("category", "motion"), ("measurement", "v1_accel")))
    time_ns = pc.multiply(page.column("time").cast(pa.int64()), 1000)
    batch = pa.RecordBatch.from_arrays(
        [page.column("time"), time_ns, *(page.column(a) for a in "xyz")],
        names=["time", "time_ns", "x", "y", "z"])
    del page
    rows = batch.num_rows
    day = start
    while day < end:
        nxt = day + timedelta(days=1)
        t = batch.column("time")
        keep = pc.and_(pc.greater_equal(t, pa.scalar(day, t.type)),
                       pc.less(t, pa.scalar(nxt, t.type)))
        part = batch.filter(keep)
        if part.num_rows:
            files += write_stream_partition(lake, meta, day, [part], run_id="maxima") is not None
        del part
        day = nxt
else:
    d = job["stream"]
    st = StreamType(d["stream_type"]["id"], d["stream_type"]["name"], "",
        tuple(Dimension(x["identifier"], x["data_type"]) for x in d["stream_type"]["dimensions"]))
    meta = StreamMeta(d["id"], d["patient_id"], d["device_id"], d["algorithm"], st,
        tuple(tuple(p) for p in d["parameters"]))
    batches = client.streams.read(meta, start, end, limit=job["page_size"], parallel=1)
    counted = []
    def counting():
        for b in batches:
            counted.append(b.num_rows)
            yield b
    files += write_stream_partition(lake, meta, start, counting(), run_id="maxima") is not None
    rows = sum(counted)
    read_mib = None
Catalog(lake).commit("maxima")
print(json.dumps({"rows": rows, "files": files, "before_mib": before, "read_mib": read_mib, "peak_mib": rss(),
                  "ru_maxrss_mib": maxrss()}))
"""


def _child(job: dict, env_vars: dict) -> dict:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **env_vars}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(job, default=str)],
        cwd=str(REPO), env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{job['mode']}: {out}")
    return out


@pytest.mark.slow
def test_v1_csv_page_of_3_6_million_points_stays_within_its_memory_bound(tmp_path, fast_config):
    # 15 h of 50 Hz motion a day: 3.6 M points span two UTC days of the watch
    with emulator(fast_config, days=3, motion_hours=15) as emu:
        motion = next(
            s for s in emu.cohort.streams
            if category(s) == "motion" and dict(s.parameters).get("measurement") == "user"
        )  # fmt: skip
        start = NOW.replace(hour=0, minute=0) - timedelta(days=3)
        job = {
            "mode": "v1", "lake": str(tmp_path / "lake"), "page_size": V1_POINTS,
            "patient_id": motion.patient_id, "device_id": motion.device_id,
            "start": start.isoformat(), "end": (start + timedelta(days=3)).isoformat(),
        }  # fmt: skip
        out = _child(job, api_vars(emu))
    assert out["rows"] == V1_POINTS, out  # a full page at the documented maximum
    assert out["files"] >= 2
    assert out["peak_mib"] < V1_PAGE_BOUND_MIB, out


@pytest.mark.slow
def test_v2_full_page_of_the_widest_stream_type_stays_within_its_memory_bound(
    tmp_path, fast_config
):
    # ~12 sleep stages a night: 9,200 days hold more than one full 100,000-row page
    with emulator(fast_config, days=9200) as emu:
        span = next(s for s in emu.cohort.streams if s.stream_type.id == "span")
        assert len(span.stream_type.dimensions) == max(
            len(s.stream_type.dimensions) for s in emu.cohort.streams
        )
        page = emu.config.page_size
        start = NOW - timedelta(days=9200)
        job = {
            "mode": "v2", "lake": str(tmp_path / "lake"), "page_size": page,
            "stream": asdict(client_meta(span)), "start": start.isoformat(), "end": NOW.isoformat(),
        }  # fmt: skip
        out = _child(job, api_vars(emu))
    assert out["rows"] == page == 100_000, out
    assert out["peak_mib"] < V2_PAGE_BOUND_MIB, out
