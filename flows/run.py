"""One run of the lake, what refresh and backfill share: prepare the lake, discover, plan,
fetch the work units (fanned out over the flow's task runner), commit, report.

:func:`load` runs inside a flow and is a few task calls: every side effect (the lake,
the catalog, the APIs, the summary artifacts) happens in a task (``rune_lake.tasks``);
what a run is asked for is a :class:`rune_io.pipeline.Job` each flow makes from its
parameters.

Large values (the streams, the plan, the results, the report; a work unit, on the
thread runner) go to their tasks ``quote``-d: Prefect would otherwise walk every element of every parameter twice
per task, to find upstream task runs and to resolve futures (0.3 s of CPU with the GIL
held in a whole-cohort refresh of the demo's cohort, cProfile). So the run's graph in
the UI shows its task runs in time order without data edges; passing the upstream
states as ``wait_for`` instead would walk their results the same way (measured: 0.1 s).
In-process callers (the CLI's progress bars) watch a run with
:func:`progress_to`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TypeVar, cast

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from rune_io import pipeline
from rune_io.errors import RuneIOError
from rune_io.settings.declare import WORKERS
from rune_lake.tasks import lake as lt
from rune_lake.tasks import rune as rt
from rune_lake.tasks.artifacts import RunArtifacts, report_run
from rune_lake.tasks.logs import forward_rune_io_logs
from rune_lake.tasks.rune import Progress

T = TypeVar("T")


def unwalked(value: T) -> T:
    """``value`` as a task argument that Prefect does not walk (``quote``: the task gets
    ``value`` itself)."""
    return cast(T, quote(value))


def unwalked_in_threads(value: T) -> T:
    """:func:`unwalked` for a task submitted to the flow's own threads; as it is for
    another task runner (Dask rebuilds a ``quote``, a named tuple, as a plain tuple on
    its way to a worker)."""
    ctx = FlowRunContext.get()
    threads = ctx is not None and isinstance(ctx.task_runner, ThreadPoolTaskRunner)
    return unwalked(value) if threads else value


#: The observer of the runs started in this context (see :func:`progress_to`).
_observer: ContextVar[Progress | None] = ContextVar("rune_lake_progress", default=None)


@contextmanager
def progress_to(observer: Progress) -> Iterator[None]:
    """Tell ``observer(description, done, total)`` the progress of the runs started in
    this context, in this process: discovery's requests, then the fetch tasks (the CLI's
    progress bars). Deployments have none: artifacts carry progress there."""
    token = _observer.set(observer)
    try:
        yield
    finally:
        _observer.reset(token)


class IncompleteRun(RuneIOError):
    """Some windows did not land. Everything else did, and the catalog is committed."""

    def __init__(self, report: pipeline.RunReport) -> None:
        self.report = report
        names = sorted({f["stream"] for f in report.failures})
        super().__init__(
            f"{len(report.failures)} chunk(s) failed for {len(names)} stream(s): "
            f"{', '.join(names[:10])}{' ...' if len(names) > 10 else ''}\n{report.text()}"
        )


def new_run_id(kind: str) -> str:
    fr = (flow_run.get_id() or uuid.uuid4().hex)[:8]
    return f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{fr}"


def load(
    job: pipeline.Job,
    lake: str,
    selection: pipeline.Selection,
    *,
    params: dict,
    credentials_block: str | None,
    api_limit: str | None,
) -> pipeline.RunReport:
    """Discover, plan, fetch, commit, report. Raises :class:`IncompleteRun` (after the
    commit) when some windows did not land."""
    forward_rune_io_logs()
    t0 = time.perf_counter()
    run_id = new_run_id(job.kind)
    progress = _observer.get()
    prepared = lt.prepare_lake(lake, run_id, params)
    patients, streams = rt.discover(selection, credentials_block, api_limit, progress)
    plan = lt.plan_run(
        lake, run_id, job, unwalked(patients), unwalked(streams), selection.include_events,
        WORKERS.get(),
    )  # fmt: skip
    results = fetch(job.kind, lake, run_id, plan, credentials_block, api_limit, progress)
    report = lt.commit_run(
        lake, run_id, job, unwalked(plan), unwalked(results), started=t0,
        storage_retries_before=prepared["storage_retries"],
    )  # fmt: skip
    report_run(unwalked(report))
    if not report.ok:
        raise IncompleteRun(report)
    get_run_logger().info(report.text())
    return report


def fetch(
    kind: str,
    lake: str,
    run_id: str,
    plan: pipeline.RunPlan,
    credentials_block: str | None,
    api_limit: str | None,
    progress: Progress | None = None,
) -> list[pipeline.ChunkResult | BaseException]:
    """Submit every unit of ``plan`` to the flow's task runner; one result per chunk, in
    plan order (a unit that died gives its exception for each of its chunks). A progress
    artifact (and ``progress``) follows the units as they finish."""
    log = get_run_logger()
    chunks = plan.chunks
    log.info(
        "%s %s: %d sources, %d windows in %d chunks, %d tasks",
        kind,
        run_id,
        plan.checked,
        sum(len(c.windows) for c in chunks),
        len(chunks),
        len(plan.units),
    )
    units, total = plan.units, len(plan.units)
    if not units:
        return []
    delays = rt.retry_delays()
    artifacts = RunArtifacts(log)
    try:
        artifacts.progress_start(f"{kind} {run_id}: tasks done, of {total}")
        futures = [
            rt.fetch_unit.submit(
                lake, unwalked_in_threads(u), run_id, delays, credentials_block, api_limit
            )
            for u in units
        ]
        index = {f.task_run_id: i for i, f in enumerate(futures)}
        out: list[list[pipeline.ChunkResult] | BaseException | None] = [None] * total
        step = max(1, total // 50)  # at most ~50 progress updates
        label = f"{kind} {len({c.key for c in chunks})} streams"
        if progress is not None:
            progress(label, 0, total)
        for done, fut in enumerate(as_completed(futures), start=1):
            i = index[fut.task_run_id]
            try:
                out[i] = fut.result()
            except Exception as exc:  # noqa: BLE001 - reported per chunk, by stream
                out[i] = exc
            if progress is not None:
                progress(label, done, total)
            if done % step == 0 or done == total:
                artifacts.progress(100.0 * done / total)
    finally:
        artifacts.close()
    flat: list[pipeline.ChunkResult | BaseException] = []
    for unit, res in zip(units, out, strict=True):
        if isinstance(res, list):
            flat += res
        else:
            flat += [res if res is not None else RuntimeError("task result missing")] * len(
                unit.chunks
            )
    return flat
