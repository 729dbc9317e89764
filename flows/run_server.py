"""The Prefect server of a ``refresh``, ``backfill`` or ``demo`` command that has none
configured (:mod:`rune_lake.flows.server` manages the local one).

Before Prefect is imported, :func:`reuse_local_server` points the command at the local
server when it runs. Otherwise, once the inputs are checked, :func:`start_temporary_server`
starts one so that it boots while the flows import: the local server, kept for later
commands (``RUNE_LAKE_LOCAL_SERVER=keep``, the default), or Prefect's temporary server
for this command (``temporary``). :func:`temporary_server_settings` wraps the flow run:
it waits until that server answers, says which one the run uses, and stops a temporary
one afterwards.

Nothing here imports Prefect before the run does.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rune_io.settings.declare import LOCAL_SERVER
from rune_io.settings.environ import export_default, exported, passed_through
from rune_lake.flows.cli_run import err, fail
from rune_lake.flows.server import (
    LocalServer,
    free_port,
    healthy,
    is_ours,
    is_zombie,
    prefect_home,
    profile_api_url,
    spawn_server,
    state_lock,
    wait_healthy,
)

_reused: list[LocalServer] = []


def reuse_local_server() -> str | None:
    """Before Prefect is imported: point this process at the server of ``server start``
    when it runs and no other API is configured (:func:`announce_reuse` says so). Without
    one, Prefect's embedded server gets time to migrate a new database on a slow
    machine (its default 20 s start-up timeout failed a first run here). Returns the URL."""
    export_default("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    home = prefect_home()
    if passed_through("PREFECT_API_URL") or profile_api_url(home):
        return None
    srv = LocalServer.load(home)
    if srv is None or not srv.alive():
        return None
    export_default("PREFECT_API_URL", srv.api_url)  # unset: checked above
    export_default("PREFECT_UI_URL", srv.ui_url)
    _reused[:] = [srv]
    return srv.api_url


def announce_reuse() -> None:
    """One line when a run goes to the reused local server."""
    if _reused:
        err.print(
            f"using the local Prefect server at {_reused[0].ui_url} "
            "(`rune-lake server stop` stops it)",
            highlight=False,
        )


class TemporaryServer:
    """Prefect's embedded temporary server (the very command ``SubprocessASGIServer``
    runs), but started by the CLI as soon as the pre-flight check passed, so it boots
    while this process imports Prefect and the flows, and without importing Prefect's
    whole server package here (which ``SubprocessASGIServer`` needs). Stopped when the
    run is over (its buffered logs and events delivered first)."""

    def __init__(self) -> None:
        port = free_port()
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
    if profile_api_url(home):
        return
    if "prefect" in sys.modules:  # e.g. a test harness's temporary settings
        from prefect.settings import get_current_settings

        if get_current_settings().api.url:
            return
    if LOCAL_SERVER.get() == "temporary":
        _temporary.append(TemporaryServer())
        return
    with state_lock(home):
        srv = LocalServer.load(home)
        if srv is not None and is_ours(srv) and not is_zombie(srv.pid):
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
