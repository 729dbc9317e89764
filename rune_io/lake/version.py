"""The lake's format version, and the refusal to write into a lake of another one.

The version is recorded in the catalog's marker, ``_catalog/_lake.json``, as
``format_version``. A lake created before versions were recorded has none: it is
version 1 (the format of rune-lake 0.x: ``<category>__<measurement>`` tables, µs times,
one consolidated catalog file per table). Writing v2 files into it would silently mix two
formats in one table, so every write path (:meth:`Catalog.begin_run`,
:meth:`Catalog.commit`, the CLI's preflight) calls :func:`check_format` first; reading
an old lake (``rune-lake catalog``) still works.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rune_io.lake.errors import LakeVersionError
from rune_io.lake.layout import CATALOG_DIR

if TYPE_CHECKING:
    from rune_io.lake.storage import Lake

#: The format this code writes (CONTRACT.md section 3).
FORMAT_VERSION = 2
MARKER = f"{CATALOG_DIR}/_lake.json"


def format_version(lake: Lake) -> int:
    """The lake's recorded format version (1 when none is recorded)."""
    try:
        info = json.loads(lake.read_bytes(MARKER))
    except FileNotFoundError:
        return FORMAT_VERSION  # no lake yet: open_lake creates one of this version
    return int(info.get("format_version", 1))


def check_format(lake: Lake) -> None:
    """Raise :class:`LakeVersionError` (one line) unless this code may write ``lake``."""
    found = format_version(lake)
    if found != FORMAT_VERSION:
        raise LakeVersionError(
            f"the lake at {lake.url!r} is format version {found}; this rune-lake writes "
            f"version {FORMAT_VERSION} and will not mix the two: load into a new lake "
            f"(another --lake), or use the rune-lake release that wrote this one"
        )
