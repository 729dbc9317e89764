"""rune-lake's Parquet lake: layout, atomic writer and metadata catalog.

>>> from rune_io.lake import open_lake, write_stream_partition, Catalog
>>> lake = open_lake("./lake")                       # or "s3://bucket/prefix"

See ``rune_io/lake/README.md`` for the layout and how DuckDB, Spark and pandas read it.
This package never imports prefect.
"""

from rune_io.lake.catalog import Catalog, CommitReport, FileEntry
from rune_io.lake.errors import (
    LakeError,
    LakeVersionError,
    PartitionWindowError,
    SchemaConflictError,
)
from rune_io.lake.layout import partition_for, partitions_between, table_name
from rune_io.lake.repair import RepairReport
from rune_io.lake.snapshot import Snapshot
from rune_io.lake.storage import Lake, open_lake
from rune_io.lake.summary import render_catalog_summary
from rune_io.lake.version import FORMAT_VERSION, check_format
from rune_io.lake.writer import write_events, write_stream_partition

__all__ = [
    "FORMAT_VERSION",
    "Catalog",
    "CommitReport",
    "FileEntry",
    "Lake",
    "LakeError",
    "LakeVersionError",
    "PartitionWindowError",
    "RepairReport",
    "SchemaConflictError",
    "Snapshot",
    "check_format",
    "open_lake",
    "partition_for",
    "partitions_between",
    "render_catalog_summary",
    "table_name",
    "write_events",
    "write_stream_partition",
]
