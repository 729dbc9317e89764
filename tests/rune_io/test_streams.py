"""V2 reads over real HTTP against the emulator: exactness, paging, auth, faults, chaos."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from rune_emulator import ChaosConfig
from rune_io.api.arrow_schema import stream_schema
from rune_io.api.client import RuneClient
from rune_io.api.retry import RetryPolicy
from rune_io.errors import AuthError, DataError, NotFound, ServerError, is_transient
from tests.rune_io.conftest import day_windows
from tests.truth import assert_equals_truth

from .conftest import EMU_PAGE_SIZE, emu_settings

DAY = datetime(2026, 10, 31, tzinfo=UTC)  # a full day of data (EmulatorConfig default clock)
S = 10**9


def accel(emu, patient: int = 0):
    pid = emu.cohort.patients[patient].id
    return next(
        s for s in emu.cohort.streams
        if s.patient_id == pid and s.stream_type.id == "acceleration"
    )  # fmt: skip


#: 90 minutes from the first watch recording of DAY (patient 0; ~13 pages): set per test
LO = HI = DAY


@pytest.fixture(autouse=True)
def _window(emu):
    global LO, HI
    t = emu.expected_table(accel(emu).id, DAY, DAY + timedelta(days=1)).column("time")
    LO = datetime.fromtimestamp(t[0].as_py() // S, UTC)
    HI = LO + timedelta(minutes=90)


def same(got: pa.Table, want: pa.Table) -> bool:
    assert_equals_truth(got, want)
    return True


def test_many_pages_equal_expected(emu, rc):
    stream = accel(emu)
    emu.stats.reset()
    batches = list(rc.streams.read(stream, LO, HI))
    table = pa.Table.from_batches(batches)
    expected = emu.expected_table(stream.id, LO, HI)
    assert table.num_rows == expected.num_rows > 5 * EMU_PAGE_SIZE
    assert same(table, expected)
    pages = emu.stats.count(path_prefix="/v2/streams")
    assert pages == len(batches) >= 6
    assert max(b.num_rows for b in batches) <= EMU_PAGE_SIZE


def test_every_stream_type_day_by_day(emu, rc):
    pid = emu.cohort.patients[0].id
    streams = [s for s in emu.cohort.streams if s.patient_id == pid]
    assert {s.stream_type.id for s in streams} >= {"acceleration", "rate-per-min", "span"}
    for stream in streams:
        if stream.stream_type.id == "acceleration":
            continue  # covered above; a whole day of it is the benchmark's job
        for lo, hi in day_windows(DAY - timedelta(days=1), DAY + timedelta(days=1)):
            got = rc.streams.read_table(stream, lo, hi)
            assert_equals_truth(got, emu.expected_table(stream.id, lo, hi), f"{stream.id} {lo}")


def test_empty_window_is_one_empty_batch(emu, rc):
    stream = accel(emu)
    night = DAY + timedelta(hours=2)  # watch off at night
    batches = list(rc.streams.read(stream, night, night + timedelta(hours=1)))
    assert [b.num_rows for b in batches] == [0]
    assert batches[0].schema == stream_schema(stream.stream_type)


def test_limit(emu, rc):
    stream = accel(emu)
    t = rc.streams.read_table(stream, LO, HI, limit=EMU_PAGE_SIZE + 5)
    assert same(t, emu.expected_table(stream.id, LO, HI).slice(0, EMU_PAGE_SIZE + 5))


def test_unknown_stream_is_not_found(emu, rc):
    from dataclasses import replace

    ghost = replace(accel(emu), id="0" * 64)
    with pytest.raises(NotFound) as ei:
        list(rc.streams.read(ghost, LO, HI))
    assert ei.value.status == 404 and not is_transient(ei.value)


@pytest.mark.parametrize("family", ["access_token", "client_keys", "jwt"])
def test_auth_modes(emu, family):
    pid = emu.cohort.client_key_patient_id
    stream = next(s for s in emu.cohort.streams if s.patient_id == pid)
    with RuneClient(emu_settings(emu, family)) as c:
        t = c.streams.read_table(stream, LO, LO + timedelta(minutes=10))
        assert same(t, emu.expected_table(stream.id, LO, LO + timedelta(minutes=10)))
        (meta,) = c.graph.streams_by_ids([stream.id])
        assert (meta.id, meta.patient_id, meta.parameters) == (
            stream.id, stream.patient_id, tuple(stream.parameters),
        )  # fmt: skip


def test_client_key_cannot_read_another_patient(emu):
    other = next(s for s in emu.cohort.streams if s.patient_id != emu.cohort.client_key_patient_id)
    with RuneClient(emu_settings(emu, "client_keys")) as c:
        with pytest.raises((AuthError, NotFound)) as ei:
            list(c.streams.read(other, LO, HI))
    assert ei.value.status in (403, 404)


@pytest.mark.parametrize("family", ["access_token", "client_keys", "jwt"])
def test_wrong_credentials_are_401_and_not_retried(emu, family, fake_sleep):
    bad = {
        "access_token": dict(access_token_secret="wrong-secret"),
        "client_keys": dict(client_access_key="wrong-secret"),
        "jwt": dict(jwt="wrong-secret"),
    }[family]
    emu.stats.reset()
    with RuneClient(emu_settings(emu, family, **bad), sleep=fake_sleep) as c:
        with pytest.raises(AuthError) as ei:
            list(c.streams.read(accel(emu), LO, HI))
        assert ei.value.status == 401 and "wrong-secret" not in str(ei.value)
        with pytest.raises(AuthError):
            c.graph.current_user()
    # one 401 each, never retried (count 401s only: a page prefetched by an earlier test's
    # reader may still land in the shared emulator's log)
    assert fake_sleep.waits == []
    assert [st for *_, st in emu.stats.log if st == 401] == [401, 401]


def test_always_500_exhausts_retries(emu, fake_sleep):
    stream = accel(emu)
    emu.set_fault(stream.id, "always_500")
    try:
        policy = RetryPolicy(max_attempts=3)
        with RuneClient(emu_settings(emu), policy=policy, sleep=fake_sleep) as c:
            with pytest.raises(ServerError) as ei:
                list(c.streams.read(stream, LO, HI))
        assert ei.value.status == 500 and is_transient(ei.value)
        assert len(fake_sleep.waits) == 2
    finally:
        emu.set_fault(stream.id, None)


@pytest.mark.parametrize("fault", ["non_numeric", "missing_column", "type_change"])
def test_malformed_pages_raise_data_error(emu, fake_sleep, fault):
    stream = accel(emu)
    if fault == "missing_column":  # the emulator drops the last column: make it a declared one
        stream = next(
            s for s in emu.cohort.streams
            if "measurement_duration_ns" not in emu.cohort.specs[s.id].columns
            and s.stream_type.dimensions[0].identifier == "time"
        )  # fmt: skip
    emu.set_fault(stream.id, fault)
    try:
        with RuneClient(emu_settings(emu, max_attempts=2), sleep=fake_sleep) as c:
            with pytest.raises(DataError) as ei:
                list(c.streams.read(stream, LO, HI))
        msg = str(ei.value)
        assert stream.id in msg and LO.isoformat() in msg and "page 0" in msg
        assert not ei.value.transient and fake_sleep.waits == []  # read again once, no retries
    finally:
        emu.set_fault(stream.id, None)


def test_extra_column_is_kept(emu, rc):
    stream = accel(emu)
    emu.set_fault(stream.id, "extra_column")
    try:
        t = rc.streams.read_table(stream, LO, LO + timedelta(minutes=30))
    finally:
        emu.set_fault(stream.id, None)
    want = emu.expected_table(stream.id, LO, LO + timedelta(minutes=30))
    assert t.column_names[-1] == "extra_value"
    assert same(t, want)


def test_chaos_run_equals_clean_run(emu, fake_sleep):
    pid = emu.cohort.patients[0].id
    streams = [s for s in emu.cohort.streams if s.patient_id == pid]
    windows = [(LO, HI)]

    def run() -> list[pa.Table]:
        with RuneClient(emu_settings(emu, max_attempts=12), sleep=fake_sleep) as c:
            return [c.streams.read_table(s, lo, hi) for s in streams for lo, hi in windows]

    emu.set_chaos(None)
    clean = run()
    emu.stats.reset()
    emu.set_chaos(ChaosConfig.uniform(0.2, seed=1, delay_s=0.01))
    try:
        chaotic = run()
        faults = sum(emu.stats.chaos.values())
    finally:
        emu.set_chaos(None)
    assert faults > 5, emu.stats.chaos  # the run really was chaotic
    assert len(fake_sleep.waits) >= faults - emu.stats.chaos.get("delay", 0)
    assert all(a.equals(b) for a, b in zip(clean, chaotic, strict=True))
    assert any(t.num_rows for t in clean)
    assert sum(t.num_rows for t in clean) > 0
