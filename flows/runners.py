"""Task runner choice, shared by every flow: bounded threads (default) or Dask.

A flow's task runner is chosen when a run starts, not when its module is imported: the
flows are declared with :class:`SettingsTaskRunner`, which becomes
:func:`make_task_runner`'s runner for each run, from the settings then in force
(``RUNE_LAKE_TASK_RUNNER``, ``RUNE_LAKE_WORKERS``, ``RUNE_LAKE_DASK_THREADS``,
``RUNE_LAKE_DASK_ADDRESS``; a deployment sets them as job variables). The CLI's
``--runner``/``--workers`` become those settings, as overrides scoped to its run.

Dask workers are separate processes that create their task runs through the Prefect
API themselves, so they need a *real* Prefect API URL: with none set, every worker
process would start an ephemeral server of its own (12-16 s each here) that knows
nothing of the flow run. :class:`RuneDaskTaskRunner` therefore refuses to start without
``PREFECT_API_URL`` (clear error), and hands the URL to the ``LocalCluster`` workers it
spawns, with the settings overrides of the command that made it
(:func:`rune_io.settings.current_overrides`). ``rune-lake refresh|backfill --runner dask``
starts a temporary local server for the run when none is configured
(:func:`prefect_api_for_dask`). Workers of an existing cluster (``RUNE_LAKE_DASK_ADDRESS``)
must be given ``PREFECT_API_URL``, the ``RUNE_*`` settings (or use a credentials block)
and the lake's ``AWS_*`` settings by whoever starts them.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from rune_io.settings import current_overrides
from rune_io.settings import declare as d
from rune_io.settings.environ import exported

DEFAULT_WORKERS = d.WORKERS.default


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


def workers() -> int:
    return d.WORKERS.get()


def dask_threads() -> int:
    return d.DASK_THREADS.get()


def prefect_api_url() -> str | None:
    """The Prefect API URL of the current settings (context, environment, profile)."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def dask_task_runner(address: str | None = None, n_workers: int | None = None, **cluster: Any):
    """A Dask task runner: on the scheduler at ``address``, else on a ``LocalCluster``
    of ``n_workers`` single-threaded processes (``RUNE_LAKE_WORKERS`` by default), whose
    environment gets this context's settings overrides."""
    from rune_lake.flows.dask_runner import RuneDaskTaskRunner as cls

    if address:
        return cls(address=address)
    env = {**current_overrides(), **cluster.pop("env", {})}
    kwargs = {
        "n_workers": n_workers or workers(),
        "threads_per_worker": dask_threads(),
        "processes": True,
        "dashboard_address": None,  # no fixed port: several runs may share a machine
        **({"env": env} if env else {}),
        **cluster,
    }
    return cls(cluster_class="distributed.LocalCluster", cluster_kwargs=kwargs)


def make_task_runner(kind: str | None = None, n_workers: int | None = None) -> TaskRunner[Any]:
    """The task runner ``kind`` (``threads`` or ``dask``; default ``RUNE_LAKE_TASK_RUNNER``)
    with ``n_workers`` threads or Dask processes (default ``RUNE_LAKE_WORKERS``)."""
    kind = d.TASK_RUNNER.get() if kind is None else kind.strip().lower()
    if kind == "threads":
        # bounded: an unbounded pool grew to thousands of threads with many chunks
        return ThreadPoolTaskRunner(max_workers=n_workers or workers())
    if kind == "dask":
        return dask_task_runner(d.DASK_ADDRESS.get(), n_workers)
    raise ValueError(f"the task runner must be 'threads' or 'dask', got {kind!r}")


class SettingsTaskRunner(TaskRunner[Any]):
    """The task runner the settings name when a flow run starts: Prefect calls
    :meth:`duplicate` at the start of every run, which returns
    :func:`make_task_runner`'s runner. Importing a flow declared with it reads nothing."""

    def duplicate(self) -> Any:
        return make_task_runner()

    def submit(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("SettingsTaskRunner runs nothing itself: enter duplicate()'s runner")


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
    # its UI (not on 4200) calls PREFECT_UI_API_URL; spawned workers inherit both
    with exported({"PREFECT_UI_API_URL": server.api_url}):
        server.start(timeout=timeout)
        try:
            with (
                exported({"PREFECT_API_URL": server.api_url}),
                temporary_settings(updates={PREFECT_API_URL: server.api_url}),
            ):
                try:
                    yield server.api_url, True
                finally:
                    _drain_to_api()
        finally:
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
