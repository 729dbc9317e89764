"""``refresh``: the nightly, cohort-wide, incremental load.

Discover the cohort, plan each stream's windows from its watermark, fetch and write
them, then commit the catalog and the new watermarks (:func:`rune_lake.flows.run.load`).
"""

from __future__ import annotations

from datetime import date

from prefect import flow
from prefect.runtime import flow_run

from rune_io import pipeline
from rune_io.settings.declare import LAKE_URL
from rune_io.times import to_utc
from rune_lake.flows import params, run
from rune_lake.flows.runners import SettingsTaskRunner

DEFAULT_LAKE = LAKE_URL.default


def resolve_lake(lake: str | None) -> str:
    """The lake URL: the parameter, else ``RUNE_LAKE_URL`` (a deployment's job variable),
    else ``./lake``."""
    return lake or LAKE_URL.get()


def _run_name() -> str:
    p = flow_run.parameters
    scope = pipeline.Selection(
        projects=tuple(p.get("projects") or ()),
        cohorts=tuple(p.get("cohorts") or ()),
        patients=tuple(p.get("patients") or ()),
        stream_ids=tuple(p.get("stream_ids") or ()),
    ).describe()
    return f"refresh {scope} lookback {p.get('lookback_days', 0)}d -> {resolve_lake(p.get('lake'))}"


@flow(name="refresh", flow_run_name=_run_name, task_runner=SettingsTaskRunner(), log_prints=False)
def refresh(
    lake: params.Lake = "",
    projects: params.Projects = [],  # noqa: B006 - only read
    cohorts: params.Cohorts = [],  # noqa: B006 - only read
    patients: params.Patients = [],  # noqa: B006 - only read
    categories: params.Categories = [],  # noqa: B006 - only read
    measurements: params.Measurements = [],  # noqa: B006 - only read
    device_types: params.DeviceTypes = [],  # noqa: B006 - only read
    stream_ids: params.StreamIds = [],  # noqa: B006 - only read
    org_id: params.OrgId = "",
    include_events: params.IncludeEvents = True,
    lookback_days: params.LookbackDays = 0,
    since: params.Since = "",
    chunk_days: params.ChunkDays = 7,
    credentials_block: params.CredentialsBlock = "",
    api_limit: params.ApiLimit = "",
) -> pipeline.RunReport:
    """Incremental, cohort-wide refresh of the lake at ``lake``.

    Args:
        lake: Lake URL: a local directory or s3://bucket/prefix (empty: RUNE_LAKE_URL,
            else ./lake).
        projects: Only the patients of these projects (ids; empty: the whole org).
        cohorts: Only the patients of these cohorts (ids; empty: the whole org).
        patients: Only these patients (ids; empty: the whole org).
        categories: Only streams of these categories, e.g. neural, vitals (empty: all).
        measurements: Only streams of these measurements, e.g. tremor (empty: all).
        device_types: Only streams of devices of these types, e.g. apple_watch (empty: all).
        stream_ids: Only these streams (ids; empty: all).
        org_id: Make this org active first (empty: the credentials' active org).
        include_events: Also load each patient's events into the events table.
        lookback_days: Days before each watermark to fetch again, for late data (0: a
            run right after another fetches nothing; the nightly deployment uses 1).
        since: A never-loaded stream starts here: a UTC day, YYYY-MM-DD (empty: its
            first data).
        chunk_days: Partitions (days or months) per task.
        credentials_block: Name of a Prefect Secret block holding Rune credentials
            (JSON with runeq's keys; empty: the worker's environment and config files).
        api_limit: Name of a Prefect global concurrency limit capping concurrent API
            readers across runs, e.g. rune-api (empty: no cap).
    """
    try:
        since_t = to_utc(date.fromisoformat(since)) if since else None
    except ValueError:
        raise ValueError(f"since {since!r} is not a date: use YYYY-MM-DD (UTC)") from None
    job = pipeline.RefreshJob(lookback_days=lookback_days, since=since_t, chunk_days=chunk_days)
    selection = pipeline.Selection(
        org_id=org_id or None,
        projects=tuple(projects or ()),
        cohorts=tuple(cohorts or ()),
        patients=tuple(patients or ()),
        categories=tuple(categories or ()),
        measurements=tuple(measurements or ()),
        device_types=tuple(device_types or ()),
        stream_ids=tuple(stream_ids or ()),
        include_events=include_events,
    )
    return run.load(
        job,
        resolve_lake(lake),
        selection,
        params={"selection": selection.describe(), "lookback_days": lookback_days},
        credentials_block=credentials_block or None,
        api_limit=api_limit or None,
    )
