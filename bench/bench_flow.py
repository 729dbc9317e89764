"""Flow orchestration benchmark: what Prefect costs a refresh, side by side with plain Python.

    .venv/bin/python bench/bench_flow.py [--patients 50 --days 14 --chunk-days 1 7
                                          --workers 4 --rounds 2 --demo/--no-demo --write]

1. The demo: ``rune-lake demo`` as a subprocess with its defaults into a fresh lake
   (cold: ephemeral Prefect server, 3 patients x 2 days, every stream), then again
   (incremental: nothing new is fetched).
2. A refresh of ``--patients`` x 6 streams x ``--days`` days from an emulator running in
   its own process: the same plan run (a) through the ``refresh`` flow on the thread
   runner and (b) as plain Python: the same ``rune_io.pipeline`` calls (discover, plan,
   ``run_unit`` over the same work units in a ``ThreadPoolExecutor`` of the same size, the
   same catalog work), no Prefect. Each run loads a fresh lake. Orchestration share =
   (flow - plain) / flow; per task run = (flow - plain) / task runs. Repeated
   ``--rounds`` times per chunk size, alternating which goes first.
3. Prefect's floor: a flow submitting no-op tasks to the same thread runner.

The six streams per patient are the emulator's low-rate set (``LIGHT``): heart rate
(1 / 5 s while the watch is worn, daily files), LFP trend log power left and right
(1 / 10 min), tremor and dyskinesia (1 / min while worn), activity (1 / min, 06-23 h):
monthly files for all but heart rate. The 50 Hz acceleration axes are left out: one
patient-day of one axis is 2.7 M rows (about 1-2 s of work per task, so Prefect's share
there is negligible), and 50 x 14 x 3 of them would not fit on 2 cores in minutes;
BENCHMARKS.md's client and lake sections cover them.

A temporary local Prefect server (real HTTP API, as a deployment has) serves the flow
runs unless ``PREFECT_API_URL`` is set; its start-up is not in the refresh figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIGHT = ["vitals", "neural", "symptom"]  # streams a patient: the emulator's low-rate set
NOW = "2026-11-20T00:00:00+00:00"  # 14 days back stay in one month
SECTION = "## Flow orchestration"


# -- the emulator, in its own process ----------------------------------------------------


def start_emulator(patients: int, days: int, seed: int = 0) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rune_emulator", "--port", "0", "--seed", str(seed)]
        + ["--patients", str(patients), "--days", str(days), "--now", NOW],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    m = re.search(r"(http://\S+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return proc, m.group(1)


def point_at(url: str) -> None:
    from rune_emulator import DEMO_ACCESS_TOKEN_ID, DEMO_ACCESS_TOKEN_SECRET

    os.environ.update(
        RUNE_STREAM_URL=url,
        RUNE_GRAPH_URL=url,
        RUNE_ACCESS_TOKEN_ID=DEMO_ACCESS_TOKEN_ID,
        RUNE_ACCESS_TOKEN_SECRET=DEMO_ACCESS_TOKEN_SECRET,
    )
    for var in ("RUNE_CLIENT_KEY_ID", "RUNE_CLIENT_ACCESS_KEY", "RUNE_JWT", "RUNE_LAKE_CONFIG"):
        os.environ.pop(var, None)


# -- the demo ------------------------------------------------------------------------------


def bench_demo(workdir: Path) -> dict:
    exe = ROOT / ".venv" / "bin" / "rune-lake"
    cmd = [str(exe) if exe.exists() else "rune-lake", "demo", "--lake", str(workdir / "lake")]
    workdir.mkdir(parents=True, exist_ok=True)
    out: dict = {}
    for label in ("fresh", "incremental"):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"demo failed ({p.returncode}): {p.stderr[-2000:]}")
        took = re.search(r"demo took ([\d.]+)s", p.stdout)
        run = re.search(r"\): (\d+)/(\d+) windows .* ([\d,]+) rows, ([\d.]+)s", p.stdout)
        out[label] = {
            "process_s": wall,
            "demo_s": float(took.group(1)) if took else None,
            "flow_s": float(run.group(4)) if run else None,
            "windows": int(run.group(2)) if run else None,
            "rows": int(run.group(3).replace(",", "")) if run else None,
        }
        print(f"demo {label}: {out[label]}", flush=True)
    return out


# -- the refresh, flow vs plain ---------------------------------------------------------------


def plain_sources(lake_url: str, selection) -> tuple:
    """The start of ``rune_lake.flows.run.load`` without Prefect: a new run in the
    catalog, discovery; returns ``(catalog, run id, sources)`` to plan."""
    from rune_io import pipeline
    from rune_io.lake import Catalog
    from rune_lake.tasks import runtime

    run_id = f"plain-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    cat = Catalog(runtime.lake(lake_url))
    cat.repair()
    cat.begin_run(run_id, {"selection": selection.describe()})
    patients, streams = pipeline.discover(runtime.client().graph, selection)
    cat.record_streams(streams, run_id)
    return cat, run_id, pipeline.work_sources(patients, streams, selection.include_events)


def plain_refresh(lake_url: str, chunk_days: int, workers: int) -> tuple[float, int, int]:
    """``rune_lake.flows.run.load`` without Prefect: the same rune_io calls, in the same order."""
    from rune_io import pipeline
    from rune_lake.tasks import runtime

    t0 = time.perf_counter()
    job = pipeline.RefreshJob(chunk_days=chunk_days)
    selection = pipeline.Selection(categories=tuple(LIGHT), include_events=False)
    cat, run_id, sources = plain_sources(lake_url, selection)
    plan = pipeline.plan_run(job, sources, cat.snapshot(coverage=job.coverage))

    def one(unit):
        return pipeline.run_unit(runtime.client(), runtime.lake(lake_url), unit, run_id)

    with ThreadPoolExecutor(max_workers=workers) as ex:
        results = [r for rs in ex.map(one, plan.units) for r in rs]
    report, marks = pipeline.conclude(run_id, job, plan, results)
    report.seconds = time.perf_counter() - t0
    stats = {k: v for k, v in asdict(report).items() if k not in ("run_id", "kind")}
    if marks:
        cat.set_watermarks(marks, run_id)
    cat.finish_run(run_id, "completed" if report.ok else "incomplete", stats)
    cat.commit(run_id)
    assert report.ok, report.text()
    return time.perf_counter() - t0, len(plan.units), report.rows


def flow_refresh(lake_url: str, chunk_days: int, workers: int) -> tuple[float, int, int]:
    from prefect.task_runners import ThreadPoolTaskRunner

    from rune_lake.flows.refresh import refresh

    fl = refresh.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))
    t0 = time.perf_counter()
    rep = fl(lake=lake_url, categories=LIGHT, include_events=False, chunk_days=chunk_days)
    wall = time.perf_counter() - t0
    assert rep.ok, rep.text()
    return wall, rep.tasks, rep.rows


def noop_floor(n: int, workers: int) -> float:
    """Wall seconds per no-op task run on the thread runner (Prefect's floor here)."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.task_runners import ThreadPoolTaskRunner

    @task(cache_policy=NO_CACHE)
    def noop(i: int) -> int:
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=workers))
    def noops(n: int) -> None:
        for f in [noop.submit(i) for i in range(n)]:
            f.result()

    noops(10)  # warm
    t0 = time.perf_counter()
    noops(n)
    return (time.perf_counter() - t0) / n


def load() -> float:
    return os.getloadavg()[0]


def bench_refresh(args, workdir: Path) -> dict:
    proc, url = start_emulator(args.patients, args.days)
    point_at(url)
    results: dict = {"by_chunk": {}, "url": url}
    try:
        # warm: emulator caches, imports, the Prefect client (not measured)
        flow_refresh(str(workdir / "warm"), 7, args.workers)
        shutil.rmtree(workdir / "warm", ignore_errors=True)
        for k in args.chunk_days:
            rows: list[dict] = []
            for r in range(args.rounds):
                order = ("plain", "flow") if r % 2 == 0 else ("flow", "plain")
                got: dict = {"load_before": load()}
                for mode in order:
                    lake = workdir / f"{mode}-{k}-{r}"
                    fn = plain_refresh if mode == "plain" else flow_refresh
                    wall, tasks_n, nrows = fn(str(lake), k, args.workers)
                    got[mode] = wall
                    got["tasks"], got["rows"] = tasks_n, nrows
                    shutil.rmtree(lake, ignore_errors=True)
                got["load_after"] = load()
                got["share"] = (got["flow"] - got["plain"]) / got["flow"]
                got["per_task_ms"] = 1000 * (got["flow"] - got["plain"]) / got["tasks"]
                print(f"chunk_days={k} round {r}: {got}", flush=True)
                rows.append(got)
            results["by_chunk"][k] = rows
        results["noop_ms"] = 1000 * noop_floor(args.noop_tasks, args.workers)
        print(f"no-op task run: {results['noop_ms']:.1f} ms", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return results


# -- report --------------------------------------------------------------------------------


def render(args, demo: dict | None, ref: dict) -> str:
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        SECTION,
        "",
        "What: what Prefect costs a refresh. The same plan is run through the `refresh` flow "
        f"(thread runner, {args.workers} threads) and as plain Python (the same "
        "`rune_io.pipeline` discover / plan / `run_unit` / catalog calls, the same work units, a "
        f"`ThreadPoolExecutor` of {args.workers}), side by side in one process, each into a "
        f"fresh local lake, against an emulator in its own process: {args.patients} patients "
        f"x 6 streams x {args.days} days (heart rate, LFP left/right, tremor, dyskinesia, "
        "activity: the emulator's low-rate set; the 50 Hz axes are left out, see the "
        "script's docstring). A temporary local Prefect server (real HTTP API) serves the "
        "runs. Orchestration share = (flow - plain) / flow.",
        "",
        "Reproduce: `.venv/bin/python bench/bench_flow.py --write` "
        "(options `--patients`, `--days`, `--chunk-days`, `--workers`, `--rounds`, `--no-demo`).",
        "",
        f"Results on the 2-core dev box ({date}, x86_64, Python "
        f"{sys.version.split()[0]}), {args.rounds} rounds per chunk size, order alternated; "
        "load average (1 min) shown, other engineers' suites were running:",
        "",
        "| chunk_days | task runs | rows | plain (s) | flow (s) | orchestration share | "
        "per task run (ms) | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for k, rows in ref["by_chunk"].items():
        for g in rows:
            lines.append(
                f"| {k} | {g['tasks']:,} | {g['rows']:,} | {g['plain']:.1f} | {g['flow']:.1f} | "
                f"{100 * g['share']:.0f}% | {g['per_task_ms']:.0f} | "
                f"{g['load_before']:.1f}-{g['load_after']:.1f} |"
            )
    lines.append("")
    summary = []
    for k, rows in ref["by_chunk"].items():
        med = statistics.median(g["share"] for g in rows)
        best = min(g["share"] for g in rows)
        ms = statistics.median(g["per_task_ms"] for g in rows)
        summary.append(
            f"chunk_days={k}: median share **{100 * med:.0f}%** (best {100 * best:.0f}%), "
            f"~{ms:.0f} ms per task run"
        )
    lines.append("; ".join(summary) + ".")
    split = fixed_and_per_task(ref)
    if split:
        fixed, per = split
        lines.append(
            f"Fitting flow - plain = fixed + task runs x per-run over the chunk sizes: "
            f"**~{fixed:.1f} s per flow run** (flow run, discover/prepare/commit tasks, "
            f"artifacts) + **~{1000 * per:.0f} ms per task run**."
        )
    lines.append(
        f"Prefect's floor on this box: a no-op task run costs **{ref['noop_ms']:.1f} ms** of "
        f"wall time on the same runner ({args.noop_tasks} submitted at once)."
    )
    if demo:
        f, i = demo["fresh"], demo["incremental"]
        lines += [
            "",
            "Demo (`rune-lake demo`, defaults: 3 patients x 2 days, all 9 streams + events, "
            "ephemeral Prefect server, subprocess wall time incl. imports and server start):",
            "",
            "| run | process wall (s) | demo's own timer (s) | flow run (s) | windows | rows |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for label, d in (("fresh lake", f), ("again (incremental)", i)):
            lines.append(
                f"| {label} | {d['process_s']:.1f} | {d['demo_s'] or 0:.1f} | "
                f"{d['flow_s'] or 0:.1f} | {d['windows'] or 0:,} | {d['rows'] or 0:,} |"
            )
    return "\n".join(lines) + "\n"


def fixed_and_per_task(ref: dict) -> tuple[float, float] | None:
    """Least squares of (flow - plain) = fixed + per_task x task runs over every round."""
    pts = [(g["tasks"], g["flow"] - g["plain"]) for rows in ref["by_chunk"].values() for g in rows]
    if len({n for n, _ in pts}) < 2:
        return None
    mx = statistics.fmean(n for n, _ in pts)
    my = statistics.fmean(d for _, d in pts)
    per = sum((n - mx) * (d - my) for n, d in pts) / sum((n - mx) ** 2 for n, _ in pts)
    return my - per * mx, per


def write_section(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    doc = path.read_text()
    start = doc.find(SECTION + "\n")
    if start < 0:
        doc = doc.rstrip("\n") + "\n\n" + text
    else:
        nxt = doc.find("\n## ", start + len(SECTION))
        end = len(doc) if nxt < 0 else nxt + 1
        doc = doc[:start] + text + ("\n" if nxt >= 0 else "") + doc[end:]
    path.write_text(doc)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--patients", type=int, default=50)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--chunk-days", type=int, nargs="+", default=[1, 7])
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--noop-tasks", type=int, default=500)
    p.add_argument("--demo", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--json", default="bench_flow.json", help="raw results (JSON)")
    p.add_argument("--write", action="store_true", help="replace the section in BENCHMARKS.md")
    args = p.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    try:
        demo = bench_demo(workdir / "demo") if args.demo else None
        if demo is not None:
            shutil.rmtree(workdir / "demo", ignore_errors=True)
        from rune_lake.flows.runners import prefect_api_for_dask

        with prefect_api_for_dask() as (api, started):
            print(f"Prefect API {api} ({'temporary' if started else 'configured'})", flush=True)
            ref = bench_refresh(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    Path(args.json).write_text(json.dumps({"args": vars(args), "demo": demo, "refresh": ref}))
    text = render(args, demo, ref)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
