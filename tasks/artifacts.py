"""A run's Prefect artifacts (progress, summary table, failures), written best-effort
and off the run's path.

Artifacts are for people watching the UI; the lake and its catalog are the record. So an
artifact call never stalls or fails the data work: calls run in order on one background
thread (with the caller's Prefect context), and once one fails (the Prefect API went
away: its client retries a connection for about a minute) the rest are skipped with one
warning. :meth:`RunArtifacts.close` waits a bounded time for what is queued.

The run's progress artifact is updated by the flow as its tasks finish; the summary
table and the failures are written by the :func:`report_run` task at the run's end.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from rune_io import pipeline


class RunArtifacts:
    """Queue of artifact calls for one run."""

    def __init__(self, log: logging.Logger | logging.LoggerAdapter) -> None:
        self._log = log
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rune-lake-artifacts")
        self._pending: list[Future] = []
        self._progress_id: Any = None
        self.lost: BaseException | None = None

    def _submit(self, fn: Callable[..., Any], /, **kwargs: Any) -> None:
        ctx = contextvars.copy_context()  # the flow run context, for the artifact's run id
        self._pending.append(self._pool.submit(ctx.run, self._call, fn, kwargs))
        self._pending = [f for f in self._pending if not f.done()]

    def _call(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        if self.lost is not None:
            return None
        try:
            return fn(**kwargs)
        except Exception as exc:  # noqa: BLE001 - artifacts never fail the run
            self.lost = exc
            self._log.warning(
                "could not write a Prefect artifact (%s: %s); the run goes on without them",
                type(exc).__name__,
                " ".join(str(exc).split())[:300],
            )
            return None

    # -- progress --------------------------------------------------------------------

    def progress_start(self, description: str) -> None:
        def create() -> None:
            self._progress_id = create_progress_artifact(progress=0.0, description=description)

        self._submit(create)

    def progress(self, percent: float) -> None:
        def update() -> None:
            if self._progress_id is not None:
                update_progress_artifact(self._progress_id, percent)

        self._submit(update)

    # -- summary -----------------------------------------------------------------------

    def table(self, **kwargs: Any) -> None:
        self._submit(create_table_artifact, **kwargs)

    def markdown(self, **kwargs: Any) -> None:
        self._submit(create_markdown_artifact, **kwargs)

    def close(self, timeout: float = 15.0) -> None:
        """Wait up to ``timeout`` s for queued calls (all of them when the API answers);
        calls still stuck in the client's retries are abandoned."""
        wait(self._pending, timeout=timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)


def summary_key(kind: str) -> str:
    """The key of a run kind's summary table artifact."""
    return f"rune-lake-{kind}-summary"


@task(name="report", cache_policy=NO_CACHE)
def report_run(report: pipeline.RunReport) -> None:
    """The run's summary table artifact and, if some windows failed, the failures."""
    artifacts = RunArtifacts(get_run_logger())
    kind, run_id = report.kind, report.run_id
    try:
        artifacts.table(
            table=report.table_rows(),
            key=summary_key(kind),
            description=f"**{kind} {run_id}**: "
            + (
                f"{report.windows_landed}/{report.windows_planned} windows, "
                f"{report.rows:,} rows, {len(report.failures)} failures, {report.seconds:.1f}s"
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
    finally:
        artifacts.close()
