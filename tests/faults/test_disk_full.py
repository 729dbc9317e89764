"""The lake's disk fills up mid-run: a small tmpfs mounted as the lake's filesystem.

The run fails naming the path and the space it needed; no partial or temporary file is
visible under a table; once space is freed (the tmpfs remounted larger) the next run
completes, equal to a clean load, with a catalog that matches the files exactly.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.faults.conftest import (
    STORAGE_ARGS,
    STORAGE_EMU,
    api_vars,
    assert_lake_consistent,
    assert_lakes_equal,
    cli,
    emulator,
    remember,
)


def _lake_bytes(lake: Path) -> int:
    return sum(p.stat().st_size for p in lake.rglob("*") if p.is_file())


def _mount(cmd: list[str]) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({' '.join(cmd)}): {res.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path, storage_want):
    """A tmpfs a third the size of the clean lake, unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    size_kib = max(64, _lake_bytes(storage_want) // 3 // 1024)
    _mount(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(disk)])
    try:
        yield disk, size_kib
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _assert_nothing_partial(lake: Path) -> None:
    """Every file under a table is a whole Parquet file (its footer reads); nothing else is
    there but ``_common_metadata``."""
    for path in lake.rglob("*"):
        rel = path.relative_to(lake)
        if not path.is_file() or rel.parts[0].startswith("_"):
            continue
        assert path.suffix == ".parquet" or path.name == "_common_metadata", rel
        if path.suffix == ".parquet":
            assert pq.read_metadata(path).num_rows > 0, rel


@pytest.mark.slow
def test_disk_fills_mid_run_then_next_run_completes(fast_config, storage_want, small_disk):
    disk, size_kib = small_disk
    lake = remember(disk / "lake")
    args = ["refresh", "--lake", str(lake), *STORAGE_ARGS, "--config", str(fast_config)]
    with emulator(fast_config, **STORAGE_EMU) as emu:
        full = cli(*args, env_vars=api_vars(emu))
        print(f"disk of {size_kib} KiB; exit {full.code}:\n{full.text[-3000:]}")
        assert full.code in (1, 2), full.text[-3000:]
        assert "no space left on the disk at" in full.text, full.text[-3000:]
        assert str(lake) in full.text  # names the path
        assert "free at least" in full.text  # and the space needed
        assert "Traceback" not in full.text
        _assert_nothing_partial(lake)

        _mount(["mount", "-o", "remount,size=256m", str(disk)])
        again = cli(*args, env_vars=api_vars(emu))
        assert again.code == 0, again.text[-3000:]
    assert_lakes_equal(lake, storage_want)
    assert_lake_consistent(lake)
