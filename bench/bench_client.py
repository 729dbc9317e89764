"""Read one day's worth (4.32 M rows) of a 50 Hz stream several ways against one emulator.

1. ``rune_io``: ``RuneClient.streams.read`` into Arrow record batches, sequential
   (``parallel=1``) and parallel (``parallel=2, 4``: sub-windows in worker threads);
2. ``runeq``: the vendor SDK's ``StreamMetadata.get_stream_dataframe`` (pandas);
3. raw ceiling: the same V2 pages (``format=csv&timestamp=unixns``) downloaded with a
   plain ``requests.Session`` and discarded: one token chain (sequential), and the very
   same sub-windows as ``rune_io`` parallel, one session per thread (``raw_p2``, ``raw_p4``).

The window holds exactly 4.32 M rows (the emulated watch is worn ~07-22h, so a UTC day
holds ~2.7 M): from the start of the data to just before row 4,320,001, per
``emu.expected_table``. Every method reads the whole window (no ``limit``).

The emulator runs in this process; each method runs in its own subprocess so its peak
RSS (``ru_maxrss``) is its own. Reproduce::

    .venv/bin/python bench/bench_client.py --write   # updates BENCHMARKS.md

"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Client read (V2)"
#: one day at 50 Hz
ROWS = 50 * 86_400


def _rss_mb() -> float:
    """Peak RSS of this process image, MB.

    ``VmHWM`` rather than ``ru_maxrss``: on Linux ``ru_maxrss`` survives ``execve`` and
    so would count the parent's (the emulator's) RSS at fork time.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ----------------------------------------------------------------- child processes


METHODS = ("rune_io", "rune_io_p2", "rune_io_p4", "runeq", "raw", "raw_p2", "raw_p4")


def _workers(method: str) -> int:
    return int(method.rsplit("_p", 1)[1]) if "_p" in method else 1


def child(method: str, url: str, stream_id: str, start: float, end: float) -> dict:
    from rune_emulator import DEMO_ACCESS_TOKEN_ID, DEMO_ACCESS_TOKEN_SECRET

    creds = dict(access_token_id=DEMO_ACCESS_TOKEN_ID, access_token_secret=DEMO_ACCESS_TOKEN_SECRET)
    lo_ns, hi_ns = round(start * 1e6) * 1000, round(end * 1e6) * 1000
    if method.startswith("rune_io"):
        from rune_io.api.client import RuneClient
        from rune_io.config import load_settings

        settings = load_settings(stream_url=url, graph_url=url, environ={}, **creds)
        with RuneClient(settings) as client:
            (stream,) = client.graph.streams_by_ids([stream_id])
            base = _rss_mb()
            t0 = time.perf_counter()
            rows = 0
            for batch in client.streams.read(
                stream,
                datetime.fromtimestamp(start, UTC),
                datetime.fromtimestamp(end, UTC),
                parallel=_workers(method),
            ):
                rows += batch.num_rows
            secs = time.perf_counter() - t0
    elif method == "runeq":
        from runeq import initialize
        from runeq.resources.stream_metadata import get_stream_metadata

        initialize(stream_url=url, graph_url=url, **creds)
        meta = get_stream_metadata(stream_id)
        base = _rss_mb()
        t0 = time.perf_counter()
        df = meta.get_stream_dataframe(start_time=start, end_time=end)
        rows = len(df)
        secs = time.perf_counter() - t0
    elif method.startswith("raw"):
        import threading
        from concurrent.futures import ThreadPoolExecutor

        import requests

        from rune_io.api.streams import StreamReader, plan_sub_windows

        local = threading.local()

        def session() -> requests.Session:
            if not hasattr(local, "s"):
                local.s = requests.Session()
                local.s.headers.update(
                    {
                        "X-Rune-User-Access-Token-Id": creds["access_token_id"],
                        "X-Rune-User-Access-Token-Secret": creds["access_token_secret"],
                    }
                )
            return local.s

        def chain(a: int, b: int, token: str | None = None, first_only: bool = False):
            """Download (and discard) the pages of [a, b): (rows, last body, next token)."""
            params = {"start_time_ns": a, "end_time_ns": b, "format": "csv",
                      "timestamp": "unixns", "translate_enums": "True"}  # fmt: skip
            n, content = 0, b""
            while True:
                if token:
                    params["page_token"] = token
                r = session().get(f"{url}/v2/streams/{stream_id}", params=params, timeout=(10, 300))
                r.raise_for_status()
                content = r.content
                n += content.count(b"\n") - 1
                token = r.headers.get("X-Rune-Next-Page-Token")
                if not token or first_only:
                    return n, content, token

        workers = _workers(method)
        base = _rss_mb()
        t0 = time.perf_counter()
        if workers == 1:
            rows = chain(lo_ns, hi_ns)[0]
        else:  # the very same sub-windows rune_io's parallel read uses
            rows, body, token = chain(lo_ns, hi_ns, first_only=True)
            pieces = []
            if token:
                times = [int(line.split(b",", 1)[0]) for line in body.splitlines()[1:]]
                splits = workers * StreamReader.__init__.__kwdefaults__["splits_per_worker"]
                pieces = plan_sub_windows(times, hi_ns, splits)
                if len(pieces) > 1:  # rows at page 0's last time are read again by piece 1
                    rows -= times.count(times[-1])
            with ThreadPoolExecutor(workers) as pool:
                rows += sum(n for n, _, _ in pool.map(lambda ab: chain(*ab), pieces))
        secs = time.perf_counter() - t0
    else:
        raise SystemExit(f"unknown method {method}")
    return {
        "method": method,
        "rows": rows,
        "seconds": secs,
        "base_rss_mb": base,
        "peak_rss_mb": _rss_mb(),
    }


def run_child(method: str, url: str, stream_id: str, start: float, end: float) -> dict:
    cmd = [sys.executable, __file__, "--child", method, "--url", url, "--stream-id", stream_id,
           "--start", repr(start), "--end", repr(end)]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------- orchestration


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--child")
    ap.add_argument("--url")
    ap.add_argument("--stream-id")
    ap.add_argument("--start", type=float)
    ap.add_argument("--end", type=float)
    ap.add_argument("--rows", type=int, default=ROWS, help="rows in the window (one 50 Hz day)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the best of each is reported")
    ap.add_argument("--page-size", type=int, default=100_000)
    ap.add_argument("--write", action="store_true", help=f"update '{SECTION}' in BENCHMARKS.md")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.url, args.stream_id, args.start, args.end)))
        return

    from rune_emulator import EmulatorConfig, running_emulator

    # The emulator's watch records 50 Hz motion in sessions while worn (motion_hours=15:
    # ~7.5 h a day), so the window is the first 4.32 M rows (one 50 Hz day's worth) of
    # its history: times at 100-ns resolution, full-precision doubles, real data types.
    cfg = EmulatorConfig(seed=0, patients=1, days=5, page_size=args.page_size, motion_hours=15)
    with running_emulator(cfg) as emu:
        accel = [
            s for s in emu.cohort.streams
            if s.stream_type.id == "acceleration" and s.params.get("axis", "x") in ("x", "")
        ] or [s for s in emu.cohort.streams if s.stream_type.id == "acceleration"]  # fmt: skip
        stream = accel[0]
        day_end = datetime(cfg.now.year, cfg.now.month, cfg.now.day, tzinfo=UTC)
        first_day = day_end - timedelta(days=cfg.days)
        times = emu.expected_table(stream.id, first_day, day_end).column("time")
        assert len(times) > args.rows, (len(times), args.rows)
        # [start of data, halfway between row rows-1 and row rows): exactly args.rows rows,
        # and an end that float seconds (runeq's) carry exactly
        start = first_day.timestamp()
        t_last, t_next = times[args.rows - 1].as_py(), times[args.rows].as_py()  # unix ns
        end = (t_last + (t_next - t_last) // 2) // 1000 / 1e6
        assert len(emu.expected_table(stream.id, start, end)) == args.rows
        day = (first_day, datetime.fromtimestamp(end, UTC))
        # warm the emulator's render cache so no method pays for rendering
        run_child("raw", emu.url, stream.id, start, end)
        results: dict[str, list[dict]] = {m: [] for m in METHODS}
        for rnd in range(args.repeat):
            for method in results:
                r = run_child(method, emu.url, stream.id, start, end)
                results[method].append(r)
                print(f"round {rnd + 1} {method:10s} {r['rows']:>9,} rows  {r['seconds']:7.2f} s  "
                      f"{r['rows'] / r['seconds']:>12,.0f} rows/s  peak RSS {r['peak_rss_mb']:.0f} MB",
                      flush=True)  # fmt: skip

    best = {m: min(rs, key=lambda r: r["seconds"]) for m, rs in results.items()}
    rate = {m: r["rows"] / r["seconds"] for m, r in best.items()}
    assert all(r["rows"] == args.rows for r in best.values()), {
        m: r["rows"] for m, r in best.items()
    }
    table = [
        "| method | rows/s | seconds | vs runeq | vs raw ceiling (sequential) "
        "| vs raw ceiling (same concurrency) | peak RSS (MB) | RSS before read (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "rune_io": "`rune_io` streams.read -> Arrow, sequential",
        "rune_io_p2": "`rune_io` streams.read -> Arrow, `parallel=2`",
        "rune_io_p4": "`rune_io` streams.read -> Arrow, `parallel=4`",
        "runeq": "runeq `get_stream_dataframe` (pandas)",
        "raw": "raw ceiling, sequential (download + discard)",
        "raw_p2": "raw ceiling, same sub-windows, 2 threads",
        "raw_p4": "raw ceiling, same sub-windows, 4 threads",
    }

    def same(m: str) -> str:
        return "raw" + (m[len("rune_io") :] if m.startswith("rune_io") else m[len("raw") :])

    for m in METHODS:
        r = best[m]
        vs_same = f"{100 * rate[m] / rate[same(m)]:.0f}%" if m != "runeq" else "-"
        table.append(
            f"| {labels[m]} | {rate[m]:,.0f} | {r['seconds']:.2f} | "
            f"{rate[m] / rate['runeq']:.1f}x | {100 * rate[m] / rate['raw']:.0f}% | {vs_same} | "
            f"{r['peak_rss_mb']:.0f} | {r['base_rss_mb']:.0f} |"
        )
    ours = [m for m in METHODS if m.startswith("rune_io")]
    top = max(ours, key=lambda m: rate[m])
    x_runeq = rate[top] / rate["runeq"]
    of_raw = 100 * rate[top] / rate["raw"]
    of_same = 100 * rate[top] / rate[same(top)]
    rss = max(best[m]["peak_rss_mb"] for m in ours)

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    verdict = (
        f"Best rune_io variant: {labels[top].split(', ')[-1]} = "
        f"**{x_runeq:.1f}x runeq** (target >= 5x: {met(x_runeq >= 5)}), "
        f"**{of_raw:.0f}% of the sequential raw ceiling** and **{of_same:.0f}% of the raw "
        f"ceiling at the same concurrency** (target >= 60%: {met(min(of_raw, of_same) >= 60)}), "
        f"peak RSS of every rune_io variant <= **{rss:.0f} MB** (target < 300 MB: "
        f"{met(rss < 300)}). Sequential rune_io: {rate['rune_io'] / rate['runeq']:.1f}x runeq, "
        f"{100 * rate['rune_io'] / rate['raw']:.0f}% of the raw ceiling (above 100% when the "
        "reader's prefetch of page n+1 while it parses page n overlaps the server's rendering "
        "with the client's work, which the download-and-wait ceiling does not). Downloading the same "
        f"pages in parallel and discarding them reaches {rate['raw_p2'] / rate['raw']:.2f}x "
        f"(2 threads) and {rate['raw_p4'] / rate['raw']:.2f}x (4 threads) the sequential raw "
        "rate: where that is ~1x, the server (here one Python emulator process sharing the "
        "2 CPUs) is the bottleneck, not the one-request-at-a-time token chain, and no client "
        "can go faster than that ceiling."
    )
    body = "\n".join(
        [
            SECTION,
            "",
            f"{args.rows:,} rows (one day's worth at 50 Hz) of a 50 Hz `acceleration` stream "
            f"of `rune_emulator` with the live API's data types (`time` at 100-ns resolution "
            f"served as `unixns`, full-precision `sfloat` doubles, `measurement_duration_ns`): "
            f"the window [{day[0]:%Y-%m-%d %H:%M}, {day[1]:%Y-%m-%d %H:%M:%S.%f}) UTC holds "
            f"exactly that many (the emulated watch records 50 Hz motion in sessions, "
            f"`motion_hours=15`: ~7.5 h a day), read whole by every method (no `limit`), "
            f"into lake format 2 batches (`time` + `time_ns`). V2 CSV pages of "
            f"{args.page_size:,} rows, one local emulator (seed 0) in the parent process; "
            f"each method in its own subprocess, all methods interleaved in each round, best "
            f"of {args.repeat} rounds. Measured {datetime.now(UTC):%Y-%m-%d} on "
            f"{platform.machine()} / {os.cpu_count()} CPUs / Python {platform.python_version()}.",
            "",
            *table,
            "",
            verdict,
            "",
            "How the parallel read works (`StreamReader.read(..., parallel=N)`, default "
            "`settings.read_parallelism`): page 0 is fetched sequentially; if more pages "
            "follow, the rest of the window is cut, at page 0's density, into about one "
            "sub-window per page (at most `4 N`), each paged with its own token chain by one "
            "of N worker threads with its own `requests.Session`. Batches come out strictly "
            "in time order; at most N sub-windows are in flight, each holding at most 4 "
            "parsed pages (bounded queues), so memory stays flat. The `raw ... same "
            "sub-windows` rows download and discard the very same requests with the same "
            "thread count.",
            "",
            "runeq runs as users call it (`timestamp=iso`, its default); rune_io and the raw "
            "ceiling ask for `timestamp=unixns`. Peak RSS is the child's `VmHWM` (its own, "
            "imports included, emulator excluded); the column before it is RSS just before "
            "the read. The machine is a shared 2-CPU VM, and the emulator (one Python "
            "process) shares those 2 CPUs with the reader: parallel requests overlap the "
            "server's work with the client's, but cannot add CPUs.",
            "",
            "Reproduce: `.venv/bin/python bench/bench_client.py --write`",
            "",
        ]
    )
    print()
    print(body)
    if args.write:
        _write_section(ROOT / "BENCHMARKS.md", body)


def _write_section(path: Path, body: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: body + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text.rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
