"""Prefect tasks on the lake and its catalog: prepare it, plan a run against it, commit.

A few lines each over ``rune_io``: the logic is in ``rune_io.pipeline`` and
``rune_io.lake``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from rune_io import pipeline
from rune_io.api.models import Patient, StreamMeta
from rune_io.faults import crash_point
from rune_io.lake import Catalog, check_format
from rune_lake.tasks import runtime


@task(name="prepare-lake", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def prepare_lake(lake_url: str, run_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """Open the lake (refusing one of another format version), recover what a crashed
    run left (pending entries, intents, staging files), record the run's start. Returns
    what was recovered and the object store's retry count before the run."""
    store = runtime.lake(lake_url)
    check_format(store)
    retries = store.stats.retries  # the run's object-store retries count from here
    cat = Catalog(store)
    rep = cat.recover()
    cat.begin_run(run_id, params)
    recovered = {
        "pending_folded": rep.commit.pending_objects if rep.commit else 0,
        "temps": len(rep.temps_removed),
    }
    if any(recovered.values()):
        get_run_logger().warning("recovered what an interrupted run left: %s", recovered)
    return {"repaired": recovered, "storage_retries": retries}


@task(name="plan", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def plan_run(
    lake_url: str,
    run_id: str,
    job: pipeline.Job,
    patients: list[Patient],
    streams: list[StreamMeta],
    include_events: bool,
    parallelism: int | None = None,
) -> pipeline.RunPlan:
    """Record the streams discovered, read the catalog once (a snapshot) and plan
    ``job`` over the sources: the streams and, if asked, each patient's events, in a
    about one work unit per worker (``parallelism``)."""
    cat = Catalog(runtime.lake(lake_url))
    cat.record_streams(streams, run_id)
    snapshot = cat.snapshot(coverage=job.coverage)  # the run's one read of the catalog
    sources = pipeline.work_sources(patients, streams, include_events)
    return pipeline.plan_run(job, sources, snapshot, parallelism)


@task(name="commit-catalog", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def commit_run(
    lake_url: str,
    run_id: str,
    job: pipeline.Job,
    plan: pipeline.RunPlan,
    results: list[pipeline.ChunkResult | BaseException],
    *,
    started: float,
    storage_retries_before: int,
) -> pipeline.RunReport:
    """After all data landed: the run's report, its watermarks, the run record, then
    consolidate the catalog. ``started``: the run's start (``time.perf_counter``)."""
    report, marks = pipeline.conclude(run_id, job, plan, results)
    store = runtime.lake(lake_url)
    report.seconds = time.perf_counter() - started
    report.storage_retries = store.stats.retries - storage_retries_before
    status = "completed" if report.ok else "incomplete"
    stats = {k: v for k, v in asdict(report).items() if k not in ("run_id", "kind")}
    crash_point("before_commit")
    cat = Catalog(store)
    if marks:
        cat.set_watermarks(marks, run_id)
    cat.finish_run(run_id, status, stats)
    cat.commit(run_id)
    report.storage_retries = store.stats.retries - storage_retries_before  # the commit's too
    return report
