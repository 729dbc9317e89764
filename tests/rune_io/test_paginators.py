"""The one page loop: every cursor kind's repeated cursor gets the same answer.

A server that serves a cursor it already served would make a client loop forever. The
emulator never does, so a scripted server on 127.0.0.1 (real HTTP) plays one for each
kind the APIs use: the V2 page token (sequential with prefetch, sequential without, the
first page of a parallel read), V1 ``next_page_token`` and ``next_page``, GraphQL
``endCursor`` (a list, a patient's device list) and ``codeNameEndCursor``. Each must end
in the loop's :class:`DataError` naming the call and the cursor, after the pages before
it, and never retried.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from rune_io.api.client import RuneClient
from rune_io.api.models import Dimension, StreamMeta, StreamType
from rune_io.api.paginators import GraphCursor, HeaderCursor, PageNumber, PageUntilEmpty, paginate
from rune_io.api.retry import RetryPolicy
from rune_io.errors import DataError, is_transient

from .conftest import Reply, make_settings

ST = StreamType("hr", "HR", "", (Dimension("time", "timestamp"), Dimension("bpm", "sfloat")))
STREAM = StreamMeta("s1", "p1", "d1", "alg", ST, (("category", "vitals"),))
T0 = datetime(2026, 10, 30, tzinfo=UTC)
NS0 = int(T0.timestamp()) * 10**9
TOKEN = {"X-Rune-Next-Page-Token": "tok-A"}


def csv_page(*seconds: int) -> bytes:
    return b"time,bpm\n" + b"".join(f"{NS0 + s * 10**9},60.5\n".encode() for s in seconds)


@pytest.fixture
def client(server, fake_sleep):
    policy = RetryPolicy(max_attempts=3, jitter=False)
    with RuneClient(make_settings(server.url), policy=policy, sleep=fake_sleep) as c:
        yield c


def _refused(exc: pytest.ExceptionInfo[DataError], call: str, cursor: str) -> None:
    msg = str(exc.value)
    assert call in msg and cursor in msg and "repeated the cursor" in msg, msg
    assert not is_transient(exc.value)


@pytest.mark.parametrize(
    "kw",
    [dict(parallel=1), dict(parallel=2)],
    ids=["sequential-prefetch", "parallel-first-page"],
)
def test_v2_page_token(server, client, fake_sleep, kw):
    # page 0 (one distinct time: a parallel read follows the token), then the same token
    server.script(Reply(200, csv_page(0), TOKEN), Reply(200, csv_page(1), TOKEN))
    got = []
    with pytest.raises(DataError) as ei:
        for b in client.streams.read(STREAM, T0, T0 + timedelta(hours=1), **kw):
            got.append(b.num_rows)
    _refused(ei, "stream s1 window [2026-10-30T00:00:00+00:00", "'tok-A'")
    assert got == [1] and len(server.seen) == 2 and fake_sleep.waits == []


def test_v2_page_token_without_prefetch(server, fake_sleep):
    with RuneClient(make_settings(server.url), sleep=fake_sleep) as c:
        c.streams.prefetch = False
        server.script(
            Reply(200, csv_page(0), {"X-Rune-Next-Page-Token": "a"}),
            Reply(200, csv_page(1), {"X-Rune-Next-Page-Token": "b"}),
            Reply(200, csv_page(2), {"X-Rune-Next-Page-Token": "a"}),  # back to an old one
        )
        with pytest.raises(DataError) as ei:
            list(c.streams.read(STREAM, T0, T0 + timedelta(hours=1)))
    _refused(ei, "stream s1 window", "'a' after page 3")
    assert [s.path.split("page_token=")[-1] for s in server.seen[1:]] == ["a", "b"]


def test_v1_next_page_token(server, client):
    server.script(Reply(200, b"time,bpm\n1,60\n", TOKEN), Reply(200, b"time,bpm\n2,61\n", TOKEN))
    with pytest.raises(DataError) as ei:
        list(client.v1.heartrate("p1", "d1", 0, 10, paging="token"))
    _refused(ei, "/v1/heartrate.csv", "'tok-A' after page 2")
    assert "next_page_token=tok-A" in server.seen[1].path


def test_v1_next_page(server, client):
    page = {"success": True, "result": {"time": [1.0], "bpm": [60.0]}, "next_page": 1}
    server.script(Reply(200, json.dumps(page).encode()), Reply(200, json.dumps(page).encode()))
    with pytest.raises(DataError) as ei:
        list(client.v1.heartrate("p1", "d1", 0, 10, fmt="json"))
    _refused(ei, "/v1/heartrate.json", "next_page -> page = 1 after page 2")


def test_v1_page_until_empty_cannot_repeat(server, http_client):
    """The client counts CSV pages itself: the loop's check sees a new number each time."""
    server.script(Reply(200, b"a\n"), Reply(200, b"b\n"), Reply(200, b""))
    pager = PageUntilEmpty()
    assert len(list(paginate(http_client, server.url + "/c", {}, pager))) == 3
    assert pager.pages == 3 and pager.current() == 2


def gql(data: dict) -> Reply:
    return Reply(200, json.dumps({"data": data}).encode(), {"Content-Type": "application/json"})


def stream_list(cursor: str | None) -> Reply:
    return gql({"streamList": {"pageInfo": {"endCursor": cursor}, "streams": []}})


def test_graphql_end_cursor(server, client):
    server.script(stream_list("c1"), stream_list("c2"), stream_list("c1"))
    with pytest.raises(DataError) as ei:
        client.graph.streams(patient_id="p1")
    _refused(ei, "GraphQL getStreamList streamList", "pageInfo.endCursor -> $cursor = 'c1'")
    sent = [json.loads(s.body)["variables"].get("cursor") for s in server.seen]
    assert sent == [None, "c1", "c2"]


def test_graphql_device_list_end_cursor(server, client):
    """A patient's device list stopped silently on a repeated cursor; now it is refused."""
    patient = {"id": "p1", "codeName": "P1", "createdAt": 0}
    page = {**patient, "deviceList": {"pageInfo": {"endCursor": "d1"}, "devices": []}}
    server.script(gql({"patient": page}), gql({"patient": page}))
    with pytest.raises(DataError) as ei:
        client.graph.patient("p1")
    _refused(ei, "GraphQL getPatient patient.deviceList", "'d1'")


@pytest.mark.parametrize("kind", ["project", "cohort"])
def test_graphql_code_name_end_cursor(server, client, kind):
    lst = {"pageInfo": {"codeNameEndCursor": "Zed"}, f"{kind}Patients": []}
    body = {kind: {"id": "x", "organizationId": "o", f"{kind}PatientList": lst}}
    server.script(gql(body), gql(body))
    with pytest.raises(DataError) as ei:
        getattr(client.graph, f"{kind}_patients")("x")
    _refused(ei, f"{kind}PatientList", "pageInfo.codeNameEndCursor -> $cursorInput = 'Zed'")
    assert json.loads(server.seen[1].body)["variables"]["cursorInput"] == {"codeNameCursor": "Zed"}


@pytest.fixture
def http_client(client):
    return client.http


def test_loop_counts_pages_and_names_the_call(server, http_client):
    server.script(Reply(200, b"", TOKEN), Reply(200, b"", TOKEN))
    pager = HeaderCursor(start="tok-A")  # resuming: the start cursor counts as seen
    with pytest.raises(DataError, match=r"^my call: .*'tok-A' after page 1;"):
        list(paginate(http_client, server.url + "/s", {}, pager, call="my call"))
    assert pager.pages == 1


def test_cursor_strategies_check_their_arguments():
    with pytest.raises(ValueError, match="header and a param"):
        HeaderCursor(param="")
    with pytest.raises(ValueError, match="field and a variable"):
        GraphCursor(field="")
    assert PageNumber(start=3).current() == 3
