"""Small typed records for Rune metadata.

These are the shapes every layer agrees on: ``rune_io.api.graph`` produces them from the
GraphQL API, ``rune_io.api.streams`` reads data for a :class:`StreamMeta`, ``rune_io.lake``
turns a :class:`StreamMeta` into table names and data columns, and the flows pass
their ids around. They are frozen dataclasses: hashable, picklable, cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Dimension:
    """One column of a stream type, e.g. ``acceleration`` (``float``)."""

    identifier: str
    data_type: str  # "timestamp" | "float" | "int" | "sum" | "enum" | "string" | "bool" ...
    quantity_name: str | None = None
    quantity_abbrev: str | None = None
    unit_name: str | None = None
    unit_abbrev: str | None = None


@dataclass(frozen=True)
class StreamType:
    id: str
    name: str
    description: str = ""
    dimensions: tuple[Dimension, ...] = ()

    @property
    def value_dimensions(self) -> tuple[Dimension, ...]:
        """Dimensions other than the time column."""
        return tuple(d for d in self.dimensions if d.identifier != "time")


@dataclass(frozen=True)
class StreamMeta:
    """Metadata of one stream: what the V2 ``/v2/streams/{id}`` endpoint serves."""

    id: str
    patient_id: str
    device_id: str  # bare device id (the API denormalizes it as "patient-<p>,device-<d>")
    algorithm: str
    stream_type: StreamType
    parameters: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs
    min_time: float | None = None  # unix seconds
    max_time: float | None = None  # unix seconds
    created_at: float | None = None

    @property
    def params(self) -> dict[str, str]:
        return dict(self.parameters)

    @property
    def category(self) -> str:
        return self.params.get("category", "")

    @property
    def measurement(self) -> str:
        return self.params.get("measurement", "")


@dataclass(frozen=True)
class Device:
    id: str
    patient_id: str
    alias: str = ""
    device_type_id: str = ""
    disabled: bool = False
    created_at: float | None = None


@dataclass(frozen=True)
class Patient:
    id: str
    code_name: str = ""
    created_at: float | None = None
    devices: tuple[Device, ...] = ()


@dataclass(frozen=True)
class Org:
    id: str
    name: str
    created_at: float | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cohort:
    id: str
    title: str
    description: str = ""
    project_id: str = ""


@dataclass(frozen=True)
class Project:
    id: str
    title: str
    status: str = ""
    description: str = ""
    org_id: str = ""
    cohorts: tuple[Cohort, ...] = ()


@dataclass(frozen=True)
class User:
    id: str
    display_name: str
    email: str = ""
    active_org_id: str = ""
    active_org_name: str = ""


@dataclass(frozen=True)
class Event:
    """A patient event (medication, symptom note, device setting change...)."""

    id: str
    patient_id: str
    display_name: str
    namespace: str
    category: str
    enum: str
    start_time: datetime  # tz-aware UTC
    end_time: datetime | None = None
    payload: str = ""  # JSON text, as the API serves it
    method: str = ""
    tags: tuple[str, ...] = field(default=())

    @property
    def type(self) -> str:
        return ".".join(p for p in (self.namespace, self.category, self.enum) if p)
