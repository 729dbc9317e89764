"""A local Prefect server that ``rune-lake`` starts once and every later command reuses.

``rune-lake server start`` runs ``prefect server start`` in the background (its own
session, so it outlives the command) on a free port of 127.0.0.1, with
``PREFECT_UI_API_URL`` set so its UI calls it, and records it in
``$PREFECT_HOME/rune-lake-server.json`` (pid, port, URLs, log file
``$PREFECT_HOME/rune-lake-server.log``). ``refresh``, ``backfill`` and ``demo`` then use
it by themselves, saying so in one line, unless ``PREFECT_API_URL`` is set (environment
or the active Prefect profile): that server wins. Without either, the first run starts
that same server by itself (``RUNE_LAKE_LOCAL_SERVER=keep``, the default) and leaves it
up, saying so: later commands skip a server's start-up (6-8 s here), and the runs stay
in its UI. ``RUNE_LAKE_LOCAL_SERVER=temporary`` runs Prefect's temporary server per
command instead (:mod:`rune_lake.flows.run_server`: the server a command uses).
``status`` says whether it runs, ``stop`` stops it.

Nothing here imports Prefect: the reuse check costs a file read and one HTTP request.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer

from rune_io.settings.environ import (
    exported,
    passed_through,
    without_settings,
)
from rune_lake.flows import warm
from rune_lake.flows.cli_run import fail, out

app = typer.Typer(
    help="A local Prefect server that later rune-lake commands reuse (start, stop, status).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

STATE = "rune-lake-server.json"
LOG = "rune-lake-server.log"
LOCK = "rune-lake-server.lock"


def prefect_home() -> Path:
    """Prefect's home folder, as Prefect resolves it (``PREFECT_HOME``, default ~/.prefect)."""
    return Path(passed_through("PREFECT_HOME") or "~/.prefect").expanduser()


@dataclass
class LocalServer:
    pid: int
    port: int
    api_url: str
    ui_url: str
    log: str
    auto: bool = False  # started by a run (RUNE_LAKE_LOCAL_SERVER=keep), not `server start`
    runner: int = 0  # pid of the warm runner beside it (rune_lake.flows.warm), 0: none

    @staticmethod
    def load(home: Path | None = None) -> LocalServer | None:
        try:
            raw = json.loads(((home or prefect_home()) / STATE).read_text())
            return LocalServer(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def save(self, home: Path) -> None:
        path = home / STATE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, another user's: the health check decides
        return healthy(self.api_url, timeout=2)


def healthy(api_url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def profile_api_url(home: Path) -> str | None:
    """``PREFECT_API_URL`` of the active Prefect profile (``profiles.toml``), if any."""
    try:
        doc = tomllib.loads((home / "profiles.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = passed_through("PREFECT_PROFILE") or doc.get("active") or "ephemeral"
    return (doc.get("profiles", {}).get(active) or {}).get("PREFECT_API_URL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def state_lock(home: Path) -> Iterator[None]:
    """Serialise starting the local server of ``home`` across processes (two commands
    started at once start one server)."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / LOCK).open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def start_server(home: Path, port: int | None = None, timeout: float = 120) -> LocalServer:
    """Start ``prefect server start`` in the background and wait until it is healthy."""
    srv, proc = spawn_server(home, port)
    wait_healthy(srv, proc, timeout)
    return srv


def spawn_server(
    home: Path, port: int | None = None, *, auto: bool = False
) -> tuple[LocalServer, subprocess.Popen | None]:
    """Start ``prefect server start`` in the background (its own session: it outlives
    this command) and record it; does not wait for it (:func:`wait_healthy`)."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log = home / LOG
    child = {
        "PREFECT_HOME": str(home),
        "PREFECT_UI_API_URL": api_url,  # a server off port 4200: its UI must call this one
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    with log.open("ab") as fh, exported(child):
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start"]
            + ["--host", "127.0.0.1", "--port", str(port)],
            env=without_settings(),  # it outlives the command: none of its credentials
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command; stopped as one group
        )
    srv = LocalServer(proc.pid, port, api_url, api_url.removesuffix("/api"), str(log), auto)
    srv.runner = warm.spawn(home, proc.pid, log)  # stops by itself when the server is gone
    srv.save(home)
    return srv, proc


def wait_healthy(srv: LocalServer, proc: subprocess.Popen | None, timeout: float) -> None:
    """Wait until ``srv`` answers; on failure stop it, forget it, and say why (its log's
    tail). ``proc``: its process when this one started it (else its pid is watched)."""
    deadline = time.monotonic() + timeout
    while not healthy(srv.api_url, timeout=2):
        gone = proc.poll() is not None if proc is not None else not is_ours(srv)
        if gone or time.monotonic() > deadline:
            _kill(srv)
            home = Path(srv.log).parent
            if LocalServer.load(home) == srv:
                (home / STATE).unlink(missing_ok=True)
            log = Path(srv.log)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-5:])
            raise fail(f"the Prefect server did not start (see {log}): {tail}", 1)
        time.sleep(0.1)


def is_ours(srv: LocalServer) -> bool:
    """The pid is still the server we started (not a reused pid of something else)."""
    try:
        cmd = Path(f"/proc/{srv.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"prefect" in cmd and str(srv.port).encode() in cmd


def _kill(srv: LocalServer, grace: float = 20) -> None:
    """SIGTERM the server's process group (and its warm runner), SIGKILL after
    ``grace`` seconds."""
    warm.stop(srv.runner)
    warm.stop(warm.current(Path(srv.log).parent))  # the one now serving, if code changed
    if not is_ours(srv):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(srv.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.kill(srv.pid, 0)
                if is_zombie(srv.pid):
                    return
            except ProcessLookupError:
                return
            time.sleep(0.2)


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


Port = Annotated[
    int | None,
    typer.Option(metavar="N", help="Port on 127.0.0.1", show_default="a free port"),
]


@app.command()
def start(port: Port = None) -> None:
    """Start a local Prefect server in the background (once): later refresh, backfill
    and demo commands use it, and their runs stay in its UI."""
    home = prefect_home()
    srv = LocalServer.load(home)
    if srv is not None and srv.alive():
        if srv.auto:  # started by a run: now the user's, as if started here
            srv.auto = False
            srv.save(home)
        out.print(f"a local Prefect server already runs at {srv.ui_url} (pid {srv.pid})")
        return
    if port is not None and not 0 < port < 65536:
        raise fail(f"--port must be between 1 and 65535, got {port}")
    srv = start_server(home, port)
    out.print(
        f"started a local Prefect server at {srv.ui_url} (pid {srv.pid}, log {srv.log}); "
        "later rune-lake commands use it; `rune-lake server stop` stops it",
        highlight=False,
    )


@app.command()
def status() -> None:
    """Say whether the local Prefect server runs (exit 0) or not (exit 1)."""
    home = prefect_home()
    srv = LocalServer.load(home)
    if srv is None or not srv.alive():
        out.print("no local Prefect server runs (`rune-lake server start` starts one)")
        raise typer.Exit(1)
    configured = passed_through("PREFECT_API_URL") or profile_api_url(home)
    note = f"; not used: PREFECT_API_URL is {configured}" if configured else ""
    out.print(
        f"a local Prefect server runs at {srv.ui_url} (pid {srv.pid}, log {srv.log}){note}",
        highlight=False,
    )


@app.command()
def stop() -> None:
    """Stop the local Prefect server started by `rune-lake server start`."""
    home = prefect_home()
    srv = LocalServer.load(home)
    if srv is None:
        out.print("no local Prefect server to stop")
        return
    _kill(srv)
    (home / STATE).unlink(missing_ok=True)
    out.print(f"stopped the local Prefect server at {srv.ui_url} (pid {srv.pid})", highlight=False)
