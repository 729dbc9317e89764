"""Fixtures for rune_io tests: a scripted HTTP server, fake sleep, clean config env."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rune_io.config import ENV_VARS, Settings, load_settings
from rune_io.times import TimeLike, to_utc


@dataclass
class Reply:
    """One scripted reply: a status/body, or a misbehaviour (``reset``, ``truncate``, ``stall``)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "reply"  # reply | reset | truncate | stall
    stall: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet about a client that went away (a test's client timing out on a stalled
        reply, then the late reply's write failing): socketserver printed that to
        stderr after the test, into CI's output. Anything else is printed as before."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 that plays queued replies (then a default)."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default = Reply(
            404, b'{"success": false, "error": {"message": "nothing scripted", "type": "NotFound"}}'
        )
        self.seen: list[Seen] = []
        script = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                script.seen.append(
                    Seen(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                reply = script.replies.popleft() if script.replies else script.default
                if reply.action == "reset":
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    self.connection.close()
                    self.close_connection = True
                    return
                if reply.action == "stall":
                    time.sleep(reply.stall)
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if reply.action == "truncate":
                    self.send_header("Content-Length", str(len(reply.body) * 2 + 10))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = _handle
            do_POST = _handle

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def reset(self) -> None:
        self.replies.clear()
        self.seen.clear()


@pytest.fixture(scope="module")
def _server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def server(_server: ScriptedServer) -> ScriptedServer:
    """The module's scripted server, emptied for this test."""
    _server.reset()
    return _server


class FakeSleep:
    """Records waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """No RUNE_* variables, HOME in a tmp dir, cwd in a tmp dir (no stray config files)."""
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


def make_settings(url: str, **kw) -> Settings:
    """Access-token settings pointed at ``url`` (no env or files consulted)."""
    kw.setdefault("access_token_id", "tok-id-123456")
    kw.setdefault("access_token_secret", "tok-secret-abcdef")
    return load_settings(
        stream_url=url,
        graph_url=url,
        environ={},
        runeq_config_path=None,
        **kw,
    )


# ------------------------------------------------------------------ emulator fixtures

EMU_PAGE_SIZE = 20_000


@pytest.fixture(scope="package")
def emu():
    """One emulator for the package: 2 patients, 2 days, small V2 pages."""
    emulator = pytest.importorskip("rune_emulator")
    cfg = emulator.EmulatorConfig(
        seed=0, patients=2, days=2, page_size=EMU_PAGE_SIZE, motion_hours=6
    )
    with emulator.running_emulator(cfg) as e:
        yield e


def emu_settings(emu, family: str = "access_token", **kw) -> Settings:
    """Settings for the emulator with one of its demo credential families."""
    import rune_emulator as m

    creds = {
        "access_token": dict(
            access_token_id=m.DEMO_ACCESS_TOKEN_ID, access_token_secret=m.DEMO_ACCESS_TOKEN_SECRET
        ),
        "client_keys": dict(
            client_key_id=m.DEMO_CLIENT_KEY_ID, client_access_key=m.DEMO_CLIENT_ACCESS_KEY
        ),
        "jwt": dict(jwt=m.DEMO_JWT),
    }[family]
    return load_settings(stream_url=emu.url, graph_url=emu.url, environ={}, **{**creds, **kw})


@pytest.fixture
def rc(emu, fake_sleep):
    """A RuneClient on the emulator (access token; sleeps recorded, not slept)."""
    from rune_io.api.client import RuneClient

    emu.set_chaos(None)
    with RuneClient(emu_settings(emu), sleep=fake_sleep) as c:
        yield c
    emu.set_chaos(None)


def day_windows(start: TimeLike, end: TimeLike) -> list[tuple[datetime, datetime]]:
    """Split ``[start, end)`` at UTC midnights (a test helper: the pipeline plans by
    partition windows, rune_io.times.windows).

    Inner windows are whole UTC days; the first and last may be partial days. An empty
    or inverted range gives ``[]``.
    """
    lo, hi = to_utc(start), to_utc(end)
    out: list[tuple[datetime, datetime]] = []
    while lo < hi:
        midnight = datetime(lo.year, lo.month, lo.day, tzinfo=UTC) + timedelta(days=1)
        nxt = min(midnight, hi)
        out.append((lo, nxt))
        lo = nxt
    return out
