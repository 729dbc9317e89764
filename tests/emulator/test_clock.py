"""The clock bounds the data; late-arriving data appears as the clock advances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rune_emulator import EmulatorConfig, running_emulator

from .conftest import stream_of


def test_late_data_for_past_days_appears_later():
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    cfg = EmulatorConfig(seed=3, patients=1, days=2, now=now, late_data_hours=6)
    with running_emulator(cfg) as emu:
        spec = stream_of(emu, "activity", 0)
        start = emu.cohort.data_start
        n0 = emu.expected_table(spec.id, start, now).num_rows
        emu.set_now(now + timedelta(hours=7))
        n1 = emu.expected_table(spec.id, start, now).num_rows  # same window, later clock
        assert n1 > n0
        emu.set_now(now + timedelta(hours=7, minutes=1))
        assert emu.expected_table(spec.id, start, now).num_rows == n1  # fully arrived


def test_stats_and_rewind(fresh_emu):
    import requests

    from .conftest import USER_HEADERS

    emu = fresh_emu
    emu.stats.reset()
    spec = stream_of(emu, "activity", 0)
    requests.get(
        f"{emu.url}/v2/streams/{spec.id}", headers=USER_HEADERS, params={"limit": 1}, timeout=10
    )
    assert emu.stats.count("/v2/streams") == 1 and emu.stats.log[0][3] == 200
    n = emu.expected_table(spec.id, emu.cohort.data_start, emu.config.now).num_rows
    emu.set_now(emu.config.now - timedelta(days=1))
    assert emu.expected_table(spec.id, emu.cohort.data_start, emu.config.now).num_rows < n
