"""The catalog's pending objects (``_catalog/pending/<run>/...``), read in one listing.

Writers add one small JSON object per event (see :mod:`rune_io.lake.catalog`); a
commit folds them into the committed tables and deletes them. Reading them costs what
runs since the last commit wrote, never what the lake holds.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from rune_io.lake.layout import CATALOG_DIR
from rune_io.lake.storage import Lake, list_files

PENDING = f"{CATALOG_DIR}/pending"

log = logging.getLogger("rune_io.lake.pending")


@dataclass
class Pending:
    """Pending objects by kind (bodies as written), and their paths."""

    rels: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)  # entries and tombstones
    intents: dict[str, str] = field(default_factory=dict)  # rel of intent -> data path
    streams: list[dict[str, Any]] = field(default_factory=list)
    watermarks: list[dict[str, Any]] = field(default_factory=list)  # {"force", "rows"}
    runs: list[dict[str, Any]] = field(default_factory=list)

    recorded: set[tuple[str, str]] = field(default_factory=set)  # (run folder, data path)

    def is_recorded(self, intent_rel: str, path: str) -> bool:
        """Whether the run that wrote the intent ``intent_rel`` recorded ``path``."""
        return (intent_rel.rsplit("/", 2)[0], path) in self.recorded


def read_pending(lake: Lake) -> Pending:
    """Every pending object, parsed; file docs sorted by ``written_at`` (later wins).

    A file record that does not parse is skipped (and deleted with the others): a unit's
    records are written without a sync (:meth:`Catalog.record_files`), so a power loss
    may cut one short; its files' intents then rebuild their entries."""
    out = Pending(rels=sorted(list_files(lake, PENDING)))
    blobs = lake.fs.cat([lake.path(p) for p in out.rels]) if out.rels else {}
    for rel in out.rels:
        kind = rel.split("/")[-2]
        try:
            body = json.loads(blobs[lake.path(rel)])
        except ValueError:
            if kind != "files":
                raise
            log.warning("catalog: skipping cut-short pending record %s", rel)
            continue
        if kind == "files":
            docs = body if isinstance(body, list) else [body]
            out.files.extend(docs)
            out.recorded.update((rel.rsplit("/", 2)[0], d["path"]) for d in docs)
        elif kind == "intents":
            out.intents[rel] = body["path"]
        elif kind == "streams":
            out.streams.extend(body)
        elif kind == "watermarks":
            out.watermarks.append(body)
        elif kind == "run":
            out.runs.append(body)
    out.files.sort(key=lambda b: str(b["written_at"]))
    out.watermarks.sort(key=lambda d: str(d["rows"][0]["updated_at"]) if d["rows"] else "")
    return out


def remove_empty_dirs(lake: Lake, runs: set[str] | None = None) -> None:
    """Remove the empty ``pending/<run>/`` folders of ``runs`` (slugs; None: every run)
    that a commit leaves on local disk (object stores have no folders).

    Only finished runs are passed: a running run may be about to write into its folder."""
    if not lake.is_local:
        return
    top = lake.path(PENDING)
    try:
        names = os.listdir(top)
    except FileNotFoundError:
        return
    for name in names:
        if runs is not None and name not in runs:
            continue
        run_dir = os.path.join(top, name)
        for dirpath, _dirs, _files in sorted(os.walk(run_dir), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:  # not empty, or already gone
                pass
