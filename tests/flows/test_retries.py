"""A chunk that fails transiently (every HTTP attempt of one request answered 500) is
retried inside its work unit: the retry fetches only that chunk's remaining windows,
never the unit's other chunks, on the thread runner and on Dask worker processes
alike (no memo of what landed lives in any process). Requests are counted at the
emulator, over real HTTP."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from urllib.parse import unquote

import pytest
from prefect.task_runners import ThreadPoolTaskRunner

from rune_emulator.errors import ApiError
from rune_lake.flows import run, runners
from rune_lake.flows.refresh import refresh
from tests.flows.conftest import emulator
from tests.truth import assert_lake_equals_truth, category

CATEGORIES = ["vitals", "neural", "symptom"]
#: HTTP attempts per request in the flow tests (tests/flows/conftest.py api_env)
ATTEMPTS = 4


def data_requests(emu) -> Counter:
    """Data requests per stream id: ``/v2/streams/<id>`` (no availability or aggregates)."""
    out: Counter = Counter()
    for _m, path, _q, _s in emu.stats.log:
        parts = path.split("/")
        if len(parts) == 4 and parts[1:3] == ["v2", "streams"]:
            out[unquote(parts[3])] += 1
    return out


def fail_requests(emu, stream_id: str, n: int) -> list[int]:
    """The next ``n`` requests for ``stream_id`` answer 500 (an outage that outlives one
    request's HTTP retries), then the stream heals. Returns the count left (a list, so
    the test can see it reach 0)."""
    real = emu.state.stream
    left = [n]
    lock = threading.Lock()

    def flaky(principal, sid):
        spec = real(principal, sid)
        if sid == stream_id:
            with lock:
                if left[0] > 0:
                    left[0] -= 1
                    raise ApiError(500, "internal error (injected, heals)")
        return spec

    emu.state.stream = flaky
    return left


def _refresh(lake: str, task_runner):
    rep = refresh.with_options(task_runner=task_runner)(
        lake=lake, categories=CATEGORIES, include_events=False
    )
    assert rep.ok, rep.text()
    return rep


def _check_retried_alone(tmp_path, make_runner) -> None:
    with emulator(patients=1, days=2) as emu:
        clean = _refresh(str(tmp_path / "clean"), make_runner())
        want = data_requests(emu)
        light = [s for s in emu.cohort.streams if category(s) in CATEGORIES]
        assert clean.tasks < clean.chunks, "the chunks must share units for this test"
        bad = sorted(s.id for s in light if category(s) == "neural")[0]
        assert want[bad] > 0

        emu.stats.reset()
        left = fail_requests(emu, bad, ATTEMPTS)
        lake = str(tmp_path / "lake")
        rep = _refresh(lake, make_runner())
        got = data_requests(emu)
        assert left == [0], "the fault never fired"
        assert (rep.rows, rep.windows_landed) == (clean.rows, clean.windows_landed)
        # the failed chunk ran again (its failed request: ATTEMPTS more); nothing else did
        assert got[bad] == want[bad] + ATTEMPTS, (got[bad], want[bad])
        assert {k: v for k, v in got.items() if k != bad} == {
            k: v for k, v in want.items() if k != bad
        }
        for s in light:
            assert_lake_equals_truth(lake, emu, s)


def test_a_transient_chunk_failure_is_retried_alone_on_threads(tmp_path):
    _check_retried_alone(tmp_path, lambda: ThreadPoolTaskRunner(max_workers=2))


@pytest.mark.slow
def test_a_transient_chunk_failure_is_retried_alone_on_dask(tmp_path):
    _check_retried_alone(tmp_path, lambda: runners.dask_task_runner(n_workers=2))


def test_an_outage_longer_than_the_retries_is_reported_and_the_rest_lands(tmp_path, caplog):
    """Failing more requests than a unit's retries absorb (tests: 1 retry): the chunk is
    reported, the unit's other chunks land, each fetched once. Each unit logs one record,
    a line per chunk, the failed one marked."""
    caplog.set_level(logging.INFO, logger="rune_io.pipeline")
    with emulator(patients=1, days=2) as emu:
        light = [s for s in emu.cohort.streams if category(s) in CATEGORIES]
        bad = sorted(s.id for s in light if category(s) == "neural")[0]
        fail_requests(emu, bad, 10 * ATTEMPTS)
        state = refresh.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(
            lake=str(tmp_path / "lake"),
            categories=CATEGORIES,
            include_events=False,
            return_state=True,
        )
        exc = state.result(raise_on_failure=False)
        assert isinstance(exc, run.IncompleteRun), exc
        assert {f["stream"] for f in exc.report.failures} == {bad}
        got = data_requests(emu)
        assert got[bad] == 2 * ATTEMPTS  # the first attempt and one retry, ATTEMPTS each
        units = [
            r.getMessage().splitlines()
            for r in caplog.records
            if r.name == "rune_io.pipeline" and r.levelno == logging.INFO
        ]
        assert len(units) == exc.report.tasks
        lines = [line for unit in units for line in unit[1:]]
        assert len(lines) == exc.report.chunks
        assert len([line for line in lines if "(failed: " in line]) == 1
        assert sum(", 1 failed:" in unit[0] for unit in units) == 1
        for s in light:
            if s.id != bad:
                assert_lake_equals_truth(str(tmp_path / "lake"), emu, s)


def test_progress_reaches_an_observer_passed_in(tmp_path):
    seen: list[tuple[str, int, int]] = []
    with emulator(patients=1, days=1):
        with run.progress_to(lambda what, done, total: seen.append((what, done, total))):
            rep = _refresh(str(tmp_path / "lake"), ThreadPoolTaskRunner(max_workers=2))
        fetch = [s for s in seen if s[0].startswith("refresh ")]
        assert any(s[0].startswith("discover ") for s in seen), seen
        assert fetch[0][1] == 0 and fetch[-1][1:] == (rep.tasks, rep.tasks), fetch
        seen.clear()
        _refresh(str(tmp_path / "other"), ThreadPoolTaskRunner(max_workers=2))  # outside
        assert seen == []
