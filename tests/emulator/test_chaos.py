"""Chaos kinds and deterministic per-stream faults. Failures are always detectable."""

from __future__ import annotations

import io
import time

import pandas as pd
import pytest
import requests

from rune_emulator import ChaosConfig

from .conftest import USER_HEADERS, busy_day, gql, stream_of

DAY = 86_400


def _get(emu, spec, **params):
    return requests.get(
        f"{emu.url}/v2/streams/{spec.id}", params=params, headers=USER_HEADERS, timeout=10
    )


@pytest.mark.parametrize("kind,status", [("429", 429), ("500", 500), ("503", 503)])
def test_error_kinds(fresh_emu, kind, status):
    emu = fresh_emu
    emu.set_chaos(ChaosConfig(**{f"p_{kind}": 1.0}, retry_after_s=0.25))
    r = _get(emu, stream_of(emu, "hk_pressure", 0))
    assert r.status_code == status and r.json()["success"] is False
    if status in (429, 503):
        assert float(r.headers["Retry-After"]) == 0.25
    assert emu.stats.chaos[kind] == 1


@pytest.mark.parametrize("kind", ["reset", "truncate"])
def test_broken_bodies_raise_in_client(fresh_emu, kind):
    emu = fresh_emu
    spec = stream_of(emu, "motion", 1, measurement="user", axis="x")
    emu.set_chaos(ChaosConfig(**{f"p_{kind}": 1.0}))
    with pytest.raises(requests.exceptions.RequestException):
        _get(emu, spec, start_time=busy_day(emu, spec), limit=5000)
    with pytest.raises(requests.exceptions.RequestException):  # even a tiny body
        _get(emu, stream_of(emu, "hk_pressure", 0), limit=1)
    emu.set_chaos(None)
    assert _get(emu, spec, limit=1).status_code == 200


def test_delay_is_correct_and_slow(fresh_emu):
    emu = fresh_emu
    spec = stream_of(emu, "hk_pressure", 0)
    clean = _get(emu, spec, limit=100).content
    emu.set_chaos(ChaosConfig(p_delay=1.0, delay_s=0.3))
    t = time.monotonic()
    r = _get(emu, spec, limit=100)
    assert time.monotonic() - t >= 0.3 and r.status_code == 200 and r.content == clean


def test_uniform_chaos_is_seeded_and_200s_are_correct(fresh_emu):
    emu = fresh_emu
    spec = stream_of(emu, "hk_heart_rate", 1)
    a = busy_day(emu, spec)
    clean = _get(emu, spec, start_time=a, end_time=a + DAY).content

    def run():
        emu.set_chaos(ChaosConfig.uniform(0.6, seed=7, delay_s=0.01))
        outcomes = []
        for _ in range(30):
            try:
                r = _get(emu, spec, start_time=a, end_time=a + DAY)
                outcomes.append(r.status_code)
                if r.status_code == 200:
                    assert r.content == clean
            except requests.exceptions.RequestException:
                outcomes.append("broken")
        return outcomes

    first, second = run(), run()
    assert first == second
    assert {200, "broken"} <= set(first) and len(set(first)) >= 4


def test_chaos_can_spare_graphql(fresh_emu):
    emu = fresh_emu
    emu.set_chaos(ChaosConfig(p_500=1.0, apply_to_graphql=False))
    assert "errors" not in gql(emu, "{ user { id } }")
    emu.set_chaos(ChaosConfig(p_500=1.0))
    r = requests.post(
        f"{emu.url}/graphql", json={"query": "{ user { id } }"}, headers=USER_HEADERS, timeout=10
    )
    assert r.status_code == 500


def _csv(emu, spec, **params):
    a = busy_day(emu, spec)
    r = _get(emu, spec, start_time=a, end_time=a + DAY, limit=10, **params)
    return r


def test_fault_always_500(fresh_emu):
    emu = fresh_emu
    spec = stream_of(emu, "symptom", 0, measurement="tremor", severity="all")
    emu.set_fault(spec.id, "always_500")
    for _ in range(3):
        assert _csv(emu, spec).status_code == 500
    other = stream_of(emu, "symptom", 0, measurement="dyskinesia")
    assert _csv(emu, other).status_code == 200
    emu.set_fault(spec.id, None)
    assert _csv(emu, spec).status_code == 200


def test_fault_shapes(fresh_emu):
    emu = fresh_emu
    spec = stream_of(emu, "hk_heart_rate", 0)
    clean = pd.read_csv(io.StringIO(_csv(emu, spec).text))
    emu.set_fault(spec.id, "non_numeric")
    text = _csv(emu, spec).text
    assert text.splitlines()[1].split(",")[1] == "abc"
    assert text.splitlines()[2:] == _csv_lines_after(emu, spec, clean)
    emu.set_fault(spec.id, "missing_column")
    assert _csv(emu, spec).text.splitlines()[0] == "time,rate"
    emu.set_fault(spec.id, "extra_column")
    df = pd.read_csv(io.StringIO(_csv(emu, spec).text))
    assert list(df.columns) == ["time", "rate", "measurement_duration_ns", "extra_value"]
    assert df["extra_value"].isna().any() and df["extra_value"].dtype.kind == "f"
    assert (df["rate"] == clean["rate"]).all()
    emu.set_fault(spec.id, "type_change")
    df = pd.read_csv(io.StringIO(_csv(emu, spec).text))
    assert df["rate"].astype(str).str.startswith("v").all()
    with pytest.raises(ValueError):
        emu.set_fault(spec.id, "bogus")


def _csv_lines_after(emu, spec, clean):
    emu.set_fault(spec.id, None)
    lines = _csv(emu, spec).text.splitlines()[2:]
    emu.set_fault(spec.id, "non_numeric")
    return lines
