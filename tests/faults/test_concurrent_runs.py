"""Two runs on one lake at once: the nightly refresh and a backfill from the UI overlap
(separate processes, same partitions). Both complete; the lake equals a clean load and
its catalog matches the files exactly (one entry per file, the right checksum)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from rune_emulator import ChaosConfig
from rune_io.lake import Catalog, open_lake
from tests.faults.conftest import (
    REPO,
    STORAGE_ARGS,
    STORAGE_EMU,
    api_vars,
    assert_lake_consistent,
    assert_lakes_equal,
    cli,
    emulator,
    remember,
)
from tests.flows.conftest import NOW


def _start(args: list[str], env_vars: dict[str, str]) -> subprocess.Popen:
    """``cli`` in the background: same environment, not waited for."""
    import os

    from prefect.settings import PREFECT_API_URL

    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    full = base | {
        "PREFECT_API_URL": PREFECT_API_URL.value() or "",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": str(REPO),
        "COLUMNS": "200",
        **env_vars,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "rune_lake.flows.cli", *args],
        cwd=str(REPO),
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("rounds", [2])
def test_refresh_and_backfill_at_once(tmp_path, fast_config, storage_want, rounds):
    lake = remember(tmp_path / "lake")
    common = ["--lake", str(lake), *STORAGE_ARGS, "--config", str(fast_config)]
    start = (NOW - timedelta(days=2)).date().isoformat()
    end = (NOW + timedelta(days=1)).date().isoformat()
    # every data request waits 1.5 s, so each run's data phase lasts several seconds and
    # the two runs (started together) are at work at the same time; asserted below
    slow = ChaosConfig(p_delay=1.0, delay_s=1.5, apply_to_graphql=False)
    with emulator(fast_config, chaos=slow, **STORAGE_EMU) as emu:
        for i in range(rounds):
            # round 1: both write into an empty lake; round 2: both replace files
            env_vars = api_vars(emu)
            extra = ["--overwrite"] if i else []
            back = _start(["backfill", "--start", start, "--end", end, *extra, *common], env_vars)
            nightly = cli("refresh", "--lookback-days", "2", *common, env_vars=env_vars)
            out, _ = back.communicate(timeout=300)
            assert nightly.code == 0, nightly.text[-3000:]
            assert back.returncode == 0, out[-3000:]
            assert_lake_consistent(lake)
            _assert_overlapped(lake, 2 * (i + 1))
    assert_lakes_equal(lake, storage_want)


def _assert_overlapped(lake, n_runs: int) -> None:
    """The catalog shows the last two runs' [started, finished] spans overlapping: the
    runs really were at work at the same time."""
    runs = Catalog(open_lake(str(lake), create=False)).runs().to_pylist()
    assert len(runs) == n_runs, runs
    a, b = sorted(runs, key=lambda r: r["started_at"])[-2:]
    assert a["status"] == b["status"] == "completed", (a, b)
    assert b["started_at"] < a["finished_at"], f"runs did not overlap: {a} / {b}"
