"""Kill and resume: ``rune-lake refresh`` killed with SIGKILL at precise points (the
``RUNE_LAKE_CRASH_AT`` hook, see ``rune_io/faults.py``) and at a random moment, then run
again: the lake equals the clean lake, the catalog matches the files exactly (path,
rows, bytes, checksum), nothing partial or temporary is visible, nothing is duplicated.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from rune_io.lake import Catalog, open_lake
from tests.faults.conftest import (
    REPO,
    api_vars,
    assert_lake_consistent,
    assert_lakes_equal,
    clean_lake,
    cli,
    emulator,
    remember,
)

EMU = dict(patients=1, days=1)
CATEGORIES = ["vitals", "symptom"]
ARGS = [a for c in CATEGORIES for a in ("--category", c)]


@pytest.fixture(scope="module")
def want(tmp_path_factory, fast_config):
    return clean_lake(tmp_path_factory, fast_config, ("kill",), EMU, dict(categories=CATEGORIES))


def _marks(lake) -> dict:
    return Catalog(open_lake(str(lake))).watermarks()


def _assert_resumed(lake, want) -> None:
    assert_lakes_equal(lake, want)
    assert_lake_consistent(lake)
    assert _marks(lake) == _marks(want)


@pytest.mark.slow
@pytest.mark.parametrize(
    "point",
    ["page:3", "write:2", "published:2", "before_commit", "commit"],
)
def test_killed_refresh_resumes_to_the_clean_lake(tmp_path, fast_config, want, point):
    lake = remember(tmp_path / "lake")
    args = ["refresh", "--lake", str(lake), *ARGS, "--config", str(fast_config)]
    with emulator(fast_config, **EMU) as emu:
        killed = cli(*args, env_vars=api_vars(emu) | {"RUNE_LAKE_CRASH_AT": point})
        assert killed.code == -signal.SIGKILL, killed.text[-2000:]
        if point.startswith("published"):  # a file without its entry is on disk
            on_disk = list(lake.glob("*/patient=*/*/*.parquet"))
            assert len(on_disk) >= 2
        resumed = cli(*args, env_vars=api_vars(emu))
        assert resumed.code == 0, resumed.text[-2000:]
    _assert_resumed(lake, want)


@pytest.mark.slow
def test_kill_while_replacing_files_then_resume(tmp_path, fast_config, want):
    """A refresh with lookback (it rewrites files the lake has, under the same paths)
    killed after publishing a replacement but before its catalog entry: the next run's
    repair records the new file, although its size may equal the old one's."""
    lake = remember(tmp_path / "lake")
    shutil.copytree(want, lake)
    args = ["refresh", "--lake", str(lake), *ARGS, "--config", str(fast_config)]
    with emulator(fast_config, **EMU) as emu:
        killed = cli(
            *args,
            "--lookback-days",
            "1",
            env_vars=api_vars(emu) | {"RUNE_LAKE_CRASH_AT": "published:2"},
        )
        assert killed.code == -signal.SIGKILL, killed.text[-2000:]
        resumed = cli(*args, env_vars=api_vars(emu))
        assert resumed.code == 0, resumed.text[-2000:]
    _assert_resumed(lake, want)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [7])
def test_killed_at_a_random_moment_resumes(tmp_path, fast_config, want, seed):
    """SIGKILL from outside, at a random instant after the first data request."""
    from prefect.settings import PREFECT_API_URL

    rng = random.Random(seed)
    lake = remember(tmp_path / "lake")
    args = ["refresh", "--lake", str(lake), *ARGS, "--config", str(fast_config)]
    with emulator(fast_config, **EMU) as emu:
        env = {
            "PATH": "/usr/bin:/bin",
            "PREFECT_HOME": os.environ["PREFECT_HOME"],
            "PREFECT_API_URL": PREFECT_API_URL.value() or "",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PYTHONPATH": str(REPO),
        } | api_vars(emu)
        proc = subprocess.Popen(
            [sys.executable, "-m", "rune_lake.flows.cli", *args],
            cwd=str(REPO),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while not any(path.startswith("/v2/") for _m, path, _q, _s in emu.stats.log):
                assert proc.poll() is None, "refresh ended before fetching any data"
                assert time.monotonic() < deadline
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 1.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        resumed = cli(*args, env_vars=api_vars(emu))
        assert resumed.code == 0, resumed.text[-2000:]
    _assert_resumed(lake, want)
