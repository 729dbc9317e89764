"""``rune-lake server start|status|stop``: a real background Prefect server in a temporary
PREFECT_HOME on a free port, reused by a later ``rune-lake refresh`` (its flow run is on
that server), stopped for good."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime

from rune_emulator import (
    DEMO_ACCESS_TOKEN_ID,
    DEMO_ACCESS_TOKEN_SECRET,
    EmulatorConfig,
    running_emulator,
)
from tests.deployments.conftest import ROOT, clean_env, free_port


def _cli(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rune_lake.flows.cli", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _flow_runs(api: str) -> list[dict]:
    req = urllib.request.Request(
        f"{api}/flow_runs/filter",
        data=b"{}",
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 - one read
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_start_reuse_status_stop(tmp_path):
    home = tmp_path / "prefect-home"
    env = clean_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    port = free_port()
    gone = _cli(env, "server", "status")
    assert gone.returncode == 1 and "no local Prefect server runs" in gone.stdout

    started = _cli(env, "server", "start", "--port", str(port))
    assert started.returncode == 0, started.stdout + started.stderr
    state = json.loads((home / "rune-lake-server.json").read_text())
    try:
        api = f"http://127.0.0.1:{port}/api"
        assert state["api_url"] == api and state["port"] == port
        assert f"started a local Prefect server at http://127.0.0.1:{port}" in started.stdout
        assert (home / "rune-lake-server.log").exists()
        with urllib.request.urlopen(f"{api}/health", timeout=5) as r:
            assert r.status == 200
        # its UI is told where its API is (a server off port 4200)
        environ = open(f"/proc/{state['pid']}/environ", "rb").read().split(b"\0")  # noqa: SIM115
        assert f"PREFECT_UI_API_URL={api}".encode() in environ

        again = _cli(env, "server", "start")
        assert again.returncode == 0 and "already runs" in again.stdout
        assert json.loads((home / "rune-lake-server.json").read_text())["pid"] == state["pid"]
        status = _cli(env, "server", "status")
        assert status.returncode == 0 and f"127.0.0.1:{port}" in status.stdout

        now = datetime.now(UTC).replace(second=0, microsecond=0)
        cfg = EmulatorConfig(seed=3, patients=1, days=1, now=now)
        with running_emulator(cfg) as emu:
            run_env = env | {
                "RUNE_STREAM_URL": emu.url,
                "RUNE_GRAPH_URL": emu.url,
                "RUNE_ACCESS_TOKEN_ID": DEMO_ACCESS_TOKEN_ID,
                "RUNE_ACCESS_TOKEN_SECRET": DEMO_ACCESS_TOKEN_SECRET,
            }
            lake = tmp_path / "lake"
            args = ["refresh", "--lake", str(lake), "--category", "vitals", "--no-events"]
            ref = _cli(run_env, *args)
        assert ref.returncode == 0, ref.stdout + ref.stderr
        assert f"using the local Prefect server at http://127.0.0.1:{port}" in ref.stderr
        runs = _flow_runs(api)
        assert [r["state_type"] for r in runs] == ["COMPLETED"], runs
        # a configured API wins over the local server: no reuse line
        other = _cli(run_env | {"PREFECT_API_URL": "http://127.0.0.1:9/api"}, "server", "status")
        assert "not used: PREFECT_API_URL is http://127.0.0.1:9/api" in other.stdout
    finally:
        stopped = _cli(env, "server", "stop")
    assert stopped.returncode == 0 and "stopped the local Prefect server" in stopped.stdout
    assert not _alive(state["pid"])
    assert not (home / "rune-lake-server.json").exists()
    after = _cli(env, "server", "status")
    assert after.returncode == 1
