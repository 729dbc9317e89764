"""What a run is asked to load: a refresh (from each source's watermark) or a backfill
(a date range), and the plan a run makes of it against the catalog's snapshot.

A job is a small frozen value; a flow makes one from its parameters and the run hands
it to the planning and commit tasks. Everything here is plain logic over sources and a
:class:`~rune_io.lake.Snapshot`: the catalog is read once, by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar

from rune_io.errors import UsageError
from rune_io.lake import Snapshot
from rune_io.lake.snapshot import month_before, stream_bounds
from rune_io.pipeline.plan import (
    Chunk,
    Window,
    chunk_windows,
    data_bounds,
    plan_backfill,
    plan_chunks,
)
from rune_io.pipeline.sources import Source, lake_partitioning
from rune_io.pipeline.units import WorkUnit, plan_units
from rune_io.times import to_utc


@dataclass(frozen=True)
class RefreshJob:
    """Incremental: each source from the partition holding its watermark (minus
    ``lookback_days``); a never-loaded source from ``since`` (None: its first data)."""

    lookback_days: int = 0
    since: datetime | None = None
    chunk_days: int = 7
    kind: ClassVar[str] = "refresh"

    def __post_init__(self) -> None:
        if self.lookback_days < 0:
            raise UsageError(f"lookback_days must be >= 0, got {self.lookback_days}")
        if self.chunk_days < 1:
            raise UsageError(f"chunk_days must be >= 1, got {self.chunk_days}")

    @property
    def coverage(self) -> tuple[datetime, datetime] | None:
        """Partition starts whose coverage the plan checks: none (rates and watermarks)."""
        return None

    def plan(self, sources: Sequence[Source], snapshot: Snapshot) -> list[Chunk]:
        return plan_chunks(
            sources,
            snapshot.watermarks,
            lookback_days=self.lookback_days,
            since=self.since,
            chunk_days=self.chunk_days,
        )

    def may_start(self, source: Source, windows: list[Window]) -> bool:
        """A refresh starts the watermark of a source it loads for the first time."""
        return True


@dataclass(frozen=True)
class BackfillJob:
    """UTC days ``[start, end)``, every partition they touch fetched whole; without
    ``overwrite``, partitions the catalog shows complete are skipped."""

    start: date
    end: date
    overwrite: bool = False
    chunk_days: int = 7
    kind: ClassVar[str] = "backfill"

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise UsageError(f"end ({self.end}) must be after start ({self.start})")
        if self.chunk_days < 1:
            raise UsageError(f"chunk_days must be >= 1, got {self.chunk_days}")

    @property
    def coverage(self) -> tuple[datetime, datetime]:
        """Partition starts whose coverage the plan checks (the snapshot reads those)."""
        return month_before(to_utc(self.start)), to_utc(self.end)

    def plan(self, sources: Sequence[Source], snapshot: Snapshot) -> list[Chunk]:
        """Partition windows of the range for every source. Without ``overwrite``, a
        partition is skipped only when the catalog shows its file already covers the
        range (:func:`rune_io.pipeline.plan.covers`, as a join over the snapshot): a
        partition holding part of it is fetched again."""
        covered: dict = {}
        if not self.overwrite:
            bounds = [(s.key, s.table, *b) for s in sources if (b := data_bounds(s)) is not None]
            covered = snapshot.covered(stream_bounds(bounds), *self.coverage)
        chunks: list[Chunk] = []
        for s in sources:
            windows = plan_backfill(
                s,
                self.start,
                self.end,
                existing=covered.get(s.key, ()),
                overwrite=self.overwrite,
                partitioning=lake_partitioning,
            )
            chunks += chunk_windows(s, windows, self.chunk_days)
        return chunks

    def may_start(self, source: Source, windows: list[Window]) -> bool:
        """A backfill starts a watermark only from the source's first data (a detached
        range must not: the refresh would skip what lies before it)."""
        bounds = data_bounds(source)
        return bounds is not None and min(w.start for w in windows) <= bounds[0]


Job = RefreshJob | BackfillJob


@dataclass
class RunPlan:
    """What a run will fetch: its work units, and what the catalog said when planned."""

    units: list[WorkUnit]
    watermarks: dict[str, datetime]  # by source key, before the run
    checked: int  # sources considered

    @property
    def chunks(self) -> list[Chunk]:
        return [c for u in self.units for c in u.chunks]


def plan_run(
    job: Job, sources: Sequence[Source], snapshot: Snapshot, parallelism: int | None = None
) -> RunPlan:
    """``job``'s chunks over ``sources``, packed into work units by the rows per day
    the catalog measured, about one per worker when ``parallelism`` is given."""
    units = plan_units(
        job.plan(sources, snapshot), snapshot.rows_per_day(), parallelism=parallelism
    )
    return RunPlan(units, dict(snapshot.watermarks), len(sources))
