"""API chaos: 429 + Retry-After, 500, 503, resets, truncated bodies and delays on a
quarter or more of all requests; the lake is identical, row for row, to a clean run."""

from __future__ import annotations

import pytest

from rune_emulator import ChaosConfig
from rune_emulator.cohort import build_cohort
from rune_io.lake import Catalog, open_lake
from tests.faults.conftest import (
    LIGHT,
    assert_lake_consistent,
    assert_lakes_equal,
    clean_lake,
    emu_config,
    emulator,
    refresh_in_process,
    remember,
)

CASES = {
    # light streams of two patients over two days, events included
    "light": (dict(patients=2, days=2), dict(categories=LIGHT, chunk_days=1)),
    # one 50 Hz axis, one day, small pages (a page every 20k rows)
    "motion": (
        dict(patients=1, days=1, page_size=20_000),
        dict(categories=["motion"], include_events=False),
    ),
}


def _params(case: str) -> tuple[dict, dict]:
    emu_kw, params = CASES[case]
    if case == "motion":  # one 50 Hz axis is plenty: six would multiply the time
        cohort = build_cohort(emu_config(**emu_kw))
        axis = sorted(s.id for s in cohort.streams if s.stream_type.id == "acceleration")[0]
        params = params | {"stream_ids": [axis]}
    return emu_kw, params


RUNS = [("light", 1, 0.3), ("light", 2, 0.4), ("motion", 3, 0.35)]


def chaos_run(tmp_path, tmp_path_factory, fast_config, case, seed, p) -> dict[str, int]:
    """One refresh through the chaos emulator, checked equal to a clean run; returns the
    fault kinds injected and how often."""
    emu_kw, params = _params(case)
    want = clean_lake(tmp_path_factory, fast_config, (case,), emu_kw, params)
    lake = remember(tmp_path / f"lake-{case}-{seed}")
    chaos = ChaosConfig.uniform(p, seed=seed, delay_s=0.05)
    with emulator(fast_config, chaos=chaos, **emu_kw) as emu:
        state = refresh_in_process(lake, **params)
        assert state.is_completed(), state.message
        requests = len(emu.stats.log)
        faults = sum(emu.stats.chaos.values())
        kinds = dict(emu.stats.chaos)
    assert requests > 10
    assert faults / requests >= 0.2, f"only {faults}/{requests} requests failed: {kinds}"
    print(f"chaos {case} seed={seed} p={p}: {faults}/{requests} requests faulted {kinds}")
    counts = assert_lakes_equal(lake, want)
    assert sum(counts.values()) > 0
    assert_lake_consistent(lake)
    marks = Catalog(open_lake(str(lake))).watermarks()
    assert marks == Catalog(open_lake(str(want))).watermarks()
    return kinds


@pytest.mark.slow
def test_chaos_runs_equal_clean_runs_and_every_fault_kind_fires(
    tmp_path, tmp_path_factory, fast_config
):
    """Each run (fixed seeds) gives the clean run's lake; over the runs, each of the six
    chaos kinds fired. One test, so the second check never depends on which tests ran
    before it, or in what order."""
    seen: dict[str, int] = {}
    for case, seed, p in RUNS:
        for k, v in chaos_run(tmp_path, tmp_path_factory, fast_config, case, seed, p).items():
            seen[k] = seen.get(k, 0) + v
    assert set(ChaosConfig.KINDS) <= seen.keys(), seen
