"""The warm runner: ``refresh``, ``backfill`` and ``demo`` without paying Python's and
Prefect's start-up on every command.

A ``rune-lake`` command imports Prefect, the flows and pyarrow before its run starts:
~2 s of a stream-day backfill's ~5 s here. Beside the local server of ``rune-lake server
start`` (or the one a run kept), a runner process (``python -m rune_lake.flows.warm
HOME``) imports all of that once and waits on a Unix socket, ``$PREFECT_HOME/
rune-lake-runner.sock`` (mode 0600). A ``refresh``, ``backfill`` or ``demo`` command
connects, hands over its argv, environment, working directory, umask and its stdin,
stdout and stderr, and the runner forks: the child *is* the command from then on (the
same CLI code, the same flow run on the same server, the same output on the same
terminal, the same exit code), only without the imports. Ctrl-C and SIGTERM are
forwarded to it.

A command runs by itself, as before, whenever the runner could differ from it: no
runner, ``--verbose``, a Prefect setting in the environment other than the allowed ones
(they are read when Prefect is imported), allocator options other than the runner's
(:mod:`rune_lake.flows.allocator`: read when Arrow loads), another Python, or code
changed since the runner started (the fingerprint of every source file's size and
mtime, and the installed Prefect's). Nothing here imports more than the standard
library.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from rune_lake.flows import allocator

SOCK = "rune-lake-runner.sock"
INFO = "rune-lake-runner.json"
#: the commands that run warm: the runs, and the demo (its own emulator, then a refresh)
COMMANDS = ("refresh", "backfill", "demo")
#: Prefect variables a command may set and still use the runner (read at use, not import).
ALLOWED_PREFECT = (
    "PREFECT_HOME",
    "PREFECT_SERVER_ANALYTICS_ENABLED",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
)


def fingerprint() -> str:
    """What the runner's imports depend on: this Python environment (``sys.prefix``:
    ``python`` and ``python3`` of one venv are the same), Prefect's version, and every
    source file of rune_lake and rune_io (size and mtime)."""
    here = Path(__file__).resolve().parent  # flows/ (installed as rune_lake.flows)
    roots = [here, here.parent / "tasks", here.parent / "rune_io"]
    h = hashlib.sha256(f"{sys.prefix}\0{sys.version}".encode())
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            st = path.stat()
            h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    try:
        from importlib.metadata import version

        h.update(version("prefect").encode())
    except Exception:  # noqa: BLE001 - no version: the fingerprint still differs per file
        pass
    return h.hexdigest()


def _home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


# -- the command's side ------------------------------------------------------------------


def try_run(argv: list[str]) -> int | None:
    """Run this command in the warm runner, if it applies; its exit code, or None to run
    it in this process."""
    if not argv or argv[0] not in COMMANDS or "--verbose" in argv or "-v" in argv:
        return None
    if any(k.startswith("PREFECT_") and k not in ALLOWED_PREFECT for k in os.environ):
        return None
    home = _home()
    try:
        info = json.loads((home / INFO).read_text())
    except (OSError, ValueError):
        return None
    if info.get("fingerprint") != fingerprint():
        restart(home, int(info.get("pid", 0)), int(info.get("server", 0)))
        return None
    if info.get("allocator") != allocator.variables(os.environ):
        return None  # the runner's Arrow allocates differently (read when Arrow loaded)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(home / SOCK))
    except OSError:
        conn.close()
        return None
    with conn:
        request = {
            "argv": argv,
            "env": dict(os.environ),
            "cwd": os.getcwd(),
            "umask": _umask(),
            "fingerprint": info["fingerprint"],
        }
        socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
        return _wait(conn)


def restart(home: Path, old: int, server: int) -> None:
    """The code changed since runner ``old`` started: stop it and start a new one in the
    background (this command runs by itself meanwhile; the next ones run warm again)."""
    stop(old, wait=0)
    (home / INFO).unlink(missing_ok=True)
    if server:
        spawn(home, server, home / "rune-lake-server.log")


def stop(pid: int, wait: float = 10) -> None:
    """SIGTERM runner ``pid`` if it still is one (the runs it forked go on), and wait up
    to ``wait`` seconds for it to end (it does within a second: its accept timeout)."""
    try:
        if not pid or b"rune_lake.flows.warm" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and _alive(pid) and not _zombie(pid):
        time.sleep(0.05)


def current(home: Path) -> int:
    """The pid of the runner now serving ``home`` (0: none)."""
    try:
        return int(json.loads((home / INFO).read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return 0


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def spawn(home: Path, server: int, log: Path) -> int:
    """Start a runner for ``home`` beside the Prefect server ``server`` (pid), in its own
    session, without any ``RUNE_*`` variable; its pid."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNE_")}
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rune_lake.flows.warm", str(home), str(server)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc.pid


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _wait(conn: socket.socket) -> int | None:
    """Read the child's pid and exit code, forwarding SIGINT and SIGTERM to it."""
    reader = conn.makefile("r")
    first = reader.readline()
    if not first:
        return None  # the runner refused (stale): run here
    pid = json.loads(first)["pid"]

    def forward(sig: int, _frame: Any) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    line = reader.readline()
    if not line:
        sys.stderr.write(f"rune-lake: the run's process ({pid}) ended without an exit code\n")
        return 1
    return int(json.loads(line)["exit"])


# -- the runner's side -------------------------------------------------------------------


#: What a run imports, so that the runner imports it once and no child does: Prefect's
#: engines, the flows, and what a run imports lazily (measured: without these, each
#: command imported ~450 modules, pandas the most; pyarrow imports it to convert any
#: Python list, Prefect imports fastapi to serialize a flow's parameters).
WARM_IMPORTS = (
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.utilities.visualization",
    "rune_lake.flows.backfill",
    "rune_lake.flows.cli",
    "rune_lake.flows.cli_run",
    "rune_lake.flows.heartbeats",
    "rune_lake.flows.refresh",
    "rune_lake.flows.run",
    "rune_lake.flows.run_server",
    "rune_lake.flows.runners",
    "rune_lake.flows.server",
    "rune_io.api.client",
    "rune_io.lake",
    "rune_io.pipeline",
    "fastapi.encoders",
    "anyio._backends._asyncio",
    "pandas",
    "pyarrow.acero",
    "pyarrow.dataset",
    "pyarrow.pandas_compat",
    "pyarrow.parquet",
    "rich._emoji_codes",
    "rich.progress",
    "netrc",
    "_strptime",
    "zoneinfo",
)


def serve(home: Path, server: int = 0) -> None:
    """Import what a run needs, then fork a child per command until SIGTERM, or until
    the Prefect server ``server`` (pid) is gone."""
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    import importlib

    for name in WARM_IMPORTS:  # imported once, for every child
        try:
            importlib.import_module(name)
        except ImportError:  # another version of a dependency: the child imports it
            pass
    # What was imported lives as long as any child: out of the garbage collector's
    # sight, so a child's full collection no longer walks it (measured: one 85 ms pass,
    # the GIL held, per whole-cohort refresh) and copy-on-write pages stay shared.
    gc.collect()
    gc.freeze()
    print(f"rune-lake runner: {gc.get_freeze_count()} objects frozen for the commands", flush=True)

    mark = fingerprint()
    path = home / SOCK
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket is the user's only: it runs commands as them
    try:
        listener.bind(str(path))
    finally:
        os.umask(old)
    listener.listen(16)
    listener.settimeout(1.0)
    tmp = home / (INFO + ".tmp")
    allocating = allocator.variables(os.environ)
    tmp.write_text(
        json.dumps(
            {"pid": os.getpid(), "server": server, "fingerprint": mark, "allocator": allocating}
        )
    )
    tmp.replace(home / INFO)
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        while not stop and _alive(server):
            _reap()
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except InterruptedError:
                continue
            try:
                _fork_for(conn, listener, mark)
            finally:
                conn.close()
    finally:
        listener.close()
        if _ours(home):  # not the files of a runner started after this one
            for name in (SOCK, INFO):
                (home / name).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ours(home: Path) -> bool:
    """This runner still serves ``home`` (restarted: the socket may be the new runner's;
    a stale one left behind is harmless)."""
    return current(home) == os.getpid()


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _fork_for(conn: socket.socket, listener: socket.socket, mark: str) -> None:
    conn.settimeout(10)
    try:
        msg, fds, _flags, _addr = socket.recv_fds(conn, 1 << 22, 3)
        request = json.loads(msg)
    except (OSError, ValueError):
        return
    if request.get("fingerprint") != mark or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return  # closed without a pid: the command runs by itself
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        command = str(request.get("argv", ["?"])[0])  # the command's name only: no values
        print(f"rune-lake runner: process {pid} runs `rune-lake {command}`", flush=True)
        return
    try:
        listener.close()
        code = _child(conn, fds, request)
    except BaseException:  # noqa: BLE001 - the child must never return into the loop
        import traceback

        traceback.print_exc()
        code = 1
    os._exit(code)


def _child(conn: socket.socket, fds: list[int], request: dict[str, Any]) -> int:
    """Become the command: its descriptors, directory, umask, environment, signals."""
    os.setpgid(0, 0)  # its own group: stopping the runner does not stop a run
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=stream.isatty())  # type: ignore[union-attr]
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    conn.settimeout(None)
    conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")

    from rune_lake.flows import cli, cli_run

    # the consoles were made in the runner (no terminal): again, for this command's
    cli_run.out.__init__(soft_wrap=True)  # type: ignore[misc]
    cli_run.err.__init__(stderr=True, soft_wrap=True)  # type: ignore[misc]
    sys.argv = ["rune-lake", *request["argv"]]
    status = cli.finish(cli.run_command(request["argv"]))  # logs and events delivered
    try:
        conn.sendall(json.dumps({"exit": status}).encode() + b"\n")
    except OSError:
        pass
    return status


def main() -> None:
    home = Path(sys.argv[1]) if len(sys.argv) > 1 else _home()
    server = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    home.mkdir(parents=True, exist_ok=True)
    allocator.prepare()  # before the imports load Arrow
    t0 = time.perf_counter()
    print(f"rune-lake runner: importing for {home}", flush=True)
    try:
        serve(home, server)
    finally:
        print(f"rune-lake runner: stopped after {time.perf_counter() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
