"""Packing planned chunks into work units, one task run each, by their expected rows.

A heavy chunk (a week of 50 Hz) runs alone; a patient's light chunks share a unit, so
per-task orchestration stays small next to the work. Rows per day come from the catalog
(:func:`rows_per_day`), or a table's prior for a stream never loaded.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from rune_io.errors import UsageError
from rune_io.lake.layout import EVENTS_TABLE, granularity
from rune_io.pipeline.plan import Chunk
from rune_io.pipeline.sources import events_key


@dataclass(frozen=True)
class WorkUnit:
    """What one task runs: chunks, one after another (one heavy chunk, or several light
    chunks of one patient packed together so tiny tasks don't drown in orchestration)."""

    chunks: tuple[Chunk, ...]

    @property
    def label(self) -> str:
        if len(self.chunks) == 1:
            return self.chunks[0].label
        start = min(c.start for c in self.chunks)
        end = max(c.end for c in self.chunks)
        return f"{len(self.chunks)} chunks {start:%Y-%m-%d}..{end:%Y-%m-%d}"


def pack_chunks(
    chunks: Sequence[Chunk],
    cost: Callable[[Chunk], float],
    target: float,
    group: Callable[[Chunk], str] = lambda c: "",
) -> list[WorkUnit]:
    """Pack chunks into units of about ``target`` cost, never mixing groups.

    Greedy and order-preserving within a group: a chunk costing ``target`` or more is a
    unit of its own; lighter ones fill a unit until the next would overflow it.
    """
    if target <= 0:
        raise UsageError(f"pack target must be positive, got {target}")
    groups: dict[str, list[Chunk]] = {}
    for c in chunks:
        groups.setdefault(group(c), []).append(c)
    units: list[WorkUnit] = []
    for members in groups.values():
        current: list[Chunk] = []
        load = 0.0
        for c in members:
            k = cost(c)
            if k >= target:
                units.append(WorkUnit((c,)))
                continue
            if current and load + k > target:
                units.append(WorkUnit(tuple(current)))
                current, load = [], 0.0
            current.append(c)
            load += k
        if current:
            units.append(WorkUnit(tuple(current)))
    return units


#: Rows per day assumed for a stream the catalog has not seen yet, by table (fnmatch),
#: first match wins. After its first load, a stream's measured rate replaces the prior.
ROWS_PER_DAY_PRIOR: tuple[tuple[str, float], ...] = (
    ("*__acceleration", 4_320_000),  # 50 Hz watch motion
    ("vitals__*", 20_000),
    (EVENTS_TABLE, 50),
)
#: Priors of other tables: daily tables are assumed fast, monthly ones slow.
DAILY_PRIOR, MONTHLY_PRIOR = 1_000_000.0, 2_000.0
#: Rows a task aims at, at least: light chunks of one patient are packed up to this.
TASK_ROWS = 2_000_000
#: Rows a task aims at, at most, when a run packs to its parallelism.
TASK_ROWS_MAX = 50_000_000
#: Units per worker a run packs to. Each task run costs ~0.1 s of CPU (client and
#: Prefect server) on a 2-CPU machine; measured on the default demo cohort (5.5 M rows,
#: 4 workers, idle machine, 2026-12-02), 1 per worker (6 task runs) ends the refresh
#: ~0.3 s sooner than 2 (11) or 3 (18): the units' balance costs less than task runs.
UNITS_PER_WORKER = 1


def _prior(table: str) -> float:
    for pattern, rate in ROWS_PER_DAY_PRIOR:
        if fnmatch.fnmatchcase(table, pattern):
            return rate
    return DAILY_PRIOR if granularity(table) == "date" else MONTHLY_PRIOR


def rows_per_day(files: Iterable[Mapping]) -> dict[str, float]:
    """Measured rows per day of each stream (events: ``events/<patient>``) from catalog
    file entries: a file's rows over the days its partition has data for."""
    rows: dict[str, float] = {}
    days: dict[str, float] = {}
    for f in files:
        if f.get("deleted"):
            continue
        key = f["stream_id"] or events_key(f["patient_id"])
        if str(f["partition"]).startswith("date="):
            span = 1.0
        else:
            start, last = f["partition_start"], f["max_time"] or f["partition_start"]
            span = max(1.0, math.ceil((last - start) / timedelta(days=1)))
        rows[key] = rows.get(key, 0.0) + float(f["rows"])
        days[key] = days.get(key, 0.0) + span
    return {k: rows[k] / days[k] for k in rows}


def plan_units(
    chunks: Sequence[Chunk],
    rates: Mapping[str, float],
    *,
    task_rows: float = TASK_ROWS,
    parallelism: int | None = None,
) -> list[WorkUnit]:
    """Pack chunks into tasks: a heavy chunk (e.g. a week of 50 Hz) runs alone; a
    patient's light chunks (symptoms, LFP trends, heart rate, events) share one task, so
    per-task orchestration stays small next to the work. ``rates``: rows per day by
    source key (:func:`rows_per_day`); a source without one gets its table's prior.

    With ``parallelism`` (the run's workers), a unit aims at the run's rows over
    ``UNITS_PER_WORKER`` units per worker, between ``task_rows`` and ``TASK_ROWS_MAX``:
    a small run gets about one unit per worker, not one task per stream (each task run
    costs ~0.1 s of CPU), and a patient's chunks still never share a unit with another's.

    The heaviest units come first (longest processing time first, stable): workers take
    them in this order, so a run does not end on one worker finishing a big unit that
    started last while the others idle."""

    costs = {
        id(c): rates.get(c.key, _prior(c.source.table))
        * sum((w.end - w.start) / timedelta(days=1) for w in c.windows)
        for c in chunks
    }  # once per chunk: the target, the packing and the order all use them

    def cost(c: Chunk) -> float:
        return costs[id(c)]

    target = task_rows
    if parallelism:
        share = sum(costs.values()) / (UNITS_PER_WORKER * max(1, parallelism))
        target = min(max(task_rows, share), max(task_rows, TASK_ROWS_MAX))
    units = pack_chunks(chunks, cost, target, group=lambda c: c.source.patient_id)
    return sorted(units, key=lambda u: -sum(cost(c) for c in u.chunks))
