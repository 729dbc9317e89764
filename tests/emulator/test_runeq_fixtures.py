"""The emulator's responses have the keys, types and nesting of the public SDK's own
mocked responses (runeq-python ``tests/resources/*.py``, vendored in ``fixtures/``)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

runeq = pytest.importorskip("runeq")

from runeq import initialize  # noqa: E402
from runeq.resources import client as runeq_client  # noqa: E402
from runeq.resources.event import get_patient_events  # noqa: E402
from runeq.resources.org import get_orgs  # noqa: E402
from runeq.resources.patient import get_all_patients, get_patient  # noqa: E402
from runeq.resources.stream import get_stream_availability, get_stream_data  # noqa: E402
from runeq.resources.stream_metadata import (  # noqa: E402
    get_all_stream_types,
    get_stream_metadata,
)
from runeq.resources.user import get_current_user  # noqa: E402

from rune_emulator import (  # noqa: E402
    DEMO_ACCESS_TOKEN_ID,
    DEMO_ACCESS_TOKEN_SECRET,
    EmulatorConfig,
    running_emulator,
)

from .conftest import busy_day, gql, stream_of  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z")


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def same_shape(want, got, path: str = "$", exact_keys: bool = False) -> list[str]:
    """Differences in keys, JSON types and nesting (null matches anything)."""
    if want is None or got is None:
        return []
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: object expected, got {type(got).__name__}"]
        out = [f"{path}.{k}: missing" for k in want if k not in got]
        if exact_keys:
            out += [f"{path}.{k}: not in the fixture" for k in got if k not in want]
        for k in want:
            if k in got:
                out += same_shape(want[k], got[k], f"{path}.{k}", exact_keys)
        return out
    if isinstance(want, list):
        if not isinstance(got, list):
            return [f"{path}: array expected, got {type(got).__name__}"]
        return same_shape(want[0], got[0], f"{path}[0]", exact_keys) if want and got else []
    kinds = {bool: "bool", int: "number", float: "number", str: "string"}
    if kinds[type(want)] != kinds.get(type(got)):
        return [f"{path}: {kinds[type(want)]} expected, got {type(got).__name__} {got!r}"]
    return []


@pytest.fixture(scope="module")
def recorded(monkeypatch_module):
    """An emulator, runeq initialised against it, and every GraphQL response recorded."""
    calls: list[dict] = []
    real = runeq_client.GraphClient.execute

    def execute(self, statement, **variables):
        result = real(self, statement, **variables)
        calls.append(copy.deepcopy(result))  # the SDK edits responses in place
        return result

    monkeypatch_module.setattr(runeq_client.GraphClient, "execute", execute)
    cfg = EmulatorConfig(seed=7, patients=3, days=2, page_size=10_000, motion_hours=0.3)
    with running_emulator(cfg) as e:
        initialize(
            access_token_id=DEMO_ACCESS_TOKEN_ID,
            access_token_secret=DEMO_ACCESS_TOKEN_SECRET,
            stream_url=e.url,
            graph_url=e.url,
        )
        yield e, calls


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _graphql_calls(emu, calls_append) -> dict:
    p = emu.cohort.patients[0]
    start = emu.cohort.data_start.timestamp()
    return {
        "user": lambda: get_current_user(),
        # runeq 0.18.1 finds an org through memberships; the fixture's SDK version
        # asked the ``org`` root with this selection
        "org": lambda: calls_append(
            gql(emu, "{ org { id created_at: created name: displayName } }")["data"]
        ),
        "orgs": lambda: get_orgs(),
        "patient": lambda: get_patient(p.id),
        "all_patients": lambda: get_all_patients(),
        "stream_types": lambda: get_all_stream_types(),
        "stream_list_by_ids": lambda: get_stream_metadata([s.id for s in emu.stream_specs[:2]]),
        "events": lambda: get_patient_events(p.id, start, emu.now_ns() / 1e9),
    }


@pytest.mark.parametrize(
    "name",
    [
        "user",
        "org",
        "orgs",
        "patient",
        "all_patients",
        "stream_types",
        "stream_list_by_ids",
        "events",
    ],
)
def test_graphql_responses_match_the_sdk_fixtures(recorded, name):
    emu, calls = recorded
    want = fixture(name)
    assert want["_source"].startswith("rune-labs/runeq-python tests/resources/")
    calls.clear()
    _graphql_calls(emu, calls.append)[name]()
    root = next(iter(want["response"]))
    got = [c for c in calls if root in c]
    assert got, f"no {root} response recorded"
    problems = same_shape(want["response"], got[0])
    assert not problems, problems


def test_v2_json_responses_match_the_sdk_fixtures(recorded):
    emu, _ = recorded
    spec = stream_of(emu, "motion", 0, measurement="user", axis="z")
    a = busy_day(emu, spec)
    page = next(get_stream_data(spec.id, start_time=a, end_time=a + 86_400, format="json", limit=5))
    want = fixture("stream_data_json")["response"]
    assert not same_shape(want, page, exact_keys=True)
    assert all(ISO.fullmatch(t) for t in page["data"]["time"])
    (avail,) = list(get_stream_availability(spec.id, a, a + 86_400, resolution=3600, format="json"))
    assert not same_shape(fixture("availability_json")["response"], avail, exact_keys=True)


def test_v2_csv_responses_match_the_sdk_fixtures(recorded):
    emu, _ = recorded
    spec = stream_of(emu, "motion", 0, measurement="gravity", axis="x")
    a = busy_day(emu, spec)
    text = next(get_stream_data(spec.id, start_time=a, end_time=a + 86_400, limit=200))
    want = fixture("stream_data_csv")["response"].splitlines()
    lines = text.splitlines()
    assert lines[0] == want[0]
    for line in lines[1:]:
        t, v, d = line.split(",")
        assert ISO.fullmatch(t) and repr(float(v)) == v and d == "20000000"
    (avail,) = list(get_stream_availability(spec.id, a, a + 86_400, resolution=3600))
    want = fixture("availability_csv")["response"].splitlines()
    assert avail.splitlines()[0] == want[0]
    assert all(ISO.fullmatch(x.split(",")[0]) for x in avail.splitlines()[1:])
