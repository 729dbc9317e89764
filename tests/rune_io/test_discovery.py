"""Discovery over real HTTP: overlapped requests, the API's own filters, ids without
listing the org, and the one-patient rule of client keys."""

from __future__ import annotations

import threading
import time

import pytest

from rune_io.api.client import RuneClient
from rune_io.api.http import HttpClient
from rune_io.errors import ConfigError
from rune_io.pipeline import Selection
from rune_io.pipeline.discover import discover

from .conftest import emu_settings


def _graphql(emu) -> int:
    return sum(1 for (_m, path, _q, _s) in emu.stats.log if path.startswith("/graphql"))


@pytest.fixture
def in_flight(monkeypatch):
    """Every POST waits 30 ms (a distant API); records the most requests in flight."""
    seen = {"now": 0, "max": 0}
    lock = threading.Lock()
    real = HttpClient.request

    def request(self, method, *a, **kw):
        if method != "POST":
            return real(self, method, *a, **kw)
        with lock:
            seen["now"] += 1
            seen["max"] = max(seen["max"], seen["now"])
        try:
            time.sleep(0.03)
            return real(self, method, *a, **kw)
        finally:
            with lock:
                seen["now"] -= 1

    monkeypatch.setattr(HttpClient, "request", request)
    return seen


def test_discovery_overlaps_requests_and_finds_the_same(emu, in_flight):
    with RuneClient(emu_settings(emu)) as rc:
        patients, streams = discover(rc.graph, Selection(), concurrency=1)
        assert in_flight["max"] == 1
        in_flight["max"] = 0
        progress = []
        p4, s4 = discover(
            rc.graph, Selection(), concurrency=4, progress=lambda *a: progress.append(a)
        )
    assert 1 < in_flight["max"] <= 4
    assert (p4, s4) == (patients, streams)
    assert [p.id for p in patients] == sorted(p.id for p in emu.cohort.patients)
    assert [s.id for s in streams] == sorted(s.id for s in emu.cohort.streams)
    assert progress[-1] == ("streams", len(patients), len(patients))


def test_patient_ids_and_one_category_use_the_api_filters(emu, monkeypatch):
    from rune_io.api.graph import GraphClient

    def no_listing(self):
        raise AssertionError("the org must not be listed when patient ids are given")

    monkeypatch.setattr(GraphClient, "patient_list", no_listing)
    pid = sorted(p.id for p in emu.cohort.patients)[1]
    with RuneClient(emu_settings(emu)) as rc:
        emu.stats.reset()
        patients, streams = discover(rc.graph, Selection(patients=(pid,), categories=("vitals",)))
        requests = _graphql(emu)
    want = sorted(
        s.id for s in emu.cohort.streams if s.patient_id == pid and s.category == "vitals"
    )
    assert [p.id for p in patients] == [pid] and [s.id for s in streams] == want
    # patient(id) pages its devices (2 a page), then one filtered streamList page
    devices = len(emu.cohort.patient(pid).devices)
    assert requests == -(-devices // 2) + 1


def test_unknown_patient_is_one_line(emu):
    with (
        RuneClient(emu_settings(emu)) as rc,
        pytest.raises(ConfigError, match="unknown patient id 'nope'"),
    ):
        discover(rc.graph, Selection(patients=("nope",)))


def test_client_key_discovers_its_patient_only(emu):
    with RuneClient(emu_settings(emu, "client_keys")) as rc:
        with pytest.raises(ConfigError, match="exactly one patient.*--patient"):
            discover(rc.graph, Selection())
        own = emu.cohort.client_key_patient_id
        patients, streams = discover(rc.graph, Selection(patients=(own,)))
    assert [p.id for p in patients] == [own]
    assert [s.id for s in streams] == sorted(
        s.id for s in emu.cohort.streams if s.patient_id == own
    )
