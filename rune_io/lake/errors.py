"""Errors raised by the lake.

``rune_io/errors.py`` (the project-wide hierarchy) did not exist when the lake was
written; these classes subclass :class:`LakeError` so that, once it does, ``LakeError``
can simply inherit from its base (``RuneIOError``) without touching any caller.
"""

from __future__ import annotations


class LakeError(Exception):
    """Base class of every error the lake raises on purpose."""


class LakeVersionError(LakeError):
    """The lake at a URL was written by a newer, incompatible layout version."""


class SchemaConflictError(LakeError):
    """A column of a table changed type: the lake refuses to mix both in one table."""

    def __init__(self, table: str, column: str, old_type: str, new_type: str, *, where: str = ""):
        self.table = table
        self.column = column
        self.old_type = old_type
        self.new_type = new_type
        hint = (
            "New nullable columns are accepted; a type change is not. Write the new type "
            "under a new stream type (it gets its own column) or migrate the table."
        )
        super().__init__(
            f"schema conflict in table {table!r}: column {column!r} is {old_type} in the lake "
            f"but {new_type} in the new data{f' ({where})' if where else ''}. {hint}"
        )


class PartitionWindowError(LakeError):
    """Rows handed to a partition writer lie outside that partition's time window."""
