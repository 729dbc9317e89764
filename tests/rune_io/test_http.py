"""HTTP layer over real sockets: retries, Retry-After, error mapping, truncation, timeouts."""

from __future__ import annotations

import json
import logging
import random

import pytest

from rune_io.api.http import HttpClient, sanitize_url
from rune_io.api.paginators import HeaderCursor, PageNumber, PageUntilEmpty, paginate
from rune_io.api.retry import RetryPolicy, parse_retry_after
from rune_io.errors import (
    ApiError,
    AuthError,
    BadRequest,
    DataError,
    NotFound,
    RateLimited,
    ServerError,
    TransientError,
    api_error,
    is_transient,
)

from .conftest import Reply, make_settings

SECRET = "tok-secret-abcdef"


def err_body(type_: str, message: str) -> bytes:
    return json.dumps({"success": False, "error": {"type": type_, "message": message}}).encode()


@pytest.fixture
def http(server, fake_sleep):
    policy = RetryPolicy(max_attempts=4, base=1.0, cap=8.0, jitter=False)
    with HttpClient(
        make_settings(server.url, read_timeout=2), policy=policy, sleep=fake_sleep
    ) as c:
        yield c


def test_ok_sends_auth_headers_and_reuses_connection(server, http):
    server.script(Reply(200, b"a"), Reply(200, b"b"))
    assert http.get(server.url + "/x").content == b"a"
    assert http.get(server.url + "/y", params={"q": 1, "none": None}).content == b"b"
    assert server.seen[0].headers["x-rune-user-access-token-id"] == "tok-id-123456"
    assert server.seen[0].headers["x-rune-user-access-token-secret"] == SECRET
    assert server.seen[1].path == "/y?q=1"
    assert len(http.session.get_adapter(server.url).poolmanager.pools) == 1


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses_then_success(server, http, fake_sleep, status):
    server.script(Reply(status, err_body("Boom", "try later")), Reply(status), Reply(200, b"ok"))
    r = http.get(server.url + "/x")
    assert r.content == b"ok" and r.attempts == 3
    assert fake_sleep.waits == [1.0, 2.0]  # exponential, no jitter in this policy


@pytest.mark.parametrize(
    "status,cls", [(400, BadRequest), (401, AuthError), (403, AuthError), (404, NotFound)]
)
def test_never_retried_statuses(server, http, fake_sleep, status, cls):
    server.script(Reply(status, err_body("Kind", "you did wrong")), Reply(200))
    with pytest.raises(cls) as ei:
        http.get(server.url + "/v2/streams/abc", params={"start_time": 1})
    e = ei.value
    assert (e.status, e.type, e.message) == (status, "Kind", "you did wrong")
    assert e.url.endswith("/v2/streams/abc?start_time=1")
    assert str(status) in str(e) and "you did wrong" in str(e) and SECRET not in str(e)
    assert len(server.seen) == 1 and fake_sleep.waits == []
    assert not is_transient(e)


@pytest.mark.parametrize("status,cls", [(429, RateLimited), (503, ServerError), (500, ServerError)])
def test_retries_exhausted(server, http, fake_sleep, status, cls):
    server.script(*[Reply(status, err_body("Busy", "slow down"))] * 4)
    with pytest.raises(cls) as ei:
        http.get(server.url + "/x")
    assert len(server.seen) == 4 and len(fake_sleep.waits) == 3
    assert is_transient(ei.value) and "slow down" in str(ei.value)


def test_retry_after_honoured_and_capped(server, fake_sleep):
    policy = RetryPolicy(max_attempts=5, base=1.0, jitter=False, retry_after_cap=10.0)
    with HttpClient(make_settings(server.url), policy=policy, sleep=fake_sleep) as http:
        server.script(
            Reply(429, headers={"Retry-After": "3"}),
            Reply(503, headers={"Retry-After": "3600"}),
            Reply(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),  # past
            Reply(200, b"ok"),
        )
        assert http.get(server.url + "/x").content == b"ok"
    assert fake_sleep.waits == [3.0, 10.0, 0.0]


def test_full_jitter_is_bounded():
    p = RetryPolicy(base=0.5, cap=4.0, _rng=random.Random(7))
    for attempt in range(1, 10):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        waits = [p.backoff(attempt) for _ in range(50)]
        assert all(0 <= w <= ceiling for w in waits) and len(set(waits)) > 1


def test_parse_retry_after():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0


def test_policy_invariants():
    with pytest.raises(ValueError, match="never retried"):
        RetryPolicy(statuses=frozenset({401, 503}))
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_connection_reset_is_retried(server, http, fake_sleep):
    server.script(Reply(action="reset"), Reply(action="reset"), Reply(200, b"fine"))
    assert http.get(server.url + "/x").content == b"fine"
    assert len(fake_sleep.waits) == 2


def test_truncated_body_is_retried(server, http, fake_sleep):
    server.script(
        Reply(200, b"time,x\n1,2\n", action="truncate"), Reply(200, b"time,x\n1,2\n3,4\n")
    )
    assert http.get(server.url + "/x").content == b"time,x\n1,2\n3,4\n"
    assert len(fake_sleep.waits) == 1


def test_read_timeout_is_retried(server, fake_sleep):
    policy = RetryPolicy(max_attempts=2, jitter=False)
    settings = make_settings(server.url, read_timeout=0.2)
    with HttpClient(settings, policy=policy, sleep=fake_sleep) as http:
        server.script(Reply(200, b"late", action="stall", stall=0.6), Reply(200, b"prompt"))
        assert http.get(server.url + "/x").content == b"prompt"


def test_network_failure_exhausted_is_transient_error(server, fake_sleep):
    policy = RetryPolicy(max_attempts=3, jitter=False)
    with HttpClient(make_settings(server.url), policy=policy, sleep=fake_sleep) as http:
        server.script(*[Reply(action="reset")] * 3)
        with pytest.raises(TransientError) as ei:
            http.get(server.url + "/x", params={"a": "b"})
    assert ei.value.attempts == 3 and ei.value.url.endswith("/x?a=b")
    assert is_transient(ei.value)


def test_connection_refused_is_transient(fake_sleep):
    policy = RetryPolicy(max_attempts=2, jitter=False)
    with HttpClient(make_settings("http://127.0.0.1:9"), policy=policy, sleep=fake_sleep) as http:
        with pytest.raises(TransientError):
            http.get("http://127.0.0.1:9/x")
    assert len(fake_sleep.waits) == 1


def test_parse_failure_retried_then_data_error(server, http, fake_sleep):
    server.script(Reply(200, b"garbage"), Reply(200, b'{"ok": 1}'))
    assert http.get(server.url + "/x", parse=lambda r: r.json()) == {"ok": 1}
    server.script(*[Reply(200, b"garbage")] * 4)
    with pytest.raises(DataError, match="not valid JSON.*after 4 attempts"):
        http.get(server.url + "/x", parse=lambda r: r.json())


def test_no_secret_in_logs(server, http, caplog):
    caplog.set_level(logging.DEBUG, logger="rune_io")
    server.script(Reply(503), Reply(200, b"ok"))
    http.get(server.url + "/x", params={"client_access_key": SECRET, "page_token": "abc"})
    text = caplog.text
    assert "retry 1/3" in text and "page_token=abc" in text and SECRET not in text
    assert SECRET not in repr(http)


def test_sanitize_url():
    assert (
        sanitize_url("https://u:pw@h:8443/p", {"jwt": "x", "a": [1, 2], "n": None})
        == "https://h:8443/p?jwt=%2A%2A%2A&a=1&a=2"
    )


def test_api_error_from_non_json_body():
    e = api_error(502, b"<html>Bad   gateway</html>", "http://h/x")
    assert isinstance(e, ServerError) and "Bad gateway" in str(e)
    assert isinstance(api_error(418, b""), ApiError)


def test_errors_pickle():
    import pickle

    e = pickle.loads(pickle.dumps(NotFound(404, "NotFound", "no stream", "http://h/x")))
    assert isinstance(e, NotFound) and e.message == "no stream"


# ---------------------------------------------------------------- paginators


def test_header_cursor(server, http):
    server.script(
        Reply(200, b"p0", headers={"X-Rune-Next-Page-Token": "t1"}),
        Reply(200, b"p1", headers={"X-Rune-Next-Page-Token": "t2"}),
        Reply(200, b"p2"),
    )
    pages = [
        r.content
        for r, _ in paginate(http, server.url + "/s", {"a": 1}, HeaderCursor(), lambda r: None)
    ]
    assert pages == [b"p0", b"p1", b"p2"]
    assert [s.path for s in server.seen] == [
        "/s?a=1",
        "/s?a=1&page_token=t1",
        "/s?a=1&page_token=t2",
    ]


def test_header_cursor_retries_page_with_same_token(server, http):
    server.script(
        Reply(200, b"p0", headers={"X-Rune-Next-Page-Token": "t1"}),
        Reply(503),
        Reply(200, b"p1"),
    )
    list(
        paginate(http, server.url + "/s", {}, HeaderCursor(param="next_page_token"), lambda r: None)
    )
    assert [s.path for s in server.seen] == ["/s", "/s?next_page_token=t1", "/s?next_page_token=t1"]


def test_page_number(server, http):
    server.script(
        Reply(200, b'{"success": true, "result": {}, "next_page": 1}'),
        Reply(200, b'{"success": true, "result": {}, "next_page": 2}'),
        Reply(200, b'{"success": true, "result": {}}'),
    )
    out = list(paginate(http, server.url + "/j", {}, PageNumber(), lambda r: r.json()))
    assert len(out) == 3
    assert [s.path for s in server.seen] == ["/j?page=0", "/j?page=1", "/j?page=2"]


def test_page_until_empty(server, http):
    server.script(Reply(200, b"time,x\n1,2\n"), Reply(200, b"time,x\n3,4\n"), Reply(200, b""))
    out = [
        r.content
        for r, _ in paginate(http, server.url + "/c", {}, PageUntilEmpty(), lambda r: None)
    ]
    assert out == [b"time,x\n1,2\n", b"time,x\n3,4\n", b""]
    assert [s.path for s in server.seen] == ["/c?page=0", "/c?page=1", "/c?page=2"]


def test_proxy_environment_is_honoured_and_read_once_per_origin(server, fake_sleep, monkeypatch):
    import requests.sessions

    reads: list[str] = []
    real = requests.sessions.get_environ_proxies

    def counting(url, no_proxy=None):
        reads.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    monkeypatch.setenv("HTTP_PROXY", server.url)  # the scripted server plays the proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.3")
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    server.script(Reply(200, b"a"), Reply(200, b"b"), Reply(200, b"c"))
    policy = RetryPolicy(max_attempts=1, base=0.1, cap=0.1, jitter=False)
    with HttpClient(make_settings(server.url), policy=policy, sleep=fake_sleep) as http:
        got = [http.get(f"http://127.0.0.2:9/p{i}").content for i in range(3)]
        assert got == [b"a", b"b", b"c"]  # through the proxy: nothing listens on :9
        assert [s.path for s in server.seen] == [f"http://127.0.0.2:9/p{i}" for i in range(3)]
        with pytest.raises(TransientError):  # NO_PROXY: direct, and refused
            http.get("http://127.0.0.3:9/direct")
    assert len(server.seen) == 3
    assert reads == ["http://127.0.0.2:9/p0", "http://127.0.0.3:9/direct"]  # once per origin
