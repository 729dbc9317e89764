"""A real Prefect stack for deployment tests: server, deployments, a process worker.

Everything Prefect runs in subprocesses with their own ``PREFECT_HOME`` and environment;
this process talks to the server only through clients built with its URL, so nothing
here touches ``os.environ`` or the settings of other tests (e.g. the flow tests'
``prefect_test_harness``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rune_emulator import (
    DEMO_ACCESS_TOKEN_ID,
    DEMO_ACCESS_TOKEN_SECRET,
    EmulatorConfig,
    running_emulator,
)
from rune_io.pipeline.plan import floor_day

ROOT = Path(__file__).resolve().parents[2]
POOL = "rune-lake-process"
API_LIMIT = "rune-api"
CREDENTIALS_BLOCK = "rune-credentials"
#: the emulator's clock: today's midnight (UTC), so backfill ranges are never "future"
TODAY = floor_day(datetime.now(UTC))


def prefect_exe() -> str:
    """The ``prefect`` script of this interpreter's environment."""
    here = Path(sys.executable).parent / "prefect"
    found = str(here) if here.exists() else shutil.which("prefect")
    if not found:
        pytest.fail("no `prefect` executable next to this Python or on PATH")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any PREFECT_* or RUNE_* variable, plus ``extra``; runs
    without a Prefect API get a temporary server (``RUNE_LAKE_LOCAL_SERVER``, as in
    tests/conftest.py) unless ``extra`` says otherwise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUNE_"))}
    return env | {"RUNE_LAKE_LOCAL_SERVER": "temporary"} | extra


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def stop(proc: subprocess.Popen) -> None:
    """Stop ``proc``, its process group, and any descendant that left the group."""
    if proc.poll() is not None:
        return
    pids = [proc.pid, *(_descendants(proc.pid) if Path("/proc").exists() else [])]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.killpg(os.getpgid(pid), sig)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            proc.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue


@dataclass
class Stack:
    api_url: str
    home: Path
    env: dict[str, str]  # for CLI subprocesses talking to this server
    emu: object
    lake: Path
    logs: Path

    def cli(self, *args: str, timeout: float = 120) -> str:
        """Run ``prefect <args>`` against this server, no prompts, no stdin."""
        res = subprocess.run(
            [prefect_exe(), "--no-prompt", *args],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert res.returncode == 0, f"prefect {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
        return res.stdout

    def log_tail(self, name: str, lines: int = 60) -> str:
        path = self.logs / f"{name}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prefect server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"prefect server not healthy after {timeout}s:\n{log.read_text()[-3000:]}")


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, killed as one
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """The Prefect stack of :func:`start_stack`, without its UI."""
    with start_stack(tmp_path_factory.mktemp("prefect")) as st:
        yield st


@contextmanager
def start_stack(base: Path, ui: bool = False) -> Iterator[Stack]:
    """Server on 127.0.0.1 (own home and sqlite DB, scheduler on: the nightly schedule
    gets its runs, at 02:30 UTC, which no test waits for; the UI only when ``ui``), pool +
    API limit + Secret block, ``prefect deploy --all`` from the repository root, the
    emulator in this process, and a process worker whose environment carries the Rune URLs
    and the lake (credentials come from the block)."""

    home, logs, lake = base / "home", base / "logs", base / "lake"
    for d in (home, logs):
        d.mkdir()
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    common = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_CLI_PROMPT": "false",
    }
    server_env = clean_env(
        **common,
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        # the real scheduler (it is what makes the nightly schedule fire), polling often
        # so the deployments' runs appear within seconds of `prefect deploy`
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
        PREFECT_SERVER_UI_ENABLED="true" if ui else "false",
        PREFECT_UI_API_URL=api_url,  # a server off port 4200: its UI must call this one
        # a 503 (what the server answers for a retryable error, e.g. a locked sqlite
        # database) is logged with its traceback, for the failure message
        PREFECT_API_LOG_RETRYABLE_ERRORS="true",
    )
    client_env = clean_env(**common, PREFECT_API_URL=api_url)
    procs: list[subprocess.Popen] = []
    try:
        server = _spawn(
            [prefect_exe(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            server_env,
            logs / "server.log",
        )
        procs.append(server)
        _wait_healthy(api_url, server, logs / "server.log")

        cfg = EmulatorConfig(seed=7, patients=2, days=3, now=TODAY)
        with running_emulator(cfg) as emu:
            st = Stack(api_url, home, client_env, emu, lake, logs)
            st.cli("work-pool", "create", POOL, "--type", "process", "--overwrite")
            st.cli("global-concurrency-limit", "create", API_LIMIT, "--limit", "8")
            creds = {
                "access_token_id": DEMO_ACCESS_TOKEN_ID,
                "access_token_secret": DEMO_ACCESS_TOKEN_SECRET,
            }
            _save_secret(client_env, CREDENTIALS_BLOCK, creds)
            st.cli("deploy", "--all", timeout=180)

            worker_env = clean_env(
                **common,
                PREFECT_API_URL=api_url,
                PREFECT_WORKER_QUERY_SECONDS="1",
                RUNE_STREAM_URL=emu.url,
                RUNE_GRAPH_URL=emu.url,
                RUNE_LAKE_URL=str(lake),
            )
            worker = _spawn(
                [prefect_exe(), "worker", "start", "--pool", POOL, "--install-policy", "never"],
                worker_env,
                logs / "worker.log",
            )
            procs.append(worker)
            yield st
    finally:
        for p in reversed(procs):
            stop(p)


def _save_secret(env: dict[str, str], name: str, value: dict[str, str]) -> None:
    """Save a Secret block on the test server, as a user would from Python."""
    code = (
        "import json, sys\n"
        "from prefect.blocks.system import Secret\n"
        "Secret(value=json.loads(sys.argv[2])).save(sys.argv[1], overwrite=True)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, name, json.dumps(value)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
