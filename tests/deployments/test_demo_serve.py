"""``rune-lake demo`` with the local server of ``rune-lake server start``: it refreshes,
says where to look (the run's UI URL on that server), registers the ``backfill``
deployment there and serves it; a run of that deployment (created through the API, as
the UI's Custom run does) completes and lands in the demo's lake; Ctrl-C stops the demo
and its emulator."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from tests.deployments.conftest import ROOT, clean_env, free_port, stop

pytestmark = pytest.mark.slow


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rune_lake.flows.cli", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _api(api: str, path: str, body: dict | None = None):
    req = urllib.request.Request(
        f"{api}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    for attempt in range(20):  # a busy server answers 503 (Prefect's client retries too)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or attempt == 19:
                raise
            time.sleep(1)


def _wait(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (got := fn()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return got


def _heart_rate_rows(lake, day: str) -> int:
    glob = f"{lake}/vitals__heart_rate__rate_per_min/**/*.parquet"
    return duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning=true) "
        f"WHERE time >= TIMESTAMPTZ '{day} 00:00:00+00' "
        f"AND time < TIMESTAMPTZ '{day} 00:00:00+00' + INTERVAL 1 DAY"
    ).fetchall()[0][0]


def test_demo_serves_the_backfill_deployment(tmp_path):
    home = tmp_path / "prefect-home"
    env = clean_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    started = _cli(env, "server", "start", "--port", str(port))
    assert started.returncode == 0, started.stdout + started.stderr
    lake = tmp_path / "lake"
    log = tmp_path / "demo.log"
    demo = subprocess.Popen(
        [sys.executable, "-m", "rune_lake.flows.cli", "demo", "--lake", str(lake)]
        + ["--patients", "1", "--days", "2", "--serve-seconds", "600"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def serving() -> bool:
            text = log.read_text()
            assert demo.poll() is None, f"the demo exited ({demo.returncode}):\n{text}"
            return "Serving the backfill deployment" in text

        _wait(serving, 400, "serving")
        text = log.read_text()
        assert f"using the local Prefect server at http://127.0.0.1:{port}" in text
        run_url = re.search(rf"Prefect UI: (http://127\.0\.0\.1:{port}/runs/flow-run/\S+)", text)
        assert run_url, text
        refresh_id = run_url.group(1).rsplit("/", 1)[1]
        assert _api(api, f"/flow_runs/{refresh_id}")["state_type"] == "COMPLETED"
        assert f"open http://127.0.0.1:{port}/deployments" in text

        def deployment():
            try:
                return _api(api, "/deployments/name/backfill/backfill")
            except urllib.error.HTTPError:
                return None  # serve() registers it a moment after the message

        dep = _wait(deployment, 120, "the backfill deployment")
        assert dep["parameters"]["lake"] == str(lake.resolve())
        day = (datetime.now(UTC) - timedelta(days=1)).date()
        before = _heart_rate_rows(lake, day.isoformat())
        assert before > 0
        run = _api(
            api,
            f"/deployments/{dep['id']}/create_flow_run",
            {"parameters": {"range": {"start": str(day), "end": str(day + timedelta(days=1))}}},
        )

        def final():
            state = _api(api, f"/flow_runs/{run['id']}")["state_type"]
            return state if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

        assert _wait(final, 300, "the backfill run") == "COMPLETED", log.read_text()[-3000:]
        # the day was loaded again whole: the same rows, no duplicates
        assert _heart_rate_rows(lake, day.isoformat()) == before
        demo.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        # about 1 s. CI once waited 60 s in vain: a process started in the background by
        # a non-interactive shell inherits SIGINT ignored, and the demo now takes it back
        try:
            code = demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                "Ctrl-C did not stop the demo in 60 s:\n" + log.read_text()[-3000:]
            ) from None
        print(f"demo stopped {time.monotonic() - t0:.1f} s after Ctrl-C")
        assert code == 0, log.read_text()[-3000:]
        assert "stopped serving the backfill deployment" in log.read_text()
    finally:
        stop(demo)
        _cli(env, "server", "stop")
