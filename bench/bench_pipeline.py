"""Where a whole-cohort refresh's CPU goes, without Prefect: the heavy streams and the light.

    .venv/bin/python bench/bench_pipeline.py [--rounds 4 --workers 4 --patients 3 --days 2]

Against one emulator in its own process (the demo's default cohort, clock pinned, as
``bench_e2e.py`` starts it), this process runs ``rune_lake.flows.run.load``'s
``rune_io.pipeline`` calls without Prefect: discover, plan (packed to ``--workers`` units
as the flow packs them), ``run_unit`` on a ``ThreadPoolExecutor`` of ``--workers``
threads, commit; into a new lake each time. Three selections, alternating in every
round, after one warm-up round of each (the emulator's render cache):

- ``all``: every stream and the events, what ``rune-lake refresh`` loads;
- ``heavy``: the 50 Hz acceleration axes only (``*__acceleration``): ~99% of the rows;
- ``light``: everything else (heart rate, symptoms, LFP trends, events...): ~1% of the
  rows, most of the windows, files and requests.

For the fetch phase (``run_unit`` over every unit) it reports, medians of ``--rounds``:
wall seconds, this process's CPU (user + system, every thread), the emulator's CPU
(``/proc/PID/stat``), and per window. The whole-process view, with Prefect and against
runeq and the raw download, is ``bench_e2e.py``'s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_e2e import start_emulator  # noqa: E402
from bench.bench_flow import plain_sources, point_at  # noqa: E402

SELECTIONS = ("all", "heavy", "light")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _keep(source, which: str) -> bool:
    heavy = source.table.endswith("__acceleration")
    return which == "all" or heavy == (which == "heavy")


def one_run(lake_url: str, which: str, workers: int, emulator: int) -> dict:
    """One refresh of the ``which`` selection into a new lake: phase times and CPU."""
    from rune_io import pipeline
    from rune_lake.tasks import runtime

    t0 = time.perf_counter()
    job = pipeline.RefreshJob()
    selection = pipeline.Selection(include_events=which != "heavy")
    cat, run_id, sources = plain_sources(lake_url, selection)
    sources = [s for s in sources if _keep(s, which)]
    plan = pipeline.plan_run(job, sources, cat.snapshot(coverage=job.coverage), workers)

    def one(unit):
        return pipeline.run_unit(runtime.client(), runtime.lake(lake_url), unit, run_id)

    t1, c1, e1 = time.perf_counter(), _cpu(), _proc_cpu(emulator)
    with ThreadPoolExecutor(max_workers=workers) as ex:
        results = [r for rs in ex.map(one, plan.units) for r in rs]
    t2, c2, e2 = time.perf_counter(), _cpu(), _proc_cpu(emulator)
    report, marks = pipeline.conclude(run_id, job, plan, results)
    if marks:
        cat.set_watermarks(marks, run_id)
    cat.finish_run(run_id, "completed" if report.ok else "incomplete", {})
    cat.commit(run_id)
    assert report.ok, report.text()
    return {
        "prepare_s": t1 - t0,
        "fetch_s": t2 - t1,
        "commit_s": time.perf_counter() - t2,
        "client_cpu_s": c2 - c1,
        "emulator_cpu_s": e2 - e1,
        "rows": report.rows,
        "windows": sum(len(c.windows) for c in plan.chunks),
        "units": len(plan.units),
    }


def render(args, res: dict[str, list[dict]], load: tuple[float, float]) -> str:
    def med(which: str, key: str) -> float:
        return statistics.median(r[key] for r in res[which])

    lines = [
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.rounds} rounds, {args.workers} "
        f"workers, {args.patients} patients x {args.days} days; load average (1 min) "
        f"{load[0]:.2f} before, {load[1]:.2f} after",
        "",
        "| selection | rows | windows | fetch wall (s) | client CPU (s) | emulator CPU (s) "
        "| client CPU per window (ms) | prepare + commit (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for which in SELECTIONS:
        windows = res[which][0]["windows"]
        lines.append(
            f"| {which} | {res[which][0]['rows']:,} | {windows} | {med(which, 'fetch_s'):.2f} "
            f"| {med(which, 'client_cpu_s'):.2f} | {med(which, 'emulator_cpu_s'):.2f} "
            f"| {1000 * med(which, 'client_cpu_s') / max(1, windows):.2f} "
            f"| {med(which, 'prepare_s') + med(which, 'commit_s'):.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--patients", type=int, default=3)
    p.add_argument("--days", type=int, default=2)
    p.add_argument("--page-size", type=int, default=100_000)
    args = p.parse_args()

    proc, url = start_emulator(args.patients, args.days, args.page_size)
    point_at(url)
    res: dict[str, list[dict]] = {w: [] for w in SELECTIONS}
    load0 = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as work:
            made = iter(range(1 << 30))

            def fresh() -> str:  # a new directory each run (see bench_e2e's ``fresh``)
                path = Path(work) / f"lake-{next(made)}"
                path.mkdir()
                return str(path)

            for which in SELECTIONS:  # warm-up: the emulator's render cache
                one_run(fresh(), which, args.workers, proc.pid)
            for rnd in range(args.rounds):
                order = SELECTIONS if rnd % 2 == 0 else SELECTIONS[::-1]
                for which in order:
                    r = one_run(fresh(), which, args.workers, proc.pid)
                    res[which].append(r)
                    print(which, {k: round(v, 3) for k, v in r.items()}, flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print()
    print(render(args, res, (load0, os.getloadavg()[0])))


if __name__ == "__main__":
    main()
