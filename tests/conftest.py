"""Session-wide isolation, set before anything imports Prefect or botocore.

- ``PREFECT_HOME`` is a fresh temporary directory: results, the local database and
  settings of this run never touch the user's ``~/.prefect``.
- ``AWS_EC2_METADATA_DISABLED``: botocore never reaches for instance metadata (a
  network call beyond loopback) when a test has no AWS credentials on purpose.
- ``MIMALLOC_ALLOW_THP=0``: Arrow's allocator as the ``rune-lake`` script starts it
  (``rune_lake.flows.allocator``), in this process and the ones it starts (read when
  Arrow loads, which nothing has done yet).
- ``RUNE_LAKE_LOCAL_SERVER=temporary``: a CLI run without a Prefect API gets a temporary
  server, not a local one left running after the test (the default, ``keep``, has its
  own tests in tests/deployments/test_local_server.py). A server a test left running
  anyway, under this session's directories, is stopped at the end, and named.
"""

from __future__ import annotations

import os
import shutil
import tempfile

PREFECT_HOME = tempfile.mkdtemp(prefix="rune-lake-tests-prefect-")
os.environ["PREFECT_HOME"] = PREFECT_HOME
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["RUNE_LAKE_LOCAL_SERVER"] = "temporary"
os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 - pytest's hook signature
    roots = [PREFECT_HOME]
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        roots.append(str(factory.getbasetemp()))
    left = _stop_local_servers(roots)
    if left:
        print(f"\nstopped {len(left)} local Prefect server(s) tests left running: {left}")
    shutil.rmtree(PREFECT_HOME, ignore_errors=True)


def _stop_local_servers(roots: list[str]) -> list[str]:
    """SIGTERM the process group of every ``prefect server start`` (and warm runner,
    ``rune_lake.flows.warm``) whose PREFECT_HOME is under ``roots`` (this session's);
    returns their PREFECT_HOMEs."""
    import signal
    from pathlib import Path

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            server = b"prefect" in cmd and b"server" in cmd and b"start" in cmd
            if not server and b"rune_lake.flows.warm" not in cmd:  # or its warm runner
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        home = next((e[12:].decode() for e in environ if e.startswith(b"PREFECT_HOME=")), "")
        if home and any(home.startswith(r) for r in roots):
            try:
                os.killpg(int(entry.name), signal.SIGTERM)
                found.append(home)
            except (ProcessLookupError, PermissionError):
                pass
    return found
