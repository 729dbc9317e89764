"""The emulator's own records of Rune metadata (it imports nothing from ``rune_io``).

Frozen dataclasses: the cohort is built from them once and never mutated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

#: Dimension data types the live service serves (public evidence, notebook 06).
DATA_TYPES = ("timestamp", "sfloat", "ufloat", "uint", "bool", "dict")


@dataclass(frozen=True)
class Dimension:
    """One dimension (= one CSV column) of a stream type."""

    identifier: str
    data_type: str
    quantity_name: str = ""
    quantity_abbrev: str = ""
    unit_name: str = ""
    unit_abbrev: str = ""


@dataclass(frozen=True)
class StreamType:
    id: str
    name: str
    description: str = ""
    dimensions: tuple[Dimension, ...] = ()

    @property
    def timestamp_dimensions(self) -> tuple[Dimension, ...]:
        return tuple(d for d in self.dimensions if d.data_type == "timestamp")

    @property
    def value_dimensions(self) -> tuple[Dimension, ...]:
        """Dimensions other than ``time``."""
        return tuple(d for d in self.dimensions if d.identifier != "time")

    @property
    def key_dimension(self) -> Dimension:
        """The dimension rows are ordered and windowed by: the first timestamp one."""
        ts = self.timestamp_dimensions
        return ts[0] if ts else self.dimensions[0]


@dataclass(frozen=True)
class StreamMeta:
    id: str
    patient_id: str
    device_id: str  # bare short id; GraphQL serves "patient-<p>,device-<d>"
    algorithm: str
    stream_type: StreamType
    parameters: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs
    created_at: float | None = None
    min_time: float | None = None  # unix s; filled by ``SyntheticCohort.streams`` (clock)
    max_time: float | None = None

    @property
    def params(self) -> dict[str, str]:
        return dict(self.parameters)

    @property
    def category(self) -> str:
        return self.params.get("category", "")

    @property
    def measurement(self) -> str:
        """The ``measurement`` parameter ("" for the streams that have none)."""
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
    id: str  # "org-<x>" (GraphQL serves "org-<x>,org")
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
class Event:
    """A GraphQL ``eventList`` event (medication, symptom note, setting change)."""

    id: str
    patient_id: str
    display_name: str
    namespace: str
    category: str
    enum: str
    start_time: datetime  # tz-aware UTC
    end_time: datetime | None = None
    payload: str = ""  # JSON text
    method: str = ""
    tags: tuple[str, ...] = field(default=())

    @property
    def type(self) -> str:
        return ".".join(p for p in (self.namespace, self.category, self.enum) if p)
