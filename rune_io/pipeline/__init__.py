"""The pipeline: discover → plan → execute → report, as plain functions.

- :mod:`~rune_io.pipeline.discover`: org → projects/cohorts → patients → streams
  (:class:`Selection` says which part of the cohort).
- :mod:`~rune_io.pipeline.sources`: what a run reads (data streams, events).
- :mod:`~rune_io.pipeline.plan`: time windows per stream, chunks, and tasks of similar cost.
- :mod:`~rune_io.pipeline.execute`: fetch each window and write its lake partition.
- :mod:`~rune_io.pipeline.report`: fold results into a :class:`RunReport`, move watermarks.

The Prefect tasks in ``tasks/`` wrap these; nothing here imports Prefect.
"""

from rune_io.pipeline.discover import Selection, discover, select_patients
from rune_io.pipeline.execute import ChunkResult, UnitIncomplete, run_chunk, run_unit
from rune_io.pipeline.plan import plan_chunks, plan_units, rows_per_day
from rune_io.pipeline.report import RunReport, new_watermarks, summarize
from rune_io.pipeline.sources import (
    events_stream,
    is_events,
    lake_partitioning,
    lake_table,
    work_streams,
)

__all__ = [
    "ChunkResult",
    "RunReport",
    "Selection",
    "UnitIncomplete",
    "discover",
    "events_stream",
    "is_events",
    "lake_partitioning",
    "lake_table",
    "new_watermarks",
    "plan_chunks",
    "plan_units",
    "rows_per_day",
    "run_chunk",
    "run_unit",
    "select_patients",
    "summarize",
    "work_streams",
]
