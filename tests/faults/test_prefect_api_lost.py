"""The Prefect API goes away mid-run: a real ``prefect server`` stopped while the
refresh's tasks run, then started again on the same database.

Nothing in the lake is corrupted (no partial file under a table); what landed is
committed or repaired by the next run, which completes equal to a clean load; the CLI
says in one line what happened.
"""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rune_emulator import ChaosConfig
from tests.deployments.conftest import clean_env, free_port, prefect_exe, stop
from tests.faults.conftest import (
    STORAGE_ARGS,
    STORAGE_EMU,
    api_vars,
    assert_lake_consistent,
    assert_lakes_equal,
    cli,
    emulator,
    remember,
)
from tests.faults.test_disk_full import _assert_nothing_partial


class Server:
    """``prefect server start`` on a free loopback port, with its own PREFECT_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = clean_env(
            PREFECT_HOME=str(self.home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_UI_API_URL=self.url,
        )
        log = open(self.home / "server.log", "ab")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen(
            [prefect_exe(), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(
            f"prefect server did not start: {(self.home / 'server.log').read_text()[-2000:]}"
        )

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@pytest.mark.slow
def test_prefect_api_lost_mid_run(tmp_path, fast_config, storage_want):
    home = tmp_path / "prefect-home"
    home.mkdir()
    server = Server(home)
    server.start()
    lake = remember(tmp_path / "lake")
    args = ["refresh", "--lake", str(lake), *STORAGE_ARGS, "--config", str(fast_config)]
    slow = ChaosConfig(p_delay=1.0, delay_s=0.8, apply_to_graphql=False)
    try:
        with emulator(fast_config, chaos=slow, **STORAGE_EMU) as emu:

            def stop_after_some_data() -> None:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    if sum(p.startswith("/v2/") for _m, p, _q, _s in emu.stats.log) >= 2:
                        server.stop()
                        return
                    time.sleep(0.05)

            stopper = threading.Thread(target=stop_after_some_data, daemon=True)
            stopper.start()
            lost = cli(*args, env_vars=api_vars(emu) | {"PREFECT_API_URL": server.url})
            stopper.join(timeout=5)
            print(f"exit {lost.code} after {lost.seconds:.1f} s:\n{lost.text[-4000:]}")
            assert lost.code != 0, lost.text[-3000:]
            assert "Traceback" not in lost.text, lost.text[-3000:]
            errors = [ln for ln in lost.err.splitlines() if ln.startswith("error:")]
            assert len(errors) == 1 and "Prefect API" in errors[0], lost.err[-3000:]
            assert server.url in errors[0]
            _assert_nothing_partial(lake)

            server.start()
            emu.set_chaos(None)
            again = cli(*args, env_vars=api_vars(emu) | {"PREFECT_API_URL": server.url})
            assert again.code == 0, again.text[-3000:]
    finally:
        server.stop()
    assert_lakes_equal(lake, storage_want)
    assert_lake_consistent(lake)


class _Unavailable(BaseHTTPRequestHandler):
    """A Prefect API that answers every request 503, as a Prefect server on SQLite does
    while concurrent runs hold its database locked ("database is locked")."""

    def _answer(self) -> None:
        body = b'{"exception_message": "Service Unavailable"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.mark.slow
def test_a_prefect_api_that_keeps_answering_503_fails_in_one_line(tmp_path, fast_config):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    lake = tmp_path / "lake"
    try:
        with emulator(fast_config) as emu:
            res = cli(
                "refresh", "--lake", str(lake), *STORAGE_ARGS, "--config", str(fast_config),
                env_vars=api_vars(emu) | {"PREFECT_API_URL": url},
            )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    print(f"exit {res.code} after {res.seconds:.1f} s:\n{res.text[-3000:]}")
    assert res.code == 1, res.text[-3000:]
    assert "Traceback" not in res.text, res.text[-3000:]
    errors = [ln for ln in res.err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.err[-3000:]
    assert f"the Prefect API at {url} kept answering 503 Service Unavailable" in errors[0]
    assert "rerun" in errors[0]
    _assert_nothing_partial(lake)
