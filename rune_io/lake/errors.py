"""The lake's errors; they live in the project-wide hierarchy, :mod:`rune_io.errors`."""

from rune_io.errors import (
    LakeError,
    LakeFullError,
    LakeVersionError,
    PartitionWindowError,
    SchemaConflictError,
)

__all__ = [
    "LakeError",
    "LakeFullError",
    "LakeVersionError",
    "PartitionWindowError",
    "SchemaConflictError",
]
