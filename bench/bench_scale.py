"""Scale benchmark: discovery behind a wide-area latency, and the catalog at a year of data.

    .venv/bin/python bench/bench_scale.py api [--patients 10 60 250] [--concurrency 1 8 16]
                                              [--latency-ms 100] [--first-load-concurrency 1 8]
    .venv/bin/python bench/bench_scale.py catalog [--entries 100000 1000000 15000000]
                                                  [--run-files 1000]

``api``: the emulator (its own process, 1 day of history, seed 0) behind
:class:`bench.delay_proxy.DelayProxy` (a fixed delay per request, concurrent requests
waiting concurrently), and the whole CLI, ``rune-lake refresh`` as a subprocess, on the
low-rate streams (heart rate, LFP, symptoms, activity) plus events, ``--workers 8``. Per
cohort size: a first load into a fresh lake, then a no-op refresh (nothing new), at
each discovery concurrency (``RUNE_DISCOVERY_CONCURRENCY``). Wall time of the subprocess
(imports included) and requests counted at the proxy. A temporary local Prefect server
(real HTTP API, as a deployment has) serves the runs; its start-up is not counted.

``catalog``: a synthetic lake catalog of N file entries (daily files of a year: N / 365
streams, 4 per patient), written as a committed base segment; then, in a fresh
subprocess per size (so peak RSS is that of the work alone): the run's catalog work,
i.e. a refresh's snapshot, rates and planning of every stream, then committing a run of
``--run-files`` new entries (pending objects, watermarks, run record, commit); and,
each in its own process, a week's backfill planning over every stream (its snapshot
holds the coverage columns) and a forced compaction. Wall time and peak RSS each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIGHT = ["vitals", "neural", "symptom", "behavior"]


# -- api: discovery and no-op refresh at a latency ---------------------------------------


def _cli(lake: Path, url: str, concurrency: int) -> tuple[float, str]:
    from rune_emulator import DEMO_ACCESS_TOKEN_ID, DEMO_ACCESS_TOKEN_SECRET

    exe = ROOT / ".venv" / "bin" / "rune-lake"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNE_")}
    env |= {
        "RUNE_STREAM_URL": url,
        "RUNE_GRAPH_URL": url,
        "RUNE_ACCESS_TOKEN_ID": DEMO_ACCESS_TOKEN_ID,
        "RUNE_ACCESS_TOKEN_SECRET": DEMO_ACCESS_TOKEN_SECRET,
        "RUNE_DISCOVERY_CONCURRENCY": str(concurrency),
    }
    args = [str(exe), "refresh", "--lake", str(lake), "--workers", "8"]
    args += [a for c in LIGHT for a in ("--category", c)]
    t0 = time.perf_counter()
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"refresh failed ({p.returncode}): {p.stderr[-2000:]}")
    return wall, p.stdout.splitlines()[0] if p.stdout else ""


def bench_api(patients: list[int], concurrency: list[int], first: list[int], latency_ms: float):
    from bench.bench_flow import start_emulator
    from bench.delay_proxy import DelayProxy
    from rune_lake.flows.runners import prefect_api_for_dask

    out = []
    with prefect_api_for_dask():
        for n in patients:
            proc, url = start_emulator(n, 1)
            try:
                with DelayProxy(url, latency_ms / 1000) as proxy:
                    for c in sorted(set(concurrency) | set(first)):
                        lake = Path(tempfile.mkdtemp(prefix="rune-scale-")) / "lake"
                        if c not in first:  # a lake to refresh: loaded at the first setting
                            _cli(lake, proxy.url, max(first))
                            row = {"patients": n, "concurrency": c}
                        else:
                            proxy.reset()
                            wall, line = _cli(lake, proxy.url, c)
                            row = {"patients": n, "concurrency": c, "first_s": round(wall, 1)}
                            row |= {
                                "first_graphql": proxy.counts["graphql"],
                                "first_v2": proxy.counts["v2"],
                            }
                        if c in concurrency:
                            proxy.reset()
                            wall, line = _cli(lake, proxy.url, c)
                            row |= {
                                "noop_s": round(wall, 1),
                                "noop_graphql": proxy.counts["graphql"],
                                "noop_v2": proxy.counts["v2"],
                                "noop_max_in_flight": proxy.max_in_flight,
                            }
                        print(json.dumps(row), flush=True)
                        out.append(row)
            finally:
                proc.kill()
                proc.wait()
    return out


# -- catalog: a synthetic year --------------------------------------------------------------


def build_catalog(root: Path, entries: int) -> None:
    """A lake whose committed catalog holds ``entries`` daily-file entries."""
    import numpy as np
    import pyarrow as pa

    from rune_io.lake import open_lake
    from rune_io.lake.catalog import FILES_SEGMENT_SCHEMA, STREAMS_SCHEMA, WATERMARKS_SCHEMA
    from rune_io.lake.segments import SegmentStore, path_key

    lake = open_lake(str(root))
    store = SegmentStore(lake)
    n_streams = max(1, entries // 365)
    sids = [f"{i:08x}-5a1e-4c0d-9e7b-{i * 7919 % 16**12:012x}" for i in range(n_streams)]
    pids = [f"{i // 4:032x}" for i in range(n_streams)]
    day0 = datetime(2025, 11, 1, tzinfo=UTC)
    year_end = day0 + timedelta(days=365)

    def chunks():
        step = 1_000_000
        for lo in range(0, entries, step):
            idx = np.arange(lo, min(entries, lo + step))
            s, d = idx % n_streams, idx // n_streams
            days = [day0 + timedelta(days=int(x)) for x in range(int(d.max()) + 1)]
            paths = [
                f"kinematics__acceleration/patient=p-{pids[a]}/date={days[b]:%Y-%m-%d}/{sids[a]}_{days[b]:%Y-%m-%d}.parquet"
                for a, b in zip(s.tolist(), d.tolist(), strict=True)
            ]
            start = [days[b] for b in d.tolist()]
            n = len(idx)
            cols = {
                "path": paths,
                "table": ["kinematics__acceleration"] * n,
                "stream_id": [sids[a] for a in s.tolist()],
                "patient_id": [pids[a] for a in s.tolist()],
                "device_id": ["watch"] * n,
                "partition": [f"date={t:%Y-%m-%d}" for t in start],
                "partition_start": start,
                "rows": np.full(n, 2_534_536),
                "min_time": [t + timedelta(hours=6) for t in start],
                "max_time": [t + timedelta(hours=21) for t in start],
                "bytes": np.full(n, 17_700_000),
                "checksum": [f"sha256:{i:064x}" for i in idx.tolist()],
                "run_id": [f"refresh-{t:%Y%m%d}T023000Z-00000000" for t in start],
                "written_at": [t + timedelta(days=1, hours=3) for t in start],
                "schema_fingerprint": ["f" * 16] * n,
                "stream_min_time": [day0] * n,
                "stream_max_time": [t + timedelta(days=1, hours=2) for t in start],
                "key": [path_key(p) for p in paths],
                "deleted": [False] * n,
            }
            yield pa.Table.from_pydict(cols, schema=FILES_SEGMENT_SCHEMA)

    store.write_base("files", 1, chunks(), FILES_SEGMENT_SCHEMA)
    now = datetime.now(UTC)
    streams = pa.Table.from_pylist(
        [
            {"stream_id": s, "table": "kinematics__acceleration", "patient_id": p, "device_id": "watch",
             "algorithm": "accel.0", "stream_type_id": "st-accel", "stream_type_name": "acceleration",
             "parameters": json.dumps({"category": "kinematics", "measurement": "acceleration"}),
             "dimensions": "[]", "min_time": day0, "max_time": year_end, "created_at": day0,
             "run_id": "synthetic", "seen_at": now}
            for s, p in zip(sids, pids, strict=True)
        ],
        schema=STREAMS_SCHEMA,
    )  # fmt: skip
    store.write_base("streams", 1, [streams], STREAMS_SCHEMA)
    marks = pa.Table.from_pylist(
        [
            {"stream_id": s, "loaded_up_to": year_end, "run_id": "synthetic", "updated_at": now}
            for s in sids
        ],
        schema=WATERMARKS_SCHEMA,
    )
    store.write_base("watermarks", 1, [marks], WATERMARKS_SCHEMA)


def _peak_mb() -> float:
    """This process's peak RSS (``VmHWM``: reset by exec, unlike ``ru_maxrss``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_catalog(root: Path, run_files: int, mode: str) -> dict:
    """In this (fresh) process: plan + commit a refresh of ``run_files`` new entries
    (``run``), plan a backfill (``backfill``), or compact (``compact``)."""
    from rune_io import pipeline
    from rune_io.api.models import Dimension, StreamMeta, StreamType
    from rune_io.lake import Catalog, FileEntry, compaction, open_lake

    lake = open_lake(str(root), create=False)
    cat = Catalog(lake)
    if mode == "compact":
        compaction.MAX_DELTAS = -1  # every table is due
        t0 = time.perf_counter()
        cat.commit()
        return {
            "compact_s": round(time.perf_counter() - t0, 2),
            "compact_peak_mb": round(_peak_mb()),
        }
    st = StreamType(
        "st-accel",
        "acceleration",
        "",
        (Dimension("time", "timestamp"), Dimension("acceleration", "float")),
    )
    rows = cat._committed("streams")
    year_end = max(r["max_time"] for r in rows.values())
    streams = [
        StreamMeta(r["stream_id"], r["patient_id"], "watch", "accel.0", st,
                   (("category", "kinematics"), ("measurement", "acceleration")),
                   min_time=r["min_time"].timestamp(), max_time=(year_end + timedelta(days=1)).timestamp())
        for r in rows.values()
    ]  # fmt: skip
    t0 = time.perf_counter()
    if mode == "backfill":  # a week's backfill over every stream: coverage as one join
        week = (year_end - timedelta(days=14)).date()
        job = pipeline.BackfillJob(week, week + timedelta(days=7), chunk_days=7)
        lo = datetime(week.year, week.month, week.day, tzinfo=UTC) - timedelta(days=32)
        snap = cat.snapshot(coverage=(lo, lo + timedelta(days=39)))
        t_snap = time.perf_counter() - t0
        back = job.plan([pipeline.StreamSource(s) for s in streams], snap)
        return {
            "backfill_snapshot_s": round(t_snap, 2),
            "backfill_plan_s": round(time.perf_counter() - t0, 2),
            "backfill_windows": sum(len(c.windows) for c in back),
            "backfill_peak_mb": round(_peak_mb()),
        }
    snap = cat.snapshot()  # a refresh: rates and watermarks
    t_snap = time.perf_counter() - t0
    rates = snap.rows_per_day()
    chunks = pipeline.plan_chunks(streams, snap.watermarks, chunk_days=7)
    units = pipeline.plan_units(chunks, rates)
    t_plan = time.perf_counter() - t0
    # commit a run of run_files new entries (one new day of the first run_files streams)
    t1 = time.perf_counter()
    run_id = "bench-run"
    cat.begin_run(run_id)
    for i in range(run_files):  # one new day of every stream, then the next day, ...
        s, day = streams[i % len(streams)], year_end + timedelta(days=i // len(streams))
        path = f"kinematics__acceleration/patient=p-{s.patient_id}/date={day:%Y-%m-%d}/{s.id}_{day:%Y-%m-%d}.parquet"
        cat.record_file(
            FileEntry(path, "kinematics__acceleration", s.id, s.patient_id, "watch", f"date={day:%Y-%m-%d}",
                      day, 2_534_536, day, day + timedelta(hours=20), 17_700_000, "sha256:" + "0" * 64,
                      run_id, datetime.now(UTC), "f" * 16, day - timedelta(days=365), day + timedelta(days=1))
        )  # fmt: skip
    cat.set_watermarks({s.id: year_end + timedelta(days=1) for s in streams[:run_files]}, run_id)
    cat.finish_run(run_id, "completed", {"files": run_files})
    t_pending = time.perf_counter() - t1
    t2 = time.perf_counter()
    rep = cat.commit(run_id)
    t_commit = time.perf_counter() - t2
    return {
        "entries": snap.num_files,
        "streams": len(streams),
        "snapshot_s": round(t_snap, 2),
        "plan_s": round(t_plan, 2),
        "refresh_windows": sum(len(c.windows) for c in chunks),
        "tasks": len(units),
        "record_s": round(t_pending, 2),
        "commit_s": round(t_commit, 2),
        "committed": rep.files,
        "plan_commit_s": round(t_plan + t_pending + t_commit, 2),
        "peak_mb": round(_peak_mb()),
    }


def bench_catalog(sizes: list[int], run_files: int) -> list[dict]:
    out = []
    for n in sizes:
        root = Path(tempfile.mkdtemp(prefix="rune-cat-")) / "lake"
        t0 = time.perf_counter()
        build_catalog(root, n)
        built = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in (root / "_catalog").rglob("*") if f.is_file())
        row: dict = {"entries": n, "build_s": round(built, 1), "catalog_mb": round(size / 2**20, 1)}
        for mode in ("run", "backfill", "compact"):
            p = subprocess.run(
                [sys.executable, __file__, "_measure", str(root), str(run_files), mode],
                capture_output=True, text=True, timeout=3600,
            )  # fmt: skip
            if p.returncode != 0:
                raise RuntimeError(p.stderr[-3000:])
            row |= json.loads(p.stdout.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("api")
    a.add_argument("--patients", type=int, nargs="+", default=[10, 60, 250])
    a.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16])
    a.add_argument("--first-load-concurrency", type=int, nargs="+", default=[1, 8])
    a.add_argument("--latency-ms", type=float, default=100.0)
    c = sub.add_parser("catalog")
    c.add_argument("--entries", type=int, nargs="+", default=[100_000, 1_000_000, 15_000_000])
    c.add_argument("--run-files", type=int, default=1000)
    m = sub.add_parser("_measure")
    m.add_argument("root")
    m.add_argument("run_files", type=int)
    m.add_argument("mode")
    args = ap.parse_args()
    if args.cmd == "api":
        bench_api(args.patients, args.concurrency, args.first_load_concurrency, args.latency_ms)
    elif args.cmd == "catalog":
        bench_catalog(args.entries, args.run_files)
    else:
        print(json.dumps(measure_catalog(Path(args.root), args.run_files, args.mode)))


if __name__ == "__main__":
    main()
