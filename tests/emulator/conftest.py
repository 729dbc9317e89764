"""Shared fixtures: one emulator per test session, reached over real HTTP on 127.0.0.1."""

from __future__ import annotations

import pytest
import requests

from rune_emulator import (
    DEMO_ACCESS_TOKEN_ID,
    DEMO_ACCESS_TOKEN_SECRET,
    DEMO_CLIENT_ACCESS_KEY,
    DEMO_CLIENT_KEY_ID,
    DEMO_JWT,
    EmulatorConfig,
    running_emulator,
)

USER_HEADERS = {
    "X-Rune-User-Access-Token-Id": DEMO_ACCESS_TOKEN_ID,
    "X-Rune-User-Access-Token-Secret": DEMO_ACCESS_TOKEN_SECRET,
}
CLIENT_HEADERS = {
    "X-Rune-Client-Key-Id": DEMO_CLIENT_KEY_ID,
    "X-Rune-Client-Access-Key": DEMO_CLIENT_ACCESS_KEY,
}
JWT_HEADERS = {"X-Rune-User-Access-Token": DEMO_JWT}


@pytest.fixture(scope="session")
def emu():
    """A small emulator (3 patients, 3 days, 50k-row pages) shared by the session."""
    with running_emulator(EmulatorConfig(seed=0, patients=3, days=3, page_size=50_000)) as e:
        yield e


@pytest.fixture
def fresh_emu():
    """A private emulator for tests that move the clock or set faults/chaos."""
    with running_emulator(EmulatorConfig(seed=1, patients=2, days=2, page_size=20_000)) as e:
        yield e


@pytest.fixture
def http():
    with requests.Session() as s:
        yield s


def gql(emu, query: str, variables: dict | None = None, headers=None) -> dict:
    """POST a GraphQL query; returns the JSON body (asserting HTTP 200)."""
    r = requests.post(
        f"{emu.url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers=headers or USER_HEADERS,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def iso_to_ns(text: str) -> int:
    """Unix ns of a served ISO time (up to 7 fractional digits, ``Z`` or ``+HH:MM``)."""
    import re
    from datetime import datetime

    m = re.fullmatch(r"(.{19})(?:\.(\d{1,7}))?(Z|[+-]\d\d:\d\d)", text)
    assert m, text
    whole = datetime.fromisoformat(m[1] + ("+00:00" if m[3] == "Z" else m[3]))
    frac = int((m[2] or "").ljust(7, "0")) * 100
    return int(whole.timestamp()) * 1_000_000_000 + frac


def stream_of(emu, kind: str, patient_index: int = 0, **params):
    """The first stream of a patient with this generator kind (and parameters).

    Kinds: ``symptom``, ``motion``, ``report``, ``medication``, ``hk_*``, ``lfp``,
    ``spectrum``, ``therapy`` (see ``rune_emulator.cohort``).
    """
    pid = emu.cohort.patients[patient_index].id
    for spec in emu.cohort.specs.values():
        if spec.meta.patient_id == pid and spec.kind == kind:
            if all(spec.meta.params.get(k) == v for k, v in params.items()):
                return spec
    raise LookupError(kind)


def busy_day(emu, spec) -> float:
    """Unix start of a day on which ``spec`` has data."""
    store = emu.state.store
    day_s = 86_400
    start = emu.cohort.data_start.timestamp()
    for d in range(emu.config.days):
        a = start + d * day_s
        if store.count(spec, int(a * 1e9), int((a + day_s) * 1e9)) > 0:
            return a
    raise LookupError("no data")
