"""One error hierarchy: GraphQL errors classified by their code, transience in one place.

Over real HTTP: the emulator's GraphQL errors (``extensions.code`` ``FORBIDDEN``,
``NOT_FOUND``, ``BAD_REQUEST``) and its chaos 503s; a scripted server on 127.0.0.1 for
codes the emulator never serves and for messages whose words say the opposite of their
code (the code wins).
"""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime

import pytest

from rune_emulator import ChaosConfig
from rune_io.api.client import RuneClient
from rune_io.api.graph_queries import Q_EVENTS
from rune_io.api.retry import RetryPolicy
from rune_io.errors import (
    AuthError,
    BadRequest,
    DataError,
    GraphQLError,
    NotFound,
    RuneIOError,
    ServerError,
    TransientError,
    UsageError,
    graphql_error,
    is_transient,
    is_transient_status,
)

from .conftest import Reply, emu_settings, make_settings


def test_client_key_listing_the_org_is_an_auth_error(emu):
    with RuneClient(emu_settings(emu, "client_keys")) as c:
        with pytest.raises(AuthError) as ei:
            c.graph.current_user()  # a client key is no user: FORBIDDEN
        with pytest.raises(AuthError):
            c.graph.streams()  # every patient's streams: FORBIDDEN
    e = ei.value
    assert (e.status, e.type) == (403, "FORBIDDEN") and not is_transient(e)
    assert e.url.endswith("/graphql")


def test_unknown_patient_is_not_found(emu, rc):
    with pytest.raises(NotFound) as ei:
        rc.graph.streams(patient_id="0" * 32)
    assert (ei.value.status, ei.value.type) == (404, "NOT_FOUND")
    assert not is_transient(ei.value)


def test_too_long_event_query_is_a_bad_request(emu, rc):
    variables = {"patient_id": emu.cohort.patients[0].id, "start_time": 0.0, "end_time": 1e9}
    with pytest.raises(BadRequest) as ei:
        rc.graph.execute(Q_EVENTS, variables)
    assert ei.value.type == "BAD_REQUEST" and not is_transient(ei.value)


def test_graphql_503s_are_transient_after_retries(emu, fake_sleep):
    emu.set_chaos(ChaosConfig(p_503=1.0, apply_to_graphql=True))
    try:
        policy = RetryPolicy(max_attempts=2, jitter=False)
        with RuneClient(emu_settings(emu), policy=policy, sleep=fake_sleep) as c:
            with pytest.raises(ServerError) as ei:
                c.graph.current_user()
    finally:
        emu.set_chaos(None)
    assert ei.value.status == 503 and is_transient(ei.value)
    assert len(fake_sleep.waits) == 1  # retried once by the HTTP layer, then given up


def errors_reply(*errors: dict) -> Reply:
    return Reply(200, json.dumps({"errors": list(errors), "data": None}).encode())


@pytest.fixture
def client(server, fake_sleep):
    with RuneClient(make_settings(server.url), sleep=fake_sleep) as c:
        yield c


@pytest.mark.parametrize(
    "error,cls,transient",
    [
        ({"message": "patient not found", "extensions": {"code": "FORBIDDEN"}}, AuthError, False),
        (
            {"message": "forbidden, unauthorized", "extensions": {"code": "NOT_FOUND"}},
            NotFound,
            False,
        ),
        (
            {"message": "Not Found", "extensions": {"code": "INTERNAL_SERVER_ERROR"}},
            ServerError,
            True,
        ),
        ({"message": "who are you", "extensions": {"code": "UNAUTHENTICATED"}}, AuthError, False),
        ({"message": "permission denied: not found"}, GraphQLError, False),
    ],
    ids=["forbidden", "not-found", "internal", "unauthenticated", "no-code"],
)
def test_the_code_decides_not_the_message(server, client, error, cls, transient):
    server.script(errors_reply(error))
    with pytest.raises(RuneIOError) as ei:
        client.graph.current_user()
    assert type(ei.value) is cls and is_transient(ei.value) is transient
    assert error["message"] in str(ei.value)
    assert len(server.seen) == 1  # a GraphQL error is never re-fetched by the HTTP layer


def test_first_known_code_wins():
    e = graphql_error(
        [{"message": "a", "extensions": {"code": "X"}}, {"message": "b", "type": "not_found"}]
    )
    assert isinstance(e, NotFound) and e.type == "NOT_FOUND" and e.message == "a; b"
    assert type(graphql_error(["boom"])) is GraphQLError


def test_is_transient_is_the_one_decision():
    assert is_transient(TransientError("reset")) and is_transient(ConnectionResetError())
    assert is_transient(DataError("cut", transient=True))
    assert not is_transient(DataError("bad"))
    assert not is_transient(UsageError("bad arg")) and not is_transient(ValueError("x"))
    assert [s for s in (400, 401, 403, 404, 409, 429, 500, 503) if is_transient_status(s)] == [
        429, 500, 503,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="never retried"):
        RetryPolicy(statuses=frozenset({409}))


def test_errors_keep_their_attributes_across_processes():
    d = pickle.loads(pickle.dumps(DataError("cut short", transient=True)))
    t = pickle.loads(pickle.dumps(TransientError("reset", url="http://h/x", attempts=3)))
    assert d.transient and (t.url, t.attempts) == ("http://h/x", 3)


def test_usage_errors_are_rune_errors_and_value_errors(rc):
    from rune_io.times import to_utc

    for call in (lambda: to_utc(datetime(2026, 1, 1)), lambda: rc.v1.events("p", "d", paging="x")):
        with pytest.raises(UsageError):
            list(call() or [])
    with pytest.raises(TypeError):
        to_utc(True)
    assert to_utc(datetime(2026, 1, 1, tzinfo=UTC)).year == 2026


def test_a_bad_url_is_a_config_error(fake_sleep):
    from rune_io.errors import ConfigError

    with RuneClient(make_settings("http://127.0.0.1:1"), sleep=fake_sleep) as c:
        with pytest.raises(ConfigError, match="graph_url"):
            c.http.get("htp//nowhere")
