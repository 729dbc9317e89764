"""End to end: whole processes as a user runs them, side by side in one run.

    .venv/bin/python bench/bench_e2e.py [--rounds 3 --patients 3 --days 2 --write]

Against one emulator in its own process (the demo's default cohort, clock pinned), every
job is a fresh process, timed from spawn to exit, with its peak RSS (``ru_maxrss`` of
the child from ``wait4``: the largest of it and the processes it waited for; the
bench's own process is small, so nothing leaks in through ``fork``):

1. the whole cohort (every stream of every patient):
   (a) a plain runeq 0.18.1 script: discover patients and streams, then
       ``get_stream_dataframe`` (pandas) and ``to_parquet`` per stream, one at a time;
   (b) the raw download: the very same V2 pages (``format=csv&timestamp=unixns``)
       fetched with ``requests`` and thrown away, one token chain per stream, on 1 and on
       4 threads (the ceiling is the faster);
   (c) ``rune-lake refresh --lake NEW`` with nothing configured (no ``PREFECT_API_URL``,
       no ``RUNE_LAKE_LOCAL_SERVER``): "first" is a command with no server running (it
       starts the local server and leaves it up, after ``rune-lake server stop``), the
       default row is a later command (it reuses that server), "temporary" is
       ``RUNE_LAKE_LOCAL_SERVER=temporary`` (a temporary server per command, the default
       before 2026-12-02);
2. one 50 Hz stream-day (the fullest UTC day of one acceleration axis):
   the runeq script (``get_stream_dataframe`` + ``to_parquet``) vs
   ``rune-lake backfill --stream-id S --start D --end D+1 --no-events``, the same three
   ways (a later command: the server is running).

With ``--compare OTHER/.venv/bin/rune-lake`` (another checkout), every round also runs
that executable's later ``refresh`` and ``backfill`` next to this one's (after it in even
rounds, before it in odd ones), with a Prefect home (so a local server and warm runner)
of its own: before and after measured in the same rounds, as alike in machine load as
two jobs can be.

Every command writes into a directory of its own, deleted when the bench ends (see
``fresh`` in :func:`jobs`). Every round runs every job once (order fixed); medians of
``--rounds`` are reported.
One warm-up round is run first and not counted (the emulator's render cache, the Prefect
database's migrations, the OS page cache).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.e2e_scripts import EMULATOR, RAW, RUNEQ_COHORT, RUNEQ_STREAM  # noqa: E402

SECTION = "## End to end"
NOW = "2026-11-20T00:00:00+00:00"
BIN = ROOT / ".venv" / "bin"
LAKE_EXE = str(BIN / "rune-lake") if (BIN / "rune-lake").exists() else "rune-lake"

# -- processes -------------------------------------------------------------------------


def timed(cmd: list[str], env: dict[str, str], log: Path) -> dict:
    """Run ``cmd`` to its end: wall seconds, peak RSS (MB), exit code, its stdout.

    Peak RSS is the larger of the command's own (``ru_maxrss``) and, when the command ran
    in the warm runner (``rune_lake.flows.warm``), the peak (``VmHWM``, sampled every
    20 ms until it ends) of the process the runner forked for it."""
    runner = _runner_pid(env)
    peak = [0.0]
    with log.open("w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        done = threading.Event()
        watch = threading.Thread(target=_watch_forks, args=(runner, done, peak), daemon=True)
        watch.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        watch.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed ({proc.returncode}):\n{text[-3000:]}")
    return {"s": wall, "rss_mb": max(usage.ru_maxrss / 1024, peak[0]), "out": text}


def _runner_pid(env: dict[str, str]) -> int:
    try:
        info = json.loads((Path(env["PREFECT_HOME"]) / "rune-lake-runner.json").read_text())
        return int(info["pid"])
    except (OSError, ValueError, KeyError):
        return 0


def _watch_forks(runner: int, done: threading.Event, peak: list[float]) -> None:
    """Until ``done``: the largest VmHWM (MB) of the runner's children.

    The children are read from ``/proc/RUNNER/task/*/children``, not found by reading
    every process's status: that scan took 2.4 ms of the bench's CPU per 20 ms sample
    with 70 processes, and timed a later ``refresh`` ~0.1 s slower (1.84-2.05 s
    against 1.83-1.88 s, 3 alternating pairs, 2026-12-06) on these 2 CPUs."""
    if not runner:
        return
    tasks = Path(f"/proc/{runner}/task")
    while not done.is_set():
        kids: set[str] = set()
        try:
            for children in tasks.glob("*/children"):
                kids.update(children.read_text().split())
        except OSError:
            pass
        for pid in kids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]) / 1024)
        time.sleep(0.02)


def start_emulator(
    patients: int, days: int, page_size: int, motion_hours: float = 1.0
) -> tuple[subprocess.Popen, str]:
    """The emulator in its own process (``motion_hours`` is not a flag of its CLI), with
    Arrow's allocator as ``rune-lake emulator`` starts it (``rune_lake.flows.allocator``)."""
    from rune_lake.flows.allocator import DEFAULTS

    args = [str(patients), str(days), str(page_size), str(motion_hours), NOW]
    proc = subprocess.Popen(
        [sys.executable, "-c", EMULATOR, *args],
        cwd=ROOT,
        env=DEFAULTS | dict(os.environ),
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    m = re.search(r"(http://\S+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return proc, m.group(1)


def environment(url: str, prefect_home: Path) -> dict[str, str]:
    from rune_emulator import DEMO_ACCESS_TOKEN_ID, DEMO_ACCESS_TOKEN_SECRET

    # no MIMALLOC_*: the runeq script runs with Arrow's defaults, as a user's does, and
    # rune-lake sets its own (rune_lake.flows.allocator)
    prefixes = ("RUNE_", "PREFECT_", "MIMALLOC_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        RUNE_STREAM_URL=url,
        RUNE_GRAPH_URL=url,
        RUNE_ACCESS_TOKEN_ID=DEMO_ACCESS_TOKEN_ID,
        RUNE_ACCESS_TOKEN_SECRET=DEMO_ACCESS_TOKEN_SECRET,
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # a fresh PREFECT_HOME's first embedded server migrates its database: slow here
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
    )
    return env


def stream_list(url: str) -> tuple[list[str], str]:
    """Every stream id of the emulator's cohort, and its first 50 Hz acceleration axis."""
    from rune_emulator import DEMO_ACCESS_TOKEN_ID, DEMO_ACCESS_TOKEN_SECRET
    from rune_io.api.client import RuneClient
    from rune_io.config import load_settings

    settings = load_settings(
        stream_url=url,
        graph_url=url,
        environ={},
        access_token_id=DEMO_ACCESS_TOKEN_ID,
        access_token_secret=DEMO_ACCESS_TOKEN_SECRET,
    )
    with RuneClient(settings) as client:
        ids, accel = [], []
        for p in client.graph.patients():
            for s in client.graph.streams(patient_id=p.id):
                ids.append(s.id)
                if s.stream_type.id == "acceleration":
                    accel.append(s.id)
    return ids, accel[0]


# -- the jobs ----------------------------------------------------------------------------


def jobs(args, cohort: str, ids: list[str], day_url: str, accel: str, work: Path) -> dict:
    """label -> (a function making the command, which emulator it reads)."""
    now = datetime.fromisoformat(NOW)
    lo = now - timedelta(days=args.days + 1)
    lo_s, hi_s = lo.timestamp(), now.timestamp() + 60
    lo_ns, hi_ns = int(lo_s) * 10**9, int(hi_s) * 10**9
    d0 = (now - timedelta(days=1)).date()  # the last whole UTC day before the clock
    day = datetime(d0.year, d0.month, d0.day, tzinfo=UTC).timestamp()
    py, exe = sys.executable, args.rune_lake

    made = iter(range(1 << 30))

    def fresh(name: str) -> str:
        """A new empty directory for one command's output, kept until the bench ends:
        ext4 allocating inodes just after a directory tree was deleted scans the
        recently freed ones (``recently_deleted`` in ``find_inode_bit``), which put
        5-10% of a refresh's fetch CPU in ``openat``/``mkdir`` when its previous lake
        was deleted right before it, against 2-3.5% otherwise (``perf``, 2026-12-03).
        A user's refresh does not follow the deletion of a lake."""
        path = work / f"{name}-{next(made)}"
        path.mkdir(parents=True)
        return str(path)

    bf = [exe, "backfill", "--stream-id", accel, "--start", d0.isoformat()]
    bf += ["--end", (d0 + timedelta(days=1)).isoformat(), "--no-events", "--lake"]
    raw = [py, "-c", RAW, cohort]
    temporary = {"RUNE_LAKE_LOCAL_SERVER": "temporary"}

    def refresh(exe: str = exe) -> list[str]:
        return [exe, "refresh", "--lake", fresh("lake")]

    def backfill() -> list[str]:
        return bf + [fresh("bf")]

    compared: dict = {}
    if args.compare:  # another checkout's later commands, with a server of its own
        other = {"PREFECT_HOME": str(work / "prefect-home-compared")}
        compared = {
            "cohort_refresh_compared": (lambda: refresh(args.compare), cohort, other, False),
            "day_backfill_compared": (
                lambda: [args.compare, *bf[1:], fresh("bf")], day_url, other, False,
            ),
        }  # fmt: skip

    # label -> (the command, which emulator, extra environment, stop the server first)
    return {
        "cohort_runeq": (
            lambda: [py, "-c", RUNEQ_COHORT, cohort, fresh("rq"), repr(lo_s), repr(hi_s)],
            cohort, {}, False,
        ),
        "cohort_raw_1": (lambda: raw + ["1", str(lo_ns), str(hi_ns), *ids], cohort, {}, False),
        "cohort_raw_4": (lambda: raw + ["4", str(lo_ns), str(hi_ns), *ids], cohort, {}, False),
        "cohort_refresh_first": (refresh, cohort, {}, True),
        "cohort_refresh": (refresh, cohort, {}, False),
        **{k: v for k, v in compared.items() if k.startswith("cohort")},
        "cohort_refresh_temporary": (refresh, cohort, temporary, True),
        "day_runeq": (
            lambda: [
                py,
                "-c",
                RUNEQ_STREAM,
                day_url,
                fresh("rqd"),
                accel,
                repr(day),
                repr(day + 86400),
            ],
            day_url, {}, False,
        ),
        "day_backfill_first": (backfill, day_url, {}, True),
        "day_backfill": (backfill, day_url, {}, False),
        **{k: v for k, v in compared.items() if k.startswith("day")},
        "day_backfill_temporary": (backfill, day_url, temporary, True),
    }  # fmt: skip


def stop_server(env: dict[str, str], exe: str) -> None:
    """``rune-lake server stop`` (not timed): the next command finds none running."""
    subprocess.run([exe, "server", "stop"], env=env, cwd=ROOT, capture_output=True, check=True)


def rows_of(label: str, text: str) -> int | None:
    if label.startswith(("cohort_runeq", "cohort_raw", "day_runeq")):
        nums = re.findall(r"^(\d+)$", text, re.M)
        return int(nums[-1]) if nums else None
    m = re.search(r"([\d,]+) rows", text)
    return int(m.group(1).replace(",", "")) if m else None


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    emus: list[subprocess.Popen] = []
    results: dict = {"rounds": [], "load": [], "load_before": os.getloadavg()[0]}
    envs: dict[str, dict[str, str]] = {}
    try:
        emu, cohort = start_emulator(args.patients, args.days, args.page_size)
        emus.append(emu)
        # one patient whose watch records 50 Hz motion all day (a full stream-day)
        emu, day_url = start_emulator(1, 2, args.page_size, args.motion_hours)
        emus.append(emu)
        ids, _ = stream_list(cohort)
        _, accel = stream_list(day_url)
        home = work / "prefect-home"
        envs = {url: environment(url, home) for url in (cohort, day_url)}
        labels = jobs(args, cohort, ids, day_url, accel, work)
        for rnd in range(args.rounds + 1):  # round 0 warms up
            got: dict = {}
            load0 = os.getloadavg()[0]
            for label in _order(labels, rnd):
                cmd, url, extra, stop_first = labels[label]
                env = envs[url] | extra
                if stop_first:
                    stop_server(env, args.rune_lake)
                got[label] = timed(cmd(), env, work / f"{label}.log")
                print(f"round {rnd} {label:24s} {got[label]['s']:6.1f} s "
                      f"{got[label]['rss_mb']:6.0f} MB  rows {rows_of(label, got[label]['out'])}",
                      flush=True)  # fmt: skip
            if rnd:
                for label, g in got.items():
                    g["rows"] = rows_of(label, g.pop("out"))
                results["rounds"].append(got)
                results["load"].append((load0, os.getloadavg()[0]))
    finally:
        if envs:
            stop_server(next(iter(envs.values())), args.rune_lake)
            if args.compare:
                other = {"PREFECT_HOME": str(work / "prefect-home-compared")}
                stop_server(next(iter(envs.values())) | other, args.compare)
        for emu in emus:
            emu.terminate()
            emu.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return results


def _order(labels: dict, rnd: int) -> list[str]:
    """The round's job order: fixed, except that a compared checkout's command runs
    after this one's in even rounds and before it in odd ones (the first later command
    follows this checkout's server restart, which costs it a little: medians 2.38-2.43 s
    first vs 2.34 s second, 2026-12-03)."""
    order = list(labels)
    if rnd % 2:
        for label in [k for k in order if k.endswith("_compared")]:
            i, j = order.index(label), order.index(label.removesuffix("_compared"))
            order[i], order[j] = order[j], order[i]
    return order


# -- report ------------------------------------------------------------------------------


def median(res: dict, label: str, key: str = "s") -> float:
    return statistics.median(r[label][key] for r in res["rounds"])


def render(args, res: dict, before: dict | None = None) -> str:
    m = {label: median(res, label) for label in res["rounds"][0]}
    rss = {label: median(res, label, "rss_mb") for label in res["rounds"][0]}
    rows = {label: res["rounds"][0][label].get("rows") for label in res["rounds"][0]}
    raw = min(m["cohort_raw_1"], m["cohort_raw_4"])
    loads = ", ".join(f"{a:.1f}-{b:.1f}" for a, b in res["load"])
    idle = f"before the bench {res['load_before']:.2f}, " if "load_before" in res else ""

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    x_cohort = m["cohort_runeq"] / m["cohort_refresh"]
    ceiling = raw / m["cohort_refresh"]
    x_day = m["day_runeq"] / m["day_backfill"]

    def x(runeq: str, label: str) -> str:
        return f"{m[runeq] / m[label]:.2f}x"

    names = {
        "cohort_runeq": "whole cohort: runeq script (pandas, `to_parquet` per stream)",
        "cohort_raw_1": "whole cohort: raw download, 1 thread (pages fetched and discarded)",
        "cohort_raw_4": "whole cohort: raw download, 4 threads",
        "cohort_refresh_first": "whole cohort: `rune-lake refresh`, first command (starts the "
        "local server)",
        "cohort_refresh": "whole cohort: `rune-lake refresh`, later commands (the default: "
        "the server is up)",
        "cohort_refresh_temporary": "whole cohort: `rune-lake refresh`, "
        "`RUNE_LAKE_LOCAL_SERVER=temporary`",
        "day_runeq": "one 50 Hz stream-day: runeq script",
        "day_backfill_first": "one 50 Hz stream-day: `rune-lake backfill`, first command",
        "day_backfill": "one 50 Hz stream-day: `rune-lake backfill`, later commands (server up)",
        "day_backfill_temporary": "one 50 Hz stream-day: `rune-lake backfill`, temporary server",
    }
    lines = [
        SECTION,
        "",
        f"What: whole processes as a user runs them (spawn to exit), side by side in one run, "
        f"against one emulator in its own process: the default cohort ({args.patients} patients "
        f"x {args.days} days, every stream, clock pinned at {NOW}), V2 pages of "
        f"{args.page_size:,} rows. Medians of {args.rounds} rounds after one warm-up round; "
        "peak RSS is the command's `ru_maxrss`, or for a command the warm runner ran, the "
        "larger of that and the forked run's `VmHWM` (median). See the script's docstring "
        "for each job.",
        "",
        "Reproduce: `.venv/bin/python bench/bench_e2e.py --write` "
        "(options `--rounds`, `--patients`, `--days`; `--compare OTHER/.venv/bin/rune-lake "
        "--compare-what LABEL` also runs another checkout's later commands in the same rounds; "
        "`--rune-lake OTHER/.venv/bin/rune-lake --json before.json` times another checkout "
        "alone, `--before before.json` shows it side by side).",
        "",
        f"Measured {res.get('measured_at') or f'{datetime.now(UTC):%Y-%m-%d %H:%M}'} UTC on "
        f"{platform.machine()} / {os.cpu_count()} CPUs / Python {platform.python_version()}; "
        f"load average (1 min) {idle}before-after each round: {loads} (a round's load is "
        "mostly its own jobs: each keeps one to two CPUs busy).",
        "",
        "| job | median (s) | peak RSS (MB) | rows |"
        + (" before: median (s) | before: peak RSS (MB) |" if before else ""),
        "|---|---:|---:|---:|" + ("---:|---:|" if before else ""),
    ]
    if "cohort_refresh_compared" in m:
        what = res.get("compared_what") or "another checkout"
        names = {
            **{k: v for k, v in names.items() if k.startswith("cohort")},
            "cohort_refresh_compared": f"whole cohort: `rune-lake refresh` of {what}, later "
            "commands (same rounds)",
            **{k: v for k, v in names.items() if k.startswith("day")},
            "day_backfill_compared": f"one 50 Hz stream-day: `rune-lake backfill` of {what}, "
            "later commands (same rounds)",
        }
    for label, name in names.items():
        n = rows.get(label)
        row = f"| {name} | {m[label]:.1f} | {rss[label]:.0f} | {n or 0:,} |"
        if before:
            row += (
                f" {median(before, label):.1f} | {median(before, label, 'rss_mb'):.0f} |"
                if label in before["rounds"][0]
                else " - | - |"
            )
        lines.append(row)
    if before:
        lines += ["", f"Before: {before['what']}."]
    lines += [
        "",
        f"Whole cohort (nothing configured, a later command): `refresh` is **{x_cohort:.2f}x "
        f"the runeq script** (target >= 3x: {met(x_cohort >= 3)}) and **{100 * ceiling:.0f}% "
        f"of the raw-download ceiling** (target >= 80%: {met(ceiling >= 0.8)}), peak RSS "
        f"**{rss['cohort_refresh']:.0f} MB** (target <= 1024 MB at 4 workers: "
        f"{met(rss['cohort_refresh'] <= 1024)}); the first command "
        f"{x('cohort_runeq', 'cohort_refresh_first')}, a temporary server per command "
        f"{x('cohort_runeq', 'cohort_refresh_temporary')}. One stream-day: `backfill` is "
        f"**{x_day:.2f}x runeq** with the server up (nothing configured, a later command; "
        f"targets >= 1x embedded: {met(x_day >= 1)}, >= 2x with a running server: "
        f"{met(x_day >= 2)}); the first command {x('day_runeq', 'day_backfill_first')}, a "
        f"temporary server per command {x('day_runeq', 'day_backfill_temporary')}.",
        "",
    ]
    if "cohort_refresh_compared" in m:
        pairs = [
            (r["cohort_refresh_compared"]["s"], r["cohort_refresh"]["s"]) for r in res["rounds"]
        ]
        faster = sum(now < then for then, now in pairs)
        lines += [
            f"Against {res.get('compared_what') or 'another checkout'} in the same rounds: "
            f"`refresh` {m['cohort_refresh_compared']:.2f} -> {m['cohort_refresh']:.2f} s "
            f"({x('cohort_runeq', 'cohort_refresh_compared')} -> {x_cohort:.2f}x runeq; "
            f"faster in {faster} of {len(pairs)} rounds), the stream-day `backfill` "
            f"{m['day_backfill_compared']:.2f} -> {m['day_backfill']:.2f} s.",
            "",
        ]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    doc = path.read_text()
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: text + "\n", doc)
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc.rstrip("\n") + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--patients", type=int, default=3)
    p.add_argument("--days", type=int, default=2)
    p.add_argument("--page-size", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--motion-hours", type=float, default=14.0, help="the stream-day's")
    p.add_argument("--rune-lake", default=LAKE_EXE, help="the rune-lake executable to time")
    p.add_argument("--json", default="bench_e2e.json", help="raw results (JSON)")
    p.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in BENCHMARKS.md")
    p.add_argument("--compare", help="another rune-lake executable, run in the same rounds")
    p.add_argument("--compare-what", default="", help="its label, e.g. 'main at abc1234'")
    p.add_argument("--before", help="results JSON of an earlier run: shown side by side")
    p.add_argument("--before-what", default="main before this change", help="its label")
    p.add_argument("--from-json", help="render these results instead of running")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the emulators too
    if args.from_json:  # rendered with the options it was measured with
        saved = json.loads(Path(args.from_json).read_text())
        res = saved["results"]
        for key in ("patients", "days", "page_size", "rounds"):
            setattr(args, key, saved["args"][key])
    else:
        res = run(args)
        res["measured_at"] = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
        res["compared_what"] = args.compare_what
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": res}))
    before = json.loads(Path(args.before).read_text())["results"] if args.before else None
    if before:
        before["what"] = args.before_what
    text = render(args, res, before)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
