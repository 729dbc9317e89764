"""Thin Prefect tasks over ``rune_io``: a few lines each, logic lives in ``rune_io.pipeline``."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from rune_io import pipeline
from rune_io.api.models import Patient, StreamMeta
from rune_io.errors import is_transient
from rune_io.faults import crash_point
from rune_io.pipeline.plan import WorkUnit
from rune_io.settings.declare import TASK_RETRY_DELAYS
from rune_lake.tasks import runtime


def fetch_task():
    """:func:`fetch_unit` with the retries of ``RUNE_LAKE_TASK_RETRY_DELAYS`` (seconds,
    comma-separated; one retry per value), read when a run submits its units."""
    delays = list(TASK_RETRY_DELAYS.get())
    return fetch_unit.with_options(retries=len(delays), retry_delay_seconds=delays or 0)


#: Chunks that landed, per (run, unit), so a task retry redoes only the failed ones.
_LANDED: dict[tuple[str, WorkUnit], dict[int, pipeline.ChunkResult]] = {}


def transient_only(task, task_run, state) -> bool:
    """``retry_condition_fn``: retry a chunk only for failures that may pass (429, 5xx,
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
) -> tuple[list[Patient], list[StreamMeta]]:
    """org → projects/cohorts → patients → devices → streams, up to
    ``discovery_concurrency`` requests at once, holding as many slots of ``api_limit``
    (the global concurrency limit the stream reads count against)."""
    client = runtime.client(credentials_block)
    slots = min(client.settings.discovery_concurrency, _limit_size(api_limit))
    slot = concurrency(api_limit, occupy=slots, strict=True) if api_limit else nullcontext()

    def progress(what: str, done: int, total: int) -> None:
        for hook in runtime.PROGRESS_HOOKS:
            hook(f"discover {what}", done, total)

    with slot:
        return pipeline.discover(client.graph, selection, concurrency=slots, progress=progress)


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
    retries=len(TASK_RETRY_DELAYS.default),  # a run's are set by fetch_task()
    retry_delay_seconds=list(TASK_RETRY_DELAYS.default),
    retry_jitter_factor=0.5,
    retry_condition_fn=transient_only,
)
def fetch_unit(
    lake_url: str,
    streams: list[StreamMeta],
    unit: WorkUnit,
    run_id: str,
    credentials_block: str | None = None,
    api_limit: str | None = None,
) -> list[pipeline.ChunkResult]:
    """Fetch a unit's windows from the Stream API and write their lake partitions.

    ``streams`` are the unit's streams' metadata. ``api_limit`` names a Prefect global
    concurrency limit capping how many tasks read from the Rune API at once, across
    every flow run and worker."""
    slot = concurrency(api_limit, occupy=1, strict=True) if api_limit else nullcontext()
    landed = _LANDED.setdefault((run_id, unit), {})  # survives this task run's retries
    while len(_LANDED) > 256:  # units that failed for good leave theirs behind: bound it
        _LANDED.pop(next(iter(_LANDED)))
    with slot:
        results = pipeline.run_unit(
            runtime.client(credentials_block),
            runtime.lake(lake_url),
            {s.id: s for s in streams},
            unit,
            run_id,
            landed,
        )
    _LANDED.pop((run_id, unit), None)
    return results


@task(name="commit-catalog", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def commit_catalog(
    lake_url: str,
    run_id: str,
    watermarks: dict[str, datetime],
    status: str,
    stats: dict,
) -> None:
    """Watermarks, run record, then consolidate the catalog (after all data landed)."""
    from rune_io.lake import Catalog

    crash_point("before_commit")
    cat = Catalog(runtime.lake(lake_url))
    if watermarks:
        cat.set_watermarks(watermarks, run_id)
    cat.finish_run(run_id, status, stats)
    cat.commit(run_id)
