"""Prefect tasks on the Rune APIs: discover the cohort, fetch work units. A few lines
each; the logic lives in ``rune_io.pipeline``."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from rune_io import pipeline
from rune_io.api.models import Patient, StreamMeta
from rune_io.errors import is_transient
from rune_io.settings.declare import TASK_RETRY_DELAYS
from rune_lake.tasks import runtime

#: ``progress(description, done, total)``: an in-process observer (the CLI's bars).
Progress = Callable[[str, int, int], None]


def retry_delays() -> tuple[float, ...]:
    """Waits between a unit's retries of chunks that failed transiently:
    ``RUNE_LAKE_TASK_RETRY_DELAYS`` (seconds, comma-separated; one retry per value),
    default ``10,60``. Read when a run starts; the run passes them to every task."""
    return TASK_RETRY_DELAYS.get()


def transient_only(task, task_run, state) -> bool:
    """``retry_condition_fn``: retry a task only for failures that may pass (429, 5xx,
    network, truncated pages), after the HTTP layer's own retries gave up."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - we classify, not handle
        return is_transient(exc)
    return False


@task(
    name="discover",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=transient_only,
)
def discover(
    selection: pipeline.Selection,
    credentials_block: str | None = None,
    api_limit: str | None = None,
    progress: Progress | None = None,
) -> tuple[list[Patient], list[StreamMeta]]:
    """org → projects/cohorts → patients → devices → streams, up to
    ``discovery_concurrency`` requests at once, holding as many slots of ``api_limit``
    (the global concurrency limit the stream reads count against). ``progress``, if
    given, is told ``(description, done, total)`` as requests finish (in-process runs)."""
    client = runtime.client(credentials_block)
    slots = min(client.settings.discovery_concurrency, _limit_size(api_limit))
    slot = concurrency(api_limit, occupy=slots, strict=True) if api_limit else nullcontext()

    def report(what: str, done: int, total: int) -> None:
        if progress is not None:
            progress(f"discover {what}", done, total)

    with slot:
        return pipeline.discover(client.graph, selection, concurrency=slots, progress=report)


def _limit_size(name: str | None) -> int:
    """Slots of the global concurrency limit ``name`` (a large number when unnamed)."""
    if not name:
        return 1 << 30
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as c:
        return max(1, int(c.read_global_concurrency_limit_by_name(name).limit))


@task(
    name="fetch",
    task_run_name="fetch {unit.label}",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=transient_only,
)
def fetch_unit(
    lake_url: str,
    unit: pipeline.WorkUnit,
    run_id: str,
    retry_delays: tuple[float, ...],
    credentials_block: str | None = None,
    api_limit: str | None = None,
) -> list[pipeline.ChunkResult]:
    """Fetch a unit's windows from the Rune APIs and write their lake partitions.

    Chunks that fail transiently are retried inside the task after ``retry_delays``
    (:class:`rune_io.pipeline.UnitRetry`), so nothing that landed is fetched again; the
    task's own retries are for failures before any chunk ran (settings, credentials).
    ``api_limit`` names a Prefect global concurrency limit capping how many tasks read
    from the Rune API at once, across every flow run and worker (a slot is held while
    chunks run, not while waiting to retry)."""

    def slot() -> AbstractContextManager[object]:
        return concurrency(api_limit, occupy=1, strict=True) if api_limit else nullcontext()

    return pipeline.run_unit(
        runtime.client(credentials_block),
        runtime.lake(lake_url),
        unit,
        run_id,
        retry=pipeline.UnitRetry(retry_delays),
        hold=slot,
    )
