"""A run's Prefect artifacts (progress, summary table, failures), written best-effort
and off the run's path.

Artifacts are for people watching the UI; the lake and its catalog are the record. So an
artifact call never stalls or fails the data work: calls run in order on one background
thread (with the caller's Prefect context), and once one fails (the Prefect API went
away: its client retries a connection for about a minute) the rest are skipped with one
warning. :meth:`RunArtifacts.close` waits a bounded time for what is queued.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)


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
