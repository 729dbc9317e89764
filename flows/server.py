"""A local Prefect server that ``rune-lake`` starts once and every later command reuses.

``rune-lake server start`` runs ``prefect server start`` in the background (its own
session, so it outlives the command) on a free port of 127.0.0.1, with
``PREFECT_UI_API_URL`` set so its UI calls it, and records it in
``$PREFECT_HOME/rune-lake-server.json`` (pid, port, URLs, log file
``$PREFECT_HOME/rune-lake-server.log``). ``refresh``, ``backfill`` and ``demo`` then use
it by themselves, saying so in one line, unless ``PREFECT_API_URL`` is set (environment
or the active Prefect profile): that server wins. Without either, the first run starts
that same server by itself (``RUNE_LAKE_LOCAL_SERVER=keep``, the default) and leaves it
up, saying so: later commands skip a server's start-up (3-7 s here), and the runs stay
in its UI. ``RUNE_LAKE_LOCAL_SERVER=temporary`` runs Prefect's temporary server per
command instead. ``status`` says whether it runs, ``stop`` stops it.

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

from rune_io.settings.declare import LOCAL_SERVER
from rune_io.settings.environ import (
    export_default,
    exported,
    passed_through,
    without_settings,
)
from rune_lake.flows import warm
from rune_lake.flows.cli_run import err, fail, out

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


def _profile_api_url(home: Path) -> str | None:
    """``PREFECT_API_URL`` of the active Prefect profile (``profiles.toml``), if any."""
    try:
        doc = tomllib.loads((home / "profiles.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = passed_through("PREFECT_PROFILE") or doc.get("active") or "ephemeral"
    return (doc.get("profiles", {}).get(active) or {}).get("PREFECT_API_URL")


_reused: list[LocalServer] = []


def reuse_local_server() -> str | None:
    """Before Prefect is imported: point this process at the server of ``server start``
    when it runs and no other API is configured (:func:`announce_reuse` says so). Without
    one, Prefect's embedded server gets time to migrate a new database on a slow
    machine (its default 20 s start-up timeout failed a first run here). Returns the URL."""
    export_default("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    home = prefect_home()
    if passed_through("PREFECT_API_URL") or _profile_api_url(home):
        return None
    srv = LocalServer.load(home)
    if srv is None or not srv.alive():
        return None
    export_default("PREFECT_API_URL", srv.api_url)  # unset: checked above
    export_default("PREFECT_UI_URL", srv.ui_url)
    _reused[:] = [srv]
    return srv.api_url


def reused_server() -> LocalServer | None:
    """The server :func:`reuse_local_server` pointed this process at, if any."""
    return _reused[0] if _reused else None


def announce_reuse() -> None:
    """One line when a run goes to the reused local server."""
    if _reused:
        err.print(
            f"using the local Prefect server at {_reused[0].ui_url} "
            "(`rune-lake server stop` stops it)",
            highlight=False,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _state_lock(home: Path) -> Iterator[None]:
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
    port = port or _free_port()
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
        gone = proc.poll() is not None if proc is not None else not _ours(srv)
        if gone or time.monotonic() > deadline:
            _kill(srv)
            home = Path(srv.log).parent
            if LocalServer.load(home) == srv:
                (home / STATE).unlink(missing_ok=True)
            log = Path(srv.log)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-5:])
            raise fail(f"the Prefect server did not start (see {log}): {tail}", 1)
        time.sleep(0.1)


def _ours(srv: LocalServer) -> bool:
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
    if not _ours(srv):
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
                if _zombie(srv.pid):
                    return
            except ProcessLookupError:
                return
            time.sleep(0.2)


def _zombie(pid: int) -> bool:
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
    configured = passed_through("PREFECT_API_URL") or _profile_api_url(home)
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


# -- the temporary server of a run without any --------------------------------------------


class TemporaryServer:
    """Prefect's embedded temporary server (the very command ``SubprocessASGIServer``
    runs), but started by the CLI as soon as the pre-flight check passed, so it boots
    while this process imports Prefect and the flows, and without importing Prefect's
    whole server package here (which ``SubprocessASGIServer`` needs). Stopped when the
    run is over (its buffered logs and events delivered first)."""

    def __init__(self) -> None:
        port = _free_port()
        self.api_url = f"http://127.0.0.1:{port}/api"
        import importlib.util
        import tempfile

        spec = importlib.util.find_spec("prefect")  # its location, without importing it
        app_dir = str(Path(spec.origin if spec and spec.origin else ".").parent.parent)
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        child = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1"}
        child["PREFECT__SERVER_FINAL"] = "1"
        with exported(child):
            self.proc = self._spawn(app_dir, port)

    def _spawn(self, app_dir: str, port: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory"]
            + ["prefect.server.api.server:create_app", "--host", "127.0.0.1"]
            + ["--port", str(port), "--log-level", "error", "--lifespan", "on"],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not healthy(self.api_url, timeout=1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                self.log.seek(0)
                tail = self.log.read()[-500:].decode(errors="replace")
                raise fail(f"the temporary Prefect server did not start: {tail}", 1)
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            self.log.close()
            return
        if "prefect" in sys.modules:
            from rune_lake.flows.runners import _drain_to_api

            _drain_to_api()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


_temporary: list[TemporaryServer] = []


_kept: list[tuple[LocalServer, subprocess.Popen | None]] = []


def start_temporary_server() -> None:
    """With no Prefect API configured and no local server running, start the run's
    server now, so it boots while the flows import (the CLI calls this once the inputs
    are checked): the local server, kept for later commands (``RUNE_LAKE_LOCAL_SERVER``
    ``keep``, the default), or a temporary one for this command."""
    if _temporary or _reused or _kept or passed_through("PREFECT_API_URL"):
        return
    home = prefect_home()
    if _profile_api_url(home):
        return
    if "prefect" in sys.modules:  # e.g. a test harness's temporary settings
        from prefect.settings import get_current_settings

        if get_current_settings().api.url:
            return
    if LOCAL_SERVER.get() == "temporary":
        _temporary.append(TemporaryServer())
        return
    with _state_lock(home):
        srv = LocalServer.load(home)
        if srv is not None and _ours(srv) and not _zombie(srv.pid):
            proc = None  # started by another command (maybe still booting): share it
        else:
            srv, proc = spawn_server(home, auto=True)
    export_default("PREFECT_API_URL", srv.api_url)  # unset: checked above
    export_default("PREFECT_UI_URL", srv.ui_url)
    _kept.append((srv, proc))


def kept_by_a_run() -> bool:
    """The server this command uses was started by a run (``RUNE_LAKE_LOCAL_SERVER``
    ``keep``), this one or an earlier one, not by ``rune-lake server start``."""
    return bool(_kept and _kept[0][0].auto) or bool(_reused and _reused[0].auto)


@contextmanager
def temporary_server_settings(timeout: float = 120) -> Iterator[None]:
    """Around a flow run: point Prefect at the temporary server once it is healthy, and
    stop it afterwards; for the kept local server, wait until it answers (and say so
    once). Nothing to do when none was started."""
    if _kept:
        kept, proc = _kept[0]
        limit = passed_through("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")
        wait_healthy(kept, proc, float(limit or timeout))
        _reused[:] = [kept]
        _kept.clear()
        if proc is None:  # another command started it a moment ago
            announce_reuse()
        else:
            err.print(
                f"started a local Prefect server at {kept.ui_url} (pid {kept.pid}, log "
                f"{kept.log}) for this run; it stays up for later commands and the UI: "
                "`rune-lake server stop` stops it (RUNE_LAKE_LOCAL_SERVER=temporary: a "
                "temporary server per command instead)",
                highlight=False,
            )
        yield
        return
    if not _temporary:
        yield
        return
    srv = _temporary[0]
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        limit = passed_through("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")
        srv.wait(float(limit or timeout))
        with temporary_settings(updates={PREFECT_API_URL: srv.api_url}):
            yield
    finally:
        srv.stop()
        _temporary.clear()
