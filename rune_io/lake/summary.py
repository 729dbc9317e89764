"""Plain-text summary of a lake's catalog, for ``rune-lake catalog --lake URL``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pyarrow as pa

from rune_io.lake.catalog import Catalog
from rune_io.lake.layout import LAYOUT_VERSION
from rune_io.lake.pending import read_pending
from rune_io.lake.resolve import parse_time as _parse_time
from rune_io.lake.storage import Lake
from rune_io.lake.version import format_version

_COLUMNS = ["key", "table", "stream_id", "patient_id", "rows", "bytes", "min_time", "max_time"]


def catalog_summary(cat: Catalog) -> dict[str, Any]:
    """Tables (files, rows, streams, patients, time span, bytes), last run, per-stream
    watermarks: what ``rune-lake catalog`` prints. Group-bys over one columnar read."""
    pend = read_pending(cat.lake)
    files = cat._resolved_files(pend, _COLUMNS, ("table", "stream_id", "patient_id"))
    files = files.unify_dictionaries()
    small = cat._small_state(pend)
    table_rows: list[dict[str, Any]] = []
    if files.num_rows:
        g = (
            pa.table({c: files.column(c) for c in _COLUMNS[1:]})
            .group_by("table")
            .aggregate(
                [
                    ("rows", "count"),
                    ("rows", "sum"),
                    ("bytes", "sum"),
                    ("min_time", "min"),
                    ("max_time", "max"),
                    ("stream_id", "count_distinct"),
                    ("patient_id", "count_distinct"),
                ]
            )
        )
        for r in g.to_pylist():
            streams = r["stream_id_count_distinct"]
            table_rows.append(
                {
                    "table": str(r["table"]),
                    "files": r["rows_count"],
                    "rows": r["rows_sum"],
                    "bytes": r["bytes_sum"],
                    "min_time": r["min_time_min"],
                    "max_time": r["max_time_max"],
                    "streams": streams if r["table"] != "events" else 0,
                    "patients": r["patient_id_count_distinct"],
                }
            )
        table_rows.sort(key=lambda t: t["table"])
    runs = sorted(small["runs"].values(), key=lambda r: str(r.get("started_at") or ""))
    streams = small["streams"]
    marks = []
    for sid, w in sorted(small["watermarks"].items()):
        s = streams.get(sid, {})
        marks.append(
            {
                "stream_id": sid,
                "table": s.get("table", ""),
                "patient_id": s.get("patient_id", ""),
                "device_id": s.get("device_id", ""),
                "loaded_up_to": _parse_time(w["loaded_up_to"]),
            }
        )
    last = runs[-1] if runs else None
    if last is not None:
        last = {**last, "started_at": _parse_time(last.get("started_at"))}
    return {
        "lake": cat.lake.url,
        "layout_version": LAYOUT_VERSION,
        "format_version": format_version(cat.lake),
        "tables": table_rows,
        "totals": {
            "files": sum(t["files"] for t in table_rows),
            "rows": sum(t["rows"] for t in table_rows),
            "bytes": sum(t["bytes"] for t in table_rows),
        },
        "last_run": last,
        "watermarks": marks,
        "pending_objects": len(pend.rels),
    }


def _fmt_time(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _fmt_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _grid(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def render_summary(summary: dict[str, Any]) -> str:
    """Render :meth:`Catalog.summary` output as aligned plain text."""
    out = [
        f"lake {summary['lake']} (format v{summary.get('format_version', 1)}, "
        f"layout v{summary['layout_version']})",
        "",
    ]
    rows = [
        [
            t["table"],
            str(t["files"]),
            f"{t['rows']:,}",
            str(t["streams"]),
            str(t["patients"]),
            _fmt_time(t["min_time"]),
            _fmt_time(t["max_time"]),
            _fmt_bytes(t["bytes"]),
        ]
        for t in summary["tables"]
    ]
    tot = summary["totals"]
    rows.append(
        ["total", str(tot["files"]), f"{tot['rows']:,}", "", "", "", "", _fmt_bytes(tot["bytes"])]
    )
    headers = ["table", "files", "rows", "streams", "patients", "from", "to", "bytes"]
    out += _grid(headers, rows, right={1, 2, 3, 4, 7})
    run = summary["last_run"]
    out.append("")
    if run:
        stats = run.get("stats")
        stats = json.loads(stats) if isinstance(stats, str) and stats else stats or {}
        started = run.get("started_at")
        out.append(
            f"last run {run['run_id']}: {run.get('status') or '?'}, started "
            f"{_fmt_time(started if isinstance(started, datetime) else None)}"
            + (f", {json.dumps(stats, sort_keys=True)}" if stats else "")
        )
    else:
        out.append("no runs recorded")
    if summary["pending_objects"]:
        out.append(f"{summary['pending_objects']} pending catalog objects (uncommitted run)")
    marks = summary["watermarks"]
    if marks:
        out.append("")
        out += _grid(
            ["stream", "table", "patient", "device", "loaded up to"],
            [
                [
                    m["stream_id"],
                    m["table"],
                    m["patient_id"],
                    m["device_id"],
                    _fmt_time(m["loaded_up_to"]),
                ]
                for m in marks
            ],
            right=set(),
        )
    return "\n".join(out) + "\n"


def render_catalog_summary(lake: Lake) -> str:
    """The text ``rune-lake catalog --lake URL`` prints for ``lake``."""
    return render_summary(Catalog(lake).summary())
