"""V1 readers: every paging mode of the seed document, over real HTTP (scripted server).

The emulator's V1 API is still a placeholder; these tests pin the seed's wire format.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from rune_io.api.client import RuneClient
from rune_io.api.retry import RetryPolicy
from rune_io.errors import DataError

from .conftest import Reply, make_settings

T0 = datetime(2026, 10, 30, tzinfo=UTC)
S0 = T0.timestamp()


@pytest.fixture
def client(server, fake_sleep):
    with RuneClient(
        make_settings(server.url), policy=RetryPolicy(max_attempts=2), sleep=fake_sleep
    ) as c:
        yield c


def accel_csv(i0: int, n: int) -> bytes:
    lines = [f"{S0 + (i0 + i) * 0.02:.2f},{i},{-i},0.5" for i in range(n)]
    return ("time,x,y,z\n" + "\n".join(lines) + "\n").encode()


def test_accel_csv_pages_until_empty(server, client):
    server.script(Reply(200, accel_csv(0, 3)), Reply(200, accel_csv(3, 2)), Reply(200, b""))
    batches = list(client.v1.accel("p1", "d#1", T0, T0 + timedelta(hours=1)))
    t = pa.Table.from_batches(batches)
    assert t.num_rows == 5 and t.column_names == ["time", "x", "y", "z"]
    assert t.schema.field("time").type == pa.timestamp("us", tz="UTC")
    assert t.column("time")[4].as_py() == T0 + timedelta(milliseconds=80)
    assert t.schema.field("x").type == pa.float64()
    paths = [s.path for s in server.seen]
    assert all(p.startswith("/v1/accel.csv?patient_id=p1&device_id=d%231") for p in paths)
    assert ["page=0" in paths[0], "page=1" in paths[1], "page=2" in paths[2]] == [True] * 3
    assert f"start_time={S0}" in paths[0] and "expression=accel" in paths[0]


def test_heartrate_json_next_page(server, client):
    def page(times, nxt=None):
        doc = {
            "success": True,
            "result": {"cardinality": len(times), "time": times, "bpm": [60] * len(times)},
        }
        if nxt is not None:
            doc["next_page"] = nxt
        return Reply(200, json.dumps(doc).encode())

    server.script(page([S0, S0 + 5], 1), page([S0 + 10], 2), page([]))
    t = pa.Table.from_batches(
        list(client.v1.heartrate(None, "d1", T0, T0 + timedelta(hours=1), fmt="json"))
    )
    assert t.column("bpm").to_pylist() == [60.0] * 3
    assert [s.path.split("page=")[1][:1] for s in server.seen] == ["0", "1", "2"]
    assert "patient_id" not in server.seen[0].path  # client key: patient inferred


def test_heartrate_csv_token_paging(server, client):
    server.script(
        Reply(200, b"time,bpm\n%f,61\n" % S0, {"X-Rune-Next-Page-Token": "abc"}),
        Reply(200, b"time,bpm\n%f,62\n" % (S0 + 5)),
    )
    t = pa.Table.from_batches(
        list(client.v1.heartrate("p", "d", T0, T0 + timedelta(hours=1), paging="token"))
    )
    assert t.column("bpm").to_pylist() == [61.0, 62.0]
    assert "page=" not in server.seen[0].path
    assert "next_page_token=abc" in server.seen[1].path and "page=" not in server.seen[1].path


def test_events_json_pages(server, client):
    ev = {"id": "e1", "event": "device.medication.levodopa", "time": S0}
    server.script(
        Reply(
            200, json.dumps({"success": True, "result": {"events": [ev]}, "next_page": 1}).encode()
        ),
        Reply(
            200, json.dumps({"success": True, "result": {"events": [ev | {"id": "e2"}]}}).encode()
        ),
    )
    got = list(client.v1.events("p", "d", T0, T0 + timedelta(days=1), event="device.medication"))
    assert [e["id"] for e in got] == ["e1", "e2"]
    assert "event=device.medication" in server.seen[0].path


def test_bad_v1_csv_is_data_error(server, client):
    server.script(*[Reply(200, b"x,y\n1,2\n")] * 2)
    with pytest.raises(DataError, match="no time column"):
        list(client.v1.accel("p", "d", T0, T0 + timedelta(hours=1)))


def test_bad_arguments(client):
    with pytest.raises(ValueError, match="paging"):
        list(client.v1.accel("p", "d", T0, T0, paging="cursor"))
    with pytest.raises(ValueError, match="partition_size"):
        list(client.v1.accel("p", "d", T0, T0, partition_size=10))
