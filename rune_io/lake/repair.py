"""Recovering from crashes (every run), and the full check of catalog against files.

:func:`recover` runs before every run and costs what a crash can have left, not what the
lake holds: stale staging files, then a commit, which folds pending entries, rebuilds
entries from intents and finishes interrupted removals (see :mod:`rune_io.lake.catalog`).

:func:`repair` (``rune-lake repair``) is the explicit, full check: it lists every data
file and reconciles: files without an entry (or whose size differs from it) get one,
rebuilt from the ``rune_lake`` footer and a checksum of their bytes; entries whose file
is gone are dropped; ``.parquet`` files without a footer are reported. Needed only when
something outside rune-lake touched the lake.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from rune_io.lake.entries import entry_from_file
from rune_io.lake.layout import STAGING_DIR
from rune_io.lake.pending import Pending, remove_empty_dirs
from rune_io.lake.storage import Lake, list_files, remove

if TYPE_CHECKING:
    from rune_io.lake.catalog import Catalog, CommitReport


@dataclass
class RepairReport:
    """What :func:`repair` (or :func:`recover`) found and fixed."""

    added: list[str] = field(default_factory=list)  # files that lacked an entry
    dropped: list[str] = field(default_factory=list)  # entries whose file is gone
    foreign: list[str] = field(default_factory=list)  # .parquet files without a rune_lake footer
    temps_removed: list[str] = field(default_factory=list)
    commit: CommitReport | None = None


def recover(cat: Catalog, *, stale_after: timedelta = timedelta(hours=1)) -> RepairReport:
    """Remove stale staging files, then commit what a crashed run left."""
    report = RepairReport(temps_removed=remove_stale_temps(cat.lake, stale_after))
    report.commit = cat.commit()
    return report


def repair(
    cat: Catalog, run_id: str | None = None, *, stale_after: timedelta = timedelta(hours=1)
) -> RepairReport:
    """Reconcile the catalog with a listing of every data file, then commit."""
    run_id = run_id or f"repair-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    report = RepairReport(temps_removed=remove_stale_temps(cat.lake, stale_after))
    cat.commit()  # fold what is pending first: the comparison is then with committed state
    files = cat.files().select(["path", "table", "bytes"]).to_pylist()
    entries = {f["path"]: f for f in files}
    found = data_files(cat.lake)
    for rel, size in sorted(found.items()):
        entry = entries.get(rel)
        if entry is not None and int(entry["bytes"]) == size:
            continue
        rebuilt = entry_from_file(cat.lake, rel)
        if rebuilt is None:
            report.foreign.append(rel)
            continue
        cat.record_file(rebuilt)  # keeps the writing run's id and time (footer)
        report.added.append(rel)
    for rel, entry in sorted(entries.items()):
        if rel not in found:
            cat.record_removal(rel, entry["table"], run_id)
            report.dropped.append(rel)
    report.commit = cat.commit(run_id)
    remove_empty_dirs(cat.lake)  # every run's empty folder (run it when no run is active)
    return report


def data_files(lake: Lake) -> dict[str, int]:
    """``{path: size}`` of every ``.parquet`` file under a table (a full listing)."""
    out = {}
    for rel, size in list_files(lake, "").items():
        parts = rel.split("/")
        if len(parts) < 2 or any(p.startswith((".", "_")) for p in parts):
            continue
        if rel.endswith(".parquet"):
            out[rel] = size
    return out


def remove_stale_temps(lake: Lake, stale_after: timedelta) -> list[str]:
    """Local staging files older than ``stale_after`` (a killed run's); on S3 an
    interrupted multipart upload is invisible and a bucket lifecycle rule reaps it."""
    if not lake.is_local:
        return []
    staging = lake.path(STAGING_DIR)
    if not os.path.isdir(staging):
        return []
    cutoff = time.time() - stale_after.total_seconds()
    removed = []
    for name in sorted(os.listdir(staging)):
        p = os.path.join(staging, name)
        try:
            if os.path.getmtime(p) <= cutoff:
                os.remove(p)
                removed.append(f"{STAGING_DIR}/{name}")
        except FileNotFoundError:
            pass
    return removed


def resolve_intents(lake: Lake, pend: Pending) -> list[str]:
    """Entries for published files whose run died before recording them (added to
    ``pend.files``, so this commit folds them)."""
    rebuilt = []
    for rel, path in sorted(pend.intents.items()):
        if pend.is_recorded(rel, path) or not lake.exists(path):
            continue
        entry = entry_from_file(lake, path)
        if entry is not None:
            pend.files.append(entry.to_json())
            rebuilt.append(path)
    pend.files.sort(key=lambda b: str(b["written_at"]))
    return rebuilt


def finish_removals(lake: Lake, pend: Pending) -> list[str]:
    """Delete files whose tombstone is their last word (a crash between tombstone
    and delete), unless an intent says a run is publishing that path again."""
    last = {b["path"]: b for b in pend.files}
    publishing = set(pend.intents.values())
    done = []
    for path, body in sorted(last.items()):
        if body.get("deleted") and path not in publishing and lake.exists(path):
            remove(lake, path)
            done.append(path)
    return done
