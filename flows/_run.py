"""What refresh and backfill share: prepare the lake, fan out chunks, report, commit.

Runs inside a flow: it submits tasks to the flow's task runner and writes artifacts.
The planning itself is a plain function handed in by each flow.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.runtime import flow_run

from rune_io import pipeline
from rune_io.api.models import StreamMeta
from rune_io.errors import RuneIOError
from rune_io.lake import Catalog, Snapshot, check_format
from rune_io.pipeline.plan import Chunk, Window, WorkUnit
from rune_lake.flows.artifacts import RunArtifacts
from rune_lake.tasks import rune as rt
from rune_lake.tasks import runtime
from rune_lake.tasks.logs import forward_rune_io_logs

#: In-process observers of progress, ``hook(description, done, total)`` (the CLI's
#: progress bars). Not used by deployments; artifacts carry progress there.
PROGRESS_HOOKS: list[Callable[[str, int, int], None]] = runtime.PROGRESS_HOOKS

Planner = Callable[[list[StreamMeta], Snapshot], list[Chunk]]
MayStart = Callable[[StreamMeta, list[Window]], bool]


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


@task(name="prepare-lake", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def prepare_lake(lake_url: str, run_id: str, params: dict) -> dict:
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
    return {"repaired": recovered, "storage_retries": retries}


def _artifact_key(kind: str) -> str:
    return f"rune-lake-{kind}-summary"


def execute(
    kind: str,
    lake: str,
    selection: pipeline.Selection,
    planner: Planner,
    *,
    params: dict,
    credentials_block: str | None,
    api_limit: str | None,
    may_start: MayStart,
    coverage: tuple[datetime, datetime] | None = None,
) -> pipeline.RunReport:
    """Discover, plan, fetch (fanned out over the task runner), commit, report.
    ``coverage``: the partition starts whose coverage the planner checks (a backfill)."""
    forward_rune_io_logs()
    log = get_run_logger()
    t0 = time.perf_counter()
    run_id = new_run_id(kind)
    prepared = prepare_lake(lake, run_id, params)
    if any(prepared["repaired"].values()):
        log.warning("recovered what an interrupted run left: %s", prepared["repaired"])

    patients, streams = rt.discover(selection, credentials_block, api_limit)
    work = pipeline.work_streams(patients, streams, selection.include_events)
    by_id = {s.id: s for s in work}
    store = runtime.lake(lake).stats
    retries_before = prepared["storage_retries"]
    cat = Catalog(runtime.lake(lake))
    cat.record_streams(streams, run_id)
    snapshot = cat.snapshot(coverage=coverage)  # the run's one read of the catalog
    units = pipeline.plan_units(planner(work, snapshot), by_id, snapshot.rows_per_day())
    chunks = [c for u in units for c in u.chunks]
    log.info(
        "%s %s: %d patients, %d streams, %d windows in %d chunks, %d tasks",
        kind,
        run_id,
        len(patients),
        len(work),
        sum(len(c.windows) for c in chunks),
        len(chunks),
        len(units),
    )

    artifacts = RunArtifacts(log)
    try:
        results = _run_units(
            kind, lake, run_id, units, by_id, credentials_block, api_limit, artifacts
        )
        report = pipeline.summarize(run_id, kind, chunks, results, by_id)
        report.tasks = len(units)
        report.checked = len(work)
        marks = pipeline.new_watermarks(snapshot.watermarks, by_id, results, may_start=may_start)
        report.seconds = time.perf_counter() - t0
        report.storage_retries = store.retries - retries_before
        status = "completed" if report.ok else "incomplete"
        stats = {k: v for k, v in asdict(report).items() if k not in ("run_id", "kind")}
        rt.commit_catalog(lake, run_id, marks, status, stats)
        report.storage_retries = store.retries - retries_before  # the commit's too
        _report_artifacts(artifacts, kind, run_id, report)
    finally:
        artifacts.close()
    if not report.ok:
        raise IncompleteRun(report)
    log.info(report.text())
    return report


def _report_artifacts(
    artifacts: RunArtifacts, kind: str, run_id: str, report: pipeline.RunReport
) -> None:
    artifacts.table(
        table=report.table_rows(),
        key=_artifact_key(kind),
        description=f"**{kind} {run_id}**: "
        + (
            f"{report.windows_landed}/{report.windows_planned} windows, {report.rows:,} rows, "
            f"{len(report.failures)} failures, {report.seconds:.1f}s"
            if report.windows_planned or report.failures
            else f"up to date: {report.checked} streams checked, {report.seconds:.1f}s"
        ),
    )
    if not report.ok:
        artifacts.markdown(
            key=f"rune-lake-{kind}-failures",
            markdown="\n".join(
                ["| table | stream | window | error |", "|---|---|---|---|"]
                + [
                    f"| {f['table']} | {f['stream']} | {f['window']} | {f['error'][:300]} |"
                    for f in report.failures
                ]
            ),
        )


def _run_units(
    kind: str,
    lake: str,
    run_id: str,
    units: Sequence[WorkUnit],
    streams: dict[str, StreamMeta],
    credentials_block: str | None,
    api_limit: str | None,
    artifacts: RunArtifacts,
) -> list[pipeline.ChunkResult | BaseException]:
    """Submit every unit; gather one result per chunk, in unit order (a unit that died
    gives its exception for each of its chunks), updating a progress artifact as units
    finish."""
    if not units:
        return []
    total = len(units)
    artifacts.progress_start(f"{kind} {run_id}: tasks done, of {total}")
    fetch = rt.fetch_task()  # retries from the settings, read now
    futures = [
        fetch.submit(
            lake,
            [streams[sid] for sid in dict.fromkeys(c.stream_id for c in u.chunks)],
            u,
            run_id,
            credentials_block,
            api_limit,
        )
        for u in units
    ]
    index = {f.task_run_id: i for i, f in enumerate(futures)}
    out: list[list[pipeline.ChunkResult] | BaseException | None] = [None] * total
    step = max(1, total // 50)  # at most ~50 progress updates
    label = f"{kind} {len({c.stream_id for u in units for c in u.chunks})} streams"
    for hook in PROGRESS_HOOKS:
        hook(label, 0, total)
    for done, fut in enumerate(as_completed(futures), start=1):
        i = index[fut.task_run_id]
        try:
            out[i] = fut.result()
        except Exception as exc:  # noqa: BLE001 - reported per chunk, by stream
            out[i] = exc
        for hook in PROGRESS_HOOKS:
            hook(label, done, total)
        if done % step == 0 or done == total:
            artifacts.progress(100.0 * done / total)
    flat: list[pipeline.ChunkResult | BaseException] = []
    for unit, res in zip(units, out, strict=True):
        if isinstance(res, list):
            flat += res
        elif isinstance(res, pipeline.UnitIncomplete):  # the chunks that landed count
            flat += res.results
        else:
            flat += [res if res is not None else RuntimeError("task result missing")] * len(
                unit.chunks
            )
    return flat
