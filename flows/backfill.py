"""``backfill``: load a date range on demand, typically from the Prefect UI's Custom Run.

Its parameters are one typed model, so the UI renders a form; the model validates the
range inside the flow (the server does not check date formats), before any request.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from prefect import flow
from prefect.runtime import flow_run
from pydantic import BaseModel, Field, model_validator

from rune_io import pipeline
from rune_lake.flows import params, run
from rune_lake.flows.refresh import resolve_lake
from rune_lake.flows.runners import SettingsTaskRunner


class BackfillRange(BaseModel):
    """What to backfill. Dates are UTC days; ``end`` is exclusive, as in the Rune API."""

    start: date = Field(
        title="Start", description="First UTC day to load (inclusive), e.g. 2026-10-01"
    )
    end: date = Field(
        title="End", description="UTC day to stop before (exclusive), e.g. 2026-10-08"
    )
    projects: list[str] = Field(
        default_factory=list, title="Projects", description="Project ids (empty: all)"
    )
    cohorts: list[str] = Field(
        default_factory=list, title="Cohorts", description="Cohort ids (empty: all)"
    )
    patients: list[str] = Field(
        default_factory=list, title="Patients", description="Patient ids (empty: all)"
    )
    stream_ids: list[str] = Field(
        default_factory=list, title="Stream ids", description="Stream ids (empty: all)"
    )
    categories: list[str] = Field(
        default_factory=list, title="Categories", description="e.g. neural, vitals (empty: all)"
    )
    measurements: list[str] = Field(
        default_factory=list,
        title="Measurements",
        description="e.g. tremor, heart_rate (empty: all)",
    )
    device_types: list[str] = Field(
        default_factory=list, title="Device types", description="e.g. apple_watch (empty: all)"
    )
    org_id: str = Field(
        default="", title="Org id", description="Make this org active first (empty: the active org)"
    )
    include_events: bool = Field(
        default=True, title="Include events", description="Also load patient events"
    )
    overwrite: bool = Field(
        default=False,
        title="Overwrite",
        description="Fetch again partitions the lake already has complete; replace only those "
        "whose rows changed upstream",
    )

    @model_validator(mode="after")
    def _check_range(self) -> BackfillRange:
        if self.end <= self.start:
            raise ValueError(
                f"end ({self.end}) must be after start ({self.start}); end is exclusive: "
                f"to load one day D, use start=D, end=D+1"
            )
        tomorrow = datetime.now(UTC).date() + timedelta(days=1)
        if self.start >= tomorrow:
            raise ValueError(
                f"start ({self.start}) is in the future (today is {tomorrow - timedelta(days=1)} UTC)"
            )
        if self.end > tomorrow + timedelta(days=1):
            raise ValueError(
                f"end ({self.end}) is in the future; the latest useful end is {tomorrow} "
                f"(exclusive, i.e. through today, UTC)"
            )
        return self


RangeParam = Annotated[BackfillRange, params.title("Range")]


def _run_name() -> str:
    r = flow_run.parameters.get("range") or {}
    get = r.get if isinstance(r, dict) else lambda k, d=None: getattr(r, k, d)
    scope = pipeline.Selection(
        projects=tuple(get("projects") or ()),
        patients=tuple(get("patients") or ()),
        stream_ids=tuple(get("stream_ids") or ()),
    ).describe()
    over = " overwrite" if get("overwrite") else ""
    return f"backfill {get('start')}..{get('end')} {scope}{over}"


@flow(
    name="backfill",
    flow_run_name=_run_name,
    task_runner=SettingsTaskRunner(),
    validate_parameters=True,
)
def backfill(
    range: RangeParam,  # noqa: A002 - the form's title in the Prefect UI
    lake: params.Lake = "",
    chunk_days: params.ChunkDays = 7,
    credentials_block: params.CredentialsBlock = "",
    api_limit: params.ApiLimit = "",
) -> pipeline.RunReport:
    """Load ``range`` into the lake.

    Partitions touched by the range are fetched whole and replace their files. A
    backfill starting at a stream's first data also starts or advances its watermark,
    so the nightly refresh continues from there.

    Args:
        range: What to load: UTC days [start, end) and which patients and streams.
        lake: Lake URL: a local directory or s3://bucket/prefix (empty: RUNE_LAKE_URL,
            else ./lake).
        chunk_days: Partitions (days or months) per task.
        credentials_block: Name of a Prefect Secret block holding Rune credentials
            (JSON with runeq's keys; empty: the worker's environment and config files).
        api_limit: Name of a Prefect global concurrency limit capping concurrent API
            readers across runs, e.g. rune-api (empty: no cap).
    """
    job = pipeline.BackfillJob(range.start, range.end, range.overwrite, chunk_days)
    selection = pipeline.Selection(
        org_id=range.org_id or None,
        projects=tuple(range.projects),
        cohorts=tuple(range.cohorts),
        patients=tuple(range.patients),
        categories=tuple(range.categories),
        measurements=tuple(range.measurements),
        device_types=tuple(range.device_types),
        stream_ids=tuple(range.stream_ids),
        include_events=range.include_events,
    )
    return run.load(
        job,
        resolve_lake(lake),
        selection,
        params={"range": range.model_dump(mode="json")},
        credentials_block=credentials_block or None,
        api_limit=api_limit or None,
    )
