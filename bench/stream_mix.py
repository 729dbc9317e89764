"""The emulator's stream mix, as the capacity plan (docs/SCALING.md) uses it.

    .venv/bin/python bench/stream_mix.py [--patients 6 --days 14]

Per stream kind: rows per patient-day (complete UTC days, averaged over patients and
days, worn/not-worn days and LFP gaps included); events per patient-day; and the API
requests one refresh of the cohort costs: GraphQL discovery requests per patient
(emulator page sizes) and V2 stream pages (100,000 rows each).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rune_emulator import (  # noqa: E402
    DEMO_ACCESS_TOKEN_ID,
    DEMO_ACCESS_TOKEN_SECRET,
    EmulatorConfig,
    running_emulator,
)
from rune_io import pipeline  # noqa: E402
from rune_io.api.client import RuneClient  # noqa: E402
from rune_io.config import load_settings  # noqa: E402
from rune_io.lake.layout import table_name  # noqa: E402

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--patients", type=int, default=6)
    p.add_argument("--days", type=int, default=14)
    a = p.parse_args()
    cfg = EmulatorConfig(seed=0, patients=a.patients, days=a.days, now=NOW)
    first = NOW - timedelta(days=a.days)
    with running_emulator(cfg) as emu:
        rows: dict[str, int] = defaultdict(int)
        streams: dict[str, int] = defaultdict(int)
        for s in emu.cohort.streams:
            t = table_name(s)
            key = t + (
                f" ({dict(s.parameters).get('axis')})" if "axis" in dict(s.parameters) else ""
            )
            streams[t] += 1
            if "axis" in dict(s.parameters) and dict(s.parameters)["axis"] != "x":
                continue  # y and z have x's timestamps
            rows[key] += emu.expected_table(s.id, first, NOW).num_rows
        events = sum(
            1 for p in emu.cohort.patients for e in emu.cohort.events(p.id) if e.start_time >= first
        )
        settings = load_settings(
            None,
            stream_url=emu.url,
            graph_url=emu.url,
            access_token_id=DEMO_ACCESS_TOKEN_ID,
            access_token_secret=DEMO_ACCESS_TOKEN_SECRET,
        )
        emu.stats.reset()
        with RuneClient(settings) as client:
            patients, found = pipeline.discover(client.graph, pipeline.Selection())
        graphql = emu.stats.count(path_prefix="/graphql")
    pd = a.patients * a.days
    print(f"{a.patients} patients x {a.days} complete days, seed 0")
    print(f"{'stream kind':44} {'streams/patient':>15} {'rows/patient-day':>17}")
    for key, n in sorted(rows.items()):
        t = key.split(" ")[0]
        per = streams[t] / a.patients
        print(f"{key:44} {per:>15.0f} {n / pd:>17,.0f}")
    print(f"{'events':44} {'':>15} {events / pd:>17,.1f}")
    print(
        f"discovery: {graphql} GraphQL requests for {len(patients)} patients / {len(found)} streams "
        f"= {graphql / len(patients):.1f} per patient"
    )


if __name__ == "__main__":
    main()
