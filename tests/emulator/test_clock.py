"""The clock bounds the data; late-arriving data appears as the clock advances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rune_emulator import EmulatorConfig, running_emulator

from .conftest import stream_of


def test_late_data_for_past_days_appears_later():
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    cfg = EmulatorConfig(seed=3, patients=3, days=2, now=now, late_data_hours=6)
    with running_emulator(cfg) as emu:
        now_ns = int(now.timestamp()) * 10**9
        day = now_ns // (86_400 * 10**9)
        # a dense all-day stream whose device is late today by more than 45 minutes
        spec = next(
            s
            for s in emu.stream_specs
            if s.kind in ("hk_pressure", "therapy", "hk_steps")
            and emu.state.store.cutoff_ns(s, day, now_ns) < now_ns - 2700 * 10**9
        )
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
    spec = stream_of(emu, "hk_pressure", 0)
    requests.get(
        f"{emu.url}/v2/streams/{spec.id}", headers=USER_HEADERS, params={"limit": 1}, timeout=10
    )
    assert emu.stats.count("/v2/streams") == 1 and emu.stats.log[0][3] == 200
    n = emu.expected_table(spec.id, emu.cohort.data_start, emu.config.now).num_rows
    emu.set_now(emu.config.now - timedelta(days=1))
    assert emu.expected_table(spec.id, emu.cohort.data_start, emu.config.now).num_rows < n


def test_advancing_clock_serves_new_minutes_to_a_later_refresh():
    """Issue 12: the standalone emulator's clock is not frozen at start."""
    import requests

    from .conftest import USER_HEADERS

    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    cfg = EmulatorConfig(seed=4, patients=1, days=1, now=now, clock_advances=True)
    with running_emulator(cfg) as emu:
        wall = [0]
        emu.clock.use_wall(lambda: wall[0])
        t0 = emu.now_ns()  # a few ms after `now`: it advanced until use_wall
        assert 0 < t0 - int(now.timestamp()) * 10**9 < 60 * 10**9
        spec = stream_of(emu, "hk_pressure", 0)  # a sample every 30 min, all day
        url = f"{emu.url}/v2/streams/{spec.id}"
        params = {"timestamp": "unixns"}

        def rows() -> list[str]:
            r = requests.get(url, params=params, headers=USER_HEADERS, timeout=10)
            return r.text.splitlines()[1:]

        first = rows()
        assert int(first[-1].split(",")[0]) < t0
        wall[0] += 31 * 60 * 10**9  # 31 minutes of wall time later
        later = rows()
        assert later[: len(first)] == first and len(later) == len(first) + 1
        assert emu.now_ns() == t0 + 31 * 60 * 10**9
        emu.set_now(now)  # an explicit instant pins the clock again
        wall[0] += 3600 * 10**9
        assert emu.now_ns() == int(now.timestamp()) * 10**9


def test_standalone_clock_advances_with_wall_time_and_now_pins_it():
    import re
    import subprocess
    import sys
    import time

    import requests

    def health(args):
        proc = subprocess.Popen(
            [sys.executable, "-m", "rune_emulator", "--port", "0", "--patients", "1", *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            banner = "".join(proc.stdout.readline() for _ in range(3))
            url = re.search(r"http://127\.0\.0\.1:\d+", banner).group(0)
            seen = []
            for _ in range(2):
                for _ in range(100):
                    try:
                        seen.append(requests.get(f"{url}/health", timeout=5).json()["now"])
                        break
                    except requests.ConnectionError:
                        time.sleep(0.05)
                time.sleep(1.2)
            return banner, seen
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    banner, (a, b) = health([])
    assert "advances with wall time" in banner and b - a >= 1.0
    assert abs(a - time.time()) < 120  # starts at the current minute
    banner, (a, b) = health(["--now", "2026-06-01T12:00:00Z"])
    assert "pinned" in banner and a == b == datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()
