"""The pipeline: discover → plan → execute → report, as plain functions.

- :mod:`~rune_io.pipeline.discover`: org → projects/cohorts → patients → streams
  (:class:`Selection` says which part of the cohort).
- :mod:`~rune_io.pipeline.sources`: what a run reads: sources, each a data stream or one
  patient's events, with its lake table, partitioning and fetch.
- :mod:`~rune_io.pipeline.plan`: time windows per source, and chunks of them.
- :mod:`~rune_io.pipeline.units`: chunks packed into work units (tasks) of similar cost.
- :mod:`~rune_io.pipeline.jobs`: what a run is asked for (a refresh, a backfill) and the
  plan it makes of that against the catalog's snapshot.
- :mod:`~rune_io.pipeline.execute`: fetch each window and write its lake partition.
- :mod:`~rune_io.pipeline.report`: fold results into a :class:`RunReport`, move watermarks.
- :mod:`~rune_io.pipeline.groups`: disjoint groups of patients for ``cohort-fanout``.

The Prefect tasks in ``tasks/`` wrap these; nothing here imports Prefect.
"""

from rune_io.pipeline.discover import Selection, discover, select_patients
from rune_io.pipeline.execute import ChunkResult, UnitRetry, run_chunk, run_unit
from rune_io.pipeline.jobs import BackfillJob, Job, RefreshJob, RunPlan, plan_run
from rune_io.pipeline.plan import Chunk, plan_chunks
from rune_io.pipeline.report import RunReport, conclude, new_watermarks, summarize
from rune_io.pipeline.sources import (
    EventsSource,
    Source,
    StreamSource,
    events_source,
    lake_partitioning,
    lake_table,
    work_sources,
)
from rune_io.pipeline.units import WorkUnit, plan_units, rows_per_day

__all__ = [
    "BackfillJob",
    "Chunk",
    "ChunkResult",
    "EventsSource",
    "Job",
    "RefreshJob",
    "RunPlan",
    "RunReport",
    "Selection",
    "Source",
    "StreamSource",
    "UnitRetry",
    "WorkUnit",
    "conclude",
    "discover",
    "events_source",
    "lake_partitioning",
    "lake_table",
    "new_watermarks",
    "plan_chunks",
    "plan_run",
    "plan_units",
    "rows_per_day",
    "run_chunk",
    "run_unit",
    "select_patients",
    "work_sources",
    "summarize",
]
