"""Where every row of the lake lives: table names, partitions, file names, columns.

Layout (version :data:`LAYOUT_VERSION`)::

    <lake>/<table>/patient=p-<slug>/date=YYYY-MM-DD/<stream slug>_YYYY-MM-DD.parquet
    <lake>/events/patient=p-<slug>/month=YYYY-MM/events_YYYY-MM.parquet
    <lake>/<table>/_common_metadata      # union schema of the table (plain Spark reads it)
    <lake>/_catalog/...                  # see rune_io.lake.catalog

* A table holds the streams of one stream type in one measurement, so one set of value
  columns: ``<category>__<measurement>__<type>`` (``symptom__tremor__duration``,
  ``motion__user__acceleration``), ``<category>__<type>`` for a stream without a
  ``measurement`` (``uncategorized`` without a ``category``), each part slugged to
  ``[a-z0-9_]`` (the type id's ``-`` becomes ``_``).
* Partition values are slugs (``[A-Za-z0-9_-]``): :func:`slug` keeps a value that is
  already one and encodes anything else reversibly (``-`` + hex of its UTF-8 bytes), so no
  value can create a path component like ``..`` or contain ``/``. Every patient id the Rune
  API issues is 32-hex, hence its own slug.
* The patient partition is ``patient=p-<slug>``, *not* ``patient_id=<id>``: DuckDB and
  Spark both let a partition value shadow a data column of the same name, and plain
  ``spark.read.parquet`` infers partition types from the values alone, so a table whose
  patient ids are all digits (possible for 32-hex ids) would turn ``patient_id`` into a
  decimal without its leading zeros. With a distinct key and a non-numeric value, the
  ``patient_id`` data column (the raw id, always a string) is what every engine shows,
  and ``patient`` is a string partition column for pruning
  (``WHERE patient = 'p-<id>'``, see :func:`patient_partition`).
* Rows are partitioned by their key time (:func:`rune_io.api.arrow_schema.time_key`: ``time``,
  ``start_time`` for spans); a stream without any timestamp (``bytes``) by the API window
  it was fetched in. Fast streams (50 Hz motion, heart rate) are partitioned by UTC
  day; low-rate streams (symptom minutes, LFP trend logs every 10 min, patient reports,
  sleep, phone activity) and events by UTC month (:data:`MONTHLY_TABLES`): a day of those is 3-15 KiB of Parquet, a month
  0.1-0.5 MiB. A file always holds the *whole* partition of its stream, so no task ever
  reads back or merges a shared file: ``rune_io.pipeline.plan`` plans one window per partition
  and re-fetches the open month whole, which for these streams is still one API page.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from rune_io.api.arrow_schema import SERVED_EXTRA_TYPES, TIME_TYPE, stream_schema
from rune_io.api.models import StreamMeta
from rune_io.errors import UsageError

#: Bump when paths or columns change incompatibly; recorded in ``_catalog/_lake.json``.
LAYOUT_VERSION = 1

EVENTS_TABLE = "events"
CATALOG_DIR = "_catalog"
STAGING_DIR = "_staging"

#: Tables partitioned by calendar month (fnmatch patterns on the table name); all others
#: by UTC day. A monthly *stream* table needs whole-month fetches (see the module doc).
MONTHLY_TABLES: tuple[str, ...] = (
    "symptom__*",
    "patient_report__*",
    "sleep__*",
    "device_info__*",
    "environment__*",
    "neural__lfp_trend_log_power__*",
    "behavior__*",
    # low-rate stream types wherever they are (the table name ends with the type)
    "*__duration",
    "*__percentage",
    "*__event",
    "*__span",
    "*__state",
    "*__timezone",
    EVENTS_TABLE,
)

#: Metadata columns added after the stream type's dimensions, in this order.
META_COLUMNS: tuple[str, ...] = (
    "stream_id",
    "patient_id",
    "device_id",
    "algorithm",
    "stream_type",
)
#: Parameters that lead the parameter columns; the rest follow sorted by key.
LEADING_PARAMS: tuple[str, ...] = ("category", "measurement")
#: Partition key of the patient level (values from :func:`patient_partition`).
PATIENT_KEY = "patient"
#: Names a data column must not take: partition keys (they would clash with hive columns).
PARTITION_KEYS: tuple[str, ...] = (PATIENT_KEY, "date", "month")

_SLUG_OK = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}")
_MAX_ENCODED = 160


def slug(value: str) -> str:
    """Encode any string as a partition-safe slug (``[A-Za-z0-9_-]``, never empty).

    Values that are already slugs (not starting with ``-``, at most 128 chars) are kept;
    anything else becomes ``-`` + the hex of its UTF-8 bytes (reversible with
    :func:`unslug`), or, if that would exceed 160 chars, ``-h`` + a sha256 prefix (not
    reversible; the raw value lives in the data columns anyway).
    """
    if _SLUG_OK.fullmatch(value):
        return value
    encoded = "-" + value.encode("utf-8").hex()
    if len(encoded) <= _MAX_ENCODED:
        return encoded
    return "-h" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:40]


def unslug(value: str) -> str:
    """Invert :func:`slug`; raises ``ValueError`` for hashed (irreversible) slugs."""
    if not value.startswith("-"):
        return value
    if value.startswith("-h"):
        raise UsageError(f"slug {value!r} is a hash and cannot be decoded")
    return bytes.fromhex(value[1:]).decode("utf-8")


def _name_part(text: str) -> str:
    out = re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")
    return out or "unknown"


def table_name(stream: StreamMeta) -> str:
    """Table of a stream: ``<category>__<measurement>__<type>`` (e.g.
    ``symptom__tremor__duration``), ``<category>__<type>`` without a ``measurement``."""
    category = _name_part(stream.category) if stream.category else "uncategorized"
    kind = _name_part(stream.stream_type.id)
    if stream.measurement:
        return f"{category}__{_name_part(stream.measurement)}__{kind}"
    return f"{category}__{kind}"


def granularity(table: str) -> str:
    """``"month"`` for tables in :data:`MONTHLY_TABLES`, else ``"date"`` (daily)."""
    return "month" if any(fnmatch.fnmatchcase(table, p) for p in MONTHLY_TABLES) else "date"


@dataclass(frozen=True)
class Partition:
    """One time partition of a table: ``[start, end)`` in UTC."""

    key: str  # "date" | "month"
    value: str  # "2024-01-05" | "2024-01"
    start: datetime
    end: datetime

    @property
    def dirname(self) -> str:
        return f"{self.key}={self.value}"

    def contains(self, t: datetime) -> bool:
        return self.start <= t < self.end


def _as_date(day: date | datetime) -> date:
    if isinstance(day, datetime):
        if day.tzinfo is None:
            raise UsageError(f"naive datetime {day!r}: the lake speaks UTC, pass tz-aware times")
        return day.astimezone(UTC).date()
    return day


def partition_of(table: str, day: date | datetime) -> Partition:
    """The partition of ``table`` holding ``day`` (a date, or a tz-aware datetime)."""
    d = _as_date(day)
    if granularity(table) == "month":
        start = datetime(d.year, d.month, 1, tzinfo=UTC)
        end = datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=UTC)
        return Partition("month", f"{d.year:04d}-{d.month:02d}", start, end)
    start = datetime(d.year, d.month, d.day, tzinfo=UTC)
    return Partition("date", d.isoformat(), start, start + timedelta(days=1))


def partition_for(stream: StreamMeta, day: date | datetime) -> Partition:
    """The partition of ``stream``'s table holding ``day``: its ``[start, end)`` is the
    window whose rows :func:`rune_io.lake.writer.write_stream_partition` expects."""
    return partition_of(table_name(stream), day)


def partitions_between(table: str, start: datetime, end: datetime) -> list[Partition]:
    """Partitions of ``table`` overlapping ``[start, end)``, oldest first."""
    out: list[Partition] = []
    if end <= start:
        return out
    p = partition_of(table, start)
    while p.start < end:
        out.append(p)
        p = partition_of(table, p.end)
    return out


def patient_partition(patient_id: str) -> str:
    """Value of the ``patient`` partition for a patient id: ``p-`` + :func:`slug` (the
    prefix keeps Spark from reading all-digit ids as numbers)."""
    return f"p-{slug(patient_id)}"


def stream_file_path(stream: StreamMeta, part: Partition) -> str:
    """Path of a stream's partition file, relative to the lake root (deterministic)."""
    table = table_name(stream)
    return (
        f"{table}/{PATIENT_KEY}={patient_partition(stream.patient_id)}/{part.dirname}/"
        f"{slug(stream.id)}_{part.value}.parquet"
    )


def events_file_path(patient_id: str, part: Partition) -> str:
    """Path of a patient's events file for one partition, relative to the lake root."""
    return (
        f"{EVENTS_TABLE}/{PATIENT_KEY}={patient_partition(patient_id)}/{part.dirname}/"
        f"events_{part.value}.parquet"
    )


def param_columns(stream: StreamMeta) -> list[tuple[str, str]]:
    """``(column name, value)`` of each stream parameter, leading ones first.

    Keys are slugged to ``[A-Za-z0-9_]``; a key that would clash with a time, dimension,
    metadata or partition column is prefixed ``param_``.
    """
    taken = {*META_COLUMNS, *PARTITION_KEYS, *SERVED_EXTRA_TYPES}
    taken |= set(stream_schema(stream.stream_type).names)
    params = stream.params
    order = [k for k in LEADING_PARAMS if k in params]
    order += sorted(k for k in params if k not in LEADING_PARAMS)
    out: list[tuple[str, str]] = []
    for key in order:
        col = re.sub(r"[^A-Za-z0-9_]", "_", key) or "param"
        if col in taken:
            col = f"param_{col}"
        taken.add(col)
        out.append((col, params[key]))
    return out


def lake_schema(stream: StreamMeta) -> pa.Schema:
    """Schema of a stream's lake files: dimensions (a timestamp as ``d``, ``d_ns``),
    metadata, parameters (an undeclared served column such as ``measurement_duration_ns``
    is added after the dimensions by the writer)."""
    base = stream_schema(stream.stream_type)
    clash = {f.name for f in base} & {*META_COLUMNS, *PARTITION_KEYS}
    if clash:
        raise UsageError(
            f"stream type {stream.stream_type.id!r} has dimension(s) {sorted(clash)} that "
            "clash with lake metadata/partition columns"
        )
    fields = list(base)
    fields += [pa.field(c, pa.string()) for c in META_COLUMNS]
    fields += [pa.field(c, pa.string()) for c, _ in param_columns(stream)]
    return pa.schema(fields)


#: Columns of the events table.
EVENTS_SCHEMA = pa.schema(
    [
        pa.field("time", TIME_TYPE, nullable=False),  # the event's start time
        pa.field("end_time", TIME_TYPE),
        pa.field("event_id", pa.string()),
        pa.field("patient_id", pa.string()),
        pa.field("type", pa.string()),
        pa.field("namespace", pa.string()),
        pa.field("category", pa.string()),
        pa.field("enum", pa.string()),
        pa.field("display_name", pa.string()),
        pa.field("method", pa.string()),
        pa.field("payload", pa.string()),
        pa.field("tags", pa.list_(pa.string())),
    ]
)


def schema_fingerprint(schema: pa.Schema) -> str:
    """Short stable hash of column names and types (metadata and nullability ignored)."""
    text = ";".join(f"{f.name}:{f.type}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
