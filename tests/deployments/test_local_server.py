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


def _against(emu, env: dict[str, str]) -> dict[str, str]:
    """``env`` pointed at the emulator ``emu``, with its demo credentials."""
    return env | {
        "RUNE_STREAM_URL": emu.url,
        "RUNE_GRAPH_URL": emu.url,
        "RUNE_ACCESS_TOKEN_ID": DEMO_ACCESS_TOKEN_ID,
        "RUNE_ACCESS_TOKEN_SECRET": DEMO_ACCESS_TOKEN_SECRET,
    }


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
            run_env = _against(emu, env)
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


def test_a_run_starts_the_local_server_and_later_commands_reuse_it(tmp_path):
    """The default (``RUNE_LAKE_LOCAL_SERVER`` unset: ``keep``) with no Prefect API: two
    first runs at once start one local server (one says so, the other shares it), it
    stays up after the commands, a later run reuses it, and the flow runs are all on it."""
    home = tmp_path / "prefect-home"
    env = clean_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    del env["RUNE_LAKE_LOCAL_SERVER"]  # the default
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    cfg = EmulatorConfig(seed=3, patients=1, days=1, now=now)
    state: dict = {}
    try:
        with running_emulator(cfg) as emu:
            run_env = _against(emu, env)

            def start(lake: str) -> subprocess.Popen:
                return subprocess.Popen(
                    [sys.executable, "-m", "rune_lake.flows.cli", "refresh", "--lake"]
                    + [str(tmp_path / lake), "--category", "vitals", "--no-events"],
                    cwd=ROOT,
                    env=run_env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )

            firsts = [start(f"lake{i}") for i in (1, 2)]
            errs = []
            for p in firsts:
                stdout, stderr = p.communicate(timeout=300)
                assert p.returncode == 0, stdout + stderr
                errs.append(stderr)
            state = json.loads((home / "rune-lake-server.json").read_text())
            assert state["auto"] is True
            ui = f"http://127.0.0.1:{state['port']}"
            started = [e for e in errs if f"started a local Prefect server at {ui}" in e]
            assert len(started) == 1, errs
            assert "stays up for later commands" in started[0]
            shared = [e for e in errs if e is not started[0]]
            assert len(shared) == 1 and f"using the local Prefect server at {ui}" in shared[0]
            assert _alive(state["pid"])  # outlived the commands
            status = _cli(env, "server", "status")
            assert status.returncode == 0 and ui in status.stdout

            later = start("lake3")
            stdout, stderr = later.communicate(timeout=240)
            assert later.returncode == 0, stdout + stderr
            assert f"using the local Prefect server at {ui}" in stderr
            assert "started a local Prefect server" not in stderr
        assert json.loads((home / "rune-lake-server.json").read_text())["pid"] == state["pid"]
        runs = _flow_runs(f"{ui}/api")
        assert [r["state_type"] for r in runs] == ["COMPLETED"] * 3, runs
        # `server start` adopts it: from now on it is the user's (the demo serves on it)
        adopted = _cli(env, "server", "start")
        assert adopted.returncode == 0 and "already runs" in adopted.stdout
        assert json.loads((home / "rune-lake-server.json").read_text())["auto"] is False
    finally:
        stopped = _cli(env, "server", "stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    if state:
        assert not _alive(state["pid"])


def test_temporary_leaves_no_server(tmp_path):
    """``RUNE_LAKE_LOCAL_SERVER=temporary``: the run's server stops with the command."""
    home = tmp_path / "prefect-home"
    env = clean_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with running_emulator(EmulatorConfig(seed=3, patients=1, days=1, now=now)) as emu:
        run_env = _against(emu, env) | {"RUNE_LAKE_LOCAL_SERVER": "temporary"}
        args = ["refresh", "--lake", str(tmp_path / "lake"), "--category", "vitals"]
        ran = _cli(run_env, *args, "--no-events")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "local Prefect server" not in ran.stderr
    assert not (home / "rune-lake-server.json").exists()
    assert _cli(env, "server", "status").returncode == 1
