"""Task runner choice, shared by every flow: bounded threads (default) or Dask.

Chosen at import time from the environment, so a deployment sets it with job variables
and the CLI with ``--runner``/``--workers`` (which set the same variables):

- ``RUNE_LAKE_TASK_RUNNER``: ``threads`` (default) or ``dask``;
- ``RUNE_LAKE_WORKERS``: threads in the pool (default 4), or Dask worker processes;
- ``RUNE_LAKE_DASK_THREADS``: threads per Dask worker process (default 1);
- ``RUNE_LAKE_DASK_ADDRESS``: an existing Dask scheduler (``tcp://host:8786``); without
  it a ``LocalCluster`` of processes is started for the flow run (and torn down after).

Dask workers are separate processes that create their task runs through the Prefect
API themselves, so they need a *real* Prefect API URL: with none set, every worker
process would start an ephemeral server of its own (12-16 s each here) that knows
nothing of the flow run. :class:`RuneDaskTaskRunner` therefore refuses to start without
``PREFECT_API_URL`` (clear error), and hands the URL to the ``LocalCluster`` workers it
spawns. ``rune-lake refresh|backfill --runner dask`` starts a temporary local server
for the run when none is configured (:func:`prefect_api_for_dask`). Workers of an
existing cluster (``RUNE_LAKE_DASK_ADDRESS``) must be given ``PREFECT_API_URL``,
the ``RUNE_*`` settings (or use a credentials block) and the lake's ``AWS_*`` settings
by whoever starts them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

DEFAULT_WORKERS = 4


class DaskNeedsPrefectAPI(RuntimeError):
    """The Dask runner was started without a Prefect API URL its workers can reach."""

    def __init__(self) -> None:
        super().__init__(
            "the Dask task runner needs a Prefect API server that its worker processes "
            "can reach, and PREFECT_API_URL is not set (an ephemeral per-process server "
            "does not work across processes). Start one (`prefect server start`) and "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api`, or run through "
            "`rune-lake refresh --runner dask`, which starts a temporary local server "
            "for the run"
        )


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if n < 1:
        raise ValueError(f"{name} must be at least 1, got {n}")
    return n


def workers() -> int:
    return _int_env("RUNE_LAKE_WORKERS", DEFAULT_WORKERS)


def dask_threads() -> int:
    return _int_env("RUNE_LAKE_DASK_THREADS", 1)


def prefect_api_url() -> str | None:
    """The Prefect API URL of the current settings (context, environment, profile)."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def dask_task_runner(address: str | None = None, n_workers: int | None = None, **cluster: Any):
    """A Dask task runner: on the scheduler at ``address``, else on a ``LocalCluster``
    of ``n_workers`` single-threaded processes (``RUNE_LAKE_WORKERS`` by default)."""
    from rune_lake.flows.dask_runner import RuneDaskTaskRunner as cls

    if address:
        return cls(address=address)
    kwargs = {
        "n_workers": n_workers or workers(),
        "threads_per_worker": dask_threads(),
        "processes": True,
        "dashboard_address": None,  # no fixed port: several runs may share a machine
        **cluster,
    }
    return cls(cluster_class="distributed.LocalCluster", cluster_kwargs=kwargs)


def make_task_runner() -> TaskRunner[Any]:
    kind = os.environ.get("RUNE_LAKE_TASK_RUNNER", "threads").strip().lower()
    if kind == "threads":
        # bounded: an unbounded pool grew to thousands of threads with many chunks
        return ThreadPoolTaskRunner(max_workers=workers())
    if kind == "dask":
        return dask_task_runner(os.environ.get("RUNE_LAKE_DASK_ADDRESS") or None)
    raise ValueError(f"RUNE_LAKE_TASK_RUNNER must be 'threads' or 'dask', got {kind!r}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def prefect_api_for_dask(timeout: int = 120) -> Iterator[tuple[str, bool]]:
    """Make sure a real Prefect API serves this process and its Dask workers.

    Yields ``(api_url, started)``. If ``PREFECT_API_URL`` is configured it is used as is
    (``started`` False). Otherwise a temporary local server (the same one Prefect's
    ephemeral mode runs: uvicorn on 127.0.0.1, the profile's database, so the run shows
    up in ``prefect server start`` later) is started for the duration, exported as
    ``PREFECT_API_URL`` to this process's settings and environment (which spawned
    workers inherit), and stopped afterwards.
    """
    url = prefect_api_url()
    if url:
        yield url, False
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer(port=_free_port())
    saved_ui = os.environ.get("PREFECT_UI_API_URL")
    os.environ["PREFECT_UI_API_URL"] = server.api_url  # its UI (not on 4200) calls it
    server.start(timeout=timeout)
    saved = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url, True
            finally:
                _drain_to_api()
    finally:
        for var, value in (("PREFECT_API_URL", saved), ("PREFECT_UI_API_URL", saved_ui)):
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        server.stop()


def _drain_to_api(timeout: float = 10.0) -> None:
    """Send buffered logs and events before the temporary server stops (else the log
    worker retries a dead server for a minute at exit)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        try:
            service.drain_all(timeout=timeout)
        except Exception:  # noqa: BLE001 - best effort at shutdown
            pass
