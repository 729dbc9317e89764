"""What a run reads: data streams and, per patient, the events pseudo-stream.

Events are planned and run like a stream: each patient's events are a pseudo-stream
with id ``events/<patient_id>`` whose partitions are the ``events`` table's months and
whose time span is that of the patient's streams.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from rune_io.api.models import Patient, StreamMeta, StreamType
from rune_io.lake.layout import EVENTS_TABLE, partition_of, table_name

EVENTS_PREFIX = "events/"


def is_events(stream: StreamMeta) -> bool:
    return stream.id.startswith(EVENTS_PREFIX)


def events_stream(patient_id: str, streams: Iterable[StreamMeta]) -> StreamMeta | None:
    """The events pseudo-stream of a patient, spanning the patient's streams' data."""
    mine = [s for s in streams if s.patient_id == patient_id and s.min_time is not None]
    if not mine:
        return None
    return StreamMeta(
        id=f"{EVENTS_PREFIX}{patient_id}",
        patient_id=patient_id,
        device_id="",
        algorithm="",
        stream_type=StreamType(id="event", name="event"),
        parameters=(("category", "events"), ("measurement", "events")),
        min_time=min(s.min_time for s in mine if s.min_time is not None),
        max_time=max(s.max_time for s in mine if s.max_time is not None),
    )


def lake_table(stream: StreamMeta) -> str:
    return EVENTS_TABLE if is_events(stream) else table_name(stream)


def lake_partitioning(stream: StreamMeta, t: datetime) -> tuple[datetime, datetime]:
    """The lake partition (day or month) of ``stream``'s table holding ``t``."""
    p = partition_of(lake_table(stream), t)
    return p.start, p.end


def work_streams(
    patients: Sequence[Patient], streams: Sequence[StreamMeta], include_events: bool
) -> list[StreamMeta]:
    """Data streams plus, when asked, each patient's events pseudo-stream."""
    out = list(streams)
    if include_events:
        for p in patients:
            ev = events_stream(p.id, streams)
            if ev is not None:
                out.append(ev)
    return out
