"""V2 page parsing and paging against a scripted server (no emulator needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pytest

from rune_io.api.arrow_schema import stream_schema
from rune_io.api.client import RuneClient
from rune_io.api.models import Dimension, StreamMeta, StreamType
from rune_io.api.retry import RetryPolicy
from rune_io.api.streams import CsvPageParser
from rune_io.errors import DataError

from .conftest import Reply, make_settings

ST = StreamType(
    "mixed",
    "Mixed",
    "",
    (
        Dimension("time", "timestamp"),
        Dimension("value", "sfloat"),
        Dimension("count", "uint"),
        Dimension("state", "enum"),
        Dimension("ok", "bool"),
    ),
)
STREAM = StreamMeta("s#1/x", "p1", "d1", "alg", ST, (("category", "c"), ("measurement", "m")))
T0 = datetime(2026, 10, 30, tzinfo=UTC)
NS0 = int(T0.timestamp()) * 10**9
HEADER = b"time,value,count,state,ok\n"


def rows(start: int, n: int) -> bytes:
    return b"".join(
        f"{NS0 + (start + i) * 20_000_000},{(start + i) * 0.5},{start + i},s{i % 3},{'true' if i % 2 else 'false'}\n".encode()
        for i in range(n)
    )


@pytest.fixture
def client(server, fake_sleep):
    policy = RetryPolicy(max_attempts=3, jitter=False)
    with RuneClient(make_settings(server.url), policy=policy, sleep=fake_sleep) as c:
        yield c


def test_pages_become_typed_batches(server, client):
    server.script(
        Reply(200, HEADER + rows(0, 3), {"X-Rune-Next-Page-Token": "t1"}),
        Reply(200, HEADER + rows(3, 2)),
    )
    batches = list(client.streams.read(STREAM, T0, T0 + timedelta(hours=1)))
    assert [b.num_rows for b in batches] == [3, 2]
    table = pa.Table.from_batches(batches)
    assert table.schema == stream_schema(ST)
    assert table.column("time")[4].as_py() == T0 + timedelta(milliseconds=80)
    assert table.column("time_ns")[4].as_py() == NS0 + 80_000_000
    assert table.column("count").to_pylist() == [0, 1, 2, 3, 4]
    assert table.column("ok").to_pylist() == [False, True, False, False, True]
    first = server.seen[0].path
    assert first.startswith("/v2/streams/s%231%2Fx?")
    assert f"start_time_ns={NS0}" in first and "timestamp=unixns" in first and "format=csv" in first
    assert "page_token=t1" in server.seen[1].path


def test_header_only_page_is_an_empty_batch(server, client):
    server.script(Reply(200, HEADER))
    batches = list(client.streams.read(STREAM, T0, T0 + timedelta(hours=1)))
    assert len(batches) == 1 and batches[0].num_rows == 0
    assert batches[0].schema == stream_schema(ST)
    assert client.streams.read_table(STREAM, T0, T0).num_rows == 0  # no request at all
    assert len(server.seen) == 1


def test_bad_page_read_again_once_then_data_error_names_stream_window_page(
    server, client, fake_sleep
):
    bad = HEADER + b"12x,1,1,a,true\n"
    server.script(
        Reply(200, HEADER + rows(0, 2), {"X-Rune-Next-Page-Token": "t1"}),
        *[Reply(200, bad)] * 4,
    )
    with pytest.raises(DataError) as ei:
        list(client.streams.read(STREAM, T0, T0 + timedelta(hours=1)))
    msg = str(ei.value)
    assert "stream s#1/x" in msg and "2026-10-30T00:00:00+00:00" in msg and "page 1" in msg
    # malformed content is not transient: the prefetched copy, one more read, no retries
    assert "does not parse" in msg and not ei.value.transient
    assert len(server.seen) == 3 and fake_sleep.waits == []


def test_bad_page_recovers(server, client):
    server.script(Reply(200, HEADER + b"oops\n"), Reply(200, HEADER + rows(0, 2)))
    assert client.streams.read_table(STREAM, T0, T0 + timedelta(hours=1)).num_rows == 2


def test_truncated_page_is_refetched(server, client):
    server.script(
        Reply(200, HEADER + rows(0, 50), action="truncate"), Reply(200, HEADER + rows(0, 50))
    )
    assert client.streams.read_table(STREAM, T0, T0 + timedelta(hours=1)).num_rows == 50


def test_missing_column(server, client):
    server.script(*[Reply(200, b"time,value\n1,2\n")] * 4)
    with pytest.raises(DataError, match="lacks column"):
        client.streams.read_table(STREAM, T0, T0 + timedelta(hours=1))


def test_extra_column_kept_nullable():
    p = CsvPageParser(ST)
    b = p(b"time,value,count,state,ok,extra,measurement_duration_ns\n1000,1.5,1,a,true,9,20\n")
    declared = stream_schema(ST)
    assert b.schema.names == [*declared.names, "extra", "measurement_duration_ns"]
    assert b.schema.field("extra").type == pa.float64() and b.schema.field("extra").nullable
    assert b.schema.field("measurement_duration_ns").type == pa.int64()  # as the evidence
    assert b.select(declared.names).schema == declared


def test_sub_microsecond_times_are_kept_exactly():
    body = (
        HEADER
        + f"{NS0 + 100},1,1,a,true\n{NS0 + 200},2,2,b,false\n{NS0 - 100},3,3,c,true\n".encode()
    )
    b = CsvPageParser(ST)(body)
    assert b.column("time_ns").to_pylist() == [NS0 + 100, NS0 + 200, NS0 - 100]
    # the engines' column: floored to the microsecond, also below a whole microsecond
    micro = timedelta(microseconds=1)
    assert b.column("time").to_pylist() == [T0, T0, T0 - micro]


def test_nan_is_a_float_and_only_an_empty_cell_is_null():
    body = HEADER + f"{NS0},nan,,NA,\n{NS0 + 1},-inf,7,,true\n".encode()
    b = CsvPageParser(ST)(body)
    v = b.column("value").to_pylist()
    assert v[0] != v[0] and v[1] == float("-inf")
    assert b.column("count").to_pylist() == [None, 7]
    assert b.column("state").to_pylist() == ["NA", ""]
    assert b.column("ok").to_pylist() == [None, True]


def test_a_one_page_window_starts_no_prefetch_thread(server, client, monkeypatch):
    """The first page is read in the caller's thread; a thread fetches ahead only once
    the server names a next page (most windows of a refresh are one page)."""
    import threading

    from rune_io.api import prefetch

    started: list[str] = []

    class Recorded(threading.Thread):
        def start(self) -> None:
            if self.name.startswith("rune_io-"):  # (the scripted server's threads too)
                started.append(self.name)
            super().start()

    monkeypatch.setattr(prefetch.threading, "Thread", Recorded)
    server.script(Reply(200, HEADER + rows(0, 3)))
    got = [b.num_rows for b in client.streams.read(STREAM, T0, T0 + timedelta(hours=1))]
    assert got == [3] and len(server.seen) == 1 and started == []
    server.reset()
    server.script(
        Reply(200, HEADER + rows(0, 3), {"X-Rune-Next-Page-Token": "t1"}),
        Reply(200, HEADER + rows(3, 2), {"X-Rune-Next-Page-Token": "t2"}),
        Reply(200, HEADER + rows(5, 1)),
    )
    got = [b.num_rows for b in client.streams.read(STREAM, T0, T0 + timedelta(hours=1))]
    assert got == [3, 2, 1] and started == ["rune_io-prefetch"]
    tokens = [parse_qs(urlsplit(r.path).query).get("page_token") for r in server.seen]
    assert tokens == [None, ["t1"], ["t2"]]


def test_limit_is_sent_and_enforced(server, client):
    server.script(Reply(200, HEADER + rows(0, 5), {"X-Rune-Next-Page-Token": "t1"}))
    t = client.streams.read_table(STREAM, T0, T0 + timedelta(hours=1), limit=3)
    assert t.num_rows == 3 and "limit=3" in server.seen[0].path
    assert len(server.seen) <= 2  # at most one page prefetched past the limit


def test_naive_time_rejected(client):
    with pytest.raises(ValueError, match="naive"):
        list(client.streams.read(STREAM, datetime(2026, 1, 1), T0))
