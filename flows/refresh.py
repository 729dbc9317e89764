"""``refresh``: the nightly, cohort-wide, incremental load.

Discover the cohort, plan each stream's windows from its watermark, fetch and write
them, then commit the catalog and the new watermarks.
"""

from __future__ import annotations

import os
from datetime import date

from prefect import flow
from prefect.runtime import flow_run

from flows import _run
from flows.runners import make_task_runner
from rune_io import sync
from rune_io.lake import Snapshot
from rune_io.models import StreamMeta
from rune_io.windows import to_utc

DEFAULT_LAKE = "./lake"


def resolve_lake(lake: str | None) -> str:
    """The lake URL: the parameter, else ``RUNE_LAKE_URL`` (a deployment's job variable),
    else ``./lake``."""
    return lake or os.environ.get("RUNE_LAKE_URL") or DEFAULT_LAKE


def _run_name() -> str:
    p = flow_run.parameters
    scope = sync.Selection(
        projects=tuple(p.get("projects") or ()),
        cohorts=tuple(p.get("cohorts") or ()),
        patients=tuple(p.get("patients") or ()),
        stream_ids=tuple(p.get("stream_ids") or ()),
    ).describe()
    return f"refresh {scope} lookback {p.get('lookback_days', 0)}d -> {resolve_lake(p.get('lake'))}"


@flow(name="refresh", flow_run_name=_run_name, task_runner=make_task_runner(), log_prints=False)
def refresh(
    lake: str | None = None,
    projects: list[str] | None = None,
    cohorts: list[str] | None = None,
    patients: list[str] | None = None,
    categories: list[str] | None = None,
    measurements: list[str] | None = None,
    device_types: list[str] | None = None,
    stream_ids: list[str] | None = None,
    org_id: str | None = None,
    include_events: bool = True,
    lookback_days: int = 0,
    since: date | None = None,
    chunk_days: int = 7,
    credentials_block: str | None = None,
    api_limit: str | None = None,
) -> sync.RunReport:
    """Incremental, cohort-wide refresh of the lake at ``lake``.

    Args:
        lake: lake URL: a local directory or ``s3://bucket/prefix`` (default:
            ``RUNE_LAKE_URL``, else ``./lake``).
        projects, cohorts, patients: limit the cohort (ids; empty means the whole org).
        categories, measurements, device_types, stream_ids: limit the streams.
        org_id: make this org active first (default: the credentials' active org).
        include_events: also load each patient's events into the ``events`` table.
        lookback_days: days before each watermark to fetch again, for late data (0: a
            run right after another fetches nothing; the nightly deployment uses 1).
        since: first load of a never-seen stream starts here (default: its first data).
        chunk_days: windows (days or months) per task.
        credentials_block: name of a Prefect Secret block holding Rune credentials
            (JSON with runeq's keys); default: environment and config files.
        api_limit: name of a Prefect global concurrency limit capping concurrent API readers.
    """
    if lookback_days < 0:
        raise ValueError(f"lookback_days must be >= 0, got {lookback_days}")
    if chunk_days < 1:
        raise ValueError(f"chunk_days must be >= 1, got {chunk_days}")
    selection = sync.Selection(
        org_id=org_id,
        projects=tuple(projects or ()),
        cohorts=tuple(cohorts or ()),
        patients=tuple(patients or ()),
        categories=tuple(categories or ()),
        measurements=tuple(measurements or ()),
        device_types=tuple(device_types or ()),
        stream_ids=tuple(stream_ids or ()),
        include_events=include_events,
    )

    def planner(streams: list[StreamMeta], snapshot: Snapshot):
        return sync.plan_chunks(
            streams,
            snapshot.watermarks,
            lookback_days=lookback_days,
            since=to_utc(since) if since else None,
            chunk_days=chunk_days,
        )

    return _run.execute(
        "refresh",
        resolve_lake(lake),
        selection,
        planner,
        params={"selection": selection.describe(), "lookback_days": lookback_days},
        credentials_block=credentials_block,
        api_limit=api_limit,
        may_start=lambda stream, windows: True,
    )
