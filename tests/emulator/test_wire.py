"""The wire, cell by cell, against the ground truth: every stream type the cohort serves,
every timestamp dimension in every ``timestamp`` mode, repr floats, bool, dict cells."""

from __future__ import annotations

import csv
import io
import json
import time

import pyarrow as pa
import pytest
import requests

from rune_emulator import EmulatorConfig, running_emulator
from rune_emulator.truth import TRUTH_TYPES

from .conftest import USER_HEADERS, iso_to_ns, stream_of

DAY = 86_400


def _rows(emu, spec, **params) -> tuple[list[str], list[list[str]]]:
    r = requests.get(
        f"{emu.url}/v2/streams/{spec.id}", params=params, headers=USER_HEADERS, timeout=30
    )
    assert r.status_code == 200, r.text
    assert "X-Rune-Next-Page-Token" not in r.headers
    header, *rows = list(csv.reader(io.StringIO(r.text)))
    return header, rows


def _parse(cell: str, arrow_type: pa.DataType, ts_mode: str, is_ts: bool):
    if is_ts:
        return iso_to_ns(cell) if ts_mode == "iso" else int(cell)
    if arrow_type == pa.float64():
        assert repr(float(cell)) == cell, cell  # repr text: shortest round trip
        return float(cell)
    if arrow_type == pa.int64():
        return int(cell)
    if arrow_type == pa.bool_():
        assert cell in ("true", "false"), cell
        return cell == "true"
    return cell


@pytest.mark.parametrize("ts_mode", ["iso", "unixns"])
def test_every_served_stream_type_equals_the_truth_cell_by_cell(emu, ts_mode):
    pid = emu.cohort.patients[0].id
    a = emu.cohort.data_start.timestamp()
    by_type = {}
    for spec in emu.cohort.streams_of(pid):
        if spec.kind != "motion":  # the 50 Hz streams are checked in test_v2
            by_type.setdefault((spec.meta.stream_type.id, spec.with_duration), spec)
    assert {t for t, _ in by_type} >= {"span", "event", "voltage-spectrum", "boolean", "count"}
    for spec in by_type.values():
        truth = emu.expected_table(spec.id, a, a + 3 * DAY)
        header, rows = _rows(emu, spec, start_time=a, end_time=a + 3 * DAY, timestamp=ts_mode)
        assert header == spec.columns == truth.column_names
        assert len(rows) == truth.num_rows > 0, spec.meta.stream_type.id
        dims = {d.identifier: d.data_type for d in spec.meta.stream_type.dimensions}
        for j, field in enumerate(truth.schema):
            if field.name != "measurement_duration_ns":
                assert field.type == TRUTH_TYPES[dims[field.name]]
            is_ts = dims.get(field.name) == "timestamp"
            got = [_parse(r[j], field.type, ts_mode, is_ts) for r in rows]
            assert got == truth.column(j).to_pylist(), (spec.meta.stream_type.id, field.name)


def test_span_timestamps_in_every_mode(emu):
    spec = stream_of(emu, "hk_sleep", 0)
    a = emu.cohort.data_start.timestamp()
    truth = emu.expected_table(spec.id, a, a + 3 * DAY)
    names = ["start_time_min", "start_time", "end_time", "end_time_max"]
    for mode in ("iso", "unix", "unixns"):
        header, rows = _rows(emu, spec, start_time=a, end_time=a + 3 * DAY, timestamp=mode)
        assert header[:4] == names and "time" not in header
        for j, name in enumerate(names):
            want = truth.column(name).to_pylist()
            cells = [r[j] for r in rows]
            if mode == "iso":
                assert all(c.endswith("Z") for c in cells) and [iso_to_ns(c) for c in cells] == want
            elif mode == "unixns":
                assert [int(c) for c in cells] == want
            else:
                assert [float(c) for c in cells] == [w / 1e9 for w in want]
    assert any(r[0] != r[1] for r in rows)  # some spans have fuzzy bounds


def test_dict_cells_are_quoted_json_and_spectra_share_a_time(emu):
    spec = stream_of(emu, "report", 0)
    a = emu.cohort.data_start.timestamp()
    r = requests.get(
        f"{emu.url}/v2/streams/{spec.id}",
        params={"start_time": a, "end_time": a + 3 * DAY},
        headers=USER_HEADERS,
        timeout=30,
    )
    line = r.text.splitlines()[1]
    assert line.split(",", 1)[1].startswith('"{""') and line.endswith('}"')
    payload = json.loads(next(csv.reader([line]))[1])
    assert payload["log_type"] == "start"
    spectrum = stream_of(emu, "spectrum", 0)
    truth = emu.expected_table(spectrum.id, a, a + 3 * DAY)
    times = truth.column("time").to_pylist()
    assert len(times) >= 100 and len(set(times)) == len(times) // 100


def test_spectrum_pages_split_inside_one_time():
    cfg = EmulatorConfig(seed=2, patients=1, days=3, page_size=30)
    with running_emulator(cfg) as emu:
        spec = stream_of(emu, "spectrum", 0)
        a = emu.cohort.data_start.timestamp()
        truth = emu.expected_table(spec.id, a, a + 3 * DAY)
        params = {"start_time": a, "end_time": a + 3 * DAY, "timestamp": "unixns"}
        rows, pages = [], 0
        while True:
            r = requests.get(
                f"{emu.url}/v2/streams/{spec.id}", params=params, headers=USER_HEADERS, timeout=30
            )
            assert r.status_code == 200, r.text
            rows += r.text.splitlines()[1:]
            pages += 1
            token = r.headers.get("X-Rune-Next-Page-Token")
            if not token:
                break
            params["page_token"] = token
        assert pages > 3 and len(rows) == truth.num_rows
        assert [float(x.split(",")[1]) for x in rows] == truth.column("frequency").to_pylist()


def test_unknown_path_is_the_json_error_body(emu):
    for path in ("/v3/streams", "/v2/nope", "/"):
        r = requests.get(f"{emu.url}{path}", headers=USER_HEADERS, timeout=10)
        assert r.status_code == 404
        assert r.json()["success"] is False and r.json()["error"]["type"] == "NotFound"


def test_latency_ms_delays_every_response():
    with running_emulator(EmulatorConfig(seed=1, patients=1, days=1, latency_ms=250)) as emu:
        for path in ("/health", "/v2/nope"):
            t0 = time.perf_counter()
            requests.get(f"{emu.url}{path}", headers=USER_HEADERS, timeout=10)
            assert time.perf_counter() - t0 >= 0.25
    with running_emulator(EmulatorConfig(seed=1, patients=1, days=1)) as emu:
        t0 = time.perf_counter()
        requests.get(f"{emu.url}/health", timeout=10)
        assert time.perf_counter() - t0 < 0.25


def test_cli_latency_option_and_bad_now():
    import subprocess
    import sys

    from rune_emulator.cli import build_config

    assert build_config(latency_ms=80).latency_ms == 80
    res = subprocess.run(
        [sys.executable, "-m", "rune_emulator", "--now", "yesterday"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "--now" in res.stderr and "Traceback" not in res.stderr


def test_all_stream_types_option_serves_every_timed_catalog_type():
    cfg = EmulatorConfig(seed=3, patients=1, days=1, all_stream_types=True)
    with running_emulator(cfg) as emu:
        served = {s.meta.stream_type.id for s in emu.stream_specs}
        assert served == set(emu.cohort.stream_types_by_id) - {"bytes"}
        a = emu.cohort.data_start.timestamp()
        for spec in emu.stream_specs:
            if spec.kind != "tour":
                continue
            truth = emu.expected_table(spec.id, a, a + DAY)
            header, rows = _rows(emu, spec, start_time=a, end_time=a + DAY, timestamp="unixns")
            assert header == truth.column_names and len(rows) == truth.num_rows > 0
            dims = {d.identifier: d.data_type for d in spec.meta.stream_type.dimensions}
            for j, field in enumerate(truth.schema):
                got = [
                    _parse(r[j], field.type, "unixns", dims[field.name] == "timestamp")
                    for r in rows
                ]
                assert got == truth.column(j).to_pylist(), (spec.meta.stream_type.id, field.name)
