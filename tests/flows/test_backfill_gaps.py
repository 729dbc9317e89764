"""A backfill without ``--overwrite`` makes its range complete (issue 12, item 2).

The lake is first loaded while the API holds 2 days of history; then older history
appears upstream (a watch uploading old days: the emulator, same seed and clock, now
serves 5 days). A backfill of the 5 days must fetch the new days *and* the partitions
the lake holds only part of (the month partitions of the low-rate tables), and skip only
partitions whose file covers the range. Checked row for row against the emulator's
ground truth.
"""

from __future__ import annotations

import os
from datetime import timedelta

from rune_io.lake import Catalog, open_lake
from rune_lake.flows.backfill import BackfillRange, backfill
from rune_lake.flows.refresh import refresh
from tests.flows.conftest import LIGHT, NOW, emulator
from tests.flows.test_refresh import data_requests
from tests.truth import assert_lake_equals_truth, category


def test_backfill_fills_history_that_appeared_later(tmp_path):
    lake = str(tmp_path / "lake")
    with emulator(patients=1, days=2):
        assert refresh(lake=lake, categories=LIGHT, include_events=False).ok
    first = {f["path"] for f in Catalog(open_lake(lake)).files().to_pylist()}
    with emulator(patients=1, days=5) as emu:
        rng = BackfillRange(
            start=(NOW - timedelta(days=5)).date(),
            end=NOW.date() + timedelta(days=1),
            categories=LIGHT,
            include_events=False,
        )
        rep = backfill(range=rng, lake=lake)
        assert rep.ok
        streams = [s for s in emu.cohort.streams if category(s) in LIGHT]
        assert streams
        for s in streams:  # every row, every column, every nanosecond
            assert_lake_equals_truth(lake, emu, s)

        # once complete, the same backfill skips every partition that has a file; only
        # the few the API has no data for (no file to show coverage) are asked again
        emu.stats.reset()
        again = backfill(range=rng, lake=lake)
        assert again.ok and again.rows == 0
        assert 0 < len(data_requests(emu)) == again.windows_planned < rep.windows_planned
    files = Catalog(open_lake(lake)).files().to_pylist()
    assert first < {f["path"] for f in files}
    assert not any(os.scandir(tmp_path / "lake" / "_catalog" / "pending"))  # no empty folders
