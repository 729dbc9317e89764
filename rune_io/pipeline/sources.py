"""What a run reads: sources. A source is one data stream (:class:`StreamSource`) or one
patient's events (:class:`EventsSource`); its kind decides its lake table, how that
table is partitioned, its key in the catalog and how a window of it is fetched.

Sources are small frozen values: every chunk carries its source, across process
boundaries (Dask), so nothing downstream looks a stream up by id again.

Catalog keys: a stream is keyed by its id; a patient's events by ``events/<patient>``,
the key the catalog's watermarks have held since the lake's first format (file entries
of events have an empty stream id and the patient's id; :class:`~rune_io.lake.Snapshot`
reads them under that key).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from rune_io.api.arrow_schema import stream_schema
from rune_io.api.models import Patient, StreamMeta
from rune_io.errors import DataError
from rune_io.lake.layout import EVENTS_TABLE, partition_of, table_name
from rune_io.lake.records import FileRecords
from rune_io.lake.snapshot import EVENTS_PREFIX
from rune_io.lake.storage import Lake
from rune_io.lake.writer import write_events, write_stream_partition

if TYPE_CHECKING:
    from rune_io.api.client import RuneClient
    from rune_io.lake.catalog import FileEntry
    from rune_io.pipeline.plan import Window


def events_key(patient_id: str) -> str:
    """The catalog key of a patient's events (watermarks, rates, coverage)."""
    return f"{EVENTS_PREFIX}{patient_id}"


@dataclass(frozen=True)
class StreamSource:
    """One data stream, described by its metadata (as discovered this run)."""

    meta: StreamMeta
    kind: ClassVar[str] = "stream"

    @property
    def key(self) -> str:
        return self.meta.id

    @property
    def patient_id(self) -> str:
        return self.meta.patient_id

    @property
    def min_time(self) -> float | None:
        return self.meta.min_time

    @property
    def max_time(self) -> float | None:
        return self.meta.max_time

    @property
    def table(self) -> str:
        return table_name(self.meta)

    def fetch(
        self,
        client: RuneClient,
        lake: Lake,
        window: Window,
        run_id: str,
        records: FileRecords | None = None,
    ) -> FileEntry | None:
        """Read ``window`` from the Stream API and write its lake partition (its entry
        held in ``records``, if given: :mod:`rune_io.lake.records`)."""
        try:
            stream_schema(self.meta.stream_type)
        except ValueError as exc:  # a stream type this version cannot store: not transient
            raise DataError(f"stream {self.key} window {window}: {exc}") from None
        batches = client.streams.read(self.meta, window.start, window.end)
        return write_stream_partition(
            lake, self.meta, window.start, batches, run_id=run_id, replace_empty=True,
            only_changed=window.only_changed, records=records,
        )  # fmt: skip


@dataclass(frozen=True)
class EventsSource:
    """One patient's events (GraphQL), spanning the patient's streams' data."""

    patient_id: str
    min_time: float | None  # unix seconds, as StreamMeta
    max_time: float | None
    kind: ClassVar[str] = "events"

    @property
    def key(self) -> str:
        return events_key(self.patient_id)

    @property
    def table(self) -> str:
        return EVENTS_TABLE

    def fetch(
        self,
        client: RuneClient,
        lake: Lake,
        window: Window,
        run_id: str,
        records: FileRecords | None = None,
    ) -> FileEntry | None:
        """Read the patient's events of ``window`` and write its lake partition."""
        events = client.graph.events(self.patient_id, window.start, window.end)
        return write_events(
            lake,
            self.patient_id,
            window.start,
            events,
            run_id=run_id,
            replace_empty=True,
            bounds=(self.min_time, self.max_time),
            only_changed=window.only_changed,
            records=records,
        )


Source = StreamSource | EventsSource


def as_source(x: Source | StreamMeta) -> Source:
    """``x`` as a source (a stream's metadata is a :class:`StreamSource`)."""
    return StreamSource(x) if isinstance(x, StreamMeta) else x


def lake_table(x: Source | StreamMeta) -> str:
    """The lake table a source (or a stream) lands in."""
    return as_source(x).table


def lake_partitioning(x: Source | StreamMeta, t: datetime) -> tuple[datetime, datetime]:
    """The lake partition (day or month) of ``x``'s table holding ``t``."""
    p = partition_of(lake_table(x), t)
    return p.start, p.end


def events_source(patient_id: str, streams: Iterable[StreamMeta]) -> EventsSource | None:
    """A patient's events, spanning the patient's streams' data (None: no data)."""
    mine = [s for s in streams if s.patient_id == patient_id and s.min_time is not None]
    if not mine:
        return None
    return EventsSource(
        patient_id,
        min(s.min_time for s in mine if s.min_time is not None),
        max(s.max_time for s in mine if s.max_time is not None),
    )


def work_sources(
    patients: Sequence[Patient], streams: Sequence[StreamMeta], include_events: bool
) -> list[Source]:
    """Every data stream, plus, when asked, each patient's events."""
    out: list[Source] = [StreamSource(s) for s in streams]
    if include_events:
        for p in patients:
            ev = events_source(p.id, streams)
            if ev is not None:
                out.append(ev)
    return out
