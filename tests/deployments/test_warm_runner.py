"""The warm runner beside the local server (``rune_lake.flows.warm``): a ``refresh`` or
``backfill`` command hands itself to an already-imported process, which forks and runs
it with the command's own arguments, environment, directory, descriptors and signals.

Real parts: ``rune-lake server start`` in a temporary PREFECT_HOME, the emulator over
HTTP, the ``rune-lake`` script as a user runs it. That the command ran warm shows in its
runner's log: one line per command it forked (and the command's own process stays small:
it never imports Prefect or pyarrow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rune_emulator import (
    DEMO_ACCESS_TOKEN_ID,
    DEMO_ACCESS_TOKEN_SECRET,
    EmulatorConfig,
    running_emulator,
)
from tests.deployments.conftest import ROOT, clean_env

EXE = Path(sys.executable).with_name("rune-lake")


def _forked(home: Path) -> int:
    """Commands the warm runner has run so far (its log says so, one line each)."""
    text = (home / "rune-lake-server.log").read_text(errors="replace")
    return text.count("rune-lake runner: process ")


def _run(env: dict[str, str], *args: str, cwd: Path = ROOT, sigint_after: float = 0) -> tuple:
    """The script as a user runs it: (exit code, stdout, stderr); with ``sigint_after``,
    Ctrl-C that many seconds in."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [str(EXE), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        if sigint_after:
            time.sleep(sigint_after)
            proc.send_signal(signal.SIGINT)
        proc.wait()
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read()


@pytest.fixture
def warm(tmp_path):
    """A local server with its warm runner, an emulator, and the commands' environment."""
    if not EXE.exists():
        pytest.skip("the rune-lake script is not installed in this environment")
    home = tmp_path / "prefect-home"
    env = clean_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    started = subprocess.run(
        [str(EXE), "server", "start"], env=env, capture_output=True, text=True, timeout=240
    )
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        deadline = time.monotonic() + 120
        while not (home / "rune-lake-runner.json").exists():
            assert time.monotonic() < deadline, (home / "rune-lake-server.log").read_text()
            time.sleep(0.2)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        with running_emulator(EmulatorConfig(seed=3, patients=1, days=1, now=now)) as emu:
            yield (
                home,
                env
                | {
                    "RUNE_STREAM_URL": emu.url,
                    "RUNE_GRAPH_URL": emu.url,
                    "RUNE_ACCESS_TOKEN_ID": DEMO_ACCESS_TOKEN_ID,
                    "RUNE_ACCESS_TOKEN_SECRET": DEMO_ACCESS_TOKEN_SECRET,
                },
            )
    finally:
        subprocess.run([str(EXE), "server", "stop"], env=env, capture_output=True, timeout=120)
    assert not (home / "rune-lake-runner.sock").exists()


def test_refresh_runs_warm_with_the_commands_own_environment_and_directory(warm, tmp_path):
    home, env = warm
    code, out, err = _run(env, "refresh", "--lake", "lake", "--no-events", cwd=tmp_path)
    assert code == 0, out + err
    assert _forked(home) == 1, "the command did not run in the warm runner"
    log = (home / "rune-lake-server.log").read_text(errors="replace")
    frozen = int(log.split(" objects frozen for the commands")[0].rsplit(" ", 1)[1])
    assert frozen > 50_000  # Prefect's and the flows' objects: no child's collector walks them
    assert "using the local Prefect server" in err
    assert "windows landed" in out and "vitals__heart_rate__rate_per_min" in out
    assert (tmp_path / "lake" / "_catalog").is_dir()  # the command's directory, not the runner's

    # the command's environment reaches the run: a bad setting is its one-line error
    code, out, err = _run(
        env | {"RUNE_LAKE_WORKERS": "0"}, "refresh", "--lake", "lake", cwd=tmp_path
    )
    assert code == 2 and "RUNE_LAKE_WORKERS" in err, out + err
    assert _forked(home) == 2


def test_demo_runs_warm_and_starts_its_own_emulator(warm, tmp_path):
    home, env = warm
    env = {k: v for k, v in env.items() if not k.startswith("RUNE_")}  # the demo's own API
    lake = tmp_path / "demo-lake"
    code, out, err = _run(
        env, "demo", "--lake", str(lake), "--patients", "1", "--days", "1", "--no-serve",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, out + err
    assert _forked(home) == 1, "the demo did not run in the warm runner"
    assert "rune-lake demo: emulator at http://127.0.0.1:" in out
    assert "demo took" in out and "Prefect UI: http://127.0.0.1:" in out
    assert list(lake.glob("vitals__heart_rate__rate_per_min/**/*.parquet"))


def test_ctrl_c_reaches_the_run(warm, tmp_path):
    home, env = warm
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    slow = EmulatorConfig(seed=3, patients=1, days=1, now=now, latency_ms=300)
    with running_emulator(slow) as emu:
        code, out, err = _run(
            env | {"RUNE_STREAM_URL": emu.url, "RUNE_GRAPH_URL": emu.url},
            "refresh",
            "--lake",
            str(tmp_path / "lake"),
            sigint_after=6,
        )
    assert code == 130, out + err
    assert _forked(home) == 1
    assert "windows landed" not in out  # stopped before the end


def _runner_ready(home: Path, timeout: float = 120) -> None:
    from rune_lake.flows.warm import fingerprint

    deadline = time.monotonic() + timeout
    while True:
        try:
            if json.loads((home / "rune-lake-runner.json").read_text())["fingerprint"] == (
                fingerprint()
            ):
                return
        except (OSError, ValueError, KeyError):
            pass
        assert time.monotonic() < deadline, "no warm runner for the current code"
        time.sleep(0.2)


def test_changed_code_or_verbose_runs_by_itself(warm, tmp_path):
    """--verbose, a Prefect setting read at import, or allocator options other than the
    runner's: the command runs in its own process. Code changed since the runner started: the command runs by itself and
    restarts the runner, so the next command runs warm on the new code."""
    home, env = warm
    code, out, err = _run(env, "refresh", "--lake", str(tmp_path / "b"), "--verbose")
    assert code == 0, out + err
    code, out, err = _run(
        env | {"PREFECT_LOGGING_LEVEL": "INFO"}, "refresh", "--lake", str(tmp_path / "c")
    )
    assert code == 0, out + err
    # Arrow's allocator reads its options when Arrow loads: the runner has the script's
    # defaults, and a command with other values runs by itself
    info = json.loads((home / "rune-lake-runner.json").read_text())
    assert info["allocator"] == {"MIMALLOC_ALLOW_THP": "0"}
    code, out, err = _run(
        env | {"MIMALLOC_ALLOW_THP": "1"}, "refresh", "--lake", str(tmp_path / "e"), "--no-events"
    )
    assert code == 0, out + err
    assert _forked(home) == 0
    first = info["pid"]

    source = ROOT / "rune_io" / "times.py"
    st = source.stat()
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        code, out, err = _run(env, "refresh", "--lake", str(tmp_path / "a"), "--no-events")
        assert code == 0, out + err
        assert _forked(home) == 0  # it imported everything itself
        _runner_ready(home)  # a new runner, for the changed code
        assert json.loads((home / "rune-lake-runner.json").read_text())["pid"] != first
        code, out, err = _run(env, "refresh", "--lake", str(tmp_path / "d"), "--no-events")
        assert code == 0, out + err
        assert _forked(home) == 1
    finally:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not _alive(first)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return "Z" not in open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]  # noqa: SIM115
