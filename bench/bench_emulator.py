"""Emulator CSV serving rate: 4.32 M rows (one day's worth at 50 Hz) over real HTTP.

Pages through ``/v2/streams/{id}`` with ``requests`` exactly like a client does
(``X-Rune-Next-Page-Token``), for a 50 Hz watch motion stream (``motion``/``user``,
``axis=x``: ``time`` at 100 ns, ``acceleration`` as repr floats,
``measurement_duration_ns``). The watch records all the time it is worn here
(``motion_hours=15``; the default cohort records 1 h a day), so 4.32 M rows span a little
under two calendar days (``limit=4320000``). Reports cold (fresh emulator: signals
rendered on demand) and warm (day chunks cached) runs for ``timestamp=iso`` (the SDK
default) and ``timestamp=unixns``.

    .venv/bin/python bench/bench_emulator.py [--rows 4320000] [--page-size 100000]
"""

from __future__ import annotations

import argparse
import time

import requests

from rune_emulator import (
    DEMO_ACCESS_TOKEN_ID,
    DEMO_ACCESS_TOKEN_SECRET,
    EmulatorConfig,
    running_emulator,
)

HEADERS = {
    "X-Rune-User-Access-Token-Id": DEMO_ACCESS_TOKEN_ID,
    "X-Rune-User-Access-Token-Secret": DEMO_ACCESS_TOKEN_SECRET,
}


def fetch(
    url: str, stream_id: str, start: float, rows: int, timestamp: str
) -> tuple[int, int, int, float]:
    params = {"start_time": start, "limit": rows, "timestamp": timestamp}
    n = nbytes = pages = 0
    t0 = time.perf_counter()
    with requests.Session() as s:
        while True:
            r = s.get(f"{url}/v2/streams/{stream_id}", params=params, headers=HEADERS)
            r.raise_for_status()
            body = r.content
            nbytes += len(body)
            n += body.count(b"\n") - 1
            pages += 1
            token = r.headers.get("X-Rune-Next-Page-Token")
            if not token:
                break
            params["page_token"] = token
    return n, nbytes, pages, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4_320_000)
    ap.add_argument("--page-size", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=6)
    a = ap.parse_args()
    for ts in ("iso", "unixns"):
        cfg = EmulatorConfig(
            seed=0, patients=1, days=a.days, page_size=a.page_size, motion_hours=15
        )
        with running_emulator(cfg) as emu:
            spec = next(
                s
                for s in emu.stream_specs
                if s.kind == "motion"
                and s.param("measurement") == "user"
                and s.param("axis") == "x"
            )
            start = emu.cohort.data_start.timestamp()
            for label in ("cold", "warm"):
                n, nbytes, pages, dt = fetch(emu.url, spec.id, start, a.rows, ts)
                assert n == a.rows, (n, a.rows)
                print(
                    f"timestamp={ts:7s} {label}: {n:,} rows, {pages} pages, {nbytes / 1e6:.0f} MB "
                    f"in {dt:.2f} s -> {n / dt / 1e6:.2f} M rows/s, {nbytes / dt / 1e6:.0f} MB/s"
                )


if __name__ == "__main__":
    main()
