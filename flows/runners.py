"""Task runner choice, shared by every flow: bounded threads (default) or Dask.

Chosen at import time from the environment, so a deployment sets it with job variables
and the CLI with ``--runner``/``--workers`` (which set the same variables):

- ``RUNE_LAKE_TASK_RUNNER``: ``threads`` (default) or ``dask``;
- ``RUNE_LAKE_WORKERS``: threads in the pool (default 4), or Dask worker processes;
- ``RUNE_LAKE_DASK_ADDRESS``: an existing Dask scheduler (``tcp://host:8786``); without
  it a ``LocalCluster`` of processes is started for the flow run.
"""

from __future__ import annotations

import os

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

DEFAULT_WORKERS = 4


def workers() -> int:
    raw = os.environ.get("RUNE_LAKE_WORKERS", str(DEFAULT_WORKERS))
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"RUNE_LAKE_WORKERS must be an integer, got {raw!r}") from None
    if n < 1:
        raise ValueError(f"RUNE_LAKE_WORKERS must be at least 1, got {n}")
    return n


def make_task_runner() -> TaskRunner:
    kind = os.environ.get("RUNE_LAKE_TASK_RUNNER", "threads").strip().lower()
    if kind == "threads":
        # bounded: an unbounded pool grew to thousands of threads with many chunks
        return ThreadPoolTaskRunner(max_workers=workers())
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        address = os.environ.get("RUNE_LAKE_DASK_ADDRESS")
        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={"n_workers": workers(), "threads_per_worker": 1, "processes": True},
        )
    raise ValueError(f"RUNE_LAKE_TASK_RUNNER must be 'threads' or 'dask', got {kind!r}")
